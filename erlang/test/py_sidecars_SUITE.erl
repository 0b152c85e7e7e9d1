%% Several sidecars in one VM (erlang_python:start_sidecar/2): each has its
%% own OS process, contexts, shared state, load limit and restarts; killing
%% one leaves the other alone; stopping one leaves nothing behind.
-module(py_sidecars_SUITE).

-include_lib("common_test/include/ct.hrl").
-include("py_ct.hrl").

-export([all/0, init_per_suite/1, end_per_suite/1, init_per_testcase/2, end_per_testcase/2]).
-export([two_sidecars/1, kill_other/1, kill_default/1, state_per_sidecar/1,
         callback_goes_back/1, named_pools/1, semaphore_per_sidecar/1, options/1,
         own_intensity/1, stop_leaves_nothing/1, no_such_python/1, failed_handshake/1,
         backoff_does_not_block/1]).

all() ->
    [two_sidecars, kill_other, kill_default, state_per_sidecar, callback_goes_back,
     named_pools, semaphore_per_sidecar, options, own_intensity, stop_leaves_nothing,
     no_such_python, failed_handshake, backoff_does_not_block].

init_per_suite(Config) ->
    Config.

end_per_suite(_Config) ->
    py_ct:stop().

init_per_testcase(_Case, Config) ->
    py_ct:start([{num_contexts, 2}, {max_restarts, 20}]),
    Config.

end_per_testcase(_Case, _Config) ->
    _ = [erlang_python:stop_sidecar(S) || S <- erlang_python:sidecars(), S =/= default],
    py_ct:stop().

%%--------------------------------------------------------------------

