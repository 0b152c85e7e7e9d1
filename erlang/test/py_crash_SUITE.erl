%% Crash isolation (issue #5): whatever kills the sidecar, the BEAM stays up,
%% every caller in flight gets {error, {python_crashed, Info}}, and the
%% service comes back with its contexts, pools, registered functions,
%% python_path and bound processes.
-module(py_crash_SUITE).

-include_lib("common_test/include/ct.hrl").
-include("py_ct.hrl").

-export([all/0, init_per_suite/1, end_per_suite/1,
         init_per_testcase/2, end_per_testcase/2]).
-export([segfault/1, abort/1, os_exit/1, sigkill/1,
         exec_globals_are_lost/1, calls_wait_for_restart/1, backoff/1,
         intensity/1, unsubscribe/1, chaos/1, memory_cap/1, stuck_in_c/1,
         no_orphans/1]).

all() ->
    [segfault, abort, os_exit, sigkill, exec_globals_are_lost,
     calls_wait_for_restart, backoff, intensity, unsubscribe, memory_cap, stuck_in_c,
     no_orphans, chaos].

init_per_suite(Config) ->
    Dir = filename:join(?config(priv_dir, Config), "pypath"),
    ok = filelib:ensure_path(Dir),
    ok = file:write_file(filename:join(Dir, "crashmod.py"), <<"def answer():\n    return 42\n">>),
    [{pypath, Dir} | Config].

end_per_suite(_Config) ->
    py_ct:stop().

init_per_testcase(_Case, Config) ->
    py_ct:start([{num_contexts, 2}, {python_path, [?config(pypath, Config)]},
                 {max_restarts, 20}, {max_concurrent, 50}]),
    {ok, _} = py_context_router:start_pool(crash_worker, 1, worker),
    ok = py:register_function(twice, fun([X]) -> 2 * X end),
    Config.

end_per_testcase(_Case, _Config) ->
    _ = py_context_router:stop_pool(crash_worker),
    _ = py:unregister_function(twice),
    py_ct:stop().

%%--------------------------------------------------------------------

%% A segfault in C (ctypes reads address 0) in a worker context.
segfault(_Config) ->
    Info = crash_and_recover(fun() ->
                                     py:exec(crash_worker, <<"import ctypes; ctypes.string_at(0)">>)
                             end),
    ?expect(#{status := 2}, Info).

abort(_Config) ->
    Info = crash_and_recover(fun() -> py:exec(py:context(1), <<"import os; os.abort()">>) end),
    ?expect(#{status := 2}, Info).

os_exit(_Config) ->
    Info = crash_and_recover(fun() -> py:exec(py:context(1), <<"import os; os._exit(3)">>) end),
    ?expect(#{status := 3}, Info).

%% SIGKILL from outside, as the OOM killer would.
sigkill(_Config) ->
    Info = crash_and_recover(fun() -> py_ct:kill_sidecar(), {error, {python_crashed, killed}} end),
    ?expect(#{status := 137, signal := 9}, Info).

%% What py:exec defined lived in the dead sidecar.
exec_globals_are_lost(_Config) ->
    ?expect(ok, py:exec(py:context(1), <<"defined_before = 1">>)),
    ok = py:subscribe_restarts(),
    py_ct:kill_sidecar(),
    restarted(),
    ?expect({error, {'NameError', _}}, py:eval(py:context(1), <<"defined_before">>)).

%% A call (or a task) made while the sidecar restarts waits for it instead
%% of failing.
calls_wait_for_restart(_Config) ->
    %% the second crash in the window waits restart_backoff_ms
    application:set_env(erlang_python, restart_backoff_ms, 500),
    ok = py:subscribe_restarts(),
    py_ct:kill_sidecar(),
    restarted(),
    py_ct:kill_sidecar(),
    py_ct:wait_until(fun() -> py_lifecycle:state() =:= restarting end, 5000, "restarting"),
    Parent = self(),
    Pids = [spawn(fun() -> Parent ! {result, self(), py:eval(<<"6 * 7">>)} end)
            || _ <- lists:seq(1, 10)] ++
           %% and tasks, as calls do
           [spawn(fun() -> Parent ! {result, self(), py_event_loop:run(asyncio, sleep, [0, 42])} end)
            || _ <- lists:seq(1, 5)],
    ?expect(restarting, py_lifecycle:state()),
    [receive {result, P, R} -> ?expect({ok, 42}, R) after 10000 -> ct:fail(hung) end
     || P <- Pids],
    restarted().

%% Crashes in a row wait longer and longer before the next sidecar.
backoff(_Config) ->
    application:set_env(erlang_python, restart_backoff_ms, 200),
    ok = py:subscribe_restarts(),
    Downs = [begin py_ct:kill_sidecar(), maps:get(down_ms, restarted()) end
             || _ <- lists:seq(1, 3)],
    ct:log("down ms: ~p", [Downs]),
    [_, Second, Third] = Downs,
    true = Second >= 200 orelse ct:fail("2nd restart after ~b ms", [Second]),
    true = Third >= 400 orelse ct:fail("3rd restart after ~b ms", [Third]).

%% More crashes than max_restarts in max_restart_period_s stop the
%% application; the BEAM stays up.
intensity(_Config) ->
    py_ct:stop(),
    py_ct:start([{num_contexts, 1}, {max_restarts, 2}, {restart_backoff_ms, 0}]),
    kill_until_down(10),
    py_ct:wait_until(fun() -> not lists:keymember(erlang_python, 1, application:which_applications()) end,
                     10000, "the application to stop"),
    ?expect({error, not_started}, py:eval(<<"1">>)).

kill_until_down(N) ->
    kill_until_down(undefined, N).

kill_until_down(_Prev, 0) ->
    ct:fail("the supervisor did not give up");
kill_until_down(Prev, N) ->
    %% the next sidecar, or none
    Next = fun() -> whereis(erlang_python_sup) =:= undefined orelse
                        (is_integer(py_ct:os_pid()) andalso py_ct:os_pid() =/= Prev) end,
    py_ct:wait_until(Next, 10000, "a sidecar or the end"),
    case {whereis(erlang_python_sup), py_ct:os_pid()} of
        {undefined, _} -> ok;
        {_, Pid} when is_integer(Pid) ->
            _ = os:cmd("kill -KILL " ++ integer_to_list(Pid)),
            kill_until_down(Pid, N - 1);
        {_, undefined} ->
            kill_until_down(Prev, N - 1)
    end.

unsubscribe(_Config) ->
    ok = py:subscribe_restarts(),
    ok = py:unsubscribe_restarts(),
    py_ct:kill_sidecar(),
    py_ct:wait_until(fun() -> py:eval(<<"1">>) =:= {ok, 1} end, 10000, "service back"),
    receive {py_restarted, _} -> ct:fail("notified after unsubscribe") after 200 -> ok end.

%%--------------------------------------------------------------------

%% Crash the sidecar with Crash() while callers are in flight: every one is
%% answered with python_crashed, subscribers hear of the restart, and the
%% service is back as it was. Returns the crash's Info.
crash_and_recover(Crash) ->
    ok = py:subscribe_restarts(),
    Parent = self(),
    %% a bound process, bound to context 2, lives through the restart
    Bound = spawn_link(fun() -> bound_loop(Parent) end),
    receive {bound, Bound, Ctx2} -> ?equal(py:context(2), Ctx2) end,
    Sleepers = [spawn_link(fun() -> Parent ! {slept, self(), py:call(py:context(2), time, sleep, [30])} end)
                || _ <- lists:seq(1, 4)],
    %% on context 2: the crash must find its own context free
    Refs = [py:spawn_call(py:context(2), time, sleep, [30], #{}) || _ <- lists:seq(1, 4)],
    py_ct:wait_until(fun() -> py_semaphore:current() >= 8 end, 5000, "callers in flight"),
    {T, R} = py_ct:timed(Crash),
    ct:log("crash answered in ~.1f ms: ~p", [T, R]),
    ?expect({error, {python_crashed, _}}, R),
    [receive {slept, P, Res} -> ?expect({error, {python_crashed, #{status := _}}}, Res)
     after 5000 -> ct:fail("a caller in flight hung")
     end || P <- Sleepers],
    [?expect({error, {python_crashed, #{status := _}}}, py:await(Ref, 5000)) || Ref <- Refs],
    #{crash := Info} = restarted(),
    %% everything is back
    ?expect({ok, 4}, py:eval(<<"2 + 2">>)),
    ?expect({ok, 42}, py:call(crashmod, answer, [])),             % python_path
    ?expect({ok, 42}, py:eval(<<"__import__('erlang').twice(21)">>)), % registered function
    ?expect({ok, [_]}, py_context_router:pool_contexts(crash_worker)),
    ?expect({ok, 2.0}, py:call(crash_worker, math, sqrt, [4])),
    ?equal(2, py_context_router:num_contexts()),
    Bound ! {check, self()},
    receive {checked, Bound, Got} -> ?expect({ok, _, 2}, Got) after 10000 -> ct:fail(bound_hung) end,
    unlink(Bound),
    exit(Bound, kill),
    Info.

%% A process bound to context 2: after the restart its calls go to the new
%% context 2.
bound_loop(Parent) ->
    ok = py_context_router:bind_context(py:context(2)),
    Parent ! {bound, self(), py:context()},
    receive
        {check, From} ->
            R = case py:exec(<<"import threading">>) of
                    ok -> {ok, py:context(), py:context() =:= py:context(2) andalso 2};
                    Error -> Error
                end,
            From ! {checked, self(), R}
    end.

%% Wait for the notification of a restart.
restarted() ->
    receive
        {py_restarted, Info} ->
            ct:log("restarted: ~p", [Info]),
            #{crash := _, restarts := _, down_ms := _} = Info
    after 20000 ->
        ct:fail("no py_restarted")
    end.


%% 20 kills under 64 concurrent callers. Each caller stores entries in the
%% shared state, from Erlang and from Python, and remembers those whose
%% call returned ok. In the end: no caller hung, every call was answered
%% with a result or a clear error, and no remembered entry is missing.
chaos(_Config) ->
    py_ct:stop(),
    py_ct:start([{num_contexts, 2}, {max_restarts, 100}, {restart_backoff_ms, 10},
                 {restart_backoff_max_ms, 100}, {max_concurrent, 128}, {call_timeout, 10000}]),
    ok = py:state_clear(),
    ok = py:subscribe_restarts(),
    Parent = self(),
    Stop = atomics:new(1, []),
    Callers = [spawn_link(fun() -> Parent ! {caller, self(), caller(N, Stop, 0, [], #{})} end)
               || N <- lists:seq(1, 64)],
    Kills = 20,
    lists:foreach(fun(_) ->
                          timer:sleep(100 + rand:uniform(100)),
                          py_ct:kill_sidecar(),
                          restarted()
                  end, lists:seq(1, Kills)),
    timer:sleep(200),
    atomics:put(Stop, 1, 1),
    Results = [receive {caller, P, R} -> R after 30000 -> hung end || P <- Callers],
    Hung = length([hung || hung <- Results]),
    {Stored, Errors} = lists:foldl(fun({S, E}, {SA, EA}) -> {S ++ SA, maps:fold(fun(K, V, A) -> A#{K => V + maps:get(K, A, 0)} end, EA, E)} end,
                                   {[], #{}}, [R || R <- Results, R =/= hung]),
    Lost = [{K, V, Got} || {K, V} <- Stored, (Got = py:state_fetch(K)) =/= {ok, V}],
    ct:log("~b kills: ~b hung callers, ~b entries stored, ~b lost ~p;~nerrors: ~p",
           [Kills, Hung, length(Stored), length(Lost), lists:sublist(Lost, 10), Errors]),
    ?equal(0, Hung),
    ?equal([], Lost),
    true = length(Stored) > 1000 orelse ct:fail("only ~b entries stored", [length(Stored)]).

%% One caller: store entry I from Erlang (even I) or Python (odd I) until
%% told to stop; returns the entries stored and a count of each error.
caller(N, Stop, I, Stored, Errors) ->
    case atomics:get(Stop, 1) of
        1 -> {Stored, Errors};
        0 ->
            Key = iolist_to_binary(io_lib:format("c~b-~b", [N, I])),
            R = case I rem 2 of
                    0 -> py:state_store(Key, I);
                    1 -> case py:eval(<<"__import__('erlang').state_set(k, v)">>, #{k => Key, v => I}) of
                             {ok, none} -> ok;
                             Other -> Other
                         end
                end,
            case R of
                ok -> caller(N, Stop, I + 1, [{Key, I} | Stored], Errors);
                {error, E} ->
                    Class = case E of
                                {python_crashed, _} -> python_crashed;
                                {Tag, _} when is_atom(Tag) -> Tag;
                                _ -> E
                            end,
                    caller(N, Stop, I + 1, Stored, Errors#{Class => maps:get(Class, Errors, 0) + 1})
            end
    end.

%% With max_memory_mb, an allocation past the cap is a MemoryError for its
%% caller; the others and the sidecar go on.
memory_cap(_Config) ->
    py_ct:stop(),
    %% idle pyport reserves about 2 GiB of address space (docs/PROTOCOL.md)
    py_ct:start([{num_contexts, 2}, {max_memory_mb, 3072}]),
    Parent = self(),
    Other = spawn_link(fun() -> Parent ! {other, py:eval(py:context(2), <<"__import__('time').sleep(0.5) or 7">>, #{})} end),
    ?expect({error, {'MemoryError', _}}, py:eval(py:context(1), <<"len(b'x' * (4 << 30))">>, #{})),
    receive {other, R} -> ?expect({ok, 7}, R) after 10000 -> ct:fail(hung) end,
    _ = Other,
    ?expect({ok, 1048576}, py:eval(py:context(1), <<"len(b'x' * (1 << 20))">>, #{})),
    {ok, _} = py_sidecar:info().

%% A call stuck in C code (no bytecode runs, so KeyboardInterrupt cannot
%% land) past its timeout and stuck_grace_ms: the sidecar restarts itself,
%% the other callers get python_crashed with the reason, the service is back.
stuck_in_c(_Config) ->
    py_ct:stop(),
    py_ct:start([{num_contexts, 2}, {stuck_grace_ms, 500}]),
    ok = py:subscribe_restarts(),
    Parent = self(),
    spawn_link(fun() -> Parent ! {other, py:call(py:context(2), time, sleep, [30])} end),
    py_ct:wait_until(fun() -> py_semaphore:current() >= 1 end, 5000, "the other call"),
    Loop = <<"__import__('builtins').sum(__import__('itertools').repeat(1, 10**13))">>,
    ?expect({error, timeout}, py_context:eval(py:context(1), Loop, #{}, 300)),
    receive
        {other, R} ->
            ?expect({error, {python_crashed, #{status := 70, reason := {stuck, _, 500}}}}, R)
    after 10000 ->
        ct:fail("the sidecar did not restart")
    end,
    #{crash := #{reason := {stuck, _, 500}}} = restarted(),
    ?expect({ok, 2}, py:eval(<<"1 + 1">>)).

%% What Python started dies with the sidecar, even when the sidecar is
%% killed with SIGKILL (the port owner kills its process group).
no_orphans(_Config) ->
    ok = py:subscribe_restarts(),
    Spawn = <<"import subprocess\n"
              "p = subprocess.Popen(['sleep', '300'])\n">>,
    ?expect(ok, py:exec(crash_worker, Spawn)),
    {ok, Child} = py:eval(crash_worker, <<"p.pid">>),
    true = alive(Child) orelse ct:fail("no child"),
    py_ct:kill_sidecar(),
    restarted(),
    py_ct:wait_until(fun() -> not alive(Child) end, 5000, "the child to die").

alive(OsPid) ->
    %% a zombie has been killed already: its parent, dead, cannot reap it
    case file:read_file("/proc/" ++ integer_to_list(OsPid) ++ "/stat") of
        {ok, Stat} ->
            [_, After] = binary:split(Stat, <<") ">>),
            binary:first(After) =/= $Z;
        {error, _} ->
            false
    end.
