%% @doc Pools of contexts and routing of calls to them (API.md section 3).
%%
%% The router starts the default pool (`num_contexts' contexts, mode `auto')
%% when it starts, and named pools on request. It publishes each pool in
%% `persistent_term' as a tuple of `{Pid, CtxId}', so picking a context for a
%% call costs a `persistent_term' read and no message. A context that dies is
%% replaced at the same index. Named pools and module registrations survive a
%% restart of the router (e.g. after a sidecar crash): the pools are started
%% again. They are forgotten when the application stops.
%%
%% Routing of a call without an explicit context:
%% <ol>
%% <li>a pool registered for `{Module, Function}', then for `Module'
%%     ({@link register_pool/2});</li>
%% <li>the caller's bound context ({@link bind_context/1});</li>
%% <li>the default pool's context for the caller's scheduler.</li>
%% </ol>
-module(py_context_router).

-behaviour(gen_server).

-export([start_link/0,
         start/0, start/1, stop/0, started/0,
         get_context/0, get_context/1, bind_context/1, unbind_context/0,
         num_contexts/0, contexts/0,
         start_pool/3, stop_pool/1, pool_contexts/1, pool_ctx_ids/1, is_pool/1,
         register_pool/2, unregister_pool/1,
         resolve/1, route/2, forget/0]).
-export([init/1, handle_call/3, handle_cast/2, handle_info/2, terminate/2]).

-define(SERVER, ?MODULE).
-define(DEFAULT, default).
-define(POOL(Name), {?MODULE, pool, Name}).
-define(ROUTES, {?MODULE, routes}).
-define(SPECS, {?MODULE, specs}).
-define(BOUND, '$py_bound_context').
-define(CALL_TIMEOUT, 120000).

-type pool_name() :: atom().
-type route_key() :: module() | binary() | {module() | binary(), atom() | binary()}.
-type target() :: pid() | pool_name().
-export_type([pool_name/0, target/0]).

-record(pool, {mode :: py_context:mode(),
               members :: tuple()}).       % {Pid, CtxId, MRef} per index
-record(state, {pools = #{} :: #{pool_name() => #pool{}},
                monitors = #{} :: #{reference() => {pool_name(), pos_integer()}}}).

-spec start_link() -> {ok, pid()} | {error, term()}.
start_link() ->
    gen_server:start_link({local, ?SERVER}, ?SERVER, [], []).

%%--------------------------------------------------------------------
%% Default pool

%% @doc Start the default pool with `num_contexts' contexts. When it runs
%% already, its contexts are returned.
-spec start() -> {ok, [pid()]} | {error, term()}.
start() ->
    start(#{}).

%% @doc `#{contexts => N}' chooses the size; when the default pool runs
%% already, its contexts are returned whatever N.
-spec start(#{contexts => pos_integer()}) -> {ok, [pid()]} | {error, term()}.
start(Opts) when is_map(Opts) ->
    case pool_contexts(?DEFAULT) of
        {ok, Pids} ->
            {ok, Pids};
        {error, _} ->
            Size = maps:get(contexts, Opts, py_config:num_contexts()),
            call({start_pool, ?DEFAULT, Size, auto})
    end.

%% @doc Stop the default pool.
-spec stop() -> ok.
stop() ->
    _ = stop_pool(?DEFAULT),
    ok.

%% @doc Whether the default pool runs.
-spec started() -> boolean().
started() ->
    persistent_term:get(?POOL(?DEFAULT), undefined) =/= undefined.

%% @doc The caller's bound context, else the default pool's context for the
%% caller's scheduler. Fails with `{error, not_started}' without a pool.
-spec get_context() -> pid() | {error, not_started}.
get_context() ->
    case get(?BOUND) of
        {_, _} = Bound ->
            case bound(Bound) of
                {ok, Pid, _Ctx} -> Pid;
                {error, _} -> {error, not_started}
            end;
        undefined ->
            case pick(?DEFAULT) of
                {ok, Pid, _Ctx} -> Pid;
                {error, _} -> {error, not_started}
            end
    end.

%% @doc Context N (1-based) of the default pool.
-spec get_context(pos_integer()) -> pid() | {error, {bad_context, term()} | not_started}.
get_context(N) ->
    case persistent_term:get(?POOL(?DEFAULT), undefined) of
        undefined ->
            {error, not_started};
        Members when is_integer(N), N >= 1, N =< tuple_size(Members) ->
            element(1, element(N, Members));
        _ ->
            {error, {bad_context, N}}
    end.

%% @doc Send the caller's calls without an explicit context to `Pid' until
%% {@link unbind_context/0}. The binding is to the context's place in its
%% pool: after a sidecar restart it goes on with the context that took
%% that place.
-spec bind_context(pid()) -> ok | {error, {bad_context, term()} | not_started}.
bind_context(Pid) ->
    case py_context:ctx_id(Pid) of
        {ok, _} ->
            {ok, Label} = py_context:label(Pid),
            put(?BOUND, {Pid, Label}),
            ok;
        {error, _} = Error ->
            Error
    end.

%% The bound context, or the one that took its place in its pool.
bound({Pid, Label}) ->
    case py_context:ctx_id(Pid) of
        {ok, Ctx} -> {ok, Pid, Ctx};
        {error, _} = Error -> successor(Label, Error)
    end.

successor({Name, I} = Label, Error) when is_atom(Name), is_integer(I) ->
    case persistent_term:get(?POOL(Name), undefined) of
        Members when is_tuple(Members), I =< tuple_size(Members) ->
            {Pid, Ctx} = element(I, Members),
            put(?BOUND, {Pid, Label}),
            {ok, Pid, Ctx};
        _ ->
            %% no pool yet: its contexts are being started again
            case py_lifecycle:state() of
                restarting -> {error, no_contexts};
                _ -> Error
            end
    end;
successor(_Label, Error) ->
    Error.

-spec unbind_context() -> ok.
unbind_context() ->
    erase(?BOUND),
    ok.

%% @doc Number of contexts in the default pool (0 when stopped).
-spec num_contexts() -> non_neg_integer().
num_contexts() ->
    case persistent_term:get(?POOL(?DEFAULT), undefined) of
        undefined -> 0;
        Members -> tuple_size(Members)
    end.

%% @doc The contexts of the default pool, in order.
-spec contexts() -> [pid()].
contexts() ->
    case pool_contexts(?DEFAULT) of
        {ok, Pids} -> Pids;
        {error, _} -> []
    end.

%%--------------------------------------------------------------------
%% Named pools

%% @doc Start a named pool of `Size' contexts. `worker' contexts run in the main
%% interpreter, where extensions that refuse sub-interpreters import. Starting a
%% running pool again with the same size and mode returns its contexts.
-spec start_pool(pool_name(), pos_integer(), py_context:mode()) ->
          {ok, [pid()]} | {error, term()}.
start_pool(Name, Size, Mode)
  when is_atom(Name), is_integer(Size), Size > 0,
       (Mode =:= auto orelse Mode =:= subinterp orelse Mode =:= worker) ->
    call({start_pool, Name, Size, Mode});
start_pool(Name, Size, Mode) ->
    {error, {badarg, {Name, Size, Mode}}}.

%% @doc Stop a pool and its contexts.
-spec stop_pool(pool_name()) -> ok | {error, {unknown_pool, pool_name()} | not_started}.
stop_pool(Name) ->
    call({stop_pool, Name}).

%% @doc The contexts of a pool, in order.
-spec pool_contexts(pool_name()) -> {ok, [pid()]} | {error, {unknown_pool, pool_name()}}.
pool_contexts(Name) ->
    case persistent_term:get(?POOL(Name), undefined) of
        undefined -> {error, {unknown_pool, Name}};
        Members -> {ok, [Pid || {Pid, _} <- tuple_to_list(Members)]}
    end.

%% @doc The sidecar context ids of a pool, in order.
-spec pool_ctx_ids(pool_name()) -> {ok, [pos_integer()]} | {error, {unknown_pool, pool_name()}}.
pool_ctx_ids(Name) ->
    case persistent_term:get(?POOL(Name), undefined) of
        undefined -> {error, {unknown_pool, Name}};
        Members -> {ok, [Ctx || {_, Ctx} <- tuple_to_list(Members)]}
    end.

%% @doc Whether `Name' is a running pool.
-spec is_pool(term()) -> boolean().
is_pool(Name) when is_atom(Name) ->
    persistent_term:get(?POOL(Name), undefined) =/= undefined;
is_pool(_) ->
    false.

%% @doc Route calls to `Module' (any function) or to `{Module, Function}' to
%% pool `Name'. The pool need not run yet; calls fail with
%% `{error, {unknown_pool, Name}}' while it does not.
-spec register_pool(pool_name(), route_key()) -> ok | {error, term()}.
register_pool(Name, Target) when is_atom(Name) ->
    case route_key(Target) of
        {ok, Key} -> call({register_pool, Name, Key});
        {error, _} = Error -> Error
    end;
register_pool(Name, _Target) ->
    {error, {badarg, {pool, Name}}}.

%% @doc Remove a registration made by {@link register_pool/2}.
-spec unregister_pool(route_key()) -> ok | {error, term()}.
unregister_pool(Target) ->
    case route_key(Target) of
        {ok, Key} -> call({unregister_pool, Key});
        {error, _} = Error -> Error
    end.

route_key({M, F}) ->
    case {py_payload:name(module, M), py_payload:name(function, F)} of
        {{ok, MB}, {ok, FB}} -> {ok, {MB, FB}};
        {{error, _} = E, _} -> E;
        {_, {error, _} = E} -> E
    end;
route_key(M) ->
    py_payload:name(module, M).

%%--------------------------------------------------------------------
%% Routing (in the caller, no messages)

%% @doc The sidecar context id for an explicit target: a context pid or a pool
%% name (the pool's context for the caller's scheduler).
-spec resolve(term()) -> {ok, pos_integer()} | {error, term()}.
resolve(Pid) when is_pid(Pid) ->
    py_context:ctx_id(Pid);
resolve(Name) when is_atom(Name) ->
    case pick(Name) of
        {ok, _Pid, Ctx} -> {ok, Ctx};
        {error, _} = Error -> Error
    end;
resolve(Other) ->
    {error, {bad_context, Other}}.

%% @doc The sidecar context id for a call of `Module.Function' (binaries)
%% without an explicit target: registered pool, the calling context in a
%% callback from Python, bound context, default pool.
-spec route(binary() | undefined, binary() | undefined) -> {ok, pos_integer()} | {error, term()}.
route(M, F) ->
    Routes = persistent_term:get(?ROUTES, #{}),
    case map_size(Routes) > 0 andalso registered_pool(Routes, M, F) of
        {ok, Pool} ->
            resolve(Pool);
        _ ->
            case {py_callback:caller(), get(?BOUND)} of
                {{Caller, _Chain}, _} ->
                    %% in a callback from Python: back to the calling context
                    {ok, Caller};
                {none, {_, _} = Bound} ->
                    case bound(Bound) of
                        {ok, _Pid, Ctx} -> {ok, Ctx};
                        {error, _} = Error -> Error
                    end;
                {none, undefined} ->
                    case pick(?DEFAULT) of
                        {ok, _Pid, Ctx} -> {ok, Ctx};
                        {error, {unknown_pool, _}} -> not_started()
                    end
            end
    end.

registered_pool(Routes, M, F) ->
    case maps:find({M, F}, Routes) of
        {ok, _} = Found -> Found;
        error -> maps:find(M, Routes)
    end.

pick(Name) ->
    case persistent_term:get(?POOL(Name), undefined) of
        undefined ->
            {error, {unknown_pool, Name}};
        Members ->
            I = (erlang:system_info(scheduler_id) - 1) rem tuple_size(Members) + 1,
            {Pid, Ctx} = element(I, Members),
            {ok, Pid, Ctx}
    end.

not_started() ->
    case whereis(?SERVER) of
        undefined -> {error, not_started};
        _ -> {error, no_contexts}
    end.

%% @doc Forget named pools and registrations (the application stops).
-spec forget() -> ok.
forget() ->
    _ = persistent_term:erase(?ROUTES),
    _ = persistent_term:erase(?SPECS),
    ok.

call(Request) ->
    try
        gen_server:call(?SERVER, Request, ?CALL_TIMEOUT)
    catch
        exit:{noproc, _} -> {error, not_started};
        exit:{shutdown, _} -> {error, not_started}
    end.

%%--------------------------------------------------------------------

-spec init([]) -> {ok, #state{}} | {stop, term()}.
init([]) ->
    process_flag(trap_exit, true),
    %% Leftovers of a previous router (it restarted alone) go.
    _ = [py_context_sup:stop_context(Pid) || Pid <- py_context_sup:contexts()],
    Specs = [{?DEFAULT, py_config:num_contexts(), auto}
             | maps:to_list(persistent_term:get(?SPECS, #{}))],
    start_pools(Specs, #state{}).

start_pools([], State) ->
    %% calls waiting for a restarted sidecar go on
    py_lifecycle:up(),
    {ok, State};
start_pools([{Name, {Size, Mode}} | Rest], State) ->
    start_pools([{Name, Size, Mode} | Rest], State);
start_pools([{Name, Size, Mode} | Rest], State) ->
    case do_start_pool(Name, Size, Mode, State) of
        {ok, State1} ->
            start_pools(Rest, State1);
        {error, Reason} when Name =:= ?DEFAULT ->
            {stop, {default_pool, Reason}};
        {error, Reason} ->
            logger:error("erlang_python: pool ~p not restarted: ~p", [Name, Reason]),
            start_pools(Rest, State)
    end.

-spec handle_call(term(), gen_server:from(), #state{}) -> {reply, term(), #state{}}.
handle_call({start_pool, Name, Size, Mode}, _From, #state{pools = Pools} = State) ->
    case Pools of
        #{Name := #pool{mode = Mode, members = Members}} when tuple_size(Members) =:= Size ->
            {reply, {ok, pids(Members)}, State};
        #{Name := _} ->
            {reply, {error, {already_started, Name}}, State};
        #{} ->
            case do_start_pool(Name, Size, Mode, State) of
                {ok, State1} ->
                    remember(Name, {Size, Mode}),
                    #{Name := #pool{members = Members}} = State1#state.pools,
                    {reply, {ok, pids(Members)}, State1};
                {error, _} = Error ->
                    {reply, Error, State}
            end
    end;
handle_call({stop_pool, Name}, _From, #state{pools = Pools} = State) ->
    case Pools of
        #{Name := Pool} ->
            State1 = do_stop_pool(Name, Pool, State),
            forget_spec(Name),
            {reply, ok, State1};
        #{} ->
            {reply, {error, {unknown_pool, Name}}, State}
    end;
handle_call({register_pool, Name, Key}, _From, State) ->
    persistent_term:put(?ROUTES, maps:put(Key, Name, persistent_term:get(?ROUTES, #{}))),
    {reply, ok, State};
handle_call({unregister_pool, Key}, _From, State) ->
    Routes = persistent_term:get(?ROUTES, #{}),
    case maps:is_key(Key, Routes) of
        true -> persistent_term:put(?ROUTES, maps:remove(Key, Routes));
        false -> ok
    end,
    {reply, ok, State};
handle_call(_Request, _From, State) ->
    {reply, {error, unknown_call}, State}.

-spec handle_cast(term(), State) -> {noreply, State}.
handle_cast(_Msg, State) ->
    {noreply, State}.

-spec handle_info(term(), #state{}) -> {noreply, #state{}} | {stop, term(), #state{}}.
handle_info({'DOWN', MRef, process, Pid, Reason}, #state{monitors = Mons} = State) ->
    case maps:take(MRef, Mons) of
        {{Name, Index}, Mons1} ->
            logger:warning("erlang_python: context ~p of pool ~p (~p) went down: ~p",
                           [Index, Name, Pid, Reason]),
            #{Name := #pool{members = Members}} = State#state.pools,
            {Pid, Ctx, MRef} = element(Index, Members),
            ok = py_context:cleanup(Pid, Ctx),
            replace(Name, Index, State#state{monitors = Mons1});
        error ->
            {noreply, State}
    end;
handle_info(_Msg, State) ->
    {noreply, State}.

-spec terminate(term(), #state{}) -> ok.
terminate(_Reason, #state{pools = Pools}) ->
    _ = [persistent_term:erase(?POOL(Name)) || Name <- maps:keys(Pools)],
    ok.

%%--------------------------------------------------------------------

do_start_pool(Name, Size, Mode, State) ->
    case start_members(Name, 1, Size, Mode, []) of
        {ok, Started} ->
            Members = list_to_tuple(
                        [{Pid, Ctx, erlang:monitor(process, Pid)} || {Pid, Ctx} <- Started]),
            Mons = lists:foldl(
                     fun(I, Acc) -> Acc#{element(3, element(I, Members)) => {Name, I}} end,
                     State#state.monitors, lists:seq(1, Size)),
            publish(Name, Members),
            {ok, State#state{pools = (State#state.pools)#{Name => #pool{mode = Mode,
                                                                        members = Members}},
                             monitors = Mons}};
        {error, _} = Error ->
            Error
    end.

start_members(_Name, I, Size, _Mode, Acc) when I > Size ->
    {ok, lists:reverse(Acc)};
start_members(Name, I, Size, Mode, Acc) ->
    case start_member(Name, I, Mode) of
        {ok, Member} ->
            start_members(Name, I + 1, Size, Mode, [Member | Acc]);
        {error, _} = Error ->
            _ = [py_context_sup:stop_context(Pid) || {Pid, _} <- Acc],
            Error
    end.

start_member(Name, I, Mode) ->
    case py_context_sup:start_context({Name, I}, Mode) of
        {ok, Pid} ->
            {ok, Ctx} = py_context:ctx_id(Pid),
            {ok, {Pid, Ctx}};
        {error, _} = Error ->
            Error
    end.

do_stop_pool(Name, #pool{members = Members}, #state{pools = Pools, monitors = Mons} = State) ->
    _ = persistent_term:erase(?POOL(Name)),
    Mons1 = lists:foldl(
              fun({Pid, _Ctx, MRef}, Acc) ->
                      erlang:demonitor(MRef, [flush]),
                      _ = py_context_sup:stop_context(Pid),
                      maps:remove(MRef, Acc)
              end,
              Mons, tuple_to_list(Members)),
    State#state{pools = maps:remove(Name, Pools), monitors = Mons1}.

replace(Name, Index, #state{pools = Pools, monitors = Mons} = State) ->
    #{Name := #pool{mode = Mode, members = Members} = Pool} = Pools,
    case start_member(Name, Index, Mode) of
        {ok, {Pid, Ctx}} ->
            MRef = erlang:monitor(process, Pid),
            Members1 = setelement(Index, Members, {Pid, Ctx, MRef}),
            publish(Name, Members1),
            {noreply, State#state{pools = Pools#{Name := Pool#pool{members = Members1}},
                                  monitors = Mons#{MRef => {Name, Index}}}};
        {error, Reason} ->
            {stop, {context_restart_failed, Name, Index, Reason}, State}
    end.

publish(Name, Members) ->
    persistent_term:put(?POOL(Name), list_to_tuple([{Pid, Ctx} || {Pid, Ctx, _} <- tuple_to_list(Members)])).

pids(Members) ->
    [Pid || {Pid, _, _} <- tuple_to_list(Members)].

remember(?DEFAULT, _Spec) ->
    ok;
remember(Name, Spec) ->
    persistent_term:put(?SPECS, maps:put(Name, Spec, persistent_term:get(?SPECS, #{}))).

forget_spec(Name) ->
    Specs = persistent_term:get(?SPECS, #{}),
    case maps:is_key(Name, Specs) of
        true -> persistent_term:put(?SPECS, maps:remove(Name, Specs));
        false -> ok
    end.
