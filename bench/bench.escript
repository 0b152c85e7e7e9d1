#!/usr/bin/env escript
%% -*- erlang -*-
%% Benchmarks, one line per metric. First the floor, a bare `pyport --echo' port
%% (no Python), then the erlang_python application, measured in the same run:
%%
%%   echo floor                       erlang_python                     goal
%%   seq_roundtrip_small_median_us    call_latency_median_us            <= 1.3x echo
%%                                    eval_latency_median_us
%%   throughput_N_callers_calls_per_s py_throughput_N_callers_calls_per_s  64: >= 60% echo
%%                                    cpu_speedup_2_contexts            >= 1.8x
%%   roundtrip_1mib_mib_per_s         py_roundtrip_1mib_mib_per_s       >= 1.5 GiB/s
%%
%% Echo throughput: N callers each call erlang:port_command/2 themselves while
%% the port owner only routes replies by the id inside the term, which is how
%% the application works too.
%%
%% Usage: escript bench/bench.escript [path/to/pyport] (default: erlang/priv/pyport)
%% The application is loaded from erlang/_build/default/lib/*/ebin (`make build').
-mode(compile).

-define(TIMEOUT, 10000).
-define(SEQ_WARMUP, 2000).
-define(SEQ_N, 20000).
-define(CONC_SECONDS, 3).
-define(BIG_WARMUP, 5).
-define(BIG_N, 50).
-define(CPU_LOOP, 5000000).   % iterations of a pure-Python loop, ~0.3 s

main(Args) ->
    ok = io:setopts([{encoding, unicode}]),
    Exe = exe(Args),
    case filelib:is_regular(Exe) of
        true -> ok;
        false ->
            io:format(standard_error, "bench: ~ts not found (run `make build` first)~n", [Exe]),
            halt(2)
    end,
    io:format("# pyport --echo: ~ts (OTP ~s, ~b schedulers)~n",
              [Exe, erlang:system_info(otp_release), erlang:system_info(schedulers)]),
    Port = open(Exe),
    Small = {req, 1, <<"small payload">>},
    EchoLat = seq_latency(Port, Small),
    port_close(Port),
    EchoThru = maps:from_list([{N, concurrent(Exe, N, Small)} || N <- [1, 8, 64]]),
    Port2 = open(Exe),
    EchoBig = big_binary(Port2),
    port_close(Port2),
    python(EchoLat, EchoThru, EchoBig).

exe([Path | _]) ->
    filename:absname(Path);
exe([]) ->
    filename:join([root(), "erlang", "priv", "pyport"]).

root() ->
    filename:dirname(filename:dirname(filename:absname(escript:script_name()))).

open(Exe) ->
    open_port({spawn_executable, Exe}, [{packet, 4}, binary, exit_status, {args, ["--echo"]}]).

%%--------------------------------------------------------------------
%% The floor: pyport --echo

seq_latency(Port, Term) ->
    _ = [roundtrip(Port, Term) || _ <- lists:seq(1, ?SEQ_WARMUP)],
    Times = lists:sort([timed(fun() -> roundtrip(Port, Term) end) || _ <- lists:seq(1, ?SEQ_N)]),
    io:format("seq_roundtrip_small_median_us ~.1f (p99 ~.1f, n=~b)~n",
              [median(Times), percentile(Times, 0.99), ?SEQ_N]),
    median(Times).

big_binary(Port) ->
    Bin = rand:bytes(1 bsl 20),
    _ = [roundtrip(Port, Bin) || _ <- lists:seq(1, ?BIG_WARMUP)],
    Times = lists:sort([timed(fun() -> roundtrip(Port, Bin) end) || _ <- lists:seq(1, ?BIG_N)]),
    io:format("roundtrip_1mib_mib_per_s ~.1f (median ~b µs, n=~b)~n",
              [1.0e6 / median(Times), round(median(Times)), ?BIG_N]),
    1.0e6 / median(Times).

roundtrip(Port, Term) ->
    true = port_command(Port, term_to_binary(Term)),
    receive
        {Port, {data, Reply}} -> binary_to_term(Reply);
        {Port, {exit_status, Status}} -> error({port_exited, Status})
    after ?TIMEOUT ->
        error(timeout)
    end.

