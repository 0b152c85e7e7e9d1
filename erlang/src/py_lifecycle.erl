%% @doc The sidecar's life as the rest of the application sees it: up or
%% restarting, how often it crashed lately, and who wants to know when it
%% comes back.
%%
%% There is one per sidecar, under its `py_sidecar_sup' before `py_sidecar',
%% so it outlives every restart of that sidecar. The functions without a
%% sidecar argument are those of the default sidecar:
%% <ul>
%% <li>`py_sidecar' reports a crash ({@link down/2}) before it stops, and
%%     asks, before it opens the next port, how long to wait first
%%     ({@link backoff/1}, computed by {@link delay/2}): nothing for the
%%     first crash in `restart_window_ms', then `restart_backoff_ms'
%%     doubling with each further crash, up to `restart_backoff_max_ms';</li>
%% <li>`py_sidecar' reports the service up ({@link up/1}) once `py_pool'
%%     says the contexts run again: subscribers ({@link subscribe/1}) then get
%%     `{py_restarted, Info}' and calls made meanwhile go on
%%     ({@link await_up/2});</li>
%% <li>the first start is awaited by `py_sidecar_sup' ({@link await_start/1}):
%%     it ends with the first up, or with the reason the first sidecar
%%     could not start ({@link start_failed/2}).</li>
%% </ul>
%% The supervisor's intensity (`max_restarts' in `max_restart_period_s')
%% still bounds the whole: a sidecar that cannot stay up stops its subtree
%% (the application, for the default sidecar).
-module(py_lifecycle).

-behaviour(gen_server).

-export([start_link/0, subscribe/0, unsubscribe/0, down/1, up/0, backoff/0,
         await_up/1, when_up/2, state/0, status/0, delay/2]).
-export([start_link/1, subscribe/1, unsubscribe/1, down/2, up/1, backoff/1,
         await_up/2, when_up/3, state/1, status/1, start_failed/2, await_start/1]).
-export([init/1, handle_call/3, handle_cast/2, handle_info/2, terminate/2]).

-define(DEFAULT, default).
-define(SERVER(Sidecar), py_instance:name(?MODULE, Sidecar)).
-define(UP(Sidecar), {?MODULE, Sidecar, up}).

-type restart_info() :: #{crash := map(),   % the python_crashed Info of the crash
                          restarts := pos_integer(), % restarts since the application started
                          down_ms := non_neg_integer()}. % from the crash to service back
-export_type([restart_info/0]).

-record(state, {sidecar :: atom(),
                up = false :: boolean(),
                started = false :: boolean(),         % up once at least
                start_failure :: term(),              % why the first start failed
                starting = [] :: [gen_server:from()], % await_start callers
                crash :: map() | undefined,           % the last crash, while down
                down_at :: integer() | undefined,     % monotonic ms
                crashes = [] :: [integer()],          % monotonic ms, newest first
                restarts = 0 :: non_neg_integer(),
                waiting = [] :: [gen_server:from()],  % await_up callers
                subscribers = #{} :: #{pid() => reference()}}).

%% @doc Start the default sidecar's lifecycle.
-spec start_link() -> {ok, pid()} | {error, term()}.
start_link() ->
    start_link(?DEFAULT).

%% @doc Start sidecar `Sidecar''s lifecycle.
-spec start_link(atom()) -> {ok, pid()} | {error, term()}.
start_link(Sidecar) ->
    gen_server:start_link({local, ?SERVER(Sidecar)}, ?MODULE, Sidecar, []).

%% @doc Send the caller `{py_restarted, Info}' (see {@link restart_info()})
%% each time the sidecar is back after a crash: contexts, pools, registered
%% functions, `python_path' and the shared state are back, but what
%% `py:exec' defined is not, so this is the place to run set-up code again.
%% Ends with {@link unsubscribe/0} or the caller's death.
-spec subscribe() -> ok | {error, not_started}.
subscribe() ->
    subscribe(?DEFAULT).

%% @doc {@link subscribe/0} for the restarts of sidecar `Sidecar'.
-spec subscribe(atom()) -> ok | {error, not_started}.
subscribe(Sidecar) ->
    call(Sidecar, {subscribe, self()}).

