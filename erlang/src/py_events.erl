%% @doc Events a user can attach metrics to (README, "Events"), in the
%% `telemetry' convention: `telemetry:execute(EventName, Measurements,
%% Metadata)' when the `telemetry' module is loaded, logger events with
%% that metadata otherwise.
%%
%% | event | measurements | metadata |
%% |---|---|---|
%% | `[erlang_python, call, start]' | `system_time', `monotonic_time' | `sidecar', `context', `op' (call, eval, exec), `module', `function' (calls) |
%% | `[erlang_python, call, stop]' | `duration' (native units), `monotonic_time' | the same, and `result' (`ok', `error', `timeout', `overloaded', `python_crashed' or the Python exception's name) |
%% | `[erlang_python, overload]' | `current', `max', `waiting' | `sidecar' |
%% | `[erlang_python, semaphore, wait]' | `waiting' (callers in the queue, this one included) | `sidecar' |
%% | `[erlang_python, sidecar, crash]' | `system_time' | `sidecar', `info' (the `python_crashed' Info) |
%% | `[erlang_python, sidecar, restart]' | `down_ms', `restarts' | `sidecar', `crash' |
%%
%% Whether `telemetry' is there is asked once (`code:ensure_loaded/1') and
%% kept in `persistent_term': without it a call pays one `persistent_term'
%% read, and call events are not logged (the others are, at `debug' for
%% overload and waits, `info' for crashes and restarts, with the domain
%% `[erlang_python, event]' and the metadata `event', `measurements').
%% {@link refresh/0} asks again (a `telemetry' loaded later).
-module(py_events).

-export([enabled/0, refresh/0, execute/3]).

-define(KEY, {?MODULE, telemetry}).

%% @doc Whether the `telemetry' module is loaded (asked once, then one
%% `persistent_term' read).
-spec enabled() -> boolean().
enabled() ->
    module() =/= false.

%% The `telemetry' module, or false: one `persistent_term' read once asked.
module() ->
    case persistent_term:get(?KEY, undefined) of
        undefined -> refresh(), persistent_term:get(?KEY);
        Known -> Known
    end.

%% @doc Ask again whether the `telemetry' module is loaded, and keep the
%% answer.
-spec refresh() -> boolean().
refresh() ->
    %% the module is kept by name, so no tool looks for a telemetry here
    Module = case code:ensure_loaded(telemetry) of
                 {module, telemetry} ->
                     erlang:function_exported(telemetry, execute, 3) andalso telemetry;
                 {error, _} ->
                     false
             end,
    persistent_term:put(?KEY, Module),
    Module =/= false.

%% @doc Emit event `Name': to `telemetry:execute/3' when it is loaded, else
%% to the logger (call events excepted). Never fails its caller.
-spec execute([atom()], map(), map()) -> ok.
execute(Name, Measurements, Metadata) ->
    case module() of
        false ->
            log(Name, Measurements, Metadata);
        Module ->
            try Module:execute(Name, Measurements, Metadata)
            catch _:_ -> ok
            end,
            ok
    end.

log([erlang_python, call | _], _Measurements, _Metadata) ->
    ok;
log(Name, Measurements, Metadata) ->
    Level = case Name of
                [erlang_python, sidecar | _] -> info;
                _ -> debug
            end,
    logger:log(Level, "erlang_python event ~w: ~0p ~0p", [Name, Measurements, Metadata],
               Metadata#{domain => [erlang_python, event], event => Name,
                         measurements => Measurements}).