%% N callers, each calling port_command/2 itself with {Id, Payload}; this process
%% (the port owner) looks the Id up in an ETS table and forwards the reply.
concurrent(Exe, N, Payload) ->
    Port = open(Exe),
    Tab = ets:new(calls, [public, set, {read_concurrency, true}, {write_concurrency, true}]),
    Owner = self(),
    %% warm-up, then the timed run
    run_callers(Port, Tab, Owner, N, Payload, 300),
    T0 = erlang:monotonic_time(microsecond),
    Calls = run_callers(Port, Tab, Owner, N, Payload, ?CONC_SECONDS * 1000),
    Secs = (erlang:monotonic_time(microsecond) - T0) / 1.0e6,
    port_close(Port),
    ets:delete(Tab),
    io:format("throughput_~b_callers_calls_per_s ~b (~b calls in ~.2f s)~n",
              [N, round(Calls / Secs), Calls, Secs]),
    Calls / Secs.

run_callers(Port, Tab, Owner, N, Payload, Millis) ->
    Deadline = erlang:monotonic_time(millisecond) + Millis,
    _ = [spawn_link(fun() -> caller(Port, Tab, Owner, Payload, Deadline, 0) end)
         || _ <- lists:seq(1, N)],
    route(Port, Tab, N, 0).

caller(Port, Tab, Owner, Payload, Deadline, Count) ->
    case erlang:monotonic_time(millisecond) < Deadline of
        false ->
            Owner ! {done, Count};
        true ->
            Id = make_ref(),
            true = ets:insert(Tab, {Id, self()}),
            true = erlang:port_command(Port, term_to_binary({Id, Payload})),
            receive
                {reply, Id, {Id, Payload}} -> ok
            after ?TIMEOUT ->
                error(timeout)
            end,
            caller(Port, Tab, Owner, Payload, Deadline, Count + 1)
    end.

route(_Port, _Tab, 0, Calls) ->
    Calls;
route(Port, Tab, Running, Calls) ->
    receive
        {Port, {data, Data}} ->
            {Id, _} = Reply = binary_to_term(Data),
            [{Id, Caller}] = ets:take(Tab, Id),
            Caller ! {reply, Id, Reply},
            route(Port, Tab, Running, Calls);
        {Port, {exit_status, Status}} ->
            error({port_exited, Status});
        {done, Count} ->
            route(Port, Tab, Running - 1, Calls + Count)
    after ?TIMEOUT ->
        error(timeout)
    end.

%%--------------------------------------------------------------------
%% erlang_python

python(EchoLat, EchoThru, EchoBig) ->
    start_app(),
    {ok, Version} = py:version(),
    io:format("# erlang_python: Python ~ts, mode ~p, ~b contexts~n",
              [hd(binary:split(Version, <<" ">>)), py:execution_mode(),
               py_context_router:num_contexts()]),
    CallLat = py_latency(fun() -> {ok, 3} = py:call(operator, add, [1, 2]) end),
    io:format("call_latency_median_us ~.1f (operator.add; ~.2fx echo, goal <= 1.3x)~n",
              [CallLat, CallLat / EchoLat]),
    EvalLat = py_latency(fun() -> {ok, 3} = py:eval(<<"1 + 2">>) end),
    io:format("eval_latency_median_us ~.1f (\"1 + 2\"; ~.2fx echo)~n", [EvalLat, EvalLat / EchoLat]),
    lists:foreach(
      fun(N) ->
              Rate = py_concurrent(N),
              Echo = maps:get(N, EchoThru),
              Goal = case N of 64 -> ", goal >= 60%"; _ -> "" end,
              io:format("py_throughput_~b_callers_calls_per_s ~b (~.1f% of echo~s)~n",
                        [N, round(Rate), 100 * Rate / Echo, Goal])
      end, [1, 8, 64]),
    cpu_speedup(),
    Big = py_big_binary(),
    io:format("py_roundtrip_1mib_mib_per_s ~.1f (~.2f GiB/s, goal >= 1.5; echo ~.1f MiB/s)~n",
              [Big, Big / 1024, EchoBig]),
    application:stop(erlang_python).

