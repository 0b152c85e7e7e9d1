%% Process-bound environments (API.md section 3, as the NIF 2.x's since
%% 2.2): inside a context each Erlang process has its own globals, made
%% from the context's __main__ on its first request and dropped when it
%% exits; and erlang.send's check of a dead process (section 6), which
%% rests on the same watch of processes (py_watch).
-module(py_env_SUITE).

-include_lib("common_test/include/ct.hrl").
-include("py_ct.hrl").

-export([all/0, init_per_suite/1, end_per_suite/1]).
-export([two_processes_isolated/1, exec_then_eval/1, unrouted_after_migration/1, call_main_sees_env/1, bound_context/1,
         made_from_main/1, freed_at_exit/1, nested_callbacks_keep_env/1,
         other_context_in_callback/1, empty_after_restart/1, many_short_processes/1,
         send_to_dead_raises/1, send_fast_path/1, send_to_name/1, local_env/1]).

all() ->
    [two_processes_isolated, exec_then_eval, unrouted_after_migration, call_main_sees_env, bound_context, made_from_main,
     freed_at_exit, nested_callbacks_keep_env, other_context_in_callback, send_to_dead_raises,
     send_fast_path, send_to_name, local_env, many_short_processes, empty_after_restart].

init_per_suite(Config) ->
    py_ct:start([{num_contexts, 2}]),
    Config.

end_per_suite(_Config) ->
    py_ct:stop().

%% Run Fun in a new process and return its result.
in_process(Fun) ->
    {Pid, MRef} = spawn_monitor(fun() -> exit({result, Fun()}) end),
    receive
        {'DOWN', MRef, process, Pid, {result, R}} -> R;
        {'DOWN', MRef, process, Pid, Other} -> ct:fail("process failed: ~p", [Other])
    after 30000 -> ct:fail(timeout)
    end.

%% The number of environments in context Ctx, the caller's included.
env_count(Ctx) ->
    {ok, N} = py:eval(Ctx, <<"erlang._env_count()">>),
    N.

%% The NIF's example: process A's state is invisible to process B.
two_processes_isolated(_Config) ->
    Ctx = py:context(1),
    ?expect({ok, <<"hello">>},
            in_process(fun() ->
                               ok = py:exec(Ctx, <<"state = 'hello'">>),
                               py:eval(Ctx, <<"state">>)
                       end)),
    ?expect({error, {'NameError', _}}, in_process(fun() -> py:eval(Ctx, <<"state">>) end)),
    %% two processes writing the same name each keep their own value
    Self = self(),
    Pids = [spawn(fun() ->
                          ok = py:exec(Ctx, iolist_to_binary(["v = ", integer_to_list(I)])),
                          Self ! {ready, self()},
                          receive go -> ok end,
                          Self ! {value, I, py:eval(Ctx, <<"v">>)}
                  end) || I <- lists:seq(1, 10)],
    [receive {ready, P} -> ok end || P <- Pids],
    [P ! go || P <- Pids],
    [?expect({value, I, {ok, I}}, receive {value, I, _} = M -> M after 5000 -> timeout end)
     || I <- lists:seq(1, 10)].

