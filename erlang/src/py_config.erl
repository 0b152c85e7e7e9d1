%% @doc Application environment of erlang_python (API.md section 1).
%%
%% | key              | default                  | meaning                                   |
%% |------------------|--------------------------|-------------------------------------------|
%% | `num_contexts'   | `schedulers'             | contexts in the default pool              |
%% | `max_concurrent' | `schedulers * 2 + 1'     | semaphore limit for all calls             |
%% | `num_executors'  | `4'                      | executor threads in `multi_executor' mode |
%% | `python_path'    | `[]'                     | directories prepended to `sys.path'       |
%% | `call_timeout'   | `30000'                  | default timeout (ms) of a synchronous call|
%% | `python'         | `priv/pyport'            | path of the sidecar to run: a `pyport'    |
%% |                  |                          | built for another Python (see             |
%% |                  |                          | `py_port_exe:path/0')                     |
%% | `sandbox'        | `default'                | accepted and checked, enforced later      |
%% | `max_restarts'   | `10'                     | sidecar crashes tolerated in              |
%% | `max_restart_period_s' | `60'               | ... this many seconds; one more stops the |
%% |                  |                          | application (the supervisor's intensity)  |
%% | `restart_backoff_ms' | `50'                 | wait before the 2nd restart in the window |
%% |                  |                          | (the 1st is at once), doubling each time  |
%% | `restart_backoff_max_ms' | `2000'           | ... up to this                            |
%% | `restart_window_ms' | `30000'               | crashes further apart start afresh        |
%% | `max_memory_mb'  | `0' (none)               | address-space cap of the sidecar          |
%% |                  |                          | (RLIMIT_AS): an allocation past it fails  |
%% | `stuck_grace_ms' | `2000'                   | a timed-out call still in C code this long|
%% |                  |                          | after its cancel restarts the sidecar     |
%% |                  |                          | (0: never)                                |
%%
%% {@link validate/0} runs when the application starts: a bad value stops the
%% start with `{bad_config, Key, Value}'.
-module(py_config).

-export([validate/0, num_contexts/0, max_concurrent/0, num_executors/0,
         python_path/0, call_timeout/0, sandbox/0, port_args/0,
         max_restarts/0, max_restart_period_s/0, restart_backoff_ms/0,
         restart_backoff_max_ms/0, restart_window_ms/0, max_memory_mb/0,
         stuck_grace_ms/0]).

-define(APP, erlang_python).

%% @doc Check every key; the first bad one is reported.
-spec validate() -> ok | {error, {bad_config, atom(), term()}}.
validate() ->
    Checks = [{num_contexts, fun is_pos/1},
              {max_concurrent, fun is_pos/1},
              {num_executors, fun is_pos/1},
              {python_path, fun is_path_list/1},
              {call_timeout, fun is_timeout/1},
              {sandbox, fun(V) -> lists:member(V, [default, strict, off]) end},
              {python, fun(V) -> is_binary(V) orelse (is_list(V) andalso is_chardata(V)) end},
              {max_restarts, fun is_non_neg/1},
              {max_restart_period_s, fun is_pos/1},
              {restart_backoff_ms, fun is_non_neg/1},
              {restart_backoff_max_ms, fun is_non_neg/1},
              {restart_window_ms, fun is_non_neg/1},
              {max_memory_mb, fun is_non_neg/1},
              {stuck_grace_ms, fun is_non_neg/1}],
    check(Checks).

check([]) ->
    ok;
check([{Key, Pred} | Rest]) ->
    case application:get_env(?APP, Key) of
        undefined -> check(Rest);
        {ok, Value} ->
            case Pred(Value) of
                true -> check(Rest);
                false -> {error, {bad_config, Key, Value}}
            end
    end.

-spec num_contexts() -> pos_integer().
num_contexts() ->
    application:get_env(?APP, num_contexts, erlang:system_info(schedulers)).

-spec max_concurrent() -> pos_integer().
max_concurrent() ->
    application:get_env(?APP, max_concurrent, erlang:system_info(schedulers) * 2 + 1).

-spec num_executors() -> pos_integer().
num_executors() ->
    application:get_env(?APP, num_executors, 4).

-spec python_path() -> [file:filename_all()].
python_path() ->
    application:get_env(?APP, python_path, []).

-spec call_timeout() -> timeout().
call_timeout() ->
    application:get_env(?APP, call_timeout, 30000).

-spec sandbox() -> default | strict | off.
sandbox() ->
    application:get_env(?APP, sandbox, default).

-spec max_restarts() -> non_neg_integer().
max_restarts() ->
    application:get_env(?APP, max_restarts, 10).

-spec max_restart_period_s() -> pos_integer().
max_restart_period_s() ->
    application:get_env(?APP, max_restart_period_s, 60).

-spec restart_backoff_ms() -> non_neg_integer().
restart_backoff_ms() ->
    application:get_env(?APP, restart_backoff_ms, 50).

-spec restart_backoff_max_ms() -> non_neg_integer().
restart_backoff_max_ms() ->
    application:get_env(?APP, restart_backoff_max_ms, 2000).

-spec restart_window_ms() -> non_neg_integer().
restart_window_ms() ->
    application:get_env(?APP, restart_window_ms, 30000).

-spec max_memory_mb() -> non_neg_integer().
max_memory_mb() ->
    application:get_env(?APP, max_memory_mb, 0).

-spec stuck_grace_ms() -> non_neg_integer().
stuck_grace_ms() ->
    application:get_env(?APP, stuck_grace_ms, 2000).

%% @doc Command-line flags of the sidecar built from the environment
%% (docs/PROTOCOL.md, "Flags").
-spec port_args() -> [string()].
port_args() ->
    PathArgs = lists:append([["--python-path", to_string(Dir)] || Dir <- python_path()]),
    ["--num-executors", integer_to_list(num_executors()),
     "--max-memory-mb", integer_to_list(max_memory_mb()),
     "--stuck-grace-ms", integer_to_list(stuck_grace_ms()) | PathArgs].

to_string(Dir) ->
    unicode:characters_to_list(Dir).

is_pos(V) -> is_integer(V) andalso V > 0.

is_non_neg(V) -> is_integer(V) andalso V >= 0.

is_timeout(infinity) -> true;
is_timeout(V) -> is_integer(V) andalso V >= 0.

%% A list of directories, each a string or a binary (a bare string is refused: it
%% is a list of characters, not of directories).
is_path_list(L) when is_list(L) ->
    lists:all(fun(D) -> is_binary(D) orelse (is_list(D) andalso is_chardata(D)) end, L);
is_path_list(_) ->
    false.

is_chardata(D) ->
    try is_list(unicode:characters_to_list(D))
    catch error:badarg -> false
    end.
