%% Helpers shared by the common_test suites: start the application with a
%% given environment, Python version, polling.
-module(py_ct).

-include_lib("common_test/include/ct.hrl").

-export([start/1, try_start/1, stop/0, py_version/0, mode/0, wait_until/3, timed/1,
         has_module/2, equal/3, os_pid/0, kill_sidecar/0, wait_restarted/1, main_exec/2]).

%% Run Code in the context's own __main__, which every process's
%% environment starts from (API.md section 3), so that what it defines is
%% seen by the processes that make their first request there after it
%% (a suite's cases run each in a process of its own).
%% From a process of its own: the request would make the caller's
%% environment first, before what the code defines.
main_exec(Ctx, Code) ->
    Bin = iolist_to_binary(Code),
    {Pid, MRef} = spawn_monitor(fun() -> exit({done, py:call(Ctx, erlang, '_exec_main', [Bin])}) end),
    receive
        {'DOWN', MRef, process, Pid, {done, {ok, N}}} when N =:= none; N =:= nil -> ok;
        {'DOWN', MRef, process, Pid, Other} -> ct:fail("main_exec: ~p", [Other])
    end.

%% Start erlang_python afresh with Env (a proplist of application env keys);
%% every other key is back to its default.
start(Env) ->
    case try_start(Env) of
        ok -> ok;
        {error, Reason} -> ct:fail("erlang_python did not start: ~p", [Reason])
    end.

%% Start erlang_python afresh with Env, as start/1, and say why it did not.
try_start(Env) ->
    stop(),
    case application:load(erlang_python) of
        ok -> ok;
        {error, {already_loaded, _}} -> ok
    end,
    %% every key back to its default (py_config's table)
    [application:unset_env(erlang_python, K) || K <- py_config:keys()],
    [ok = application:set_env(erlang_python, K, V) || {K, V} <- Env],
    case application:ensure_all_started(erlang_python) of
        {ok, _} -> ok;
        {error, _} = Error -> Error
    end.

stop() ->
    _ = application:stop(erlang_python),
    ok.

%% {Major, Minor} of the Python the sidecar runs.
py_version() ->
    {ok, V} = py:version(),
    [Major, Minor | _] = binary:split(hd(binary:split(V, <<" ">>)), <<".">>, [global]),
    {binary_to_integer(Major), binary_to_integer(Minor)}.

mode() ->
    py:execution_mode().

%% Is the module importable (find_spec) in context Ctx?
has_module(Ctx, Name) ->
    Code = <<"__import__('importlib.util').util.find_spec(name) is not None">>,
    case py:eval(Ctx, Code, #{name => Name}) of
        {ok, Bool} when is_boolean(Bool) -> Bool;
        Other -> ct:fail("find_spec(~s) failed: ~p", [Name, Other])
    end.

%% Poll Fun until it returns true, or fail with What after Ms milliseconds.
wait_until(Fun, Ms, What) when Ms =< 0 ->
    case Fun() of
        true -> ok;
        _ -> ct:fail("timed out waiting for ~s", [What])
    end;
wait_until(Fun, Ms, What) ->
    case Fun() of
        true -> ok;
        _ ->
            timer:sleep(10),
            wait_until(Fun, Ms - 10, What)
    end.

%% {Milliseconds, Result}
timed(Fun) ->
    T0 = erlang:monotonic_time(microsecond),
    R = Fun(),
    {(erlang:monotonic_time(microsecond) - T0) / 1000, R}.

%% ?equal(Expected, Expr): Expected is a value (not a pattern).
equal(Expected, Expected, _Text) ->
    ok;
equal(Expected, Got, Text) ->
    ct:fail("~s~n  expected: ~p~n  got: ~p", [Text, Expected, Got]).

%% The default sidecar's OS process id, or undefined while none runs.
os_pid() ->
    os_pid(py_sidecar:port()).

os_pid(undefined) ->
    undefined;
os_pid(Port) ->
    case erlang:port_info(Port, os_pid) of
        {os_pid, P} -> P;
        undefined -> undefined
    end.

%% Kill the default sidecar's OS process with SIGKILL, once one runs, and
%% return its port (for wait_restarted/1).
kill_sidecar() ->
    wait_until(fun() -> is_integer(os_pid()) end, 10000, "a sidecar"),
    Port = py_sidecar:port(),
    _ = os:cmd("kill -KILL " ++ integer_to_list(os_pid(Port))),
    Port.

%% Wait until a sidecar other than the one of OldPort serves.
wait_restarted(OldPort) ->
    wait_until(fun() ->
                       Port = py_sidecar:port(),
                       is_port(Port) andalso Port =/= OldPort andalso py:eval(<<"1">>) =:= {ok, 1}
               end, 60000, "the sidecar to come back").
