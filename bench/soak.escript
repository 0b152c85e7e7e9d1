#!/usr/bin/env escript
%% -*- erlang -*-
%% Soak (issue #5), `make soak':
%%
%%   metric                     what                                            goal
%%   rss_growth_beam_mb         BEAM RSS after - before 1M calls                < 20 MB
%%   rss_growth_sidecar_mb      pyport RSS after - before 1M calls              < 20 MB
%%   restart_ms (median, max)   SIGKILL of pyport -> first call served again    < 300 ms
%%
%% The calls are a mix, from 16 processes at once: py:call, py:eval with
%% locals, a Python exception, a 10 KB binary there and back, the shared
%% state from Erlang and from Python, a callback into Erlang. Before and
%% after are measured after a warm-up of 50k calls and a garbage collection
%% on both sides.
%%
%% Restart time is measured over RESTARTS kills (default 10, env
%% SOAK_RESTARTS) with restart_window_ms = 0, so that no kill counts as a
%% crash loop (which would add a backoff: see py_lifecycle).
%%
%% Usage: escript bench/soak.escript [path/to/pyport] (default: erlang/priv/pyport)
-mode(compile).

-define(CALLERS, 16).
-define(WARMUP, 50000).

main(Args) ->
    Exe = case Args of [E | _] -> E; [] -> filename:join([root(), "erlang", "priv", "pyport"]) end,
    N = list_to_integer(os:getenv("SOAK_CALLS", "1000000")),
    Restarts = list_to_integer(os:getenv("SOAK_RESTARTS", "10")),
    logger:set_primary_config(level, critical),
    start_app(Exe),
    {ok, Version} = py:version(),
    io:format("# OTP ~s, ~b schedulers; Python ~ts, mode ~p, ~b contexts; ~b calls from ~b processes~n",
              [erlang:system_info(otp_release), erlang:system_info(schedulers),
               hd(binary:split(Version, <<" ">>)), py:execution_mode(),
               py_context_router:num_contexts(), N, ?CALLERS]),
    ok = py:register_function(soak_double, fun([X]) -> 2 * X end),
    run(?WARMUP),
    Before = rss(),
    T0 = erlang:monotonic_time(millisecond),
    run(N),
    Secs = (erlang:monotonic_time(millisecond) - T0) / 1000,
    After = rss(),
    {B0, S0} = Before,
    {B1, S1} = After,
    io:format("~-26s ~12s ~12s ~12s   ~s~n", ["metric", "before", "after", "growth", "goal"]),
    io:format("~-26s ~12.1f ~12.1f ~12.1f   < 20 MB~n", ["rss_beam_mb", B0, B1, B1 - B0]),
    io:format("~-26s ~12.1f ~12.1f ~12.1f   < 20 MB~n", ["rss_sidecar_mb", S0, S1, S1 - S0]),
    io:format("~-26s ~12.1f~n", ["calls_per_s", N / Secs]),
    Times = restarts(Restarts),
    Sorted = lists:sort(Times),
    io:format("~-26s ~12.1f ~12.1f ~12s   < 300 ms (median, max over ~b kills)~n",
              ["restart_ms", lists:nth((length(Sorted) + 1) div 2, Sorted), lists:last(Sorted), "",
               length(Sorted)]),
    io:format("# restart times, ms: ~w~n", [[round(T) || T <- Times]]),
    halt(0).

root() ->
    filename:dirname(filename:dirname(filename:absname(escript:script_name()))).

start_app(Exe) ->
    Ebins = filelib:wildcard(filename:join([root(), "erlang", "_build", "default", "lib", "*", "ebin"])),
    ok = code:add_pathsa(Ebins),
    ok = application:load(erlang_python),
    [ok = application:set_env(erlang_python, K, V)
     || {K, V} <- [{num_contexts, 2}, {max_concurrent, 1000}, {python, Exe},
                   {max_restarts, 1000}, {restart_window_ms, 0}]],
    case application:ensure_all_started(erlang_python) of
        {ok, _} -> ok;
        {error, Reason} ->
            io:format(standard_error, "soak: erlang_python did not start: ~p~n", [Reason]),
            halt(1)
    end.

%% N calls from ?CALLERS processes; any unexpected result stops the soak.
run(N) ->
    Parent = self(),
    Per = N div ?CALLERS,
    Pids = [spawn_link(fun() -> caller(W, Per), Parent ! {done, self()} end)
            || W <- lists:seq(1, ?CALLERS)],
    [receive {done, P} -> ok end || P <- Pids],
    ok.

caller(_W, 0) ->
    ok;
caller(W, I) ->
    check(I rem 8, W, I),
    caller(W, I - 1).

check(0, _W, _I) ->
    {ok, 3} = py:call(operator, add, [1, 2]);
check(1, _W, I) ->
    {ok, _} = py:eval(<<"len(d) + x">>, #{d => #{a => [1, 2, 3], b => <<"text">>}, x => I});
check(2, _W, _I) ->
    {error, {'ZeroDivisionError', _}} = py:eval(<<"1 / 0">>);
check(3, _W, I) ->
    Bin = binary:copy(<<(I rem 256)>>, 10000),
    {ok, Bin} = py:eval(<<"x">>, #{x => Bin});
check(4, W, I) ->
    ok = py:state_store(key(W, I), I);
check(5, W, I) ->
    {ok, none} = py:eval(<<"__import__('erlang').state_set(k, v)">>, #{k => key(W, I), v => I});
check(6, W, I) ->
    %% a bounded key space: the store must not grow without end
    case py:state_fetch(key(W, I + 6)) of
        {ok, _} -> ok;
        {error, not_found} -> ok  % the first few
    end;
check(7, _W, I) ->
    {ok, R} = py:eval(<<"__import__('erlang').soak_double(x)">>, #{x => I}),
    R = 2 * I.

key(W, I) ->
    <<"soak-", (integer_to_binary(W))/binary, "-", (integer_to_binary(I rem 1000))/binary>>.

%% {BEAM RSS, sidecar RSS} in MB, after a garbage collection on both sides.
rss() ->
    [erlang:garbage_collect(P) || P <- processes()],
    {ok, _} = py:eval(<<"__import__('gc').collect()">>),
    [{ok, _} = py:eval(Ctx, <<"__import__('gc').collect()">>, #{}) || Ctx <- py_context_router:contexts()],
    timer:sleep(500),
    {os_pid, Sidecar} = erlang:port_info(py_sidecar:port(), os_pid),
    {vm_rss(os:getpid()), vm_rss(integer_to_list(Sidecar))}.

vm_rss(Pid) ->
    {ok, Status} = file:read_file("/proc/" ++ Pid ++ "/status"),
    [_, Rest] = binary:split(Status, <<"VmRSS:">>),
    [Kb | _] = string:lexemes(Rest, " \t\n"),
    binary_to_integer(Kb) / 1024.

%% Milliseconds from a SIGKILL of pyport to the first call served again.
restarts(0) ->
    [];
restarts(K) ->
    timer:sleep(300),
    {os_pid, Pid} = erlang:port_info(py_sidecar:port(), os_pid),
    T0 = erlang:monotonic_time(microsecond),
    _ = os:cmd("kill -KILL " ++ integer_to_list(Pid)),
    served(),
    T = (erlang:monotonic_time(microsecond) - T0) / 1000,
    [T | restarts(K - 1)].

served() ->
    case py:eval(<<"1">>) of
        {ok, 1} -> ok;
        _ -> served()
    end.