%% @doc Stop the notifications of {@link subscribe/0}.
-spec unsubscribe() -> ok | {error, not_started}.
unsubscribe() ->
    unsubscribe(?DEFAULT).

%% @doc Stop the notifications of {@link subscribe/1}.
-spec unsubscribe(atom()) -> ok | {error, not_started}.
unsubscribe(Sidecar) ->
    call(Sidecar, {unsubscribe, self()}).

%% @doc The default sidecar died with `Info'.
-spec down(map()) -> ok.
down(Info) ->
    down(?DEFAULT, Info).

%% @doc Sidecar `Sidecar' died with `Info' (its py_sidecar says so): the
%% service is down until {@link up/1}.
-spec down(atom(), map()) -> ok.
down(Sidecar, Info) ->
    persistent_term:put(?UP(Sidecar), false),
    gen_server:cast(?SERVER(Sidecar), {down, Info, erlang:monotonic_time(millisecond)}).

%% @doc The default sidecar's contexts run.
-spec up() -> ok.
up() ->
    up(?DEFAULT).

%% @doc Sidecar `Sidecar''s contexts run (its py_sidecar says so, told by
%% py_pool): the service is up.
-spec up(atom()) -> ok.
up(Sidecar) ->
    persistent_term:put(?UP(Sidecar), true),
    gen_server:cast(?SERVER(Sidecar), {up, erlang:monotonic_time(millisecond)}).

%% @doc The first start of sidecar `Sidecar' failed with `Reason' (its
%% py_sidecar or py_pool says so); a later start that fails is a restart
%% like any other.
-spec start_failed(atom(), term()) -> ok.
start_failed(Sidecar, Reason) ->
    gen_server:cast(?SERVER(Sidecar), {start_failed, Reason}).

%% @doc Wait for the first start of sidecar `Sidecar': `ok' once its
%% contexts run, or why it failed (py_sidecar_sup).
-spec await_start(atom()) -> ok | {error, term()}.
await_start(Sidecar) ->
    try gen_server:call(?SERVER(Sidecar), await_start, infinity)
    catch exit:Reason -> {error, Reason}
    end.

%% @doc Milliseconds to wait before the default sidecar's next start.
-spec backoff() -> non_neg_integer().
backoff() ->
    backoff(?DEFAULT).

%% @doc Milliseconds to wait before sidecar `Sidecar''s next OS process
%% starts (its py_sidecar asks); see {@link delay/2}.
-spec backoff(atom()) -> non_neg_integer().
backoff(Sidecar) ->
    Server = ?SERVER(Sidecar),
    case whereis(Server) of
        undefined -> 0;
        _ -> gen_server:call(Server, backoff)
    end.

%% @doc Return when the service is up, waiting at most `Timeout' ms for a
%% restart to finish: `ok', `{error, timeout}', or `{error, not_started}'
%% when the application does not run.
-spec await_up(timeout()) -> ok | {error, timeout | not_started}.
await_up(Timeout) ->
    await_up(?DEFAULT, Timeout).

