%% API.md section 10: load control.
-module(py_semaphore_SUITE).

-include_lib("common_test/include/ct.hrl").
-include("py_ct.hrl").

-export([all/0, init_per_suite/1, end_per_suite/1, init_per_testcase/2,
         end_per_testcase/2]).
-export([defaults/1, overloaded_at_once/1, limit_holds_under_load/1,
         slots_released_on_errors/1, killed_caller_slot_reclaimed/1, sidecar_crash_resets/1,
         env_limit/1, ten_thousand_callers/1, destroyed_context_keeps_the_count/1]).

all() ->
    [defaults, overloaded_at_once, limit_holds_under_load, slots_released_on_errors,
     killed_caller_slot_reclaimed, sidecar_crash_resets, env_limit, ten_thousand_callers,
     destroyed_context_keeps_the_count].

init_per_suite(Config) ->
    py_ct:start([{num_contexts, 2}]),
    Config.

end_per_suite(_Config) ->
    py_ct:stop().

init_per_testcase(_Case, Config) ->
    [{max, py_semaphore:max_concurrent()} | Config].

end_per_testcase(_Case, Config) ->
    case whereis(py_semaphore) of
        undefined -> ok;
        _ -> py_semaphore:set_max_concurrent(?config(max, Config))
    end.

defaults(_Config) ->
    ?expect(0, py_semaphore:current()),
    Max = erlang:system_info(schedulers) * 2 + 1,
    ?expect(Max, py_semaphore:max_concurrent()).

%% With max_waiting 0, the limit at 1 and a slow call in flight, the next
%% call is refused at once (with a queue it would wait: py_load_SUITE).
overloaded_at_once(_Config) ->
    py_ct:start([{num_contexts, 2}, {max_waiting, 0}]),
    try overloaded_at_once()
    after py_ct:start([{num_contexts, 2}])
    end.

overloaded_at_once() ->
    ok = py_semaphore:set_max_concurrent(1),
    ?expect(1, py_semaphore:max_concurrent()),
    Slow = py:spawn_call(time, sleep, [1]),
    py_ct:wait_until(fun() -> py_semaphore:current() =:= 1 end, 5000, "the slow call in flight"),
    {T, R} = py_ct:timed(fun() -> py:call(math, sqrt, [4]) end),
    ?expect({error, {overloaded, 1, 1}}, R),
    true = T < 200 orelse ct:fail("overloaded took ~.1f ms, not at once", [T]),
    ?expect({error, {overloaded, 1, 1}}, py:eval(<<"1">>)),
    ?expect({error, {overloaded, 1, 1}}, py:exec(<<"x = 1">>)),
    ?expect(1, py_semaphore:current()),
    ?expect({ok, none}, py:await(Slow, 5000)),
    ?expect(0, py_semaphore:current()),
    ?expect({ok, 2.0}, py:call(math, sqrt, [4])).

%% 10 slow callers at a limit of 3: 3 run at a time, 7 wait, all are served;
%% a sampler never sees more than 3 slots held.
limit_holds_under_load(_Config) ->
    ok = py_semaphore:set_max_concurrent(3),
    Parent = self(),
    Sampler = spawn_link(fun() -> sample(0) end),
    Pids = [spawn_link(fun() -> Parent ! {done, self(), py:call(time, sleep, [0.2])} end)
            || _ <- lists:seq(1, 10)],
    Results = [receive {done, P, R} -> R after 10000 -> ct:fail("a caller hung") end || P <- Pids],
    Sampler ! {stop, self()},
    Most = receive {most, M} -> M after 5000 -> ct:fail("no sampler") end,
    ?equal(lists:duplicate(10, {ok, none}), Results),
    ?equal(3, Most),
    ?expect(0, py_semaphore:current()),
    ?expect(0, py_semaphore:waiting()).

sample(Most) ->
    receive
        {stop, From} -> From ! {most, Most}
    after 0 ->
        erlang:yield(),
        sample(max(Most, py_semaphore:current()))
    end.

