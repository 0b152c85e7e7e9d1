%% @doc Checking and normalising the arguments of calls before anything is sent:
%% a bad argument gives `{error, {badarg, What}}' in the caller and the sidecar
%% never sees it.
%%
%% Code may be a binary, a string or any iolist/chardata (sent as UTF-8);
%% module and function names may be atoms or binaries (sent as binaries); Args
%% must be a proper list; Kwargs and Locals maps with atom or binary keys, or
%% keyword lists (`[{Key, Value}]' with atom or binary keys, as Elixir passes
%% them: `x: 41' is `[{x, 41}]'), made maps here (the first of a repeated key
%% wins, as in Elixir's `Keyword.get/2').
-module(py_payload).

-export([call/4, eval/2, exec/1, name/2, key/2, timeout/1, is_keywords/1]).

-type badarg() :: {badarg, term()}.
-export_type([badarg/0]).

%% @doc `{Module, Function, Args, Kwargs}' for a `call' request.
-spec call(term(), term(), term(), term()) ->
          {ok, {binary(), binary(), list(), map()}} | {error, badarg()}.
call(M, F, Args, Kwargs) ->
    maybe_all([name(module, M), name(function, F), args(Args), kwargs(kwargs, Kwargs)],
              fun([MB, FB, A, K]) -> {MB, FB, A, K} end).

%% @doc `{Code, Locals}' for an `eval' request.
-spec eval(term(), term()) -> {ok, {binary(), map()}} | {error, badarg()}.
eval(Code, Locals) ->
    maybe_all([code(Code), kwargs(locals, Locals)], fun([C, L]) -> {C, L} end).

%% @doc `{Code}' for an `exec' request.
-spec exec(term()) -> {ok, {binary()}} | {error, badarg()}.
exec(Code) ->
    maybe_all([code(Code)], fun([C]) -> {C} end).

%% @doc A module or function name as a binary.
-spec name(module | function, term()) -> {ok, binary()} | {error, badarg()}.
name(_What, Name) when is_binary(Name) ->
    {ok, Name};
name(_What, Name) when is_atom(Name) ->
    {ok, atom_to_binary(Name, utf8)};
name(What, Name) ->
    {error, {badarg, {What, Name}}}.

%% @doc A name given as an atom, a binary or a string, as a UTF-8 binary:
%% registered functions (py_callback) and state keys (py_state).
-spec key(atom(), term()) -> {ok, binary()} | {error, badarg()}.
key(_What, Key) when is_atom(Key) -> {ok, atom_to_binary(Key, utf8)};
key(_What, Key) when is_binary(Key) -> {ok, Key};
key(What, Key) when is_list(Key) ->
    try unicode:characters_to_binary(Key) of
        Bin when is_binary(Bin) -> {ok, Bin};
        _ -> {error, {badarg, {What, Key}}}
    catch
        error:badarg -> {error, {badarg, {What, Key}}}
    end;
key(What, Key) ->
    {error, {badarg, {What, Key}}}.

%% @doc A timeout: a non-negative integer (ms) or `infinity'.
-spec timeout(term()) -> {ok, timeout()} | {error, badarg()}.
timeout(infinity) -> {ok, infinity};
timeout(T) when is_integer(T), T >= 0 -> {ok, T};
timeout(T) -> {error, {badarg, {timeout, T}}}.

%%--------------------------------------------------------------------

args(Args) when is_list(Args) ->
    %% length/1 fails on an improper list; it is the cheapest check there is.
    try length(Args) of
        _ -> {ok, Args}
    catch
        error:badarg -> {error, {badarg, {args, improper_list}}}
    end;
args(_) ->
    {error, {badarg, {args, not_a_list}}}.

%% @doc Whether `Term' is a keyword list: a proper list of `{Key, Value}'
%% with atom or binary keys (`[]' is one). The dispatch of py's overlapping
%% arities asks it.
-spec is_keywords(term()) -> boolean().
is_keywords([]) -> true;
is_keywords([{K, _} | Rest]) when is_atom(K); is_binary(K) -> is_keywords(Rest);
is_keywords(_) -> false.

kwargs(What, Map) when is_map(Map) ->
    case maps:fold(fun(K, _, Ok) -> Ok andalso (is_atom(K) orelse is_binary(K)) end, true, Map) of
        true -> {ok, Map};
        false -> {error, {badarg, {What, keys_must_be_atoms_or_binaries}}}
    end;
kwargs(What, List) when is_list(List) ->
    case is_keywords(List) of
        true -> {ok, maps:from_list(lists:reverse(List))};
        false -> {error, {badarg, {What, must_be(What)}}}
    end;
kwargs(What, _) ->
    {error, {badarg, {What, must_be(What)}}}.

must_be(kwargs) -> <<"Kwargs must be a map or a keyword list">>;
must_be(locals) -> <<"Locals must be a map or a keyword list">>.

code(Code) when is_binary(Code) ->
    case unicode:characters_to_binary(Code) of
        Code -> {ok, Code};
        _ -> {error, {badarg, {code, not_utf8}}}
    end;
code(Code) ->
    try unicode:characters_to_binary(Code) of
        Bin when is_binary(Bin) -> {ok, Bin};
        _ -> {error, {badarg, {code, not_utf8}}}
    catch
        error:badarg -> {error, {badarg, {code, not_chardata}}}
    end.

maybe_all(Results, Build) ->
    case [E || {error, _} = E <- Results] of
        [] -> {ok, Build([V || {ok, V} <- Results])};
        [Error | _] -> Error
    end.
