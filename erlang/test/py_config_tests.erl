-module(py_config_tests).

-include_lib("eunit/include/eunit.hrl").

-define(APP, erlang_python).

%% Each test starts from an environment with no key set, and leaves it so.
config_test_() ->
    {foreach,
     fun() ->
             _ = application:load(?APP),
             Saved = [{K, V} || K <- py_config:keys(), {ok, V} <- [application:get_env(?APP, K)]],
             unset_all(),
             Saved
     end,
     fun(Saved) ->
             unset_all(),
             [ok = application:set_env(?APP, K, V) || {K, V} <- Saved]
     end,
     [fun defaults/0,
      fun getters_read_the_environment/0,
      fun num_executors_unset_without_a_sidecar/0,
      fun validate_accepts_defaults_and_good_values/0,
      fun validate_refuses_bad_values/0,
      fun validate_reports_the_first_bad_key/0,
      fun port_args_defaults/0,
      fun port_args_set/0,
      fun app_file_repeats_no_default/0]}.

unset_all() ->
    [application:unset_env(?APP, K) || K <- py_config:keys()].

set(Key, Value) ->
    ok = application:set_env(?APP, Key, Value).

defaults() ->
    S = erlang:system_info(schedulers),
    Expected = [{num_contexts, {ok, S}}, {max_concurrent, {ok, S * 2 + 1}},
                {max_waiting, {ok, 1000}},
                {num_executors, unset}, {python_path, {ok, []}}, {call_timeout, {ok, 30000}},
                {python, unset}, {sandbox, {ok, default}}, {max_restarts, {ok, 10}},
                {max_restart_period_s, {ok, 60}}, {restart_backoff_ms, {ok, 50}},
                {restart_backoff_max_ms, {ok, 2000}}, {restart_window_ms, {ok, 30000}},
                {max_memory_mb, {ok, 0}}, {stuck_grace_ms, {ok, 2000}},
                {max_atoms, {ok, 10000}}, {send_pace, {ok, 16000}},
                {none_as, {ok, none}}, {stream_max_inflight, {ok, 1000}}],
    ?assertEqual([K || {K, _} <- Expected], py_config:keys()),
    [?assertEqual({K, D}, {K, py_config:default(K)}) || {K, D} <- Expected],
    ?assertError(badarg, py_config:default(no_such_key)),
    %% the getters give the defaults
    ?assertEqual(S, py_config:num_contexts()),
    ?assertEqual(S * 2 + 1, py_config:max_concurrent()),
    ?assertEqual([], py_config:python_path()),
    ?assertEqual(30000, py_config:call_timeout()),
    ?assertEqual(default, py_config:sandbox()),
    ?assertEqual(10, py_config:max_restarts()),
    ?assertEqual(60, py_config:max_restart_period_s()),
    ?assertEqual(50, py_config:restart_backoff_ms()),
    ?assertEqual(2000, py_config:restart_backoff_max_ms()),
    ?assertEqual(30000, py_config:restart_window_ms()),
    ?assertEqual(0, py_config:max_memory_mb()),
    ?assertEqual(2000, py_config:stuck_grace_ms()).

getters_read_the_environment() ->
    Values = [{num_contexts, 3, fun py_config:num_contexts/0},
              {max_concurrent, 7, fun py_config:max_concurrent/0},
              {max_waiting, 0, fun() -> py_config:get(default, max_waiting) end},
              {num_executors, 2, fun py_config:num_executors/0},
              {python_path, ["/a", <<"/b">>], fun py_config:python_path/0},
              {call_timeout, infinity, fun py_config:call_timeout/0},
              {sandbox, strict, fun py_config:sandbox/0},
              {max_restarts, 0, fun py_config:max_restarts/0},
              {max_restart_period_s, 5, fun py_config:max_restart_period_s/0},
              {restart_backoff_ms, 1, fun py_config:restart_backoff_ms/0},
              {restart_backoff_max_ms, 9, fun py_config:restart_backoff_max_ms/0},
              {restart_window_ms, 11, fun py_config:restart_window_ms/0},
              {max_memory_mb, 4096, fun py_config:max_memory_mb/0},
              {stuck_grace_ms, 0, fun py_config:stuck_grace_ms/0},
              {stream_max_inflight, 5, fun py_config:stream_max_inflight/0}],
    [begin set(K, V), ?assertEqual({K, V}, {K, Get()}) end || {K, V, Get} <- Values].