%% Errors give their slot back; a timed-out call gives it back once Python has
%% been interrupted (its reply comes, and nobody waits for it).
slots_released_on_errors(_Config) ->
    ?expect({error, {'ZeroDivisionError', _}}, py:eval(<<"1 / 0">>)),
    ?expect({error, {badarg, _}}, py:call(math, sqrt, oops)),
    ?expect(0, py_semaphore:current()),
    ?expect({error, timeout}, py:eval(<<"sum(1 for _ in iter(int, 1))">>, #{}, 100)),
    py_ct:wait_until(fun() -> py_semaphore:current() =:= 0 end, 5000, "the interrupted call's slot"),
    ok = py_semaphore:set_max_concurrent(1),
    [begin
         ?expect({error, timeout}, py:eval(<<"sum(1 for _ in iter(int, 1))">>, #{}, 50)),
         py_ct:wait_until(fun() -> py_semaphore:current() =:= 0 end, 5000, "the interrupted call's slot")
     end || _ <- lists:seq(1, 3)],
    ?expect({ok, 3}, py:eval(<<"1 + 2">>)),
    ?expect(0, py_semaphore:current()),
    %% acquire and release by hand; release never goes below 0
    ?expect(ok, py_semaphore:acquire(0)),
    ?expect({error, {overloaded, 1, 1}}, py_semaphore:acquire(0)),
    ?expect(ok, py_semaphore:release()),
    ?expect(0, py_semaphore:current()),
    ?expect(ok, py_semaphore:release()),
    ?expect(0, py_semaphore:current()).

%% A slot belongs to the request, not to its caller: a caller killed in the
%% middle of a call leaks nothing. The slot counts while Python still runs the
%% call, and comes back with its reply.
killed_caller_slot_reclaimed(_Config) ->
    ok = py_semaphore:set_max_concurrent(1),
    Victim = spawn(fun() -> py:call(time, sleep, [0.5]) end),
    py_ct:wait_until(fun() -> py_semaphore:current() =:= 1 end, 5000, "the victim's call in flight"),
    exit(Victim, kill),
    timer:sleep(100),
    ?expect(1, py_semaphore:current()),
    ?expect({error, {overloaded, 1, 1}}, py:call(math, sqrt, [4], #{}, 50)),
    py_ct:wait_until(fun() -> py_semaphore:current() =:= 0 end, 5000, "the sleep's reply"),
    ?expect({ok, 2.0}, py:call(math, sqrt, [4])),
    ?expect(0, py_semaphore:current()).

%% A sidecar that dies takes its requests along: their slots come back.
sidecar_crash_resets(_Config) ->
    ok = py_semaphore:set_max_concurrent(10),
    Parent = self(),
    [spawn(fun() -> Parent ! {slept, py:call(py:context(2), time, sleep, [5])} end) || _ <- [1, 2, 3]],
    py_ct:wait_until(fun() -> py_semaphore:current() =:= 3 end, 5000, "three sleeps in flight"),
    ?expect({error, {python_crashed, _}}, py:exec(py:context(1), <<"import os; os._exit(3)">>)),
    [receive {slept, R} -> ?expect({error, {python_crashed, _}}, R) after 5000 -> ct:fail("hung") end
     || _ <- [1, 2, 3]],
    py_ct:wait_until(fun() -> catch py:call(math, sqrt, [4]) =:= {ok, 2.0} end, 20000, "the new sidecar"),
    ?expect(0, py_semaphore:current()).

env_limit(_Config) ->
    py_ct:start([{num_contexts, 2}, {max_concurrent, 7}]),
    try
        ?expect(7, py_semaphore:max_concurrent()),
        ?expect({ok, 2.0}, py:call(math, sqrt, [4]))
    after
        py_ct:start([{num_contexts, 2}])
    end.

%% 10,000 callers at once, each calling for a second: each call is served
%% or refused with {overloaded, Cur, Max} (nobody hangs), a probe process
%% still gets served (the port is not starved), and memory comes back.
ten_thousand_callers(_Config) ->
    ok = py_semaphore:set_max_concurrent(64),
    erlang:garbage_collect(),
    Before = memory(),
    Parent = self(),
    Deadline = erlang:monotonic_time(millisecond) + 1000,
    Pids = [spawn(fun() -> Parent ! {done, self(), storm(Deadline, 0, 0, 0)} end)
            || _ <- lists:seq(1, 10000)],
    Probe = spawn(fun() -> Parent ! {probe, probe(Deadline + 1000, 0)} end),
    During = memory(),
    Results = [receive {done, P, R} -> R after 60000 -> ct:fail("a caller hung") end
               || P <- Pids],
    Served = receive {probe, N} -> N after 60000 -> ct:fail("the probe hung") end,
    _ = Probe,
    {Ok, Over, Other} = lists:foldl(fun({A, B, C}, {X, Y, Z}) -> {A + X, B + Y, C + Z} end,
                                    {0, 0, 0}, Results),
    erlang:garbage_collect(),
    py_ct:wait_until(fun() -> py_semaphore:current() =:= 0 end, 10000, "every slot back"),
    After = memory(),
    ct:log("ok ~b, overloaded ~b, other ~b; probe served ~b times~n"
           "memory (BEAM total, sidecar RSS) MB: before ~p, during ~p, after ~p",
           [Ok, Over, Other, Served, Before, During, After]),
    ?equal(0, Other),
    true = Ok > 0 andalso Over > 0 orelse ct:fail("no mix of served and refused calls"),
    true = Served > 0 orelse ct:fail("the probe was never served"),
    {B1, S1} = Before,
    {A1, S2} = After,
    true = A1 - B1 < 100 orelse ct:fail("BEAM memory grew ~b MB", [A1 - B1]),
    true = S2 - S1 < 100 orelse ct:fail("sidecar RSS grew ~b MB", [S2 - S1]).

storm(Deadline, Ok, Over, Other) ->
    case erlang:monotonic_time(millisecond) > Deadline of
        true -> {Ok, Over, Other};
        false ->
            case py:call(math, sqrt, [4.0]) of
                {ok, 2.0} -> storm(Deadline, Ok + 1, Over, Other);
                {error, {overloaded, C, 64}} when is_integer(C) ->
                    erlang:yield(),
                    storm(Deadline, Ok, Over + 1, Other);
                Unexpected ->
                    ct:log("unexpected: ~p", [Unexpected]),
                    storm(Deadline, Ok, Over, Other + 1)
            end
    end.

probe(Deadline, N) ->
    case erlang:monotonic_time(millisecond) > Deadline of
        true -> N;
        false ->
            case py:eval(<<"1">>) of
                {ok, 1} -> probe(Deadline, N + 1);
                {error, {overloaded, _, _}} -> timer:sleep(1), probe(Deadline, N)
            end
    end.

%% {BEAM total, sidecar VmRSS}, in MB.
memory() ->
    {os_pid, Pid} = erlang:port_info(py_sidecar:port(), os_pid),
    {ok, Status} = file:read_file("/proc/" ++ integer_to_list(Pid) ++ "/status"),
    [_, Rest] = binary:split(Status, <<"VmRSS:">>),
    [Kb | _] = string:lexemes(Rest, " \t\n"),
    {erlang:memory(total) div (1 bsl 20), binary_to_integer(Kb) div 1024}.

%% A context destroyed while a call is in flight gives back no permit: the
%% destroy_context request holds none, and its reply releases none.
destroyed_context_keeps_the_count(_Config) ->
    Slow = py:spawn_call(time, sleep, [1]),
    py_ct:wait_until(fun() -> py_semaphore:current() =:= 1 end, 5000, "the slow call in flight"),
    {ok, Ctx} = py_context:start_link(destroyed, auto),
    unlink(Ctx),
    ok = py_context:stop(Ctx),
    %% the destroy_context reply comes at once; the slow call still runs
    timer:sleep(200),
    ?expect(1, py_semaphore:current()),
    ?expect({ok, none}, py:await(Slow, 5000)),
    ?expect(0, py_semaphore:current()).
