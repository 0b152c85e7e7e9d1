%% @doc Routing of calls to contexts, in the calling process: no process of
%% its own and no message, `persistent_term' and process-dictionary reads
%% only (API.md section 3). `py_pool' publishes each pool here as a tuple of
%% `{Pid, CtxId}' ({@link publish/3}); callers pick from it.
%%
%% A pool is named by a pool reference: an atom for a pool of the default
%% sidecar (`default' being its default pool), `{Sidecar, Pool}' for a pool
%% of another sidecar. A context pid is used as is, whichever sidecar holds
%% it. Calls resolve to `{ok, Sidecar, CtxId}'.
%%
%% Routing of a call without an explicit context ({@link route/3}), in the
%% sidecar of the callback it is made in, if any, else the default sidecar
%% ({@link sidecar/0}):
%% <ol>
%% <li>a pool registered for `{Module, Function}', then for `Module'
%%     (`py_context_router:register_pool/2'), where the caller's binding in
%%     that pool ({@link bind_context/2}) is taken first;</li>
%% <li>in a callback from Python, the context that called it;</li>
%% <li>the caller's bound context ({@link bind_context/1});</li>
%% <li>the default pool's context for the caller's scheduler, the one of
%%     its first such call: later ones go to the same context, so that a
%%     process that moved to another scheduler still finds its environment
%%     there.</li>
%% </ol>
-module(py_route).

-export([route/2, route/3, route_up/3, resolve/1, resolve_up/2, target_up/4, sidecar/0, sidecar_of/1, ref/1,
         get_context/0, get_context/1, bind_context/1, unbind_context/0,
         pool_context/1, bind_context/2, unbind_context/1, lookup/3,
         num_contexts/1, pool_contexts/1, pool_ctx_ids/1, is_pool/1]).
-export([publish/3, unpublish/2, routes/1, set_routes/2, forget_routes/1]).

-define(DEFAULT, default).
-define(POOL(Sidecar, Name), {?MODULE, Sidecar, {pool, Name}}).
-define(ROUTES(Sidecar), {?MODULE, Sidecar, routes}).
-define(BOUND, '$py_bound_context').
%% the caller's binding in one pool (bind_context/2), other than the
%% default sidecar's default pool, whose binding is ?BOUND
-define(BOUND(Sidecar, Name), {'$py_bound_context', Sidecar, Name}).
%% the index of the context the caller's first pick in a pool gave (pick/2)
-define(PICKED(Sidecar, Name), {'$py_picked_context', Sidecar, Name}).

-type pool_ref() :: atom() | {atom(), atom()}.
-type route_key() :: binary() | {binary(), binary()}.
-export_type([pool_ref/0, route_key/0]).

%%--------------------------------------------------------------------
%% Pool references

%% @doc `{ok, Sidecar, Pool}' for a pool reference, `error' for anything else.
-spec ref(term()) -> {ok, atom(), atom()} | error.
ref(Name) when is_atom(Name) -> {ok, ?DEFAULT, Name};
ref({Sidecar, Name}) when is_atom(Sidecar), is_atom(Name) -> {ok, Sidecar, Name};
ref(_) -> error.

%% @doc The sidecar of a call without an explicit context: that of the
%% callback from Python the caller runs, else the default sidecar.
-spec sidecar() -> atom().
sidecar() ->
    case py_callback:callback() of
        {Sidecar, _Ctx, _Chain} -> Sidecar;
        none -> ?DEFAULT
    end.

%% @doc The sidecar a target names without a lookup: that of a
%% `{Sidecar, Pool}', else the default sidecar.
-spec sidecar_of(term()) -> atom().
sidecar_of({Sidecar, Name}) when is_atom(Sidecar), is_atom(Name) -> Sidecar;
sidecar_of(_) -> ?DEFAULT.

%%--------------------------------------------------------------------
%% Contexts of the default pool, bound contexts

%% @doc The caller's bound context, else the default pool's context for the
%% caller's scheduler. Fails with `{error, not_started}' without a pool.
-spec get_context() -> pid() | {error, not_started}.
get_context() ->
    case get(?BOUND) of
        {_, _} = Bound ->
            case bound(?BOUND, Bound) of
                {ok, Pid, _Sidecar, _Ctx} -> Pid;
                {error, _} -> {error, not_started}
            end;
        undefined ->
            case pick(?DEFAULT, ?DEFAULT) of
                {ok, Pid, _Ctx} -> Pid;
                {error, _} -> {error, not_started}
            end
    end.

%% @doc The context of pool `Ref' for the caller: its binding in that pool
%% ({@link bind_context/2}), else the pool's context for the caller's
%% scheduler. The default pool's binding is {@link bind_context/1}'s.
-spec pool_context(term()) -> pid() | {error, {unknown_pool, term()} | not_started | no_contexts}.
pool_context(Ref) ->
    case ref(Ref) of
        {ok, ?DEFAULT, ?DEFAULT} ->
            get_context();
        {ok, Sidecar, Name} ->
            case in_pool(Sidecar, Name) of
                {ok, Pid, _Sidecar, _Ctx} -> Pid;
                {error, {unknown_pool, _}} -> {error, {unknown_pool, Ref}};
                {error, _} = Error -> Error
            end;
        error ->
            {error, {unknown_pool, Ref}}
    end.

%% The caller's context in pool Name of Sidecar: its binding there, else
%% the one of its scheduler.
in_pool(Sidecar, Name) ->
    Key = bound_key(Sidecar, Name),
    case get(Key) of
        {_, _} = Bound ->
            bound(Key, Bound);
        undefined ->
            case pick(Sidecar, Name) of
                {ok, Pid, Ctx} -> {ok, Pid, Sidecar, Ctx};
                {error, _} = Error -> Error
            end
    end.

bound_key(?DEFAULT, ?DEFAULT) -> ?BOUND;
bound_key(Sidecar, Name) -> ?BOUND(Sidecar, Name).

%% @doc Context N (1-based) of the default pool.
-spec get_context(pos_integer()) -> pid() | {error, {bad_context, term()} | not_started}.
get_context(N) ->
    case persistent_term:get(?POOL(?DEFAULT, ?DEFAULT), undefined) of
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
    bind(?BOUND, Pid).

%% @doc Send the caller's calls that go to pool `Pool' (by a registration,
%% {@link route/2}, or named, {@link resolve/1}) to `Pid' until
%% {@link unbind_context/1}, as the NIF 2.x's `bind_context(Pool, Pid)'.
%% The default pool's binding is that of {@link bind_context/1}. `Pid' may
%% be any context (the NIF checks nothing either); as with
%% {@link bind_context/1}, a context of a pool is bound by its place.
-spec bind_context(term(), term()) ->
          ok | {error, {badarg, {pool, term()}} | {bad_context, term()} | not_started}.
