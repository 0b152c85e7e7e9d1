%% @doc Pools of contexts and routing of calls to them (API.md section 3):
%% the API, over the two halves that do the work:
%% <ul>
%% <li>{@link py_pool}, a process per sidecar, starts the pools (the
%%     default pool, `num_contexts' contexts of mode `auto', when it starts;
%%     named pools on request), monitors their contexts and replaces one
%%     that dies at the same index. Named pools and module registrations
%%     survive a restart (e.g. after a sidecar crash): the pools are started
%%     again. They are forgotten when the application stops.</li>
%% <li>{@link py_route}, in the caller, picks a context: each pool is
%%     published in `persistent_term' as a tuple of `{Pid, CtxId}', so
%%     picking one costs a `persistent_term' read and no message.</li>
%% </ul>
%%
%% Routing of a call without an explicit context:
%% <ol>
%% <li>a pool registered for `{Module, Function}', then for `Module'
%%     ({@link register_pool/2}): there, the caller's binding in that pool
%%     ({@link bind_context/2}), else the pool's context for its
%%     scheduler;</li>
%% <li>the caller's bound context ({@link bind_context/1});</li>
%% <li>the default pool's context for the caller's scheduler.</li>
%% </ol>
%% A call on a named pool (`py:call(io, M, F, A)') takes the caller's
%% binding in that pool too, as in the NIF 2.x.
%%
%% Pools are named by atoms, those of the default sidecar; `{Sidecar, Pool}'
%% names a pool of another sidecar (see {@link erlang_python}), e.g.
%% `contexts({other, default})'.
-module(py_context_router).

-behaviour(gen_server).

-export([start_link/0,
         start/0, start/1, stop/0, started/0, is_started/0,
         get_context/0, get_context/1, bind_context/1, unbind_context/0,
         bind_context/2, unbind_context/1,
         num_contexts/0, contexts/0,
         start_pool/2, start_pool/3, stop_pool/1, pool_started/1,
         pool_contexts/1, pool_ctx_ids/1, is_pool/1,
         register_pool/2, register_pool/3, unregister_pool/1, unregister_pool/2,
         lookup_pool/2, list_pool_registrations/0,
         resolve/1, route/2, forget/0]).
-export([num_contexts/1, contexts/1]).
%% the gen_server callbacks of the default sidecar's py_pool, which this
%% module was before it became the API in front of py_pool and py_route
-export([init/1, handle_call/3, handle_cast/2, handle_info/2, terminate/2]).
-export([handle_continue/2]).

-define(DEFAULT, default).

-type pool_name() :: atom().
-type pool_ref() :: py_route:pool_ref().
-type route_key() :: module() | binary() | {module() | binary(), atom() | binary()}.
-type target() :: pid() | pool_ref().
-export_type([pool_name/0, pool_ref/0, target/0]).

%% @doc Start the default sidecar's pool process (py_pool).
-spec start_link() -> {ok, pid()} | {error, term()}.
start_link() ->
    py_pool:start_link(?DEFAULT).

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
            py_pool:start_pool(?DEFAULT, ?DEFAULT, Size, auto)
    end.

%% @doc Stop the default pool.
-spec stop() -> ok.
stop() ->
    _ = stop_pool(?DEFAULT),
    ok.

%% @doc Whether the default pool runs.
-spec started() -> boolean().
started() ->
    py_route:is_pool(?DEFAULT).

%% @doc Whether the default pool runs (the NIF 2.x's name of {@link started/0}).
-spec is_started() -> boolean().
is_started() ->
    started().

%% @doc The caller's bound context, else the default pool's context for the
%% caller's scheduler. Fails with `{error, not_started}' without a pool.
-spec get_context() -> pid() | {error, not_started}.
get_context() ->
    py_route:get_context().

%% @doc Context N (1-based) of the default pool, or, given a pool (an atom,
%% or `{Sidecar, Pool}'), the caller's context in it: its binding there
%% ({@link bind_context/2}), else the pool's context for the caller's
%% scheduler. `{error, {unknown_pool, Pool}}' when that pool does not run.
-spec get_context(pos_integer() | pool_ref()) ->
          pid() | {error, {bad_context, term()} | {unknown_pool, term()} | not_started
                   | no_contexts}.
get_context(N) when is_integer(N) ->
    py_route:get_context(N);
get_context(Pool) when is_atom(Pool); is_tuple(Pool) ->
    py_route:pool_context(Pool);
get_context(Other) ->
    {error, {bad_context, Other}}.

%% @doc Send the caller's calls without an explicit context to `Pid' until
%% {@link unbind_context/0}. The binding is to the context's place in its
%% pool: after a sidecar restart it goes on with the context that took
%% that place.
-spec bind_context(pid()) -> ok | {error, {bad_context, term()} | not_started}.
bind_context(Pid) ->
    py_route:bind_context(Pid).

%% @doc Forget the caller's bound context.
-spec unbind_context() -> ok.
unbind_context() ->
    py_route:unbind_context().

%% @doc Send the caller's calls that go to pool `Pool' (registered for
%% their module or function, or named: `py:call(Pool, M, F, A)') to `Pid'
%% until {@link unbind_context/1}. `bind_context(default, Pid)' is
%% {@link bind_context/1}.
-spec bind_context(pool_ref(), pid()) ->
          ok | {error, {badarg, {pool, term()}} | {bad_context, term()} | not_started}.
bind_context(Pool, Pid) ->
    py_route:bind_context(Pool, Pid).

%% @doc Forget the caller's binding in pool `Pool'.
-spec unbind_context(pool_ref()) -> ok | {error, {badarg, {pool, term()}}}.
unbind_context(Pool) ->
    py_route:unbind_context(Pool).

%% @doc Number of contexts in the default pool (0 when stopped).
-spec num_contexts() -> non_neg_integer().
num_contexts() ->
    py_route:num_contexts(?DEFAULT).

%% @doc Number of contexts in a pool (0 when it does not run).
-spec num_contexts(pool_ref()) -> non_neg_integer().
num_contexts(Pool) ->
    py_route:num_contexts(Pool).

%% @doc The contexts of the default pool, in order.
-spec contexts() -> [pid()].
contexts() ->
    contexts(?DEFAULT).

%% @doc The contexts of a pool, in order (`[]' when it does not run), e.g.
%% `contexts({Sidecar, default})' for another sidecar's default pool.
-spec contexts(pool_ref()) -> [pid()].
contexts(Pool) ->
    case pool_contexts(Pool) of
        {ok, Pids} -> Pids;
        {error, _} -> []
    end.

%%--------------------------------------------------------------------
%% Named pools

%% @doc Start a named pool of `Size' contexts of mode `auto'
%% ({@link start_pool/3}).
-spec start_pool(pool_ref(), pos_integer()) -> {ok, [pid()]} | {error, term()}.
start_pool(Pool, Size) ->
    start_pool(Pool, Size, auto).

%% @doc Start a named pool of `Size' contexts. `worker' contexts run in the main
%% interpreter, where extensions that refuse sub-interpreters import; `owngil'
%% ones are own-GIL sub-interpreters (Python 3.12+, see {@link py_context}).
%% Starting a running pool again with the same size and mode returns its
%% contexts.
-spec start_pool(pool_ref(), pos_integer(), py_context:mode()) ->
          {ok, [pid()]} | {error, term()}.
start_pool(Pool, Size, Mode) ->
    case py_route:ref(Pool) of
        {ok, Sidecar, Name} -> py_pool:start_pool(Sidecar, Name, Size, Mode);
        error -> {error, {badarg, {Pool, Size, Mode}}}
    end.

%% @doc Stop a pool and its contexts.
-spec stop_pool(pool_ref()) -> ok | {error, {unknown_pool, pool_name()} | not_started}.
stop_pool(Pool) ->
    case py_route:ref(Pool) of
        {ok, Sidecar, Name} -> py_pool:stop_pool(Sidecar, Name);
        error -> {error, {unknown_pool, Pool}}
    end.

%% @doc The contexts of a pool, in order.
-spec pool_contexts(pool_ref()) -> {ok, [pid()]} | {error, {unknown_pool, term()}}.
pool_contexts(Pool) ->
    py_route:pool_contexts(Pool).

%% @doc The sidecar context ids of a pool, in order.
-spec pool_ctx_ids(pool_ref()) -> {ok, [pos_integer()]} | {error, {unknown_pool, term()}}.
pool_ctx_ids(Pool) ->
    py_route:pool_ctx_ids(Pool).

%% @doc Whether `Pool' is a running pool.
-spec is_pool(term()) -> boolean().
is_pool(Pool) ->
    py_route:is_pool(Pool).

%% @doc Whether pool `Pool' runs (the NIF 2.x's name of {@link is_pool/1}).
-spec pool_started(term()) -> boolean().
pool_started(Pool) ->
    is_pool(Pool).

%% @doc Route calls to `Module' (any function) or to `{Module, Function}' to
%% pool `Name'. The pool need not run yet; calls fail with
%% `{error, {unknown_pool, Name}}' while it does not.
-spec register_pool(pool_name(), route_key()) -> ok | {error, term()}.
register_pool(Name, Target) ->
    py_pool:register_pool(?DEFAULT, Name, Target).

%% @doc Route calls to `Module.Function' to pool `Name':
%% `register_pool(Name, {Module, Function})'.
-spec register_pool(pool_name(), module() | binary(), atom() | binary()) -> ok | {error, term()}.
register_pool(Name, Module, Function) ->
    register_pool(Name, {Module, Function}).

%% @doc Remove a registration made by {@link register_pool/2}.
-spec unregister_pool(route_key()) -> ok | {error, term()}.
unregister_pool(Target) ->
    py_pool:unregister_pool(?DEFAULT, Target).

%% @doc Remove a registration made by {@link register_pool/3}.
-spec unregister_pool(module() | binary(), atom() | binary()) -> ok | {error, term()}.
unregister_pool(Module, Function) ->
    unregister_pool({Module, Function}).

%% @doc The pool a call of `Module.Function' without an explicit context
%% goes to: the one registered for `{Module, Function}', else for `Module',
%% else `default'.
-spec lookup_pool(module() | binary(), atom() | binary()) ->
          pool_name() | {error, {badarg, term()}}.
lookup_pool(Module, Function) ->
    case {py_payload:name(module, Module), py_payload:name(function, Function)} of
        {{ok, M}, {ok, F}} -> py_route:lookup(?DEFAULT, M, F);
        {{error, _} = Error, _} -> Error;
        {_, {error, _} = Error} -> Error
    end.

%% @doc Every registration, as in the NIF 2.x: `{{Module, '_'}, Pool}' for
%% a module, `{{Module, Function}, Pool}' for a function, sorted. Names are
%% atoms (binaries for a name that is no atom).
-spec list_pool_registrations() ->
          [{{atom() | binary(), atom() | binary()}, pool_name()}].
list_pool_registrations() ->
    lists:sort([{registration(Key), Pool}
                || {Key, Pool} <- maps:to_list(py_route:routes(?DEFAULT))]).

registration({M, F}) -> {name(M), name(F)};
registration(M) -> {name(M), '_'}.

name(Bin) ->
    try binary_to_existing_atom(Bin, utf8)
    catch error:badarg -> Bin
    end.

%%--------------------------------------------------------------------
%% Routing (in the caller, no messages)

%% @doc The sidecar context id for an explicit target: a context pid or a pool
%% (the pool's context for the caller's scheduler).
-spec resolve(term()) -> {ok, pos_integer()} | {error, term()}.
resolve(Target) ->
    case py_route:resolve(Target) of
        {ok, _Sidecar, Ctx} -> {ok, Ctx};
        {error, _} = Error -> Error
    end.

%% @doc The sidecar context id for a call of `Module.Function' (binaries)
%% without an explicit target: registered pool, the calling context in a
%% callback from Python, bound context, default pool.
-spec route(binary() | undefined, binary() | undefined) -> {ok, pos_integer()} | {error, term()}.
route(M, F) ->
    case py_route:route(py_route:sidecar(), M, F) of
        {ok, _Sidecar, Ctx} -> {ok, Ctx};
        {error, _} = Error -> Error
    end.

%% @doc Forget named pools and registrations (the application stops).
-spec forget() -> ok.
forget() ->
    py_pool:forget(?DEFAULT).

%%--------------------------------------------------------------------

%% @private
-spec init([]) -> {ok, term(), {continue, start}}.
init([]) ->
    py_pool:init(?DEFAULT).

%% @private
-spec handle_continue(start, term()) -> {noreply, term()} | {stop, term(), term()}.
handle_continue(Continue, State) ->
    py_pool:handle_continue(Continue, State).

%% @private
-spec handle_call(term(), gen_server:from(), term()) -> {reply, term(), term()}.
handle_call(Request, From, State) ->
    py_pool:handle_call(Request, From, State).

%% @private
-spec handle_cast(term(), term()) -> {noreply, term()}.
handle_cast(Msg, State) ->
    py_pool:handle_cast(Msg, State).

%% @private
-spec handle_info(term(), term()) -> {noreply, term()} | {stop, term(), term()}.
handle_info(Msg, State) ->
    py_pool:handle_info(Msg, State).

%% @private
-spec terminate(term(), term()) -> ok.
terminate(Reason, State) ->
    py_pool:terminate(Reason, State).
