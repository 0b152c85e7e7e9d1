%% The restart backoff, without a sidecar (py_lifecycle:delay/2).
-module(py_lifecycle_tests).

-include_lib("eunit/include/eunit.hrl").

-define(CFG(Now), #{now => Now, window_ms => 30000, backoff_ms => 50, backoff_max_ms => 2000}).

no_crash_test() ->
    ?assertEqual({0, []}, py_lifecycle:delay([], ?CFG(1000))).

first_crash_is_at_once_test() ->
    ?assertEqual({0, [900]}, py_lifecycle:delay([900], ?CFG(1000))).

doubling_test() ->
    Delays = [element(1, py_lifecycle:delay(lists:seq(N, 1, -1), ?CFG(100)))
              || N <- lists:seq(1, 8)],
    ?assertEqual([0, 50, 100, 200, 400, 800, 1600, 2000], Delays).

capped_test() ->
    Crashes = lists:seq(1000, 1, -1),
    ?assertMatch({2000, _}, py_lifecycle:delay(Crashes, ?CFG(1000))).

window_forgets_old_crashes_test() ->
    %% crashes more than window_ms ago no longer count, and are dropped
    Now = 100000,
    Crashes = [Now - 10, Now - 20, Now - 40000, Now - 50000],
    ?assertEqual({50, [Now - 10, Now - 20]}, py_lifecycle:delay(Crashes, ?CFG(Now))).

window_edge_test() ->
    %% a crash exactly window_ms ago still counts
    ?assertEqual({50, [0, -30000]}, py_lifecycle:delay([0, -30000], ?CFG(0))).

zero_backoff_test() ->
    Cfg = #{now => 10, window_ms => 30000, backoff_ms => 0, backoff_max_ms => 2000},
    ?assertEqual({0, [3, 2, 1]}, py_lifecycle:delay([3, 2, 1], Cfg)).

huge_count_does_not_overflow_test() ->
    Cfg = #{now => 0, window_ms => 1 bsl 40, backoff_ms => 1 bsl 30, backoff_max_ms => 5000},
    ?assertMatch({5000, _}, py_lifecycle:delay(lists:seq(0, -100, -1), Cfg)).
