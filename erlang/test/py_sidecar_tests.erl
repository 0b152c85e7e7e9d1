%% What a caller in flight learns of a dead sidecar (py_sidecar:crash_info/2).
-module(py_sidecar_tests).

-include_lib("eunit/include/eunit.hrl").

exit_status_test() ->
    ?assertEqual(#{status => 3}, py_sidecar:crash_info(3, undefined)).

segfault_or_abort_test() ->
    ?assertEqual(#{status => 2}, py_sidecar:crash_info(2, undefined)).

signal_test() ->
    ?assertEqual(#{status => 137, signal => 9}, py_sidecar:crash_info(137, undefined)).

exactly_128_is_no_signal_test() ->
    ?assertEqual(#{status => 128}, py_sidecar:crash_info(128, undefined)).

reason_test() ->
    ?assertEqual(#{status => 70, reason => {stuck, 3, 500}},
                 py_sidecar:crash_info(70, {stuck, 3, 500})).

signal_and_reason_test() ->
    ?assertEqual(#{status => 143, signal => 15, reason => stop},
                 py_sidecar:crash_info(143, stop)).

%% A write that fails (epipe) after the stuck watchdog's '$exit' and before
%% the exit status is that exit; without an announcement, the port's reason.
port_exit_after_announcement_test() ->
    ?assertEqual(#{status => 70, reason => {stuck, 3, 500}},
                 py_sidecar:port_exit_info(epipe, {stuck, 3, 500})).

port_exit_unannounced_test() ->
    ?assertEqual(#{reason => epipe}, py_sidecar:port_exit_info(epipe, undefined)).