%% @doc {@link await_up/1} for sidecar `Sidecar'.
-spec await_up(atom(), timeout()) -> ok | {error, timeout | not_started}.
await_up(Sidecar, Timeout) ->
    case persistent_term:get(?UP(Sidecar), undefined) of
        true -> ok;
        undefined -> {error, not_started};
        false ->
            try gen_server:call(?SERVER(Sidecar), await_up, Timeout)
            catch
                exit:{timeout, _} -> {error, timeout};
                exit:_ -> {error, not_started}
            end
    end.

%% @doc `Fun()', after the restart under way if there is one: a call or a
%% state operation made while the sidecar restarts waits for it (within
%% `Timeout'; an invalid timeout waits for nothing, for `Fun' to report it)
%% rather than pick a context of the dead sidecar. Costs a `persistent_term'
%% read when the service is up.
-spec when_up(term(), fun(() -> Result)) -> Result | {error, timeout | not_started}.
when_up(Timeout, Fun) ->
    when_up(?DEFAULT, Timeout, Fun).

%% @doc {@link when_up/2} for sidecar `Sidecar'.
-spec when_up(atom(), term(), fun(() -> Result)) -> Result | {error, timeout | not_started}.
when_up(Sidecar, Timeout, Fun) ->
    case state(Sidecar) of
        restarting when Timeout =:= infinity; is_integer(Timeout), Timeout >= 0 ->
            case await_up(Sidecar, Timeout) of
                ok -> Fun();
                {error, _} = Error -> Error
            end;
        _ ->
            Fun()
    end.

%% @doc Whether the service is `up', `restarting' or `not_started', without a
%% message.
-spec state() -> up | restarting | not_started.
state() ->
    state(?DEFAULT).

%% @doc {@link state/0} of sidecar `Sidecar'.
-spec state(atom()) -> up | restarting | not_started.
state(Sidecar) ->
    case persistent_term:get(?UP(Sidecar), undefined) of
        true -> up;
        false -> restarting;
        undefined -> not_started
    end.

%% @doc `up' or `restarting', and the restarts so far.
-spec status() -> {up | restarting, non_neg_integer()} | {error, not_started}.
status() ->
    status(?DEFAULT).

%% @doc {@link status/0} of sidecar `Sidecar'.
-spec status(atom()) -> {up | restarting, non_neg_integer()} | {error, not_started}.
status(Sidecar) ->
    call(Sidecar, status).

%% @doc The wait before the next sidecar, and the crashes that still count:
%% `Crashes' are the times (ms, newest first) of the crashes so far; those
%% older than `window_ms' at `now' no longer count. Nothing for the first
%% crash in the window, then `backoff_ms', doubling with each further crash,
%% up to `backoff_max_ms'. A pure function: {@link backoff/0} applies it.
-spec delay([integer()], #{now := integer(), window_ms := non_neg_integer(),
                           backoff_ms := non_neg_integer(),
                           backoff_max_ms := non_neg_integer()}) ->
          {non_neg_integer(), [integer()]}.
