%% @doc Bounded atoms: the one place where terms from the sidecar are decoded
%% (API.md section 5, "Atoms are bounded").
%%
%% The BEAM's atom table holds 1,048,576 atoms and is never collected; a
%% reply that made atoms without bound would stop the VM. So every
%% `binary_to_term' of sidecar data goes through {@link decode/1}: replies
%% and results (`py_wire:result/1'), the port owner's packets (`'$log'',
%% `'$state'', `'$send'', `'$exit'', their ids), callback bodies
%% (`py_callback:run/3') and the start-up replies.
%%
%% {@link decode/1} first tries `binary_to_term(Bin, [safe])', which refuses
%% a term with an atom that does not exist yet: a term of existing atoms
%% (`ok', `true', every atom a module mentions) costs nothing more. When that
%% fails it walks the external format ({@link atom_names/1}: every atom,
%% inside tuples, lists, maps, pids, ports, references, funs and exports; a
%% compressed term is inflated first, never past the size it claims) and
%% finds the atoms that do not exist. If the number of atoms made so far for
%% Python plus theirs stays within `max_atoms' (application environment,
%% default 10000) they are counted, their names recorded, created, and the
%% term decoded again (still `[safe]': no new external fun is made either);
%% otherwise it fails with `error:{atom_limit, Info}' and creates none, where
%% `Info' is `#{max_atoms => Max, spent => Spent, new => N, names => [Bin]}'
%% (`names': a few of the refused names). A caller that decodes a result gets
%% `{error, {atom_limit, Info}}' instead. A binary that is no term raises
%% `error:badarg', as `binary_to_term' does.
%%
%% The count and the names are VM-wide: one for every sidecar, kept in a
%% public ETS table whose owner is a process of its own started on first
%% use, outside the application (its group leader is `init''s), so they
%% outlive sidecar restarts and the application's restarts: Python makes at
%% most `max_atoms' new atoms over the VM's life. Each sidecar gets the names
%% and the count at start-up (`atoms_load', docs/PROTOCOL.md), so its Python
%% raises `erlang.AtomLimitError' for a new name past the cap, and makes the
%% names made before a restart again at no cost. Two processes that decode
%% the same new atom at the same moment may both count it: the count errs
%% on the safe side.
-module(py_atoms).

-export([decode/1, atom_names/1, new_atoms/1, max_atoms/0, spent/0, created/0, known/0,
         load_payload/0, list_elements/1]).

-define(TABLE, py_atoms).
-define(DEFAULT_MAX, 10000).
%% Names the Python side may take as existing: Python's built-in exception
%% classes (an exception becomes `{error, {Name, Msg}}'), and the atoms its
%% conversion writes. Being written here makes them atoms of this module.
-define(KNOWN,
        ['ArithmeticError', 'AssertionError', 'AttributeError', 'BaseException',
         'BaseExceptionGroup', 'BlockingIOError', 'BrokenPipeError', 'BufferError',
         'BytesWarning', 'ChildProcessError', 'ConnectionAbortedError', 'ConnectionError',
         'ConnectionRefusedError', 'ConnectionResetError', 'DeprecationWarning', 'EOFError',
         'EncodingWarning', 'EnvironmentError', 'Exception', 'ExceptionGroup',
         'FileExistsError', 'FileNotFoundError', 'FloatingPointError', 'FutureWarning',
         'GeneratorExit', 'IOError', 'ImportError', 'ImportWarning', 'IndentationError',
         'IndexError', 'InterruptedError', 'IsADirectoryError', 'KeyError',
         'KeyboardInterrupt', 'LookupError', 'MemoryError', 'ModuleNotFoundError',
         'NameError', 'NotADirectoryError', 'NotImplementedError', 'OSError',
         'OverflowError', 'PendingDeprecationWarning', 'PermissionError',
         'ProcessLookupError', 'RecursionError', 'ReferenceError', 'ResourceWarning',
         'RuntimeError', 'RuntimeWarning', 'StopAsyncIteration', 'StopIteration',
         'SyntaxError', 'SyntaxWarning', 'SystemError', 'SystemExit', 'TabError',
         'TimeoutError', 'TypeError', 'UnboundLocalError', 'UnicodeDecodeError',
         'UnicodeEncodeError', 'UnicodeError', 'UnicodeTranslateError', 'UnicodeWarning',
         'UserWarning', 'ValueError', 'Warning', 'ZeroDivisionError', 'AtomLimitError',
         'Error', 'ok', 'error', 'true', 'false', 'none', 'nil', 'undefined', 'nan',
         'infinity', 'neg_infinity', 'bytes', '$cb', '$send', '$log', '$state', '$exit',
         %% the info reply's
         mode, version, num_executors, subinterp_supported, protocol, slot_min, subinterp,
         multi_executor, free_threaded]).

-type limit_info() :: #{max_atoms := non_neg_integer(), spent := non_neg_integer(),
                        new := pos_integer(), names := [binary()]}.
-export_type([limit_info/0]).

%%--------------------------------------------------------------------

%% @doc `binary_to_term(Bin)' for data from the sidecar, making at most
%% {@link max_atoms/0} new atoms over the VM's life (see the module's doc).
%% Raises `error:badarg' for a binary that is no term (or holds a new
%% external fun), `error:{atom_limit, Info}' when its new atoms would go past
%% the cap (none is made then).
-spec decode(binary()) -> term().
decode(Bin) ->
    try
        binary_to_term(Bin, [safe])
    catch
        error:badarg -> slow(Bin)
    end.

%% The term has atoms that do not exist, or is no term, or has a new
%% external fun.
slow(Bin) ->
    New = try new_atoms(Bin)
          catch _:_ -> erlang:error(badarg, [Bin])
          end,
    case New of
        [] ->
            erlang:error(badarg, [Bin]);
        _ ->
            admit(New),
            binary_to_term(Bin, [safe])
    end.

%% Count New (names of atoms that do not exist), record them and make them,
%% or fail with atom_limit and make none.
admit(New) ->
    Tab = table(),
    N = length(New),
    Max = max_atoms(),
    Spent = ets:update_counter(Tab, count, {2, N}, {count, 0}),
    case Spent > Max of
        true ->
            _ = ets:update_counter(Tab, count, {2, -N}),
            erlang:error({atom_limit, #{max_atoms => Max, spent => Spent - N, new => N,
                                        names => lists:sublist(New, 3)}});
        false ->
            %% counted once: a name another decode recorded meanwhile was
            %% counted by it, and this one gives its count back
            Mine = length([Name || Name <- New, ets:insert_new(Tab, {{name, Name}})]),
            _ = Mine =:= N orelse ets:update_counter(Tab, count, {2, Mine - N}),
            _ = [binary_to_atom(Name, utf8) || Name <- New],
            ok
    end.

%% @doc The names (UTF-8) of the atoms in the first term of `Bin' that do
%% not exist, each once. Raises for a binary that is no term.
-spec new_atoms(binary()) -> [binary()].
new_atoms(Bin) ->
    [Name || Name <- lists:usort(atom_names(Bin)), not exists(Name)].

exists(Name) ->
    try binary_to_existing_atom(Name, utf8) of
        _ -> true
    catch
        error:badarg -> false
    end.

%% @doc How many new atoms Python may make in this VM: the application
%% environment's `max_atoms' (default 10000). VM-wide; read at every
%% admission, so a new value applies from then on.
-spec max_atoms() -> non_neg_integer().
max_atoms() ->
    case application:get_env(erlang_python, max_atoms) of
        {ok, N} when is_integer(N), N >= 0 -> N;
        _ -> ?DEFAULT_MAX
    end.

%% @doc How many new atoms have been made for Python so far in this VM.
-spec spent() -> non_neg_integer().
spent() ->
    case ets:whereis(?TABLE) of
        undefined -> 0;
        _ ->
            case ets:lookup(?TABLE, count) of
                [{count, N}] -> N;
                [] -> 0
            end
    end.

%% @doc The names of the atoms made for Python so far in this VM.
-spec created() -> [binary()].
created() ->
    case ets:whereis(?TABLE) of
        undefined -> [];
        _ -> ets:select(?TABLE, [{{{name, '$1'}}, [], ['$1']}])
    end.

%% @doc Names that always exist (Python's built-in exception classes, the
%% atoms the conversion writes), which the sidecar may take as free.
-spec known() -> [binary()].
known() ->
    [atom_to_binary(A, utf8) || A <- ?KNOWN].

%% @doc The payload of `atoms_load' (docs/PROTOCOL.md):
%% `term_to_binary({Spent, Created, Known})'.
-spec load_payload() -> binary().
load_payload() ->
    term_to_binary({spent(), created(), known()}).

%%--------------------------------------------------------------------
%% The table, outside the application.

table() ->
    case ets:whereis(?TABLE) of
        undefined ->
            start_keeper(),
            ?TABLE;
        _ ->
            ?TABLE
    end.

%% The table's owner: the first to create it wins, the others find it made.
start_keeper() ->
    Self = self(),
    {_, GL} = process_info(whereis(init), group_leader),
    {Pid, MRef} = spawn_monitor(fun() -> keeper(Self, GL) end),
    receive
        {?MODULE, Pid, ready} -> erlang:demonitor(MRef, [flush]), ok;
        {'DOWN', MRef, process, Pid, _} -> ok
    end.

keeper(Parent, GL) ->
    %% not in the application's group: its stop does not end this process
    true = group_leader(GL, self()),
    try ets:new(?TABLE, [named_table, public, set, {read_concurrency, true},
                         {write_concurrency, true}]) of
        _ ->
            _ = ets:insert_new(?TABLE, {count, 0}),
            Parent ! {?MODULE, self(), ready},
            %% runs no code of this module from now on, so a reload of
            %% this module does not kill it
            erlang:hibernate(timer, sleep, [infinity])
    catch
        error:badarg -> exit(normal) % made by another
    end.

%%--------------------------------------------------------------------
%% The walker: the external term format (erts/emulator/beam/external.h).

-define(VERSION, 131).
-define(COMPRESSED, 80).

%% @doc The names, as UTF-8 binaries, of every atom in the first term of
%% `Bin' (versioned, possibly compressed), in order, repeats included; the
%% node atoms of pids, ports and references, the modules and functions of
%% funs and exports too. Raises for a binary that is not such a term (an
%% unknown tag, a length past its end, an atom over 255 characters or not
%% valid UTF-8). Iterative: a term nested a million deep costs no stack.
-spec atom_names(binary()) -> [binary()].
atom_names(<<?VERSION, ?COMPRESSED, Size:32, Z/binary>>) ->
    lists:reverse(walk(inflate(Z, Size), 1, []));
atom_names(<<?VERSION, T/binary>>) ->
    lists:reverse(walk(T, 1, [])).

%% @doc The elements of a proper list term `Bin' (versioned, not
%% compressed), each as a versioned binary of its own.
-spec list_elements(binary()) -> [binary()].
list_elements(<<?VERSION, 106, _/binary>>) ->
    [];
list_elements(<<?VERSION, 108, N:32, T/binary>>) ->
    elements(T, N, []).

elements(<<106>>, 0, Acc) ->
    lists:reverse(Acc);
elements(T, N, Acc) when N > 0 ->
    Rest = skip(T),
    Len = byte_size(T) - byte_size(Rest),
    elements(Rest, N - 1, [<<?VERSION, (binary_part(T, 0, Len))/binary>> | Acc]).

%% The rest of T after one term.
skip(T) ->
    skip(T, 1).

skip(T, 0) -> T;
skip(T, Pending) ->
    {Rest, More, _} = step(T, []),
    skip(Rest, Pending - 1 + More).

%% Inflate at most Size bytes: a bomb that claims less stops there.
inflate(Z, Size) ->
    S = zlib:open(),
    try
        ok = zlib:inflateInit(S),
        Out = inflate_loop(S, zlib:safeInflate(S, Z), Size, []),
        Size = byte_size(Out),
        Out
    after
        zlib:close(S)
    end.

inflate_loop(S, {continue, Data}, Size, Acc) ->
    Acc1 = [Data | Acc],
    case iolist_size(Acc1) > Size of
        true -> erlang:error(badarg);
        false -> inflate_loop(S, zlib:safeInflate(S, []), Size, Acc1)
    end;
inflate_loop(_S, {finished, Data}, _Size, Acc) ->
    iolist_to_binary(lists:reverse([Data | Acc])).

%% Pending: how many terms are still to read at T.
walk(_T, 0, Acc) ->
    Acc;
walk(T, Pending, Acc) ->
    {Rest, More, Acc1} = step(T, Acc),
    walk(Rest, Pending - 1 + More, Acc1).

%% One tag: the rest after it and its fixed parts, the number of terms that
%% follow as its elements, the atoms seen.
step(<<97, _, R/binary>>, Acc) -> {R, 0, Acc};                      % SMALL_INTEGER
step(<<98, _:32, R/binary>>, Acc) -> {R, 0, Acc};                   % INTEGER
step(<<70, _:64, R/binary>>, Acc) -> {R, 0, Acc};                   % NEW_FLOAT
step(<<99, _:31/binary, R/binary>>, Acc) -> {R, 0, Acc};            % FLOAT
step(<<110, N, _, _:N/binary, R/binary>>, Acc) -> {R, 0, Acc};      % SMALL_BIG
step(<<111, N:32, _, _:N/binary, R/binary>>, Acc) -> {R, 0, Acc};   % LARGE_BIG
step(<<106, R/binary>>, Acc) -> {R, 0, Acc};                        % NIL
step(<<107, N:16, _:N/binary, R/binary>>, Acc) -> {R, 0, Acc};      % STRING
step(<<109, N:32, _:N/binary, R/binary>>, Acc) -> {R, 0, Acc};      % BINARY
step(<<77, N:32, _, _:N/binary, R/binary>>, Acc) -> {R, 0, Acc};    % BIT_BINARY
step(<<104, N, R/binary>>, Acc) -> {R, N, Acc};                     % SMALL_TUPLE
step(<<105, N:32, R/binary>>, Acc) -> {R, N, Acc};                  % LARGE_TUPLE
step(<<108, N:32, R/binary>>, Acc) -> {R, N + 1, Acc};              % LIST, tail
step(<<116, N:32, R/binary>>, Acc) -> {R, 2 * N, Acc};              % MAP
step(<<113, R/binary>>, Acc) -> {R, 3, Acc};                        % EXPORT: M, F, A
step(<<112, _Size:32, _Arity, _Uniq:16/binary, _Index:32, NumFree:32, R/binary>>, Acc) ->
    {R, 4 + NumFree, Acc};                % NEW_FUN: Module, OldIndex, OldUniq, Pid, Free
step(<<117, NumFree:32, R/binary>>, Acc) ->
    {R, 4 + NumFree, Acc};                % FUN: Pid, Module, Index, Uniq, Free
step(<<Tag, _/binary>> = T, Acc) when Tag =:= 100; Tag =:= 115; Tag =:= 118; Tag =:= 119 ->
    {Name, R} = atom(T),
    {R, 0, [Name | Acc]};
%% node atoms inside pids, ports and references, then fixed fields
step(<<103, T/binary>>, Acc) -> node(T, 9, Acc);                    % PID
step(<<88, T/binary>>, Acc) -> node(T, 12, Acc);                    % NEW_PID
step(<<102, T/binary>>, Acc) -> node(T, 5, Acc);                    % PORT
step(<<89, T/binary>>, Acc) -> node(T, 8, Acc);                     % NEW_PORT
step(<<120, T/binary>>, Acc) -> node(T, 12, Acc);                   % V4_PORT
step(<<101, T/binary>>, Acc) -> node(T, 5, Acc);                    % REFERENCE
step(<<114, N:16, T/binary>>, Acc) -> node(T, 1 + 4 * N, Acc);      % NEW_REFERENCE
step(<<90, N:16, T/binary>>, Acc) -> node(T, 4 + 4 * N, Acc);       % NEWER_REFERENCE
step(T, _Acc) -> erlang:error(badarg, [T]).

node(T, Fixed, Acc) ->
    {Name, <<_:Fixed/binary, R/binary>>} = atom(T),
    {R, 0, [Name | Acc]}.

%% An atom's name, as UTF-8, checked as binary_to_term checks it.
atom(<<100, N:16, Name:N/binary, R/binary>>) -> {latin1(Name), R};
atom(<<115, N, Name:N/binary, R/binary>>) -> {latin1(Name), R};
atom(<<118, N:16, Name:N/binary, R/binary>>) -> {utf8(Name), R};
atom(<<119, N, Name:N/binary, R/binary>>) -> {utf8(Name), R};
atom(T) -> erlang:error(badarg, [T]).

latin1(Name) when byte_size(Name) =< 255 ->
    unicode:characters_to_binary(Name, latin1, utf8).

utf8(Name) ->
    case unicode:characters_to_list(Name, utf8) of
        Chars when is_list(Chars), length(Chars) =< 255 -> Name
    end.
