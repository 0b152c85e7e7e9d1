%% Events (issue 14, point 6; README "Events"): with a `telemetry' module
%% loaded (the suite's stand-in in its data dir, which sends each event to
%% the test process), calls, overload, waits, crashes and restarts are
%% `telemetry:execute/3' events; without it they are logger events (calls
%% excepted) and a call pays one persistent_term read.
-module(py_events_SUITE).

-include_lib("common_test/include/ct.hrl").
-include("py_ct.hrl").

-export([all/0, init_per_suite/1, end_per_suite/1, init_per_testcase/2, end_per_testcase/2]).
-export([call_events/1, overload_events/1, wait_events/1, crash_restart_events/1,
         without_telemetry/1]).
-export([log/2]).

all() ->
    [call_events, overload_events, wait_events, crash_restart_events, without_telemetry].

init_per_suite(Config) ->
    Config.

end_per_suite(_Config) ->
    unload_telemetry(),
    py_ct:stop().

init_per_testcase(without_telemetry, Config) ->
    unload_telemetry(),
    py_ct:start([{num_contexts, 1}, {max_restarts, 20}]),
    Config;
init_per_testcase(Case, Config) ->
    Env = case Case of
              overload_events -> [{max_concurrent, 1}, {max_waiting, 0}];
              wait_events -> [{max_concurrent, 1}, {max_waiting, 5}];
              _ -> []
          end,
    py_ct:start([{num_contexts, 1}, {max_restarts, 20} | Env]),
    load_telemetry(?config(data_dir, Config), ?config(priv_dir, Config)),
    true = register(telemetry_recorder, self()),
    Config.

end_per_testcase(_Case, _Config) ->
    catch unregister(telemetry_recorder),
    _ = logger:remove_handler(py_events_SUITE),
    unload_telemetry(),
    py_ct:stop().

%% The stand-in is telemetry.erl.in in the data dir: as a .erl there, rebar3
%% eunit would take it for a module of the project.
load_telemetry(Dir, Priv) ->
    Src = filename:join(Priv, "telemetry.erl"),
    {ok, _} = file:copy(filename:join(Dir, "telemetry.erl.in"), Src),
    {ok, telemetry, Bin} = compile:file(Src, [binary]),
    {module, telemetry} = code:load_binary(telemetry, "telemetry.erl", Bin),
    true = py_events:refresh().

unload_telemetry() ->
    _ = code:purge(telemetry),
    _ = code:delete(telemetry),
    _ = code:purge(telemetry),
    false = py_events:refresh().

%%--------------------------------------------------------------------

call_events(_Config) ->
    ?equal({ok, 2.0}, py:call(math, sqrt, [4])),
    {[erlang_python, call, start], #{system_time := _, monotonic_time := T0},
     #{op := call, sidecar := default, context := Ctx, module := <<"math">>,
       function := <<"sqrt">>}} = event([erlang_python, call, start]),
    true = is_integer(Ctx),
    {_, #{duration := D, monotonic_time := T1}, #{result := ok, module := <<"math">>}} =
        event([erlang_python, call, stop]),
    true = is_integer(D) andalso D >= 0 andalso T1 - T0 =:= D,
    ?expect({error, {'ZeroDivisionError', _}}, py:eval(<<"1 / 0">>)),
    {_, _, #{op := eval}} = event([erlang_python, call, start]),
    {_, _, #{op := eval, result := 'ZeroDivisionError'}} = event([erlang_python, call, stop]),
    ?equal(ok, py:exec(<<"y = 1">>)),
    {_, _, #{op := exec, result := ok}} = event([erlang_python, call, stop]),
    ?equal({error, timeout}, py:call(time, sleep, [2], #{}, 100)),
    {_, _, #{result := timeout}} = event([erlang_python, call, stop]).

%% max_waiting 0: a call that finds the one slot taken is refused.
overload_events(_Config) ->
    Self = self(),
    Busy = spawn(fun() -> Self ! {busy, py:call(time, sleep, [1])} end),
    py_ct:wait_until(fun() -> py_semaphore:current() =:= 1 end, 5000, "the slot taken"),
    ?expect({error, {overloaded, 1, 1}}, py:call(math, sqrt, [4])),
    {_, #{current := 1, max := 1, waiting := 0}, #{sidecar := default}} =
        event([erlang_python, overload]),
    {_, _, #{result := overloaded}} = event([erlang_python, call, stop]),
    receive {busy, {ok, _}} -> ok after 5000 -> ct:fail({busy, Busy}) end.

%% A call that waits for a slot says how many wait.
wait_events(_Config) ->
    Self = self(),
    _ = spawn(fun() -> Self ! {busy, py:call(time, sleep, [0.5])} end),
    py_ct:wait_until(fun() -> py_semaphore:current() =:= 1 end, 5000, "the slot taken"),
    ?equal({ok, 2.0}, py:call(math, sqrt, [4])),
    {_, #{waiting := 1}, #{sidecar := default}} = event([erlang_python, semaphore, wait]),
    receive {busy, {ok, _}} -> ok after 5000 -> ct:fail(busy) end.

crash_restart_events(_Config) ->
    Port = py_ct:kill_sidecar(),
    py_ct:wait_restarted(Port),
    {_, #{system_time := _}, #{sidecar := default, info := Info}} =
        event([erlang_python, sidecar, crash]),
    true = is_map(Info),
    {_, #{down_ms := Down, restarts := 1}, #{sidecar := default, crash := Info}} =
        event([erlang_python, sidecar, restart]),
    true = is_integer(Down).

%% No telemetry: one persistent_term read a call, no call event; a crash
%% and a restart are logger events with the metadata.
without_telemetry(_Config) ->
    false = py_events:enabled(),
    ok = logger:add_handler(py_events_SUITE, ?MODULE,
                            #{level => all, config => #{pid => self()},
                              filter_default => stop,
                              filters => [{events, {fun logger_filters:domain/2,
                                                    {log, sub, [erlang_python, event]}}}]}),
    #{level := Primary} = logger:get_primary_config(),
    ok = logger:set_primary_config(level, info),
    try
        ?equal({ok, 2.0}, py:call(math, sqrt, [4])),
        Port = py_ct:kill_sidecar(),
        py_ct:wait_restarted(Port),
        Crash = logged([erlang_python, sidecar, crash]),
        #{sidecar := default, info := _, measurements := #{system_time := _}} = Crash,
        #{measurements := #{restarts := 1}} = logged([erlang_python, sidecar, restart]),
        receive
            {logged, #{event := [erlang_python, call | _]}} -> ct:fail(call_logged)
        after 0 -> ok
        end
    after
        logger:set_primary_config(level, Primary)
    end.

%% logger handler: the events' metadata to the test process
log(#{meta := Meta}, #{config := #{pid := Pid}}) ->
    Pid ! {logged, Meta}.

%%--------------------------------------------------------------------

event(Name) ->
    receive
        {telemetry, Name, M, Meta} -> {Name, M, Meta}
    after 10000 ->
        ct:fail({no_event, Name, flush()})
    end.

logged(Name) ->
    receive
        {logged, #{event := Name} = Meta} -> Meta
    after 10000 ->
        ct:fail({not_logged, Name, flush()})
    end.

flush() ->
    receive M -> [M | flush()] after 0 -> [] end.
