#!/usr/bin/env escript
%% -*- erlang -*-
%% Port benchmarks against `pyport --echo', one line per metric:
%%   - sequential small-term round trip (median µs);
%%   - throughput with 1, 8 and 64 concurrent callers, each calling
%%     erlang:port_command/2 itself while the port owner only routes replies by the
%%     id inside the term (calls/s);
%%   - 1 MiB binary round trip (MiB/s from the median of 50).
%%
%% Usage: escript bench/bench.escript [path/to/pyport] (default: erlang/priv/pyport)
-mode(compile).

-define(TIMEOUT, 10000).
-define(SEQ_WARMUP, 2000).
-define(SEQ_N, 20000).
-define(CONC_SECONDS, 3).
-define(BIG_WARMUP, 5).
-define(BIG_N, 50).

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
    seq_latency(Port, Small),
    port_close(Port),
    lists:foreach(fun(N) -> concurrent(Exe, N, Small) end, [1, 8, 64]),
    Port2 = open(Exe),
    big_binary(Port2),
    port_close(Port2),
    ok.

exe([Path | _]) ->
    filename:absname(Path);
exe([]) ->
    Here = filename:dirname(filename:absname(escript:script_name())),
    filename:join([filename:dirname(Here), "erlang", "priv", "pyport"]).

open(Exe) ->
    open_port({spawn_executable, Exe}, [{packet, 4}, binary, exit_status, {args, ["--echo"]}]).

%%--------------------------------------------------------------------

seq_latency(Port, Term) ->
    _ = [roundtrip(Port, Term) || _ <- lists:seq(1, ?SEQ_WARMUP)],
    Times = lists:sort([timed(fun() -> roundtrip(Port, Term) end) || _ <- lists:seq(1, ?SEQ_N)]),
    io:format("seq_roundtrip_small_median_us ~.1f (p99 ~.1f, n=~b)~n",
              [median(Times), percentile(Times, 0.99), ?SEQ_N]).

big_binary(Port) ->
    Bin = rand:bytes(1 bsl 20),
    _ = [roundtrip(Port, Bin) || _ <- lists:seq(1, ?BIG_WARMUP)],
    Times = lists:sort([timed(fun() -> roundtrip(Port, Bin) end) || _ <- lists:seq(1, ?BIG_N)]),
    io:format("roundtrip_1mib_mib_per_s ~.1f (median ~b µs, n=~b)~n",
              [1.0e6 / median(Times), round(median(Times)), ?BIG_N]).

roundtrip(Port, Term) ->
    true = port_command(Port, term_to_binary(Term)),
    receive
        {Port, {data, Reply}} -> binary_to_term(Reply);
        {Port, {exit_status, Status}} -> error({port_exited, Status})
    after ?TIMEOUT ->
        error(timeout)
    end.

%%--------------------------------------------------------------------
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
              [N, round(Calls / Secs), Calls, Secs]).

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

timed(Fun) ->
    T0 = erlang:monotonic_time(nanosecond),
    _ = Fun(),
    (erlang:monotonic_time(nanosecond) - T0) / 1000.

median(Sorted) ->
    percentile(Sorted, 0.5).

percentile(Sorted, P) ->
    lists:nth(max(1, min(length(Sorted), round(P * length(Sorted)))), Sorted).