start_app() ->
    Ebins = filelib:wildcard(filename:join([root(), "erlang", "_build", "default", "lib", "*", "ebin"])),
    ok = code:add_pathsa(Ebins),
    ok = application:load(erlang_python),
    ok = application:set_env(erlang_python, num_contexts, max(2, erlang:system_info(schedulers))),
    ok = application:set_env(erlang_python, max_concurrent, 1000),
    case application:ensure_all_started(erlang_python) of
        {ok, _} -> ok;
        {error, Reason} ->
            io:format(standard_error, "bench: erlang_python did not start: ~p~n", [Reason]),
            halt(1)
    end.

py_latency(Fun) ->
    _ = [Fun() || _ <- lists:seq(1, ?SEQ_WARMUP)],
    median(lists:sort([timed(Fun) || _ <- lists:seq(1, ?SEQ_N)])).

py_concurrent(N) ->
    py_callers(N, 300),
    T0 = erlang:monotonic_time(microsecond),
    Calls = py_callers(N, ?CONC_SECONDS * 1000),
    Calls / ((erlang:monotonic_time(microsecond) - T0) / 1.0e6).

py_callers(N, Millis) ->
    Deadline = erlang:monotonic_time(millisecond) + Millis,
    Self = self(),
    Pids = [spawn_link(fun() -> Self ! {done, self(), py_caller(Deadline, 0)} end)
            || _ <- lists:seq(1, N)],
    lists:sum([receive {done, P, C} -> C after 60000 -> error(timeout) end || P <- Pids]).

py_caller(Deadline, Count) ->
    case erlang:monotonic_time(millisecond) < Deadline of
        false -> Count;
        true ->
            {ok, 3} = py:call(operator, add, [1, 2]),
            py_caller(Deadline, Count + 1)
    end.

%% The same two CPU-bound calls on one context, then spread over two.
cpu_speedup() ->
    C1 = py:context(1),
    C2 = py:context(2),
    Def = <<"def burn(n):\n    s = 0\n    for i in range(n):\n        s += i * i\n    return s\n">>,
    ok = py:exec(C1, Def),
    ok = py:exec(C2, Def),
    Item = {'__main__', burn, [?CPU_LOOP]},
    {ok, _} = py:call(C1, '__main__', burn, [?CPU_LOOP div 10]),
    Best = fun(F) -> lists:min([timed(F) || _ <- lists:seq(1, 3)]) end,
    One = Best(fun() ->
                       {ok, _} = py:call(C1, '__main__', burn, [?CPU_LOOP]),
                       {ok, _} = py:call(C1, '__main__', burn, [?CPU_LOOP])
               end),
    Two = Best(fun() ->
                       {ok, [{ok, _}, {ok, _}]} = py:parallel([Item, Item])
               end),
    io:format("cpu_speedup_2_contexts ~.2f (2 loops: ~b ms on 1 context, ~b ms on 2; goal >= 1.8x)~n",
              [One / Two, round(One / 1000), round(Two / 1000)]).

py_big_binary() ->
    Ctx = py:context(1),
    ok = py:exec(Ctx, <<"def ident(x):\n    return x\n">>),
    Bin = rand:bytes(1 bsl 20),
    Fun = fun() -> {ok, Bin} = py:call(Ctx, '__main__', ident, [{bytes, Bin}]) end,
    _ = [Fun() || _ <- lists:seq(1, ?BIG_WARMUP)],
    1.0e6 / median(lists:sort([timed(Fun) || _ <- lists:seq(1, ?BIG_N)])).

%%--------------------------------------------------------------------

timed(Fun) ->
    T0 = erlang:monotonic_time(nanosecond),
    _ = Fun(),
    (erlang:monotonic_time(nanosecond) - T0) / 1000.

median(Sorted) ->
    percentile(Sorted, 0.5).

percentile(Sorted, P) ->
    lists:nth(max(1, min(length(Sorted), round(P * length(Sorted)))), Sorted).
