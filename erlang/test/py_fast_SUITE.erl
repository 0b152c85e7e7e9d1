%% API.md section 2, the fast paths (issue 12, point 6): py:cast returns
%% after one port_command, py:spawn_call sends the request itself and
%% py:await receives the reply (py_async); the fallbacks to a spawned
%% process when a request cannot go at once. Real port, real Python.
-module(py_fast_SUITE).

-include_lib("common_test/include/ct.hrl").
-include("py_ct.hrl").

-export([all/0, init_per_suite/1, end_per_suite/1, init_per_testcase/2, end_per_testcase/2]).
-export([cast_all_run/1, cast_no_process/1, cast_errors_logged/1, cast_large_result/1,
         cast_fallback_busy/1, cast_fallback_large/1, cast_fallback_restarting/1,
         cast_timeout_cancelled/1, cast_lost_with_sidecar/1, cast_in_callback/1,
         spawn_call_many/1, spawn_call_no_process/1, spawn_call_errors/1,
         await_timeout_late_reply/1, await_call_timeout/1, spawn_call_sidecar_killed/1,
         spawn_call_fallbacks/1, cast_refusals_logged_once/1]).
-export([log/2]). % a logger handler

-define(ENV, [{num_contexts, 2}, {max_concurrent, 1000}]).
-define(CRASH_CASES, [cast_fallback_restarting, cast_lost_with_sidecar, spawn_call_sidecar_killed]).

all() ->
    [cast_all_run, cast_no_process, cast_errors_logged, cast_large_result, cast_fallback_busy,
     cast_fallback_large, cast_timeout_cancelled, cast_in_callback, spawn_call_many, spawn_call_no_process,
     spawn_call_errors, await_timeout_late_reply, await_call_timeout, spawn_call_fallbacks,
     cast_refusals_logged_once | ?CRASH_CASES].

init_per_suite(Config) ->
    py_ct:start(?ENV),
    Config.

end_per_suite(_Config) ->
    py_ct:stop().

init_per_testcase(_Case, Config) ->
    case whereis(py_pool) of
        undefined -> py_ct:start(?ENV);
        _ -> ok
    end,
    ok = py:state_clear(),
    Config.