bind_context(Pool, Pid) ->
    case ref(Pool) of
        {ok, Sidecar, Name} -> bind(bound_key(Sidecar, Name), Pid);
        error -> {error, {badarg, {pool, Pool}}}
    end.

bind(Key, Pid) ->
    case py_context:where(Pid) of
        {ok, Sidecar, _} ->
            {ok, Label} = py_context:label(Pid),
            put(Key, {Pid, {Sidecar, Label}}),
            ok;
        {error, _} = Error ->
            Error
    end.

%% The bound context (held under Key), or the one that took its place in
%% its pool.
bound(Key, {Pid, Place}) ->
    case py_context:where(Pid) of
        {ok, Sidecar, Ctx} -> {ok, Pid, Sidecar, Ctx};
        {error, _} = Error -> successor(Key, Place, Error)
    end.

successor(Key, {Sidecar, {Name, I}} = Place, Error) when is_atom(Name), is_integer(I) ->
    case persistent_term:get(?POOL(Sidecar, Name), undefined) of
        Members when is_tuple(Members), I =< tuple_size(Members) ->
            {Pid, Ctx} = element(I, Members),
            put(Key, {Pid, Place}),
            {ok, Pid, Sidecar, Ctx};
        _ ->
            %% no pool yet: its contexts are being started again
            case py_lifecycle:state(Sidecar) of
                restarting -> {error, no_contexts};
                _ -> Error
            end
    end;
successor(_Key, _Place, Error) ->
    Error.

%% @doc Forget the caller's bound context.
-spec unbind_context() -> ok.
unbind_context() ->
    erase(?BOUND),
    ok.

%% @doc Forget the caller's binding in pool `Pool' ({@link bind_context/2}).
-spec unbind_context(term()) -> ok | {error, {badarg, {pool, term()}}}.
unbind_context(Pool) ->
    case ref(Pool) of
        {ok, Sidecar, Name} -> erase(bound_key(Sidecar, Name)), ok;
        error -> {error, {badarg, {pool, Pool}}}
    end.

%%--------------------------------------------------------------------
%% Pools

%% @doc Number of contexts in a pool (0 when it does not run).
-spec num_contexts(pool_ref()) -> non_neg_integer().
num_contexts(Ref) ->
    case members(Ref) of
        undefined -> 0;
        Members -> tuple_size(Members)
    end.

