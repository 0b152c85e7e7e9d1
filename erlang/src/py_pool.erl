%% @doc The pools of one sidecar: the process that starts their contexts
%% (under `py_context_sup'), monitors them and replaces one that dies at the
%% same index. There is one per sidecar, last in its `py_sidecar_sup', so it
%% restarts after every sidecar restart.
%%
%% It starts the default pool (`num_contexts' contexts, mode `auto') when it
%% starts, and named pools on request, and publishes each pool to
%% {@link py_route}, which callers read. Named pools and module
%% registrations (under `{py_pool, Sidecar, specs}' and py_route's routes)
%% survive a restart of this process (e.g. after a sidecar crash): the pools
%% are started again. They are forgotten when the sidecar stops
%% ({@link forget/1}).
%%
%% Its start waits, in `handle_continue/2', for the sidecar's port
%% (`py_sidecar:started/1'); once the pools run it tells the port owner
%% (`py_sidecar:contexts_up/1'), which declares the service up, so calls
%% waiting for a restart go on.
-module(py_pool).

-behaviour(gen_server).

-export([start_link/1, start_pool/4, stop_pool/2, register_pool/3, unregister_pool/2,
         forget/1]).
-export([init/1, handle_continue/2, handle_call/3, handle_cast/2, handle_info/2,
         terminate/2]).

-define(DEFAULT, default).
-define(SPECS(Sidecar), {?MODULE, Sidecar, specs}).
-define(CALL_TIMEOUT, 120000).

-record(pool, {mode :: py_context:mode(),
               members :: tuple()}).       % {Pid, CtxId, MRef} per index
-record(state, {sidecar :: atom(),
                pools = #{} :: #{atom() => #pool{}},
                monitors = #{} :: #{reference() => {atom(), pos_integer()}}}).

%% @doc Start sidecar `Sidecar''s pools.
-spec start_link(atom()) -> {ok, pid()} | {error, term()}.
start_link(Sidecar) ->
    gen_server:start_link({local, py_instance:name(?MODULE, Sidecar)}, ?MODULE, Sidecar, []).

%% @doc Start pool `Name' of `Size' contexts in sidecar `Sidecar'. `worker'
%% contexts run in the main interpreter, where extensions that refuse
%% sub-interpreters import. Starting a running pool again with the same size
%% and mode returns its contexts.
-spec start_pool(atom(), atom(), pos_integer(), py_context:mode()) ->
          {ok, [pid()]} | {error, term()}.
start_pool(Sidecar, Name, Size, Mode)
  when is_atom(Name), is_integer(Size), Size > 0,
       (Mode =:= auto orelse Mode =:= subinterp orelse Mode =:= owngil
        orelse Mode =:= worker) ->
    call(Sidecar, {start_pool, Name, Size, Mode});
start_pool(_Sidecar, Name, Size, Mode) ->
    {error, {badarg, {Name, Size, Mode}}}.

%% @doc Stop a pool of sidecar `Sidecar' and its contexts.
-spec stop_pool(atom(), atom()) -> ok | {error, {unknown_pool, atom()} | not_started}.
stop_pool(Sidecar, Name) ->
    call(Sidecar, {stop_pool, Name}).

%% @doc Route calls to `Module' (any function) or to `{Module, Function}' to
%% pool `Name' of sidecar `Sidecar'. The pool need not run yet; calls fail
%% with `{error, {unknown_pool, Name}}' while it does not.
-spec register_pool(atom(), atom(), term()) -> ok | {error, term()}.
register_pool(Sidecar, Name, Target) when is_atom(Name) ->
    case route_key(Target) of
        {ok, Key} -> call(Sidecar, {register_pool, Name, Key});
        {error, _} = Error -> Error
    end;
register_pool(_Sidecar, Name, _Target) ->
    {error, {badarg, {pool, Name}}}.

%% @doc Remove a registration made by {@link register_pool/3}.
-spec unregister_pool(atom(), term()) -> ok | {error, term()}.
unregister_pool(Sidecar, Target) ->
    case route_key(Target) of
        {ok, Key} -> call(Sidecar, {unregister_pool, Key});
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

%% @doc Forget sidecar `Sidecar''s named pools and registrations (it stops).
-spec forget(atom()) -> ok.
forget(Sidecar) ->
    ok = py_route:forget_routes(Sidecar),
    _ = persistent_term:erase(?SPECS(Sidecar)),
    ok.

call(Sidecar, Request) ->
    try
        gen_server:call(py_instance:name(?MODULE, Sidecar), Request, ?CALL_TIMEOUT)
    catch
        exit:{noproc, _} -> {error, not_started};
        exit:{shutdown, _} -> {error, not_started}
    end.

%%--------------------------------------------------------------------

%% @private
-spec init(atom()) -> {ok, #state{}, {continue, start}}.
init(Sidecar) ->
    process_flag(trap_exit, true),
    {ok, #state{sidecar = Sidecar}, {continue, start}}.

%% @private
-spec handle_continue(start, #state{}) -> {noreply, #state{}} | {stop, term(), #state{}}.
handle_continue(start, #state{sidecar = Sidecar} = State) ->
    case py_sidecar:started(Sidecar) of
        ok ->
            %% Leftovers of a previous py_pool (it restarted alone) go.
            _ = [py_context_sup:stop_context(Sidecar, Pid)
                 || Pid <- py_context_sup:contexts(Sidecar)],
            Specs = [{?DEFAULT, py_config:get(Sidecar, num_contexts), auto}
                     | maps:to_list(persistent_term:get(?SPECS(Sidecar), #{}))],
            start_pools(Specs, State);
        {error, _} ->
            %% the sidecar stopped: the supervisor restarts this process too
            {noreply, State}
    end.

start_pools([], #state{sidecar = Sidecar} = State) ->
    %% calls waiting for a restarted sidecar go on
    py_sidecar:contexts_up(Sidecar),
    {noreply, State};
start_pools([{Name, {Size, Mode}} | Rest], State) ->
    start_pools([{Name, Size, Mode} | Rest], State);
start_pools([{Name, Size, Mode} | Rest], State) ->
    case do_start_pool(Name, Size, Mode, State) of
        {ok, State1} ->
            start_pools(Rest, State1);
        {error, Reason} when Name =:= ?DEFAULT ->
            py_lifecycle:start_failed(State#state.sidecar, {default_pool, Reason}),
            {stop, {default_pool, Reason}, State};
        {error, Reason} ->
            logger:error("erlang_python: pool ~p~ts not restarted: ~p",
                         [Name, py_instance:label(State#state.sidecar), Reason]),
            start_pools(Rest, State)
    end.

%% @private
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
                    remember(State#state.sidecar, Name, {Size, Mode}),
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
            forget_spec(State#state.sidecar, Name),
            {reply, ok, State1};
        #{} ->
            {reply, {error, {unknown_pool, Name}}, State}
    end;
handle_call({register_pool, Name, Key}, _From, #state{sidecar = Sidecar} = State) ->
    ok = py_route:set_routes(Sidecar, maps:put(Key, Name, py_route:routes(Sidecar))),
    {reply, ok, State};
handle_call({unregister_pool, Key}, _From, #state{sidecar = Sidecar} = State) ->
    Routes = py_route:routes(Sidecar),
    case maps:is_key(Key, Routes) of
        true -> ok = py_route:set_routes(Sidecar, maps:remove(Key, Routes));
        false -> ok
    end,
    {reply, ok, State};
handle_call(_Request, _From, State) ->
    {reply, {error, unknown_call}, State}.

%% @private
-spec handle_cast(term(), State) -> {noreply, State}.
handle_cast(_Msg, State) ->
    {noreply, State}.

%% @private
-spec handle_info(term(), #state{}) -> {noreply, #state{}} | {stop, term(), #state{}}.
handle_info({'DOWN', MRef, process, Pid, Reason}, #state{monitors = Mons} = State) ->
    case maps:take(MRef, Mons) of
        {{Name, Index}, Mons1} ->
            logger:warning("erlang_python: context ~p of pool ~p~ts (~p) went down: ~p",
                           [Index, Name, py_instance:label(State#state.sidecar), Pid, Reason]),
            #{Name := #pool{members = Members}} = State#state.pools,
            {Pid, Ctx, MRef} = element(Index, Members),
            ok = py_context:cleanup(State#state.sidecar, Pid, Ctx),
            replace(Name, Index, State#state{monitors = Mons1});
        error ->
            {noreply, State}
    end;
handle_info(_Msg, State) ->
    {noreply, State}.

%% @private
-spec terminate(term(), #state{}) -> ok.
terminate(_Reason, #state{sidecar = Sidecar, pools = Pools}) ->
    _ = [py_route:unpublish(Sidecar, Name) || Name <- maps:keys(Pools)],
    ok.

%%--------------------------------------------------------------------

do_start_pool(Name, Size, Mode, #state{sidecar = Sidecar} = State) ->
    case start_members(Sidecar, Name, 1, Size, Mode, []) of
        {ok, Started} ->
            Members = list_to_tuple(
                        [{Pid, Ctx, erlang:monitor(process, Pid)} || {Pid, Ctx} <- Started]),
            Mons = lists:foldl(
                     fun(I, Acc) -> Acc#{element(3, element(I, Members)) => {Name, I}} end,
                     State#state.monitors, lists:seq(1, Size)),
            publish(Sidecar, Name, Members),
            {ok, State#state{pools = (State#state.pools)#{Name => #pool{mode = Mode,
                                                                        members = Members}},
                             monitors = Mons}};
        {error, _} = Error ->
            Error
    end.

start_members(_Sidecar, _Name, I, Size, _Mode, Acc) when I > Size ->
    {ok, lists:reverse(Acc)};
start_members(Sidecar, Name, I, Size, Mode, Acc) ->
    case start_member(Sidecar, Name, I, Mode) of
        {ok, Member} ->
            start_members(Sidecar, Name, I + 1, Size, Mode, [Member | Acc]);
        {error, _} = Error ->
            _ = [py_context_sup:stop_context(Sidecar, Pid) || {Pid, _} <- Acc],
            Error
    end.

start_member(Sidecar, Name, I, Mode) ->
    case py_context_sup:start_context(Sidecar, {Name, I}, Mode) of
        {ok, Pid} ->
            {ok, Ctx} = py_context:ctx_id(Pid),
            {ok, {Pid, Ctx}};
        {error, _} = Error ->
            Error
    end.

do_stop_pool(Name, #pool{members = Members},
             #state{sidecar = Sidecar, pools = Pools, monitors = Mons} = State) ->
    ok = py_route:unpublish(Sidecar, Name),
    Mons1 = lists:foldl(
              fun({Pid, _Ctx, MRef}, Acc) ->
                      erlang:demonitor(MRef, [flush]),
                      _ = py_context_sup:stop_context(Sidecar, Pid),
                      maps:remove(MRef, Acc)
              end,
              Mons, tuple_to_list(Members)),
    State#state{pools = maps:remove(Name, Pools), monitors = Mons1}.

replace(Name, Index, #state{sidecar = Sidecar, pools = Pools, monitors = Mons} = State) ->
    #{Name := #pool{mode = Mode, members = Members} = Pool} = Pools,
    case start_member(Sidecar, Name, Index, Mode) of
        {ok, {Pid, Ctx}} ->
            MRef = erlang:monitor(process, Pid),
            Members1 = setelement(Index, Members, {Pid, Ctx, MRef}),
            publish(Sidecar, Name, Members1),
            {noreply, State#state{pools = Pools#{Name := Pool#pool{members = Members1}},
                                  monitors = Mons#{MRef => {Name, Index}}}};
        {error, Reason} ->
            {stop, {context_restart_failed, Name, Index, Reason}, State}
    end.

publish(Sidecar, Name, Members) ->
    py_route:publish(Sidecar, Name,
                     list_to_tuple([{Pid, Ctx} || {Pid, Ctx, _} <- tuple_to_list(Members)])).

pids(Members) ->
    [Pid || {Pid, _, _} <- tuple_to_list(Members)].

remember(_Sidecar, ?DEFAULT, _Spec) ->
    ok;
remember(Sidecar, Name, Spec) ->
    persistent_term:put(?SPECS(Sidecar),
                        maps:put(Name, Spec, persistent_term:get(?SPECS(Sidecar), #{}))).

forget_spec(Sidecar, Name) ->
    Specs = persistent_term:get(?SPECS(Sidecar), #{}),
    case maps:is_key(Name, Specs) of
        true -> persistent_term:put(?SPECS(Sidecar), maps:remove(Name, Specs));
        false -> ok
    end.