%% Unset, the number is the running sidecar's; none runs here.
num_executors_unset_without_a_sidecar() ->
    ?assertEqual(undefined, py_config:num_executors()).

validate_accepts_defaults_and_good_values() ->
    ?assertEqual(ok, py_config:validate()),
    Good = [{num_contexts, [1, 64]}, {max_concurrent, [1]}, {num_executors, [1, 16]},
            {max_waiting, [0, 1000000]},
            {python_path, [[], ["/a"], [<<"/a">>, "/b"], ["caf" ++ [233]]]},
            {call_timeout, [0, 5000, infinity]}, {python, ["/x/pyport", <<"/x/pyport">>]},
            {sandbox, [default, strict, off]}, {max_restarts, [0, 10]},
            {max_restart_period_s, [1]}, {restart_backoff_ms, [0, 50]},
            {restart_backoff_max_ms, [0]}, {restart_window_ms, [0]},
            {max_memory_mb, [0, 3072]}, {stuck_grace_ms, [0, 500]},
            {max_atoms, [0, 500]}, {send_pace, [0, 1, 1000000]},
            {none_as, [none, nil]}, {stream_max_inflight, [1, 100000]}],
    ?assertEqual(lists:sort(py_config:keys()), lists:sort([K || {K, _} <- Good])),
    [begin
         ?assert(py_config:valid(K, V)),
         set(K, V),
         ?assertEqual({K, V, ok}, {K, V, py_config:validate()}),
         application:unset_env(?APP, K)
     end || {K, Vs} <- Good, V <- Vs].

validate_refuses_bad_values() ->
    Bad = [{num_contexts, [0, -1, 1.5, x]}, {max_concurrent, [0, "1"]},
           {max_waiting, [-1, infinity]},
           {num_executors, [0, x]},
           {python_path, ["not/a/list/of/dirs", <<"/a">>, [1 bsl 40], [x], x]},
           {call_timeout, [-1, soon, 1.0]}, {python, [x, 42, [x]]},
           {sandbox, [maybe, "default"]}, {max_restarts, [-1, ten]},
           {max_restart_period_s, [0]}, {restart_backoff_ms, [-1]},
           {restart_backoff_max_ms, [-5]}, {restart_window_ms, [x]},
           {max_memory_mb, [-1, "1024"]}, {stuck_grace_ms, [-1, infinity]},
           {max_atoms, [-1, "10"]}, {send_pace, [-1, 1.5, fast]},
           {none_as, [undefined, "nil", <<"nil">>]}, {stream_max_inflight, [0, -1, infinity]}],
    ?assertEqual(lists:sort(py_config:keys()), lists:sort([K || {K, _} <- Bad])),
    [begin
         ?assertNot(py_config:valid(K, V)),
         set(K, V),
         ?assertEqual({error, {bad_config, K, V}}, py_config:validate()),
         application:unset_env(?APP, K)
     end || {K, Vs} <- Bad, V <- Vs],
    ?assertError(badarg, py_config:valid(no_such_key, 1)).

validate_reports_the_first_bad_key() ->
    set(stuck_grace_ms, -1),
    set(num_contexts, 0),
    ?assertEqual({error, {bad_config, num_contexts, 0}}, py_config:validate()).

port_args_defaults() ->
    %% num_executors unset: the sidecar's own default, no flag
    ?assertEqual(["--max-memory-mb", "0", "--stuck-grace-ms", "2000", "--max-atoms", "10000",
                  "--send-pace", "16000", "--none-as", "none"],
                 py_config:port_args()).

port_args_set() ->
    set(num_executors, 3),
    set(python_path, ["/a", <<"/b">>, "caf" ++ [233]]),
    set(max_memory_mb, 2048),
    set(stuck_grace_ms, 500),
    set(call_timeout, 100), % no flag
    set(send_pace, 0),
    set(none_as, nil),
    ?assertEqual(["--num-executors", "3",
                  "--python-path", "/a", "--python-path", "/b", "--python-path", "caf" ++ [233],
                  "--max-memory-mb", "2048", "--stuck-grace-ms", "500", "--max-atoms", "10000",
                  "--send-pace", "0", "--none-as", "nil"],
                 py_config:port_args()).

%% The defaults live in py_config's table only.
app_file_repeats_no_default() ->
    {ok, Env} = application:get_all_key(?APP),
    ?assertEqual([], proplists:get_value(env, Env)).
