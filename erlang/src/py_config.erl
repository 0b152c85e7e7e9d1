%% @doc Application environment of erlang_python (API.md section 1).
%%
%% | key              | default                  | meaning                                   |
%% |------------------|--------------------------|-------------------------------------------|
%% | `num_contexts'   | `schedulers'             | contexts in the default pool              |
%% | `max_concurrent' | `schedulers * 2 + 1'     | semaphore limit for all calls             |
%% | `max_waiting'    | `1000'                   | calls waiting for a slot before new ones  |
%% |                  |                          | are refused (0: refuse, never wait)       |
%% | `num_executors'  | the sidecar's (4)        | executor threads in `multi_executor' mode:|
%% |                  |                          | when unset, `--num-executors' is not      |
%% |                  |                          | passed and `py:num_executors()' tells     |
%% | `python_path'    | `[]'                     | directories prepended to `sys.path'       |
%% | `call_timeout'   | `30000'                  | default timeout (ms) of a synchronous call|
%% | `python'         | found (`py_python')      | the Python interpreter to run (a file     |
%% |                  |                          | named `python*', see `py_python'), or the |
%% |                  |                          | path of a `pyport' built for another      |
%% |                  |                          | Python (see `py_port_exe:path/0')         |
%% | `sandbox'        | `default'                | accepted and checked, enforced later      |
%% | `max_restarts'   | `10'                     | sidecar crashes tolerated in              |
%% | `max_restart_period_s' | `60'               | ... this many seconds; one more stops the |
%% |                  |                          | application (the supervisor's intensity)  |
%% | `restart_backoff_ms' | `50'                 | wait before the 2nd restart in the window |
%% |                  |                          | (the 1st is at once), doubling each time  |
%% | `restart_backoff_max_ms' | `2000'           | ... up to this                            |
%% | `restart_window_ms' | `30000'               | crashes further apart start afresh        |
%% | `max_memory_mb'  | `0' (none)               | address-space cap of the sidecar          |
%% |                  |                          | (RLIMIT_AS): an allocation past it fails  |
%% | `stuck_grace_ms' | `2000'                   | a timed-out call still in C code this long|
%% |                  |                          | after its cancel restarts the sidecar     |
%% |                  |                          | (0: never)                                |
%% | `max_atoms'      | `10000'                  | new atoms Python may make in the VM, over |
%% |                  |                          | its life (`py_atoms'; VM-wide: the        |
%% |                  |                          | environment's value counts)               |
%% | `send_pace'      | `16000'                  | `erlang.send's a second a sidecar lets    |
%% |                  |                          | through while its other contexts are      |
%% |                  |                          | served (0: never paced); alone, a send    |
%% |                  |                          | loop is not paced                         |
%% | `none_as'        | `none'                   | the atom Python's `None' comes back as:   |
%% |                  |                          | `none' (as the NIF) or `nil' (Elixir      |
%% |                  |                          | apps); `--none-as', so per sidecar        |
%% | `stream_max_inflight' | `1000'            | items of a `py:stream_start' stream in    |
%% |                  |                          | its owner's mailbox at most (`py_stream') |
%%
%% {@link validate/0} runs when the application starts: a bad value stops the
%% start with `{bad_config, Key, Value}'.
%%
%% One table (`table/0' in the source) holds every key with its default, its
%% check and the sidecar flag it becomes: it drives {@link validate/0}, the
%% getters, {@link port_args/0} and the test settings ({@link keys/0}); the
%% `.app' file repeats no default. A flag whose default is the sidecar's own
%% and that the sidecar reports in its `info' (`num_executors') has no
%% default here: unset, the flag is not passed. `max_memory_mb' and
%% `stuck_grace_ms' keep theirs here, as their getters give a number, and
%% are always passed.
%%
%% A sidecar other than the default one (`erlang_python:start_sidecar/2')
%% has options that override these keys for it alone ({@link get/2},
%% {@link port_args/1}); they are checked by {@link validate/1} and kept in
%% `persistent_term' under `{py_config, Sidecar, opts}'.
-module(py_config).

-export([validate/0, num_contexts/0, max_concurrent/0, num_executors/0,
         python_path/0, call_timeout/0, sandbox/0, port_args/0,
         max_restarts/0, max_restart_period_s/0, restart_backoff_ms/0,
         restart_backoff_max_ms/0, restart_window_ms/0, max_memory_mb/0,
         stuck_grace_ms/0, stream_max_inflight/0]).
-export([keys/0, default/1, valid/2]).
-export([validate/1, get/2, port_args/1, set_opts/2, forget_opts/1]).

-define(APP, erlang_python).
%% The default of call_timeout, named because its getter runs on every call
%% (the table holds it too, through this macro).
-define(CALL_TIMEOUT, 30000).

-type key() :: num_contexts | max_concurrent | max_waiting | num_executors | python_path
             | call_timeout | python | sandbox | max_restarts | max_restart_period_s
             | restart_backoff_ms | restart_backoff_max_ms | restart_window_ms
             | max_memory_mb | stuck_grace_ms | max_atoms | send_pace | none_as
             | stream_max_inflight.
-type default() :: {value, term()}
                 | {computed, schedulers | schedulers_twice_plus_one}
                 | unset.
-type check() :: pos | non_neg | timeout | path_list | chardata | {one_of, [atom()]}.
-type flag() :: {string(), integer | paths | atom} | none.
-export_type([key/0]).

%% Every key: {Key, Default, Check, Flag}. Default `unset': no default in
%% Erlang (`num_executors': the sidecar's own, reported in its info;
%% `python': py_port_exe:path/0 looks further). Flag `{Name, integer}'
%% passes `Name N', `{Name, atom}' `Name Atom', `{Name, paths}' one `Name Dir' per directory, and a key
%% that is unset passes nothing.
-spec table() -> [{key(), default(), check(), flag()}].
table() ->
    [{num_contexts, {computed, schedulers}, pos, none},
     {max_concurrent, {computed, schedulers_twice_plus_one}, pos, none},
     {max_waiting, {value, 1000}, non_neg, none},
     {num_executors, unset, pos, {"--num-executors", integer}},
     {python_path, {value, []}, path_list, {"--python-path", paths}},
     {call_timeout, {value, ?CALL_TIMEOUT}, timeout, none},
     {python, unset, chardata, none},
     {sandbox, {value, default}, {one_of, [default, strict, off]}, none},
     {max_restarts, {value, 10}, non_neg, none},
     {max_restart_period_s, {value, 60}, pos, none},
     {restart_backoff_ms, {value, 50}, non_neg, none},
     {restart_backoff_max_ms, {value, 2000}, non_neg, none},
     {restart_window_ms, {value, 30000}, non_neg, none},
     {max_memory_mb, {value, 0}, non_neg, {"--max-memory-mb", integer}},
     {stuck_grace_ms, {value, 2000}, non_neg, {"--stuck-grace-ms", integer}},
     {max_atoms, {value, 10000}, non_neg, {"--max-atoms", integer}},
     {send_pace, {value, 16000}, non_neg, {"--send-pace", integer}},
     {none_as, {value, none}, {one_of, [none, nil]}, {"--none-as", atom}},
     {stream_max_inflight, {value, 1000}, pos, none}].

%% @doc Check every key that is set; the first bad one is reported.
-spec validate() -> ok | {error, {bad_config, atom(), term()}}.
validate() ->
    check(table(), fun(Key) -> application:get_env(?APP, Key) end).

%% @doc Check a sidecar's options: each must be one of the keys of the
%% table, with a value that key takes.
-spec validate(map()) -> ok | {error, {bad_config, term(), term()}}.
validate(Opts) when is_map(Opts) ->
    case [{K, V} || {K, V} <- maps:to_list(Opts), not lists:keymember(K, 1, table())] of
        [] -> check(table(), fun(Key) -> maps:find(Key, Opts) end);
        [{K, V} | _] -> {error, {bad_config, K, V}}
    end.

check([], _Find) ->
    ok;
check([{Key, _Default, Check, _Flag} | Rest], Find) ->
    case Find(Key) of
        error -> check(Rest, Find);
        undefined -> check(Rest, Find);
        {ok, Value} ->
            case is_valid(Check, Value) of
                true -> check(Rest, Find);
                false -> {error, {bad_config, Key, Value}}
            end
    end.

%% @doc The value of `Key' for sidecar `Sidecar': its start options override
%% the application environment (the default sidecar has none), then the
%% table's default; `undefined' for a key that is unset and has none
%% (`python', `num_executors').
-spec get(atom(), key()) -> term().
get(Sidecar, Key) ->
    case lookup(Sidecar, Key) of
        {ok, Value} -> Value;
        unset -> undefined
    end.

%% The option, else the environment, else the default.
lookup(Sidecar, Key) ->
    case Sidecar =/= default andalso persistent_term:get({?MODULE, Sidecar, opts}, #{}) of
        #{Key := Value} -> {ok, Value};
        _ -> set_or_default(Key)
    end.

%% @doc Keep the options of sidecar `Sidecar' (before it starts).
-spec set_opts(atom(), map()) -> ok.
set_opts(Sidecar, Opts) ->
    persistent_term:put({?MODULE, Sidecar, opts}, Opts).

%% @doc Forget the options of sidecar `Sidecar' (it stopped).
-spec forget_opts(atom()) -> ok.
forget_opts(Sidecar) ->
    _ = persistent_term:erase({?MODULE, Sidecar, opts}),
    ok.

%% @doc Every key of the environment, in the order of the table.
-spec keys() -> [key()].
keys() ->
    [Key || {Key, _, _, _} <- table()].

%% @doc The value a key has when it is not set: `unset' for a key without
%% a default in Erlang (`num_executors', `python').
-spec default(key()) -> {ok, term()} | unset.
default(Key) ->
    case lists:keyfind(Key, 1, table()) of
        {Key, {value, V}, _, _} -> {ok, V};
        {Key, {computed, How}, _, _} -> {ok, computed(How)};
        {Key, unset, _, _} -> unset;
        false -> erlang:error(badarg, [Key])
    end.

%% @doc Whether `Value' is a valid value for `Key'.
-spec valid(key(), term()) -> boolean().
valid(Key, Value) ->
    case lists:keyfind(Key, 1, table()) of
        {Key, _, Check, _} -> is_valid(Check, Value);
        false -> erlang:error(badarg, [Key, Value])
    end.

computed(schedulers) -> erlang:system_info(schedulers);
computed(schedulers_twice_plus_one) -> erlang:system_info(schedulers) * 2 + 1.

%% The value of a key with a default.
setting(Key) ->
    {ok, Value} = set_or_default(Key),
    Value.

%% @doc Contexts in the default pool.
-spec num_contexts() -> pos_integer().
num_contexts() -> setting(num_contexts).

%% @doc The semaphore's limit on calls in flight.
-spec max_concurrent() -> pos_integer().
max_concurrent() -> setting(max_concurrent).

%% @doc The number set; unset, the running sidecar's own (from its `info'),
%% `undefined' when none runs.
-spec num_executors() -> pos_integer() | undefined.
num_executors() ->
    case application:get_env(?APP, num_executors) of
        {ok, N} -> N;
        undefined ->
            case py_instance:info(default) of
                {ok, #{num_executors := N}} -> N;
                {error, not_started} -> undefined
            end
    end.

%% @doc Directories prepended to `sys.path' in every interpreter.
-spec python_path() -> [file:filename_all()].
python_path() -> setting(python_path).

%% @doc The bound on a `py:stream_start' stream's items in its owner's
%% mailbox (`py_stream').
-spec stream_max_inflight() -> pos_integer().
stream_max_inflight() -> setting(stream_max_inflight).

%% @doc The default timeout (ms) of a synchronous call.
-spec call_timeout() -> timeout().
call_timeout() -> application:get_env(?APP, call_timeout, ?CALL_TIMEOUT).

%% @doc The sandbox mode (accepted and checked, enforced later).
-spec sandbox() -> default | strict | off.
sandbox() -> setting(sandbox).

%% @doc Sidecar crashes tolerated in {@link max_restart_period_s/0} seconds.
-spec max_restarts() -> non_neg_integer().
max_restarts() -> setting(max_restarts).

%% @doc The period (s) of {@link max_restarts/0}.
-spec max_restart_period_s() -> pos_integer().
max_restart_period_s() -> setting(max_restart_period_s).

%% @doc The wait before the 2nd restart in the window, doubling each time.
-spec restart_backoff_ms() -> non_neg_integer().
restart_backoff_ms() -> setting(restart_backoff_ms).

%% @doc The longest restart backoff.
-spec restart_backoff_max_ms() -> non_neg_integer().
restart_backoff_max_ms() -> setting(restart_backoff_max_ms).

%% @doc Crashes further apart than this start the backoff afresh.
-spec restart_window_ms() -> non_neg_integer().
restart_window_ms() -> setting(restart_window_ms).

%% @doc The sidecar's address-space cap, in MiB (0: none).
-spec max_memory_mb() -> non_neg_integer().
max_memory_mb() -> setting(max_memory_mb).

%% @doc How long a cancelled call may stay in C code before the sidecar restarts (0: never).
-spec stuck_grace_ms() -> non_neg_integer().
stuck_grace_ms() -> setting(stuck_grace_ms).

%% @doc Command-line flags of the sidecar built from the environment
%% (docs/PROTOCOL.md, "Flags"), in the order of the table; a key that is
%% unset and has no default passes no flag.
-spec port_args() -> [string()].
port_args() ->
    port_args(default).

%% @doc The flags of sidecar `Sidecar', its options overriding the environment.
-spec port_args(atom()) -> [string()].
port_args(Sidecar) ->
    lists:append([flag(Flag, Value) || {Key, _, _, Flag} <- table(), Flag =/= none,
                                       {ok, Value} <- [lookup(Sidecar, Key)]]).

set_or_default(Key) ->
    case application:get_env(?APP, Key) of
        {ok, _} = Set -> Set;
        undefined -> default(Key)
    end.

flag({Name, integer}, N) -> [Name, integer_to_list(N)];
flag({Name, atom}, A) -> [Name, atom_to_list(A)];
flag({Name, paths}, Dirs) -> lists:append([[Name, to_string(Dir)] || Dir <- Dirs]).

to_string(Dir) ->
    unicode:characters_to_list(Dir).

is_valid(pos, V) -> is_integer(V) andalso V > 0;
is_valid(non_neg, V) -> is_integer(V) andalso V >= 0;
is_valid(timeout, infinity) -> true;
is_valid(timeout, V) -> is_integer(V) andalso V >= 0;
is_valid(path_list, V) -> is_path_list(V);
is_valid(chardata, V) -> is_binary(V) orelse (is_list(V) andalso is_chardata(V));
is_valid({one_of, Values}, V) -> lists:member(V, Values).

%% A list of directories, each a string or a binary (a bare string is refused: it
%% is a list of characters, not of directories).
is_path_list(L) when is_list(L) ->
    lists:all(fun(D) -> is_valid(chardata, D) end, L);
is_path_list(_) ->
    false.

is_chardata(D) ->
    try is_list(unicode:characters_to_list(D))
    catch error:badarg -> false
    end.