%% API.md: exec then eval from the same process gives 42; the same eval on
%% another context is a NameError.
exec_then_eval(_Config) ->
    ok = py:exec(py:context(1), <<"x = 42">>),
    ?expect({ok, 42}, py:eval(py:context(1), <<"x">>)),
    ?expect({error, {'NameError', _}}, py:eval(py:context(2), <<"x">>)),
    %% Locals shadow the environment, which keeps its own
    ?expect({ok, 1}, py:eval(py:context(1), <<"x">>, #{x => 1})),
    ?expect({ok, 42}, py:eval(py:context(1), <<"x">>)),
    %% erlang is there without an import
    ?expect({ok, true}, py:eval(py:context(1), <<"erlang.Atom('true')">>)).

%% Without a context: an exec, then the process moves to another scheduler,
%% and its eval still meets what the exec defined (the first pick's context
%% is kept, py_route), as does a stream opened there.
unrouted_after_migration(_Config) ->
    case erlang:system_info(schedulers_online) >= 2 andalso py_context_router:num_contexts() >= 2 of
        false ->
            {skip, "needs 2 schedulers and 2 contexts"};
        true ->
            Self = self(),
            _ = spawn_opt(fun() ->
                                  ok = py:exec(<<"where = 'first'">>),
                                  _ = erlang:process_flag(scheduler, 2),
                                  erlang:yield(),
                                  Self ! {moved, erlang:system_info(scheduler_id),
                                          py:eval(<<"where">>), py:stream_eval(<<"iter(where)">>)}
                          end, [link, {scheduler, 1}]),
            ?expect({moved, 2, {ok, <<"first">>}, {ok, [<<"f">>, <<"i">>, <<"r">>, <<"s">>, <<"t">>]}},
                    receive {moved, _, _, _} = M -> M after 5000 -> timeout end)
    end.

%% py:call(Ctx, '__main__', F, Args) finds F in the caller's environment.
call_main_sees_env(_Config) ->
    Ctx = py:context(2),
    ok = py:exec(Ctx, <<"def add(a, b):\n    return a + b + bonus\nbonus = 100\n">>),
    ?expect({ok, 103}, py:call(Ctx, '__main__', add, [1, 2])),
    ?expect({error, {'NameError', _}},
            in_process(fun() -> py:call(Ctx, '__main__', add, [1, 2]) end)),
    %% a module imported by one process is shared by the context (sys.modules)
    ok = py:exec(Ctx, <<"import colorsys">>),
    ?expect({ok, true}, in_process(fun() -> py:eval(Ctx, <<"'colorsys' in __import__('sys').modules">>) end)).

%% Without an explicit context, a process bound to a context keeps its names
%% from call to call.
bound_context(_Config) ->
    ?expect({ok, 7},
            in_process(fun() ->
                               ok = py_context_router:bind_context(py:context(2)),
                               ok = py:exec(<<"seven = 7">>),
                               py:eval(<<"seven">>)
                       end)).

%% A new environment starts from the context's __main__ as it is then.
made_from_main(_Config) ->
    Ctx = py:context(1),
    %% the context's own __main__ (a dict of its own in a main-interpreter
    %% context, so not `import __main__' there)
    ok = py_ct:main_exec(Ctx, <<"shared_name = 'from main'">>),
    ?expect({ok, <<"from main">>}, in_process(fun() -> py:eval(Ctx, <<"shared_name">>) end)),
    ?expect({ok, <<"__main__">>}, in_process(fun() -> py:eval(Ctx, <<"__name__">>) end)).

%% The environment goes when its process exits: the context's count of
%% environments comes back.
freed_at_exit(_Config) ->
    Ctx = py:context(1),
    Before = env_count(Ctx),
    Self = self(),
    Pids = [spawn(fun() ->
                          ok = py:exec(Ctx, <<"big = bytes(100000)">>),
                          Self ! {made, self()},
                          receive stop -> ok end
                  end) || _ <- lists:seq(1, 20)],
    [receive {made, P} -> ok end || P <- Pids],
    ?equal(Before + 20, env_count(Ctx)),
    [P ! stop || P <- Pids],
    py_ct:wait_until(fun() -> env_count(Ctx) =:= Before end, 5000, "the environments to go"),
    %% a process that crashes loses its environment the same way
    {Pid, MRef} = spawn_monitor(fun() -> ok = py:exec(Ctx, <<"z = 1">>), exit(crash) end),
    receive {'DOWN', MRef, process, Pid, crash} -> ok end,
    py_ct:wait_until(fun() -> env_count(Ctx) =:= Before end, 5000, "the crashed one's to go").

%% Erlang code called back from Python runs its calls in the calling
%% environment, ten levels deep.
nested_callbacks_keep_env(_Config) ->
    Ctx = py:context(1),
    ok = py:register_function(env_deeper, fun([N]) ->
                                                  {ok, R} = py:call('__main__', deeper, [N]),
                                                  R
                                          end),
    try
        ?expect({ok, [10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0]},
                in_process(fun() ->
                                   ok = py:exec(Ctx, <<"import erlang\n"
                                                       "mine = 'caller'\n"
                                                       "def deeper(n):\n"
                                                       "    assert mine == 'caller'\n"
                                                       "    return [n] if n == 0 else [n] + erlang.env_deeper(n - 1)\n">>),
                                   py:call(Ctx, '__main__', deeper, [10])
                           end)),
        %% eval and exec inside the callback see it too
        ok = py:register_function(env_peek, fun([]) ->
                                                    ok = py:exec(<<"seen = mine + '!'">>),
                                                    {ok, V} = py:eval(<<"seen">>),
                                                    V
                                            end),
        ?expect({ok, {<<"caller!">>, <<"caller!">>}},
                in_process(fun() ->
                                   ok = py:exec(Ctx, <<"mine = 'caller'">>),
                                   py:eval(Ctx, <<"(erlang.env_peek(), seen)">>)
                           end))
    after
        py:unregister_function(env_deeper),
        py:unregister_function(env_peek)
    end.

%% A callback's call on another context runs there in the environment of
%% the process that made it (the callback's own).
other_context_in_callback(_Config) ->
    ok = py:register_function(env_other, fun([]) ->
                                                 py:eval(py:context(2), <<"'mine' in globals()">>)
                                         end),
    try
        ?expect({ok, {<<"ok">>, false}},
                in_process(fun() ->
                                   ok = py:exec(py:context(1), <<"mine = 1">>),
                                   ok = py:exec(py:context(2), <<"mine = 2">>),
                                   py:eval(py:context(1), <<"erlang.env_other()">>)
                           end))
    after
        py:unregister_function(env_other)
    end.

%% After a sidecar restart every environment starts again, empty.
empty_after_restart(_Config) ->
    Ctx = py:context(1),
    ok = py:exec(Ctx, <<"before_restart = 1">>),
    ?expect({ok, 1}, py:eval(Ctx, <<"before_restart">>)),
    Port = py_ct:kill_sidecar(),
    py_ct:wait_restarted(Port),
    Ctx2 = py:context(1),
    ?expect({error, {'NameError', _}}, py:eval(Ctx2, <<"before_restart">>)),
    ok = py:exec(Ctx2, <<"after_restart = 2">>),
    ?expect({ok, 2}, py:eval(Ctx2, <<"after_restart">>)),
    %% and they still go with their processes
    Before = env_count(Ctx2),
    ok = in_process(fun() -> py:exec(Ctx2, <<"t = 1">>) end),
    py_ct:wait_until(fun() -> env_count(Ctx2) =:= Before end, 5000, "the environment to go").

%% 100k processes that make one request each and exit: the environments
%% go, and the sidecar's memory does not grow with them.
many_short_processes(_Config) ->
    Ctx = py:context(2),
    Before = env_count(Ctx),
    Rss0 = rss_kib(),
    run_short(Ctx, 20000),
    py_ct:wait_until(fun() -> env_count(Ctx) =:= Before end, 30000, "20k environments to go"),
    Rss1 = rss_kib(),
    run_short(Ctx, 80000),
    py_ct:wait_until(fun() -> env_count(Ctx) =:= Before end, 60000, "80k environments to go"),
    Rss2 = rss_kib(),
    ct:pal("sidecar RSS: ~b KiB at start, ~b after 20k processes, ~b after 100k", [Rss0, Rss1, Rss2]),
    %% what the first 20k grew stays (allocator pools); the next 80k add
    %% next to nothing: an environment that stayed would be 1 KiB or more
    ?expect(true, Rss2 - Rss1 < 16 * 1024),
    ?equal(Before, env_count(Ctx)),
    %% the watcher holds nothing for them either
    ?expect(true, map_size(sys:get_state(py_watch)) < 100).

%% N processes, 200 at a time, each making one exec on Ctx.
run_short(_Ctx, 0) ->
    ok;
run_short(Ctx, N) ->
    Batch = min(N, 200),
    Refs = [spawn_monitor(fun() -> ok = py:exec(Ctx, <<"mine = [1, 2, 3]">>) end)
            || _ <- lists:seq(1, Batch)],
    [receive {'DOWN', MRef, process, Pid, normal} -> ok end || {Pid, MRef} <- Refs],
    run_short(Ctx, N - Batch).

rss_kib() ->
    {ok, Status} = file:read_file("/proc/" ++ integer_to_list(py_ct:os_pid()) ++ "/status"),
    [Line] = [L || L <- binary:split(Status, <<"\n">>, [global]), binary:match(L, <<"VmRSS:">>) =/= nomatch],
    [_, Kib | _] = binary:split(Line, [<<" ">>, <<"\t">>], [global, trim_all]),
    binary_to_integer(Kib).

%% erlang.send to a dead process of this node raises erlang.ProcessError
%% (an Exception); to a live one it sends; a process that exits after a
%% send is known dead a moment later.
send_to_dead_raises(_Config) ->
    Ctx = py:context(1),
    ok = py:exec(Ctx, <<"def try_send(p, m):\n"
                        "    try:\n"
                        "        erlang.send(p, m)\n"
                        "        return 'sent'\n"
                        "    except erlang.ProcessError as e:\n"
                        "        return ('ProcessError', str(e))\n">>),
    {Dead, MRef} = spawn_monitor(fun() -> ok end),
    receive {'DOWN', MRef, process, Dead, _} -> ok end,
    ?expect({ok, {<<"ProcessError">>, _}}, py:call(Ctx, '__main__', try_send, [Dead, hello])),
    ?expect({ok, <<"sent">>}, py:call(Ctx, '__main__', try_send, [self(), hello])),
    ?expect(<<"hello">>, receive <<"hello">> = H -> H after 5000 -> none end),
    Self = self(),
    Live = spawn(fun() -> receive M -> Self ! {got, M} end end),
    ?expect({ok, <<"sent">>}, py:call(Ctx, '__main__', try_send, [Live, one])),
    ?expect({got, <<"one">>}, receive {got, _} = G -> G after 5000 -> none end),
    %% Live has exited: a later send raises, once the sidecar heard it
    py_ct:wait_until(fun() ->
                             py:call(Ctx, '__main__', try_send, [Live, two]) =/= {ok, <<"sent">>}
                     end, 5000, "the exit to be known"),
    ?expect({ok, {<<"ProcessError">>, _}}, py:call(Ctx, '__main__', try_send, [Live, three])),
    %% an uncaught ProcessError is the call's error
    ?expect({error, {'ProcessError', _}}, py:eval(Ctx, <<"erlang.send(p, 1)">>, #{p => Dead})),
    %% the processes of the runtime system are out of reach
    ?expect({ok, {<<"ProcessError">>, _}},
            py:call(Ctx, '__main__', try_send, [whereis(application_controller), stop])).

%% check=False never asks: fire and forget, a dead process is no error.
send_fast_path(_Config) ->
    Ctx = py:context(2),
    {Dead, MRef} = spawn_monitor(fun() -> ok end),
    receive {'DOWN', MRef, process, Dead, _} -> ok end,
    ?expect({ok, none}, py:eval(Ctx, <<"erlang.send(p, 1, check=False)">>, #{p => Dead})),
    ?expect({ok, none}, py:eval(Ctx, <<"erlang.send(p, 'fast', check=False)">>, #{p => self()})),
    ?expect(<<"fast">>, receive <<"fast">> = M -> M after 5000 -> none end),
    %% check=True waits for the BEAM and raises for a dead process
    ?expect({error, {'ProcessError', _}}, py:eval(Ctx, <<"erlang.send(p, 1, check=True)">>, #{p => Dead})).

%% A registered name: sent unchecked by default; with check=True a name
%% nobody has raises.
send_to_name(_Config) ->
    Ctx = py:context(1),
    true = register(py_env_suite_target, self()),
    try
        ?expect({ok, none}, py:eval(Ctx, <<"erlang.send(erlang.Atom('py_env_suite_target'), 'by name')">>)),
        ?expect(<<"by name">>, receive <<"by name">> = M -> M after 5000 -> none end)
    after
        unregister(py_env_suite_target)
    end,
    ?expect({ok, none}, py:eval(Ctx, <<"erlang.send(erlang.Atom('py_env_suite_target'), 1)">>)),
    ?expect({error, {'ProcessError', _}},
            py:eval(Ctx, <<"erlang.send(erlang.Atom('py_env_suite_target'), 1, check=True)">>)).

%% py:get_local_env/1 and py_context:create_local_env/1: the caller's
%% environment, made if it has none yet.
local_env(_Config) ->
    Ctx = py:context(2),
    Self = self(),
    Before = env_count(Ctx),
    ?expect({{'$py_env', Ctx, P}, 1} when is_pid(P) andalso P =/= Self,
            in_process(fun() ->
                               Env = py:get_local_env(Ctx),
                               {Env, env_count(Ctx) - Before}
                       end)),
    ?expect({'$py_env', Ctx, Self}, py_context:create_local_env(Ctx)),
    ?expect({error, {badarg, {ctx, not_a_pid}}}, py:get_local_env(not_a_pid)).
