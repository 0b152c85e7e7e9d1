%% @doc Tasks on the contexts' asyncio event loops (API.md section 8,
%% docs/async.md).
%%
%% A task is a request `{task, Id, Ctx, none, none, Caller}' with a call's
%% payload: the sidecar calls `Module.Function(*Args, **Kwargs)' in the
%% caller's environment; a result that is awaitable (a coroutine, a future)
%% becomes a task on the context's event loop and the reply goes when it
%% ends, while the context serves other requests; a plain result is the
%% reply at once. Its id is `{nested, Alias}', so it holds no
%% `py_semaphore' slot: a thousand tasks that sleep are not refused, and
%% the port owner gives no slot back for their replies.
%%
%% <ul>
%% <li>{@link run/4}: waits in the caller, as `py:call' does; a timeout
%%     cancels the task (`CancelledError' in the coroutine, its `finally'
%%     runs) and returns `{error, timeout}'.</li>
%% <li>{@link create_task/4}: a process of its own sends the task and waits
%%     for it, then sends `{async_result, Ref, Result}' to the caller; it
%%     monitors the caller and cancels the task if the caller dies.
%%     {@link await/2} receives that message; on timeout it cancels the
%%     task.</li>
%% <li>{@link spawn_task/4}: fire and forget: the reply goes to an inactive
%%     alias; a failure of the task is logged by the sidecar at `error'.</li>
%% </ul>
%% A dead sidecar ends every task in flight with
%% `{error, {python_crashed, Info}}' (the waiter monitors the port owner).
-module(py_event_loop).

-export([run/3, run/4, run/5, create_task/3, create_task/4, create_task/5,
         await/1, await/2, spawn_task/3, spawn_task/4, spawn_task/5, gather/1, gather/2]).

-type target() :: pid() | route.

%%--------------------------------------------------------------------
%% run

%% @doc Run `Module.Function(*Args)' as a task on a context the call routes
%% to, waiting for its result: `{ok, Result} | {error, Reason}'.
-spec run(py:name(), py:name(), list()) -> py:result().
run(M, F, Args) ->
    run(M, F, Args, #{}).

%% @doc `run(Ctx, Module, Function, Args)' on context `Ctx' (a pid), or the
%% NIF 2.x form `run(Module, Function, Args, Opts)' with `Opts'
%% `#{kwargs => Map, timeout => Ms}'.
-spec run(pid() | py:name(), py:name(), py:name() | list(), list() | map()) -> py:result().
run(Ctx, M, F, Args) when is_pid(Ctx) ->
    run(Ctx, M, F, Args, #{});
run(M, F, Args, Opts) when is_map(Opts) ->
    run_on(route, M, F, Args, Opts);
run(_M, _F, _Args, _Opts) ->
    {error, {badarg, "Opts must be a map"}}.

%% @doc {@link run/4} on context `Ctx' with `Opts' `#{kwargs => Map,
%% timeout => Ms}' (default: the call timeout).
-spec run(pid(), py:name(), py:name(), list(), map()) -> py:result().
run(Ctx, M, F, Args, Opts) when is_pid(Ctx), is_map(Opts) ->
    run_on(Ctx, M, F, Args, Opts);
run(_Ctx, _M, _F, _Args, _Opts) ->
    {error, {badarg, "Ctx must be a context pid and Opts a map"}}.

run_on(Target, M, F, Args, Opts) ->
    case prepare(Target, M, F, Args, Opts) of
        {ok, Sidecar, Ctx, Payload, Timeout} -> py_task:run(Sidecar, Ctx, Payload, Timeout);
        {error, _} = Error -> Error
    end.

%%--------------------------------------------------------------------
%% create_task and await

%% @doc Start `Module.Function(*Args)' as a task on a context the call
%% routes to; its result comes as `{async_result, Ref, {ok, R} | {error,
%% E}}' (or through {@link await/2}).
-spec create_task(py:name(), py:name(), list()) -> reference().
create_task(M, F, Args) ->
    create_task(M, F, Args, #{}).

%% @doc `create_task(Ctx, Module, Function, Args)' on context `Ctx' (a
%% pid), or the NIF 2.x form `create_task(Module, Function, Args, Kwargs)'.
-spec create_task(pid() | py:name(), py:name(), py:name() | list(), list() | map()) -> reference().
create_task(Ctx, M, F, Args) when is_pid(Ctx) ->
    start(Ctx, M, F, Args, #{});
create_task(M, F, Args, Kwargs) ->
    start(route, M, F, Args, #{kwargs => Kwargs}).

%% @doc {@link create_task/4} on context `Ctx' with keyword arguments.
-spec create_task(pid(), py:name(), py:name(), list(), map()) -> reference().
create_task(Ctx, M, F, Args, Kwargs) ->
    start(Ctx, M, F, Args, #{kwargs => Kwargs}).

start(Target, M, F, Args, Opts) ->
    case prepare(Target, M, F, Args, Opts) of
        {ok, Sidecar, Ctx, Payload, _Timeout} ->
            py_task:start(Sidecar, Ctx, Payload);
        {error, _} = Error ->
            Ref = make_ref(),
            self() ! {async_result, Ref, Error},
            Ref
    end.

%% @doc {@link await/2} with the call timeout.
-spec await(reference()) -> py:result().
await(Ref) ->
    await(Ref, py_config:call_timeout()).

%% @doc The result of task `Ref' of {@link create_task/4}, waiting at most
%% `Timeout' ms: on timeout the task is cancelled (its `finally' runs) and
%% `{error, timeout}' returned; no late message is left behind.
-spec await(reference(), timeout()) -> py:result().
await(Ref, Timeout) ->
    py_task:await(Ref, Timeout).

%%--------------------------------------------------------------------
%% gather

%% @doc {@link gather/2} with the call timeout.
-spec gather([{py:name(), py:name(), list()} | {py:name(), py:name(), list(), map()}]) -> py:result().
gather(Items) ->
    gather(Items, py_config:call_timeout()).

%% @doc Run every `{Module, Function, Args}' (or with `Kwargs') as a task at
%% once, spread over the default pool's contexts, and wait for all:
%% `{ok, [Result]}' in the order of `Items' when all succeed, else the
%% first `{error, Reason}' in that order (the others are cancelled).
%% `Timeout' bounds the whole wait.
-spec gather([{py:name(), py:name(), list()} | {py:name(), py:name(), list(), map()}], timeout()) ->
          py:result().