%% @doc The contexts of a pool, in order.
-spec pool_contexts(pool_ref()) -> {ok, [pid()]} | {error, {unknown_pool, term()}}.
pool_contexts(Ref) ->
    case members(Ref) of
        undefined -> {error, {unknown_pool, Ref}};
        Members -> {ok, [Pid || {Pid, _} <- tuple_to_list(Members)]}
    end.

%% @doc The sidecar context ids of a pool, in order.
-spec pool_ctx_ids(pool_ref()) -> {ok, [pos_integer()]} | {error, {unknown_pool, term()}}.
pool_ctx_ids(Ref) ->
    case members(Ref) of
        undefined -> {error, {unknown_pool, Ref}};
        Members -> {ok, [Ctx || {_, Ctx} <- tuple_to_list(Members)]}
    end.

%% @doc Whether `Ref' is a running pool.
-spec is_pool(term()) -> boolean().
is_pool(Ref) ->
    members(Ref) =/= undefined.

members(Ref) ->
    case ref(Ref) of
        {ok, Sidecar, Name} -> persistent_term:get(?POOL(Sidecar, Name), undefined);
        error -> undefined
    end.

%% @doc Publish pool `Name' of sidecar `Sidecar', a tuple of `{Pid, CtxId}'
%% (py_pool, whenever a member changes).
-spec publish(atom(), atom(), tuple()) -> ok.
publish(Sidecar, Name, Members) ->
    persistent_term:put(?POOL(Sidecar, Name), Members).

%% @doc Pool `Name' of sidecar `Sidecar' is gone (py_pool).
-spec unpublish(atom(), atom()) -> ok.
unpublish(Sidecar, Name) ->
    _ = persistent_term:erase(?POOL(Sidecar, Name)),
    ok.

%% @doc The registrations of sidecar `Sidecar': route key -> pool name.
-spec routes(atom()) -> #{route_key() => atom()}.
routes(Sidecar) ->
    persistent_term:get(?ROUTES(Sidecar), #{}).

%% @doc Replace the registrations of sidecar `Sidecar' (py_pool).
-spec set_routes(atom(), #{route_key() => atom()}) -> ok.
set_routes(Sidecar, Routes) ->
    persistent_term:put(?ROUTES(Sidecar), Routes).

%% @doc Forget the registrations of sidecar `Sidecar'.
-spec forget_routes(atom()) -> ok.
forget_routes(Sidecar) ->
    _ = persistent_term:erase(?ROUTES(Sidecar)),
    ok.

%%--------------------------------------------------------------------
%% Routing (in the caller, no messages)

%% @doc The sidecar and context id for an explicit target: a context pid, or
%% a pool reference (the caller's binding in that pool, else the pool's
%% context for the caller's scheduler).
-spec resolve(term()) -> {ok, atom(), pos_integer()} | {error, term()}.
resolve(Pid) when is_pid(Pid) ->
    py_context:where(Pid);
resolve(Target) ->
    case ref(Target) of
        {ok, Sidecar, Name} ->
            case in_pool(Sidecar, Name) of
                {ok, _Pid, CtxSidecar, Ctx} -> {ok, CtxSidecar, Ctx};
                {error, {unknown_pool, _}} -> {error, {unknown_pool, Target}};
                {error, _} = Error -> Error
            end;
        error ->
            {error, {bad_context, Target}}
    end.

%% @doc The context id for a call of `Module.Function' (binaries) without an
%% explicit target, in sidecar `Sidecar' (see {@link sidecar/0}): registered
%% pool, the calling context in a callback from Python, bound context,
%% default pool.
-spec route(atom(), binary() | undefined, binary() | undefined) ->
          {ok, atom(), pos_integer()} | {error, term()}.
route(Sidecar, M, F) ->
    route(Sidecar, py_callback:caller(Sidecar), M, F).

%% @doc {@link route/3} in the sidecar of the callback the caller runs in,
%% if any, else the default sidecar ({@link sidecar/0}), reading the
%% callback once: the path of every `py:call' without a target.
-spec route(binary() | undefined, binary() | undefined) ->
          {ok, atom(), pos_integer()} | {error, term()}.
route(M, F) ->
    case py_callback:callback() of
        {Sidecar, Ctx, Chain} -> route(Sidecar, {Ctx, Chain}, M, F);
        none -> route(?DEFAULT, none, M, F)
    end.

%% @doc {@link route/2} once the sidecar it names is up: during a restart
%% of that sidecar (or when the route fails, as when no sidecar is up yet)
%% it waits for it, at most `Timeout' ms ({@link py_lifecycle:when_up/3}),
%% and routes again then.
-spec route_up(binary() | undefined, binary() | undefined, timeout()) ->
          {ok, atom(), pos_integer()} | {error, term()}.
route_up(M, F, Timeout) ->
    case route(M, F) of
        {ok, Sidecar, _Ctx} = Found ->
            case py_lifecycle:state(Sidecar) of
                up -> Found;
                _ -> py_lifecycle:when_up(Sidecar, Timeout, fun() -> route(M, F) end)
            end;
        {error, _} ->
            py_lifecycle:when_up(sidecar(), Timeout, fun() -> route(M, F) end)
    end.

%% @doc {@link resolve/1} once the sidecar of `Target' (a context pid or a
%% pool reference) is up, as {@link route_up/3} waits for a route.
-spec resolve_up(term(), timeout()) -> {ok, atom(), pos_integer()} | {error, term()}.
resolve_up(Target, Timeout) ->
    case resolve(Target) of
        {ok, Sidecar, _Ctx} = Found ->
            case py_lifecycle:state(Sidecar) of
                up -> Found;
                _ -> py_lifecycle:when_up(Sidecar, Timeout, fun() -> resolve(Target) end)
            end;
        {error, _} ->
            py_lifecycle:when_up(sidecar_of(Target), Timeout, fun() -> resolve(Target) end)
    end.