two_sidecars(_Config) ->
    {ok, Sup} = erlang_python:start_sidecar(other, #{num_contexts => 3}),
    true = is_pid(Sup),
    ?equal([default, other], erlang_python:sidecars()),
    Others = py_context_router:contexts({other, default}),
    ?equal(3, length(Others)),
    ?equal(3, py_context_router:num_contexts({other, default})),
    ?equal(2, py_context_router:num_contexts()),
    ?equal([], Others -- (Others -- py_context_router:contexts())),
    %% two OS processes: each call runs in its own
    DefaultPid = os_pid(default),
    OtherPid = os_pid(other),
    true = DefaultPid =/= OtherPid,
    ?equal({ok, DefaultPid}, py:call(os, getpid, [])),
    [?equal({ok, OtherPid}, py:call(Ctx, os, getpid, [])) || Ctx <- Others],
    ?equal({ok, OtherPid}, py:call({other, default}, os, getpid, [])),
    ?equal({ok, 4}, py:eval({other, default}, <<"2 + 2">>)),
    ?equal(ok, py:exec(hd(Others), <<"x = 7">>)),
    ?equal({ok, 7}, py:eval(hd(Others), <<"x">>)),
    ?expect({error, {'NameError', _}}, py:eval(<<"x">>)),
    ?equal({ok, 2.0}, py_context:call(hd(Others), math, sqrt, [4], #{})),
    {ok, #{version := _}} = py_sidecar:info(other),
    ?expect({up, 0}, py_lifecycle:status(other)),
    %% a bound process follows its context to the other sidecar
    ok = py_context_router:bind_context(lists:last(Others)),
    ?equal({ok, OtherPid}, py:call(os, getpid, [])),
    ok = py_context_router:unbind_context(),
    ?equal({ok, DefaultPid}, py:call(os, getpid, [])).

%% kill -9 of one sidecar: its callers in flight get python_crashed and it
%% comes back; the other's calls in flight and its restart count are untouched.
kill_other(_Config) ->
    {ok, _} = erlang_python:start_sidecar(other, #{num_contexts => 2}),
    kill_one(other, default).

kill_default(_Config) ->
    {ok, _} = erlang_python:start_sidecar(other, #{num_contexts => 2}),
    kill_one(default, other).

kill_one(Victim, Survivor) ->
    ok = py_lifecycle:subscribe(Victim),
    ok = py_lifecycle:subscribe(Survivor),
    SurvivorPid = os_pid(Survivor),
    Parent = self(),
    Sleep = fun(S) -> spawn_link(fun() -> Parent ! {slept, S, py:call({S, default}, time, sleep, [1])} end) end,
    _ = Sleep(Victim),
    _ = Sleep(Survivor),
    py_ct:wait_until(fun() -> py_semaphore:current(Victim) >= 1 andalso
                                  py_semaphore:current(Survivor) >= 1 end, 5000, "calls in flight"),
    _ = os:cmd("kill -KILL " ++ integer_to_list(os_pid(Victim))),
    receive {slept, Victim, R1} -> ?expect({error, {python_crashed, #{signal := 9}}}, R1)
    after 5000 -> ct:fail("the victim's caller hung") end,
    receive {slept, Survivor, R2} -> ?equal({ok, none}, R2)
    after 5000 -> ct:fail("the survivor's caller hung") end,
    receive {py_restarted, Info} -> ct:log("~p restarted: ~p", [Victim, Info])
    after 20000 -> ct:fail("no py_restarted") end,
    receive {py_restarted, _} -> ct:fail("the survivor restarted") after 200 -> ok end,
    ?expect({up, 1}, py_lifecycle:status(Victim)),
    ?expect({up, 0}, py_lifecycle:status(Survivor)),
    ?equal(SurvivorPid, os_pid(Survivor)),
    ?equal({ok, 3}, py:eval({Victim, default}, <<"1 + 2">>)),
    ?equal({ok, 3}, py:eval({Survivor, default}, <<"1 + 2">>)),
    ?equal(2, py_context_router:num_contexts({Victim, default})).

state_per_sidecar(_Config) ->
    {ok, _} = erlang_python:start_sidecar(other, #{num_contexts => 1}),
    ok = py:state_clear(),
    ok = py:state_store(k, <<"default">>),
    ok = py_state:store(other, k, <<"other">>),
    ok = py_state:store(other, only_other, 1),
    ?equal({ok, <<"default">>}, py:state_fetch(k)),
    ?equal({ok, <<"other">>}, py_state:fetch(other, k)),
    ?equal({error, not_found}, py:state_fetch(only_other)),
    ?equal(5, py_state:incr(other, only_other, 4)),
    ?equal([<<"k">>, <<"only_other">>], py_state:keys(other)),
    ?equal([<<"k">>], py:state_keys()),
    Get = <<"__import__('erlang').state_get('k')">>,
    ?equal({ok, <<"other">>}, py:eval({other, default}, Get)),
    ?equal({ok, <<"default">>}, py:eval(Get)),
    %% set from the other sidecar's Python: its mirror, not the default's
    {ok, none} = py:eval({other, default}, <<"__import__('erlang').state_set('py', 1)">>),
    ?equal({ok, 1}, py_state:fetch(other, py)),
    ?equal({error, not_found}, py:state_fetch(py)),
    ?equal(lists:sort([{<<"k">>, <<"other">>}, {<<"only_other">>, 5}, {<<"py">>, 1}]),
           lists:sort(ets:tab2list('py_state_mirror/other'))),
    ?equal([{<<"k">>, <<"default">>}], ets:tab2list(py_state_mirror)),
    %% the other sidecar's store survives its crash
    ok = py_lifecycle:subscribe(other),
    _ = os:cmd("kill -KILL " ++ integer_to_list(os_pid(other))),
    receive {py_restarted, _} -> ok after 20000 -> ct:fail("no py_restarted") end,
    ?equal({ok, 5}, py_state:fetch(other, only_other)),
    ?equal({ok, <<"other">>}, py:eval({other, default}, Get)),
    ok = py_state:clear(other),
    ?equal([], py_state:keys(other)),
    ?equal({ok, <<"default">>}, py:state_fetch(k)).

%% The function registry is one for the VM; a call without a context made in
%% a callback goes back to the sidecar (and context) that called it.
callback_goes_back(_Config) ->
    {ok, _} = erlang_python:start_sidecar(other, #{num_contexts => 1}),
    ok = py:register_function(whoami, fun([]) -> {ok, P} = py:call(os, getpid, []), P end),
    try
        Call = <<"__import__('erlang').whoami()">>,
        ?equal({ok, os_pid(other)}, py:eval({other, default}, Call)),
        ?equal({ok, os_pid(default)}, py:eval(Call)),
        %% nested: other -> callback -> other -> callback -> other
        ok = py:register_function(twice, fun([X]) -> {ok, Y} = py:eval(<<"__import__('erlang').whoami() and 2 * x">>, #{x => X}), Y end),
        ?equal({ok, 42}, py:eval({other, default}, <<"__import__('erlang').twice(21)">>))
    after
        py:unregister_function(whoami),
        py:unregister_function(twice)
    end.

named_pools(_Config) ->
    {ok, _} = erlang_python:start_sidecar(other, #{num_contexts => 1}),
    {ok, [W]} = py_context_router:start_pool({other, w}, 1, worker),
    ?equal({ok, [W]}, py_context_router:pool_contexts({other, w})),
    ?equal(false, py_context_router:is_pool(w)),
    ?equal(true, py_context_router:is_pool({other, w})),
    ?equal({ok, os_pid(other)}, py:call({other, w}, os, getpid, [])),
    ?equal({ok, worker}, py_context:mode(W)),
    %% the pool comes back after the sidecar's crash
    ok = py_lifecycle:subscribe(other),
    _ = os:cmd("kill -KILL " ++ integer_to_list(os_pid(other))),
    receive {py_restarted, _} -> ok after 20000 -> ct:fail("no py_restarted") end,
    ?expect({ok, [_]}, py_context_router:pool_contexts({other, w})),
    ?equal({ok, os_pid(other)}, py:call({other, w}, os, getpid, [])),
    ?equal(ok, py_context_router:stop_pool({other, w})),
    ?expect({error, {unknown_pool, {other, w}}}, py:call({other, w}, os, getpid, [])),
    ?expect({error, {unknown_pool, _}}, py_context_router:stop_pool({other, w})).

semaphore_per_sidecar(_Config) ->
    {ok, _} = erlang_python:start_sidecar(other, #{num_contexts => 1, max_concurrent => 1}),
    ?equal(1, py_semaphore:max_concurrent(other)),
    ?equal(erlang:system_info(schedulers) * 2 + 1, py_semaphore:max_concurrent()),
    Slow = py:spawn_call({other, default}, time, sleep, [1], #{}),
    py_ct:wait_until(fun() -> py_semaphore:current(other) =:= 1 end, 5000, "the slow call"),
    ?expect({error, {overloaded, 1, 1}}, py_semaphore:acquire(other, 0)),
    Parent = self(),
    spawn_link(fun() -> Parent ! {waited, py:eval({other, default}, <<"1">>)} end),
    py_ct:wait_until(fun() -> py_semaphore:waiting(other) =:= 1 end, 5000, "a waiter"),
    ?equal(0, py_semaphore:waiting()),
    ?equal({ok, 1}, py:eval(<<"1">>)),
    ?equal(0, py_semaphore:current()),
    ?equal({ok, none}, py:await(Slow, 5000)),
    receive {waited, R} -> ?equal({ok, 1}, R) after 5000 -> ct:fail("the waiter hung") end,
    py_ct:wait_until(fun() -> py_semaphore:current(other) =:= 0 end, 5000, "the slot back").

options(_Config) ->
    ?equal({error, {bad_config, num_contexts, 0}},
           erlang_python:start_sidecar(bad, #{num_contexts => 0})),
    ?equal({error, {bad_config, no_such_key, 1}},
           erlang_python:start_sidecar(bad, #{no_such_key => 1})),
    ?expect({error, {badarg, _}}, erlang_python:start_sidecar(bad, [{num_contexts, 1}])),
    ?equal({error, {already_started, default}}, erlang_python:start_sidecar(default, #{})),
    ?equal({error, {unknown_sidecar, nope}}, erlang_python:stop_sidecar(nope)),
    ?expect({error, {badarg, _}}, erlang_python:stop_sidecar(default)),
    ?equal([default], erlang_python:sidecars()),
    %% options override the application environment for that sidecar only
    {ok, _} = erlang_python:start_sidecar(other, #{num_contexts => 1, num_executors => 2,
                                                   call_timeout => 300}),
    ?equal({error, {already_started, other}}, erlang_python:start_sidecar(other, #{})),
    ?equal(1, py_context_router:num_contexts({other, default})),
    ?equal(2, py_config:get(other, num_executors)),
    %% unset: the sidecar's own default, which its info reports
    ?equal(undefined, py_config:get(default, num_executors)),
    ?equal(4, py:num_executors()),
    %% call_timeout: the sidecar's own requests (here a state operation)
    ?equal(300, py_config:get(other, call_timeout)),
    ?equal(30000, py_config:get(default, call_timeout)).

%% More crashes than its max_restarts stop that sidecar only.
own_intensity(_Config) ->
    {ok, _} = erlang_python:start_sidecar(fragile, #{num_contexts => 1, max_restarts => 1,
                                                     restart_backoff_ms => 0}),
    ok = py_lifecycle:subscribe(fragile),
    _ = os:cmd("kill -KILL " ++ integer_to_list(os_pid(fragile))),
    receive {py_restarted, _} -> ok after 20000 -> ct:fail("no py_restarted") end,
    _ = os:cmd("kill -KILL " ++ integer_to_list(os_pid(fragile))),
    py_ct:wait_until(fun() -> erlang_python:sidecars() =:= [default] end, 10000,
                     "the fragile sidecar to stop"),
    ?expect({error, _}, py:eval({fragile, default}, <<"1">>)),
    ?equal({ok, 2}, py:eval(<<"1 + 1">>)),
    ?expect({up, 0}, py_lifecycle:status()),
    true = lists:keymember(erlang_python, 1, application:which_applications()),
    %% and it can be started again
    {ok, _} = erlang_python:start_sidecar(fragile, #{num_contexts => 1}),
    ?equal({ok, 3}, py:eval({fragile, default}, <<"1 + 2">>)).

stop_leaves_nothing(_Config) ->
    Before = leftovers(other),
    ?equal({[], [], [], []}, Before),
    {ok, _} = erlang_python:start_sidecar(other, #{num_contexts => 2}),
    {ok, _} = py_context_router:start_pool({other, w}, 1, worker),
    ok = py_state:store(other, k, 1),
    Big = binary:copy(<<"x">>, 200000),
    ?equal({ok, Big}, py:call({other, default}, builtins, bytes, [{bytes, Big}])),
    OsPid = os_pid(other),
    {Names, Keys, Tabs, Rows} = leftovers(other),
    ct:log("while running: ~p", [{Names, Keys, Tabs, Rows}]),
    true = Names =/= [] andalso Keys =/= [] andalso Tabs =/= [] andalso Rows =/= [],
    ?equal(ok, erlang_python:stop_sidecar(other)),
    ?equal({[], [], [], []}, leftovers(other)),
    ?equal([default], erlang_python:sidecars()),
    py_ct:wait_until(fun() -> not filelib:is_dir("/proc/" ++ integer_to_list(OsPid)) end, 5000,
                     "the OS process to go"),
    ?expect({error, _}, py:eval({other, default}, <<"1">>)),
    ?equal({ok, 1}, py:eval(<<"1">>)).

%% A first start that fails returns why, and leaves nothing behind.
no_such_python(_Config) ->
    ?expect({error, {no_pyport, "/nonexistent/pyport", enoent}},
            erlang_python:start_sidecar(broken, #{python => "/nonexistent/pyport"})),
    ?equal([default], erlang_python:sidecars()),
    ?equal({[], [], [], []}, leftovers(broken)),
    ?equal({ok, 1}, py:eval(<<"1">>)).

%% An executable that is no pyport: the handshake fails (here it exits at
%% once), which ends the first start.
failed_handshake(_Config) ->
    ?expect({error, {python_crashed, #{status := 0}}},
            erlang_python:start_sidecar(broken, #{python => "/bin/true"})),
    ?equal([default], erlang_python:sidecars()),
    ?equal({[], [], [], []}, leftovers(broken)),
    ?equal({ok, 1}, py:eval(<<"1">>)).

%% The backoff runs after py_sidecar's init/1: while it lasts its supervisor
%% answers at once, and calls made meanwhile wait for the new sidecar.
backoff_does_not_block(_Config) ->
    {ok, _} = erlang_python:start_sidecar(slow, #{num_contexts => 1, restart_backoff_ms => 1500}),
    ok = py_lifecycle:subscribe(slow),
    _ = os:cmd("kill -KILL " ++ integer_to_list(os_pid(slow))),
    receive {py_restarted, _} -> ok after 20000 -> ct:fail("no py_restarted") end,
    %% the second crash in the window waits restart_backoff_ms
    _ = os:cmd("kill -KILL " ++ integer_to_list(os_pid(slow))),
    py_ct:wait_until(fun() -> py_lifecycle:state(slow) =:= restarting end, 5000, "restarting"),
    timer:sleep(200),
    {T, Children} = py_ct:timed(fun() -> supervisor:which_children('py_sidecar_sup/slow') end),
    ct:log("which_children in ~.1f ms: ~p", [T, Children]),
    true = T < 500 orelse ct:fail("the supervisor answered in ~.1f ms", [T]),
    ?equal(restarting, py_lifecycle:state(slow)),
    {T2, R} = py_ct:timed(fun() -> py:eval({slow, default}, <<"6 * 7">>) end),
    ct:log("a call made during the backoff waited ~.1f ms", [T2]),
    ?equal({ok, 42}, R),
    receive {py_restarted, #{down_ms := Down}} -> true = Down >= 1500 orelse ct:fail("down ~b ms", [Down])
    after 20000 -> ct:fail("no py_restarted") end.

%%--------------------------------------------------------------------

%% Registered names, persistent_term keys, ETS tables and context rows of
%% sidecar S.
leftovers(S) ->
    Suffix = "/" ++ atom_to_list(S),
    Names = [N || N <- registered(), lists:suffix(Suffix, atom_to_list(N))],
    Keys = [K || {K, _} <- persistent_term:get(), is_tuple(K), tuple_size(K) =:= 3,
                 element(2, K) =:= S],
    Tabs = [T || T <- ets:all(), is_atom(T), lists:suffix(Suffix, atom_to_list(T))],
    Rows = [R || {_, {S1, _}, _, _} = R <- ets:tab2list(py_contexts), S1 =:= S],
    {Names, Keys, Tabs, Rows}.

os_pid(S) ->
    case py_sidecar:port(S) of
        undefined -> ct:fail("no sidecar ~p", [S]);
        Port ->
            {os_pid, P} = erlang:port_info(Port, os_pid),
            P
    end.
