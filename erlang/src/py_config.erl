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
%%
%% A sidecar other than the default one (`erlang_python:start_sidecar/2')
%% has options that override these keys for it alone ({@link get/2},
%% {@link port_args/1}); they are checked by {@link validate/1} and kept in
%% `persistent_term' under `{py_config, Sidecar, opts}'.
-module(py_config).

-export([validate/0, num_contexts/0, max_concurrent/0, num_executors/0,
         python_path/0, call_timeout/0, sandbox/0, port_args/0,
         max_restarts/0, max_restart_period_s/0, restart_backoff_ms/0,
         restart_backoff_max_ms/0, restart_window_ms/0, max_memory_mb/0,
         stuck_grace_ms/0]).
-export([validate/1, get/2, port_args/1, set_opts/2, forget_opts/1]).

-define(APP, erlang_python).

%% @doc Check every key; the first bad one is reported.
-spec validate() -> ok | {error, {bad_config, atom(), term()}}.
validate() ->
    check(checks(), fun(Key) -> application:get_env(?APP, Key) end).

%% @doc Check a sidecar's options: each must be one of the keys above, with a
%% value that key takes.
-spec validate(map()) -> ok | {error, {bad_config, term(), term()}}.
validate(Opts) when is_map(Opts) ->
    Keys = [Key || {Key, _} <- checks()],
    case [{K, V} || {K, V} <- maps:to_list(Opts), not lists:member(K, Keys)] of
        [] -> check(checks(), fun(Key) -> maps:find(Key, Opts) end);
        [{K, V} | _] -> {error, {bad_config, K, V}}
    end.

%% @doc The value of `Key' for sidecar `Sidecar': its start options override
%% the application environment (the default sidecar has none). `Key' is
%% one of the keys above; `python' is `undefined' when unset.
-spec get(atom(), atom()) -> term().
get(Sidecar, Key) ->
    case Sidecar =/= default andalso persistent_term:get({?MODULE, Sidecar, opts}, #{}) of
        #{Key := Value} -> Value;
        _ -> env(Key)
    end.

env(python) -> application:get_env(?APP, python, undefined);
env(Key) -> ?MODULE:Key().

%% @doc Keep the options of sidecar `Sidecar' (before it starts).
-spec set_opts(atom(), map()) -> ok.
set_opts(Sidecar, Opts) ->
    persistent_term:put({?MODULE, Sidecar, opts}, Opts).

%% @doc Forget the options of sidecar `Sidecar' (it stopped).
-spec forget_opts(atom()) -> ok.
forget_opts(Sidecar) ->
    _ = persistent_term:erase({?MODULE, Sidecar, opts}),
    ok.

checks() ->
    [{num_contexts, fun is_pos/1},
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
     {stuck_grace_ms, fun is_non_neg/1}].

check([], _Find) ->
    ok;
check([{Key, Pred} | Rest], Find) ->
    case Find(Key) of
        error -> check(Rest, Find);
        undefined -> check(Rest, Find);
        {ok, Value} ->
            case Pred(Value) of
                true -> check(Rest, Find);
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
    port_args(default).

%% @doc The flags of sidecar `Sidecar', its options overriding the environment.
-spec port_args(atom()) -> [string()].
port_args(Sidecar) ->
    PathArgs = lists:append([["--python-path", to_string(Dir)]
                             || Dir <- get(Sidecar, python_path)]),
    ["--num-executors", integer_to_list(get(Sidecar, num_executors)),
     "--max-memory-mb", integer_to_list(get(Sidecar, max_memory_mb)),
     "--stuck-grace-ms", integer_to_list(get(Sidecar, stuck_grace_ms)) | PathArgs].

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