%% After every case: no slot is left taken, nothing is left in the mailbox.
%% A crash case restarts the application (the supervisor's restart limit).
end_per_testcase(Case, _Config) ->
    py_ct:wait_until(fun() -> py_semaphore:current() =:= 0 end, 10000, "every slot back"),
    ok = py_semaphore:set_max_concurrent(1000),
    Left = flush(),
    lists:member(Case, ?CRASH_CASES) andalso py_ct:start(?ENV),
    case Left of
        [] -> ok;
        _ -> {fail, {left_in_mailbox, Left}}
    end.

flush() ->
    receive
        M -> [M | flush()]
    after 0 -> []
    end.

%%--------------------------------------------------------------------
%% cast

%% Every cast runs: each increments a counter in the shared state.
cast_all_run(_Config) ->
    N = 300, % 900 casts in flight at most: within max_concurrent
    [?expect(ok, py:cast(erlang, state_incr, [<<"casts">>])) || _ <- lists:seq(1, N)],
    [?expect(ok, py:cast(py:context(2), erlang, state_incr, [<<"casts">>, 2])) || _ <- lists:seq(1, N)],
    [?expect(ok, py:cast(erlang, state_incr, [<<"casts">>], #{})) || _ <- lists:seq(1, N)],
    py_ct:wait_until(fun() -> py:state_fetch(casts) =:= {ok, 4 * N} end, 20000,
                     "every cast to run"),
    ?expect({error, {badarg, _}}, py:cast(math, sqrt, not_a_list)),
    ?expect({error, {badarg, _}}, py:cast(math, sqrt, [], not_a_map)),
    ?expect({error, {unknown_pool, _}}, py:cast(no_such_pool, math, sqrt, [1])).

%% The caller spawns nothing: the request is written by the caller itself.
cast_no_process(_Config) ->
    Spawned = spawns(fun() ->
                             [ok = py:cast(erlang, state_incr, [<<"n">>]) || _ <- lists:seq(1, 50)],
                             ok
                     end),
    ?equal([], Spawned),
    py_ct:wait_until(fun() -> py:state_fetch(n) =:= {ok, 50} end, 10000, "the casts to run").

%% A failing cast is logged as a warning that names the call.
cast_errors_logged(_Config) ->
    with_log(fun() ->
                     ?expect(ok, py:cast(math, no_such_function, [])),
                     ?expect(ok, py:cast(operator, truediv, [1, 0])),
                     Texts = [wait_log(<<"math.no_such_function">>),
                              wait_log(<<"operator.truediv">>)],
                     [?expect(match, re:run(T, <<"py:cast">>, [{capture, none}])) || T <- Texts],
                     ?expect(match, re:run(lists:nth(2, Texts), <<"ZeroDivisionError">>,
                                           [{capture, none}]))
             end).

%% A large ok result (over slot_min) is no error, and gives its slot back.
cast_large_result(_Config) ->
    with_log(fun() ->
                     ?expect(ok, py:cast(builtins, bytes, [1 bsl 20])),
                     ?expect(ok, py:cast(builtins, list, [[{x, I} || I <- lists:seq(1, 20000)]])),
                     py_ct:wait_until(fun() -> py_semaphore:current() =:= 0 end, 10000,
                                      "the casts to be answered"),
                     ?expect({ok, 2}, py:eval(<<"1 + 1">>)),
                     no_log()
             end).

%% No slot free: the cast is not dropped by the caller; a spawned process
%% makes it as a call (which waits for a slot or is refused, and says so).
cast_fallback_busy(_Config) ->
    ok = py_semaphore:set_max_concurrent(1),
    Ctx = py:context(1),
    Sleeper = py:spawn_call(Ctx, time, sleep, [0.5]),
    ?equal(1, py_semaphore:current()),
    with_log(fun() ->
                     Spawned = spawns(fun() -> ok = py:cast(erlang, state_incr, [<<"busy">>]) end),
                     ?equal(1, length(Spawned)),
                     ?expect({ok, none}, py:await(Sleeper, 5000)),
                     %% served once a slot frees, or refused with a warning
                     py_ct:wait_until(fun() ->
                                              py:state_fetch(busy) =:= {ok, 1} orelse
                                                  logged(<<"overloaded">>)
                                      end, 10000, "the cast to run or be refused")
             end).

%% Casts that load control refuses come in floods: one warning line a
%% second for all of them, with the count; the casts that could wait are
%% served.
cast_refusals_logged_once(_Config) ->
    ok = py_semaphore:set_max_concurrent(1),
    Sleeper = py:spawn_call(py:context(1), time, sleep, [1.0]),
    with_log(fun() ->
                     [ok = py:cast(erlang, state_incr, [<<"refusals">>]) || _ <- lists:seq(1, 1100)],
                     ?expect({ok, none}, py:await(Sleeper, 10000)),
                     py_ct:wait_until(fun() ->
                                              py_semaphore:current() + py_semaphore:waiting() =:= 0
                                      end, 30000, "the waiting casts to be served"),
                     timer:sleep(200),
                     Lines = [T || {py_fast_log, T} <- flush_logs(),
                                   binary:match(T, <<"refused">>) =/= nomatch],
                     ?expect(true, length(Lines) >= 1 andalso length(Lines) =< 2),
                     {ok, Served} = py:state_fetch(refusals),
                     ?expect(true, Served >= 1000 andalso Served < 1100)
             end).

%% A large payload would need the caller's slot file: a spawned process
%% makes the cast.
cast_fallback_large(_Config) ->
    Big = binary:copy(<<"x">>, 2 * py_slot:min_size()),
    Spawned = spawns(fun() -> ok = py:cast(erlang, state_set, [<<"big">>, Big]) end),
    ?equal(1, length(Spawned)),
    py_ct:wait_until(fun() -> py:state_fetch(big) =:= {ok, Big} end, 10000, "the large cast").

%% A cast made while the sidecar restarts runs once it is back.
cast_fallback_restarting(_Config) ->
    ok = py:state_store(restart_casts, 0),
    Old = py_ct:kill_sidecar(),
    py_ct:wait_until(fun() -> py_lifecycle:state() =:= restarting end, 10000, "the restart"),
    ?expect(ok, py:cast(erlang, state_incr, [<<"restart_casts">>])),
    py_ct:wait_restarted(Old),
    py_ct:wait_until(fun() -> py:state_fetch(restart_casts) =:= {ok, 1} end, 10000,
                     "the cast made during the restart").

%% A cast still running after the call timeout is cancelled, as a call
%% would be: its slot comes back and the cancellation is logged.
cast_timeout_cancelled(_Config) ->
    Ctx = py:context(1),
    def_spin(),
    ok = application:set_env(erlang_python, call_timeout, 200),
    try
        with_log(fun() ->
                         ?expect(ok, py:cast(Ctx, '__main__', spin, [30])),
                         ?equal(1, py_semaphore:current()),
                         _ = wait_log(<<"__main__.spin">>),
                         ?equal(0, py_semaphore:current())
                 end)
    after
        application:unset_env(erlang_python, call_timeout)
    end,
    ?expect({ok, 2}, py:eval(py:context(1), <<"1 + 1">>)).

%% A cast made by a function that Python called takes the spawned path (as
%% before the fast path) and runs once the Python call that waits is done.
cast_in_callback(_Config) ->
    ok = py:register_function(fast_cast, fun([N]) ->
                                                 [ok = py:cast(erlang, state_incr, [<<"cb_casts">>])
                                                  || _ <- lists:seq(1, N)],
                                                 ok
                                         end),
    try
        ?expect({ok, _}, py:eval(py:context(1), <<"__import__('erlang').fast_cast(5)">>)),
        py_ct:wait_until(fun() -> py:state_fetch(cb_casts) =:= {ok, 5} end, 10000,
                         "the casts made in a callback")
    after
        py:unregister_function(fast_cast)
    end.

%% Casts in flight when the sidecar dies are logged as lost.
cast_lost_with_sidecar(_Config) ->
    with_log(fun() ->
                     ?expect(ok, py:cast(py:context(1), time, sleep, [30])),
                     ?equal(1, py_semaphore:current()),
                     Old = py_ct:kill_sidecar(),
                     Text = wait_log(<<"lost with the sidecar">>),
                     ?expect(match, re:run(Text, <<"time.sleep">>, [{capture, none}])),
                     py_ct:wait_restarted(Old)
             end).

%%--------------------------------------------------------------------
%% spawn_call and await

%% Many in flight from one process, on both contexts, awaited in reverse
%% order and in a shuffled one.
spawn_call_many(_Config) ->
    N = 200,
    Refs = [{I, spawn_one(I)} || I <- lists:seq(1, N)],
    [?equal({ok, I + 1}, py:await(Ref, 10000)) || {I, Ref} <- lists:reverse(Refs)],
    Refs2 = [{rand:uniform(), {I, spawn_one(I)}} || I <- lists:seq(1, N)],
    [?equal({ok, I + 1}, py:await(Ref)) || {_, {I, Ref}} <- lists:sort(Refs2)].

spawn_one(I) when I rem 3 =:= 0 -> py:spawn_call(py:context(2), operator, add, [I, 1]);
spawn_one(I) when I rem 3 =:= 1 -> py:spawn_call(operator, add, [I, 1], #{}, 5000);
spawn_one(I) -> py:spawn_call(operator, add, [I, 1]).

%% The caller spawns nothing for spawn_call.
spawn_call_no_process(_Config) ->
    Spawned = spawns(fun() ->
                             Refs = [py:spawn_call(operator, add, [I, 1]) || I <- lists:seq(1, 20)],
                             [{ok, _} = py:await(R) || R <- Refs],
                             ok
                     end),
    ?equal([], Spawned).

%% Errors come back through await, as from a call.
spawn_call_errors(_Config) ->
    ?expect({error, {'ZeroDivisionError', _}}, py:await(py:spawn_call(operator, truediv, [1, 0]))),
    ?expect({error, {'ModuleNotFoundError', _}}, py:await(py:spawn_call(no_such_module, f, []))),
    ?expect({error, {badarg, _}}, py:await(py:spawn_call(math, sqrt, not_a_list), 1000)),
    ?expect({error, {badarg, _}}, py:await(py:spawn_call(math, sqrt, [], not_a_map), 1000)),
    ?expect({error, {unknown_pool, _}}, py:await(py:spawn_call(no_such_pool, math, sqrt, [1]), 1000)).

%% await gives up: the call is cancelled, its slot comes back, and its late
%% reply never reaches the mailbox (end_per_testcase checks).
await_timeout_late_reply(_Config) ->
    Ctx = py:context(1),
    Slow = py:spawn_call(Ctx, time, sleep, [0.5]),
    Fast = py:spawn_call(Ctx, operator, add, [1, 2]),
    ?expect({error, timeout}, py:await(Slow, 50)),
    ?expect({ok, 3}, py:await(Fast, 5000)),
    timer:sleep(700),
    ?expect({error, timeout}, py:await(py:spawn_call(Ctx, time, sleep, [0.3]), 0)),
    timer:sleep(500).

%% await/1 waits no longer than the call's own timeout.
await_call_timeout(_Config) ->
    Ctx = py:context(1),
    def_spin(),
    Ref = py:spawn_call(Ctx, '__main__', spin, [5], #{}),
    ?expect({error, timeout}, py:await(Ref, 100)),
    Ref2 = py:spawn_call('__main__', spin, [5], #{}, 100),
    {T, R} = py_ct:timed(fun() -> py:await(Ref2) end),
    ?expect({error, timeout}, R),
    true = T < 4000 orelse ct:fail("await/1 waited ~.1f ms for a call of 100 ms", [T]).

%% The sidecar dies while spawn_calls are in flight: each await gives
%% python_crashed, none hangs, no slot is left taken.
spawn_call_sidecar_killed(_Config) ->
    Refs = [py:spawn_call(time, sleep, [30]) || _ <- lists:seq(1, 4)],
    py_ct:wait_until(fun() -> py_semaphore:current() =:= 4 end, 5000, "the sleeps in flight"),
    Old = py_ct:kill_sidecar(),
    [?expect({error, {python_crashed, _}}, py:await(R, 10000)) || R <- Refs],
    py_ct:wait_restarted(Old),
    ?equal(0, py_semaphore:current()).

%% The fallbacks of spawn_call (no slot free, a large payload) give the
%% same results, mixed with fast ones in any await order.
spawn_call_fallbacks(_Config) ->
    Big = binary:copy(<<"y">>, 2 * py_slot:min_size()),
    Size = byte_size(Big),
    Fast1 = py:spawn_call(operator, add, [1, 2]),
    Large = py:spawn_call(builtins, len, [Big]),
    Fast2 = py:spawn_call(operator, add, [3, 4]),
    ?expect({ok, 7}, py:await(Fast2)),
    ?expect({ok, Size}, py:await(Large)),
    ?expect({ok, 3}, py:await(Fast1)),
    ok = py_semaphore:set_max_concurrent(1),
    Sleeper = py:spawn_call(py:context(1), time, sleep, [0.3]),
    Busy = py:spawn_call(py:context(2), operator, add, [5, 6]),
    ?expect({ok, none}, py:await(Sleeper, 5000)),
    %% served once the slot frees, or refused at once
    case py:await(Busy, 5000) of
        {ok, 11} -> ok;
        {error, {overloaded, _, _}} -> ok;
        Other -> ct:fail("a spawn_call with no slot free gave ~p", [Other])
    end.

%%--------------------------------------------------------------------
%% Helpers

%% The pids that Fun's process spawned while Fun ran (a trace on it).
spawns(Fun) ->
    Self = self(),
    Tracer = spawn_link(fun() -> tracer([]) end),
    1 = erlang:trace(Self, true, [procs, {tracer, Tracer}]),
    try
        Fun()
    after
        erlang:trace(Self, false, [procs])
    end,
    Tracer ! {done, Self},
    receive
        {spawned, Pids} -> Pids
    after 5000 -> ct:fail("no answer from the tracer")
    end.

tracer(Acc) ->
    receive
        {trace, _, spawn, Pid, _} -> tracer([Pid | Acc]);
        {trace, _, _, _} -> tracer(Acc);
        {trace, _, _, _, _} -> tracer(Acc);
        {done, From} -> From ! {spawned, lists:reverse(Acc)}
    end.

%% Fun with a logger handler that sends this process the warnings (and
%% worse) that mention py:cast.
with_log(Fun) ->
    ok = logger:add_handler(py_fast_log, ?MODULE, #{level => warning, config => #{pid => self()}}),
    try
        Fun()
    after
        ok = logger:remove_handler(py_fast_log),
        _ = [ok || {py_fast_log, _} <- flush_logs()]
    end.

flush_logs() ->
    receive
        {py_fast_log, _} = M -> [M | flush_logs()]
    after 0 -> []
    end.

%% @private the handler
log(#{msg := Msg}, #{config := #{pid := Pid}}) ->
    Text = case Msg of
               {string, S} -> unicode:characters_to_binary(S);
               {report, R} -> unicode:characters_to_binary(io_lib:format("~tp", [R]));
               {Format, Args} -> unicode:characters_to_binary(io_lib:format(Format, Args))
           end,
    case binary:match(Text, [<<"py:cast">>]) of
        nomatch -> ok;
        _ -> Pid ! {py_fast_log, Text}
    end.

%% The first logged line that contains Part (others are dropped).
wait_log(Part) ->
    receive
        {py_fast_log, Text} ->
            case binary:match(Text, Part) of
                nomatch -> wait_log(Part);
                _ -> Text
            end
    after 10000 ->
        ct:fail("no warning mentioning ~ts was logged", [Part])
    end.

%% Whether a line containing Part was logged (without waiting).
logged(Part) ->
    receive
        {py_fast_log, Text} -> binary:match(Text, Part) =/= nomatch orelse logged(Part)
    after 0 -> false
    end.

no_log() ->
    receive
        {py_fast_log, Text} -> ct:fail("logged: ~ts", [Text])
    after 0 -> ok
    end.

%% spin(Seconds) in every context: a busy loop that a cancel interrupts
%% (time.sleep is not interrupted before it returns).
def_spin() ->
    [ok = py:exec(py:context(I), <<"def spin(s):\n"
                                   "    import time\n"
                                   "    end = time.monotonic() + s\n"
                                   "    while time.monotonic() < end:\n"
                                   "        pass\n">>)
     || I <- [1, 2]],
    ok.