delay(Crashes, #{now := Now, window_ms := Window, backoff_ms := Base, backoff_max_ms := Max}) ->
    Recent = [T || T <- Crashes, Now - T =< Window],
    Delay = case length(Recent) of
                N when N =< 1 -> 0;
                N -> min(Max, Base bsl min(N - 2, 20))
            end,
    {Delay, Recent}.

call(Sidecar, Request) ->
    try gen_server:call(?SERVER(Sidecar), Request)
    catch exit:_ -> {error, not_started}
    end.

%%--------------------------------------------------------------------

%% @private
-spec init(atom()) -> {ok, #state{}}.
init(Sidecar) ->
    %% terminate/2 runs on shutdown: the key goes with the sidecar
    process_flag(trap_exit, true),
    persistent_term:put(?UP(Sidecar), false),
    {ok, #state{sidecar = Sidecar}}.

%% @private
-spec handle_call(term(), gen_server:from(), #state{}) ->
          {reply, term(), #state{}} | {noreply, #state{}}.
handle_call({subscribe, Pid}, _From, #state{subscribers = Subs} = State) ->
    case Subs of
        #{Pid := _} -> {reply, ok, State};
        #{} -> {reply, ok, State#state{subscribers = Subs#{Pid => monitor(process, Pid)}}}
    end;
handle_call({unsubscribe, Pid}, _From, #state{subscribers = Subs} = State) ->
    case maps:take(Pid, Subs) of
        {MRef, Subs1} ->
            demonitor(MRef, [flush]),
            {reply, ok, State#state{subscribers = Subs1}};
        error ->
            {reply, ok, State}
    end;
handle_call(backoff, _From, #state{sidecar = Sidecar, crashes = Crashes} = State) ->
    {Delay, Recent} = delay(Crashes, #{now => erlang:monotonic_time(millisecond),
                                       window_ms => py_config:get(Sidecar, restart_window_ms),
                                       backoff_ms => py_config:get(Sidecar, restart_backoff_ms),
                                       backoff_max_ms => py_config:get(Sidecar, restart_backoff_max_ms)}),
    {reply, Delay, State#state{crashes = Recent}};
handle_call(await_start, _From, #state{started = true} = State) ->
    {reply, ok, State};
handle_call(await_start, _From, #state{start_failure = Reason} = State) when Reason =/= undefined ->
    {reply, {error, Reason}, State};
handle_call(await_start, From, #state{starting = Starting} = State) ->
    {noreply, State#state{starting = [From | Starting]}};
handle_call(await_up, _From, #state{up = true} = State) ->
    {reply, ok, State};
handle_call(await_up, From, #state{waiting = Waiting} = State) ->
    {noreply, State#state{waiting = [From | Waiting]}};
handle_call(status, _From, #state{up = Up, restarts = N} = State) ->
    {reply, {case Up of true -> up; false -> restarting end, N}, State};
handle_call(_Request, _From, State) ->
    {reply, {error, unknown_call}, State}.

%% @private
-spec handle_cast(term(), #state{}) -> {noreply, #state{}}.
handle_cast({down, Info, At}, #state{crashes = Crashes} = State) ->
    py_events:execute([erlang_python, sidecar, crash], #{system_time => erlang:system_time()},
                      #{sidecar => State#state.sidecar, info => Info}),
    {noreply, State#state{up = false, crash = Info, down_at = At, crashes = [At | Crashes]}};
handle_cast({start_failed, Reason}, #state{started = false, starting = Starting} = State) ->
    _ = [gen_server:reply(From, {error, Reason}) || From <- Starting],
    {noreply, State#state{start_failure = Reason, starting = []}};
handle_cast({start_failed, _Reason}, State) ->
    {noreply, State};
handle_cast({up, _At}, #state{crash = undefined} = State) ->
    %% the first start, or the pools restarted alone
    {noreply, release(State#state{up = true})};
handle_cast({up, At}, #state{crash = Crash, down_at = Down, restarts = N} = State) ->
    Info = #{crash => Crash, restarts => N + 1, down_ms => At - Down},
    py_events:execute([erlang_python, sidecar, restart],
                      #{down_ms => At - Down, restarts => N + 1},
                      #{sidecar => State#state.sidecar, crash => Crash}),
    %% no domain: the default handler shows it
    logger:notice("erlang_python: sidecar~ts back ~b ms after a crash: ~p",
                  [py_instance:label(State#state.sidecar), At - Down, Crash]),
    _ = [Pid ! {py_restarted, Info} || Pid <- maps:keys(State#state.subscribers)],
    {noreply, release(State#state{up = true, crash = undefined, down_at = undefined,
                                  restarts = N + 1})};
handle_cast(_Msg, State) ->
    {noreply, State}.

release(#state{waiting = Waiting, starting = Starting} = State) ->
    _ = [gen_server:reply(From, ok) || From <- Waiting ++ Starting],
    State#state{waiting = [], starting = [], started = true}.

%% @private
-spec handle_info(term(), #state{}) -> {noreply, #state{}}.
handle_info({'DOWN', MRef, process, Pid, _}, #state{subscribers = Subs} = State) ->
    case Subs of
        #{Pid := MRef} -> {noreply, State#state{subscribers = maps:remove(Pid, Subs)}};
        #{} -> {noreply, State}
    end;
handle_info(_Msg, State) ->
    {noreply, State}.

%% @private
-spec terminate(term(), #state{}) -> ok.
terminate(_Reason, #state{sidecar = Sidecar}) ->
    _ = persistent_term:erase(?UP(Sidecar)),
    ok.
