#!/usr/bin/env escript
%% -*- erlang -*-
%% Proves the toolchain: the BEAM talks to the Go sidecar (`pyport --echo') over a
%% {packet, 4} port, terms survive the Go ETF codec, and the pipe is fast.
%%
%% Usage: escript demo/demo.escript [path/to/pyport]
%% (default: erlang/priv/pyport next to this script's parent directory)
-mode(compile).

-define(TIMEOUT, 10000).
-define(SMALL_N, 10000).
-define(BIG_N, 50).

main(Args) ->
    ok = io:setopts([{encoding, unicode}]),
    Exe = exe(Args),
    io:format("erlang_python demo: ~ts --echo (OTP ~s)~n~n",
              [Exe, erlang:system_info(otp_release)]),
    Port = open_port({spawn_executable, Exe},
                     [{packet, 4}, binary, exit_status, {args, ["--echo"]}]),
    MiB = rand:bytes(1 bsl 20),
    Cases = [{"map", #{name => <<"erlang_python">>, tags => [port, go, python], n => 1}},
             {"big integer 2^100", 1 bsl 100},
             {"unicode atom", 'λ_café_日本'},
             {"pid", self()},
             {"1 MiB binary", MiB}],
    io:format("round trips through the Go codec:~n"),
    Results = [roundtrip_case(Port, Name, Term) || {Name, Term} <- Cases],
    io:format("~n"),
    {Median, P99} = latency(Port, {req, 1, <<"small">>}, ?SMALL_N),
    Thru = throughput(Port, MiB, ?BIG_N),
    io:format("~-42s ~12s~n", ["measure", "value"]),
    io:format("~-42s ~12s~n", [lists:duplicate(42, $-), lists:duplicate(12, $-)]),
    io:format("~-42ts ~9.1f µs~n", [io_lib:format("small term round trip, median (n=~b)", [?SMALL_N]), Median]),
    io:format("~-42ts ~9.1f µs~n", [io_lib:format("small term round trip, p99 (n=~b)", [?SMALL_N]), P99]),
    io:format("~-42ts ~7.1f MiB/s~n", [io_lib:format("1 MiB binary round trip (n=~b)", [?BIG_N]), Thru]),
    port_close(Port),
    case lists:all(fun(R) -> R end, Results) of
        true ->
            io:format("~ndemo: ok~n");
        false ->
            io:format("~ndemo: FAIL~n"),
            halt(1)
    end.

exe([Path | _]) ->
    check_exe(filename:absname(Path));
exe([]) ->
    Here = filename:dirname(filename:absname(escript:script_name())),
    check_exe(filename:join([filename:dirname(Here), "erlang", "priv", "pyport"])).

check_exe(Path) ->
    case filelib:is_regular(Path) of
        true -> Path;
        false ->
            io:format(standard_error, "demo: ~ts not found (run `make build` first)~n", [Path]),
            halt(2)
    end.

roundtrip_case(Port, Name, Term) ->
    Ok = try roundtrip(Port, Term) =:= Term
         catch Class:Reason -> {Class, Reason}
         end,
    Status = case Ok of true -> "ok"; _ -> "FAIL" end,
    io:format("  ~-4s ~-18s ~ts~n", [Status, Name, show(Term)]),
    Ok =:= true.

show(Bin) when is_binary(Bin), byte_size(Bin) > 64 ->
    io_lib:format("<<~b bytes>>", [byte_size(Bin)]);
show(Term) ->
    io_lib:format("~tp", [Term]).

roundtrip(Port, Term) ->
    true = port_command(Port, term_to_binary(Term)),
    receive
        {Port, {data, Reply}} -> binary_to_term(Reply);
        {Port, {exit_status, Status}} -> error({port_exited, Status})
    after ?TIMEOUT ->
        error(timeout)
    end.

%% Median and 99th percentile of N sequential round trips, in µs (after warm-up).
latency(Port, Term, N) ->
    _ = [roundtrip(Port, Term) || _ <- lists:seq(1, 1000)],
    Times = lists:sort([timed(Port, Term) || _ <- lists:seq(1, N)]),
    {percentile(Times, 0.50), percentile(Times, 0.99)}.

%% Round trips of a 1 MiB binary: MiB/s from the median time.
throughput(Port, Bin, N) ->
    _ = [roundtrip(Port, Bin) || _ <- lists:seq(1, 5)],
    Times = lists:sort([timed(Port, Bin) || _ <- lists:seq(1, N)]),
    (byte_size(Bin) / (1 bsl 20)) / (percentile(Times, 0.50) / 1.0e6).

timed(Port, Term) ->
    T0 = erlang:monotonic_time(nanosecond),
    Term = roundtrip(Port, Term),
    (erlang:monotonic_time(nanosecond) - T0) / 1000.

percentile(Sorted, P) ->
    lists:nth(max(1, min(length(Sorted), round(P * length(Sorted)))), Sorted).