gather(Items, Timeout) when is_list(Items) ->
    case py_context_router:contexts() of
        [] ->
            {error, not_started};
        Ctxs ->
            N = length(Ctxs),
            Refs = [task_of(lists:nth(I rem N + 1, Ctxs), Item)
                    || {I, Item} <- lists:zip(lists:seq(0, length(Items) - 1), Items)],
            Deadline = case Timeout of
                           infinity -> infinity;
                           _ -> erlang:monotonic_time(millisecond) + Timeout
                       end,
            collect(Refs, Deadline, [])
    end;
gather(Items, _Timeout) ->
    {error, {badarg, {items, Items}}}.

task_of(Ctx, {M, F, Args}) -> create_task(Ctx, M, F, Args);
task_of(Ctx, {M, F, Args, Kwargs}) -> create_task(Ctx, M, F, Args, Kwargs);
task_of(_Ctx, Item) ->
    Ref = make_ref(),
    self() ! {async_result, Ref, {error, {badarg, {item, Item}}}},
    Ref.

collect([], _Deadline, Acc) ->
    {ok, lists:reverse(Acc)};
collect([Ref | Refs], Deadline, Acc) ->
    Left = case Deadline of
               infinity -> infinity;
               _ -> max(0, Deadline - erlang:monotonic_time(millisecond))
           end,
    case await(Ref, Left) of
        {ok, R} ->
            collect(Refs, Deadline, [R | Acc]);
        {error, _} = Error ->
            _ = [await(Other, 0) || Other <- Refs], % cancelled, their messages gone
            Error
    end.

%%--------------------------------------------------------------------
%% spawn_task

%% @doc Start `Module.Function(*Args)' as a task and forget it: `ok' once
%% sent (or `{error, Reason}' when it cannot be). A failure is logged by
%% the sidecar.
-spec spawn_task(py:name(), py:name(), list()) -> ok | {error, term()}.
spawn_task(M, F, Args) ->
    spawn_task(M, F, Args, #{}).

%% @doc `spawn_task(Ctx, Module, Function, Args)' on context `Ctx' (a pid),
%% or `spawn_task(Module, Function, Args, Kwargs)'.
-spec spawn_task(pid() | py:name(), py:name(), py:name() | list(), list() | map()) -> ok | {error, term()}.
spawn_task(Ctx, M, F, Args) when is_pid(Ctx) ->
    spawn_on(Ctx, M, F, Args, #{});
spawn_task(M, F, Args, Kwargs) ->
    spawn_on(route, M, F, Args, #{kwargs => Kwargs}).

%% @doc {@link spawn_task/4} on context `Ctx' with keyword arguments.
-spec spawn_task(pid(), py:name(), py:name(), list(), map()) -> ok | {error, term()}.
spawn_task(Ctx, M, F, Args, Kwargs) ->
    spawn_on(Ctx, M, F, Args, #{kwargs => Kwargs}).

spawn_on(Target, M, F, Args, Opts) ->
    case prepare(Target, M, F, Args, Opts) of
        {ok, Sidecar, Ctx, Payload, _Timeout} -> py_task:spawn(Sidecar, Ctx, Payload);
        {error, _} = Error -> Error
    end.

%%--------------------------------------------------------------------

%% The sidecar, context, payload and timeout of a task.
-spec prepare(target(), term(), term(), term(), map()) ->
          {ok, atom(), pos_integer(), {binary(), binary(), list(), map()}, timeout()} | {error, term()}.
prepare(Target, M, F, Args, Opts) ->
    Kwargs = maps:get(kwargs, Opts, #{}),
    case py_payload:call(M, F, Args, Kwargs) of
        {ok, {MB, FB, _, _} = Payload} ->
            case py_payload:timeout(maps:get(timeout, Opts, py_config:call_timeout())) of
                {ok, Timeout} ->
                    case py_route:target_up(Target, MB, FB, Timeout) of
                        {ok, Sidecar, Ctx} -> {ok, Sidecar, Ctx, Payload, Timeout};
                        {error, _} = Error -> Error
                    end;
                {error, _} = Error ->
                    Error
            end;
        {error, _} = Error ->
            Error
    end.

