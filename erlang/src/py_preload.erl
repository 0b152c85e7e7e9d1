%% @doc Preload code (API.md section 11, as the NIF erlang_python 2.x):
%% Python statements that each new context runs before anything else, in
%% its `__main__', so what they define (imports, functions, constants) is
%% there for every call, eval and exec on it.
%%
%% ```
%% ok = py_preload:set_code(<<"import json\ndef double(x):\n    return 2 * x\n">>),
%% {ok, Ctx} = py_context:new(#{mode => worker}),
%% {ok, 10} = py:eval(Ctx, <<"double(5)">>).
%% '''
%% Only contexts started after {@link set_code/1} run it: running ones are
%% left alone. That includes every context after a sidecar restart (a
%% crash, kill -9): the code runs again in each. It runs after the paths
%% and imports of {@link py_import}. Code that raises is logged (level
%% `warning') and the context starts all the same.
%%
%% The code is VM-wide (every sidecar and pool), kept by
%% {@link py_context_setup}; it survives sidecar restarts and is forgotten
%% when the application stops.
-module(py_preload).

-export([set_code/1, get_code/0, clear_code/0, has_preload/0]).

%% @doc Set the preload code (binary, string or iolist of UTF-8), replacing
%% any; `{error, {badarg, {code, Code}}}' for anything else.
-spec set_code(iodata() | unicode:chardata()) -> ok | {error, {badarg, term()}}.
set_code(Code) ->
    case py_payload:exec(Code) of
        {ok, {Bin}} ->
            _ = py_context_setup:update(preload, fun(_) -> Bin end),
            ok;
        {error, _} = Error ->
            Error
    end.

%% @doc The preload code, a binary, or `undefined' when none is set.
-spec get_code() -> binary() | undefined.
get_code() ->
    py_context_setup:preload().

%% @doc Remove the preload code: contexts started later run none.
-spec clear_code() -> ok.
clear_code() ->
    _ = py_context_setup:update(preload, fun(_) -> undefined end),
    ok.

%% @doc Whether preload code is set.
-spec has_preload() -> boolean().
has_preload() ->
    py_context_setup:preload() =/= undefined.