%% @doc The sidecar and context of a request for `Target': `route' (the
%% caller's route for `Module.Function', {@link route_up/3}) or a context
%% pid or pool reference ({@link resolve_up/2}), after the restart of that
%% sidecar under way if there is one. The target (or the route) is looked
%% up first, as it names its sidecar; when the lookup fails, or finds a
%% sidecar that restarts, it is looked up again once that sidecar is up.
-spec target_up(term(), binary() | undefined, binary() | undefined, timeout()) ->
          {ok, atom(), pos_integer()} | {error, term()}.
target_up(route, M, F, Timeout) -> route_up(M, F, Timeout);
target_up(Target, _M, _F, Timeout) -> resolve_up(Target, Timeout).

%% InCallback: py_callback:caller/1 of that sidecar.
route(Sidecar, InCallback, M, F) ->
    Routes = routes(Sidecar),
    case map_size(Routes) > 0 andalso registered_pool(Routes, M, F) of
        {ok, Pool} ->
            resolve(case Sidecar of ?DEFAULT -> Pool; _ -> {Sidecar, Pool} end);
        _ ->
            case {InCallback, get(?BOUND)} of
                {{Caller, _Chain}, _} ->
                    %% in a callback from Python: back to the calling context
                    {ok, Sidecar, Caller};
                {none, {_, _} = Bound} ->
                    case bound(?BOUND, Bound) of
                        {ok, _Pid, BoundSidecar, Ctx} -> {ok, BoundSidecar, Ctx};
                        {error, _} = Error -> Error
                    end;
                {none, undefined} ->
                    case pick(Sidecar, ?DEFAULT) of
                        {ok, _Pid, Ctx} -> {ok, Sidecar, Ctx};
                        {error, {unknown_pool, _}} -> not_started(Sidecar)
                    end
            end
    end.

%% @doc The pool registered for `Module.Function' (binaries) in sidecar
%% `Sidecar': that of `{Module, Function}', else that of `Module', else
%% `default'.
-spec lookup(atom(), binary(), binary()) -> atom().
lookup(Sidecar, M, F) ->
    case registered_pool(routes(Sidecar), M, F) of
        {ok, Pool} -> Pool;
        error -> ?DEFAULT
    end.

registered_pool(Routes, M, F) ->
    case maps:find({M, F}, Routes) of
        {ok, _} = Found -> Found;
        error -> maps:find(M, Routes)
    end.

%% The context of the caller's scheduler at its first pick in the pool,
%% kept for its later picks (by index, which a replaced context keeps): a
%% process that migrates to another scheduler still finds its environment
%% (what its py:exec defined) in the context it used before.
pick(Sidecar, Name) ->
    case persistent_term:get(?POOL(Sidecar, Name), undefined) of
        undefined ->
            {error, {unknown_pool, Name}};
        Members ->
            Key = ?PICKED(Sidecar, Name),
            I = case get(Key) of
                    Kept when is_integer(Kept), Kept =< tuple_size(Members) ->
                        Kept;
                    _ ->
                        New = (erlang:system_info(scheduler_id) - 1) rem tuple_size(Members) + 1,
                        put(Key, New),
                        New
                end,
            {Pid, Ctx} = element(I, Members),
            {ok, Pid, Ctx}
    end.

not_started(Sidecar) ->
    case whereis(py_instance:name(py_pool, Sidecar)) of
        undefined -> {error, not_started};
        _ -> {error, no_contexts}
    end.
