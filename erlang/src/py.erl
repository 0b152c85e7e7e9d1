%% @doc The erlang_python API (API.md sections 2, 3, 4, 6, 7 and 10).
%%
%% Every call runs in the calling process: it checks its arguments, picks a
%% context, takes a slot of {@link py_semaphore} (in arrival order when all are
%% taken), sends its request to the port
%% and waits for the reply (see {@link py_request}). Results are
%% `{ok, Term}' (or `ok' for exec) or `{error, Reason}', where a Python exception
%% is `{error, {'ExceptionName', Message}}'.
%%
%% Arguments: Code may be a binary, a string or an iolist (UTF-8); Module and
%% Function atoms or binaries; Args a proper list; Kwargs and Locals maps with
%% atom or binary keys, or keyword lists of them (Elixir's `x: 41'). Anything else gives `{error, {badarg, What}}' and
%% nothing is sent.
%%
%% == Which form of call/4, call/5, eval/2, eval/3 ==
%% The arities overlap; the arguments decide:
%% <ul>
%% <li>`call(A, B, C, D)': D a map, or C and D both lists, means `call(Module,
%%     Function, Args, Kwargs)' (Kwargs a map or a keyword list, as Elixir
%%     passes `base: 16'); else D a list means `call(CtxOrPool, Module,
%%     Function, Args)', where CtxOrPool is a context pid or the name (atom)
%%     of a pool.</li>
%% <li>`call(A, B, C, D, E)': A a pid means `call(Ctx, Module, Function,
%%     Args, Opts)' with Opts `#{kwargs => Map, timeout => Ms}' (as the NIF
%%     2.x, its kwargs a map or a keyword list); else E a map, or D and E
%%     both lists, means `call(Pool, Module, Function, Args, Kwargs)';
%%     otherwise E is a timeout and the form is `call(Module, Function, Args,
%%     Kwargs, TimeoutMs)'.</li>
%% <li>`eval(A, B)': B a map, or B a keyword list and A code (a binary or
%%     a list), means `eval(Code, Locals)'; otherwise
%%     `eval(CtxOrPool, Code)'.</li>
%% <li>`eval(A, B, C)': B a map, or B a list and C a timeout, means
%%     `eval(Code, Locals, TimeoutMs)'; otherwise
%%     `eval(CtxOrPool, Code, Locals)'.</li>
%% </ul>
%% The same rules hold for cast/4 and spawn_call/4,5.
%%
%% == Timeouts ==
%% A call past its timeout returns `{error, timeout}' at once; its Python
%% work gets a `KeyboardInterrupt': at its next bytecode, or at once when it
%% waits in `time.sleep', `erlang.sleep', `erlang.call', or threading's
%% `Lock', `Event', `Condition', `Semaphore', `queue.Queue' and
%% `concurrent.futures' waits. A wait inside C code (`select', sockets,
%% `RLock', `Thread.join', `os.waitpid'...) ends first; one that lasts
%% `stuck_grace_ms' past the timeout restarts the sidecar (README,
%% "Timeouts").
%%
%% == Which context ==
%% Without an explicit context a call goes to the pool registered for its
%% `{Module, Function}' or `Module' ({@link register_pool/2}), else, in a
%% function called from Python ({@link register_function/2}), to the context
%% that called it, else to the caller's bound context ({@link py_context_router:bind_context/1}), else to the
%% default pool's context for the caller's scheduler (see {@link py_route}).
%% An explicit context is a context pid or a pool: an atom for a pool of
%% the default sidecar, `{Sidecar, Pool}' for a pool of another sidecar
%% ({@link erlang_python:start_sidecar/2}).
-module(py).

-export([call/3, call/4, call/5,
         eval/1, eval/2, eval/3,
         exec/1, exec/2,
         cast/3, cast/4,
         spawn_call/3, spawn_call/4, spawn_call/5, await/1, await/2,
         parallel/1,
         stream/3, stream/4, stream_eval/1, stream_eval/2,
         stream_start/3, stream_start/4, stream_cancel/1,
         async_call/3, async_call/4, async_await/1, async_await/2, async_gather/1,
         context/0, context/1,
         start_contexts/0, start_contexts/1, stop_contexts/0, contexts_started/0,
         execution_mode/0, subinterp_supported/0, num_executors/0, version/0,
         register_pool/2, unregister_pool/1,
         register_function/2, register_function/3, unregister_function/1,
         state_store/2, state_fetch/1, state_remove/1, state_keys/0, state_clear/0,
         state_incr/1, state_incr/2, state_decr/1, state_decr/2,
         subscribe_restarts/0, unsubscribe_restarts/0]).
-export([call_method/3, getattr/2, to_term/1, is_ref/1, release/1, get_local_env/1]).
-export([shared_dict_new/0, shared_dict_set/3, shared_dict_get/2, shared_dict_get/3,
         shared_dict_del/2, shared_dict_keys/1, shared_dict_destroy/1]).

-type code() :: unicode:chardata() | iodata().
-type name() :: atom() | binary().
-type ctx() :: pid() | py_context_router:pool_ref().
-type result() :: {ok, term()} | {error, term()}.
-type target() :: route | term().
-export_type([code/0, name/0, ctx/0, result/0]).

%% The error of Kwargs that is neither a map nor a keyword list.
-define(KWARGS_MUST_BE, <<"Kwargs must be a map or a keyword list">>).

%% A prepared request: everything checked, the sidecar and context chosen.
-type prepared() :: {py_request:op(), atom(), pos_integer(), tuple(), timeout()}.

%% Extra time await/1 gives a call beyond the call's own timeout.
-define(AWAIT_MARGIN, 1000).

%%--------------------------------------------------------------------
%% Calls

%% @doc Call `Module.Function(*Args)'.
-spec call(name(), name(), list()) -> result().
call(M, F, Args) ->
    run(prepare_call(route, M, F, Args, #{}, default_timeout())).

%% @doc `call(Module, Function, Args, Kwargs)' when the last argument is a map,
%% `call(CtxOrPool, Module, Function, Args)' when it is a list.
-spec call(name() | ctx(), name(), name() | list(), map() | list()) -> result().
call(M, F, Args, Kwargs) when is_map(Kwargs); is_list(Args), is_list(Kwargs) ->
    run(prepare_call(route, M, F, Args, Kwargs, default_timeout()));
call(Ctx, M, F, Args) when is_list(Args) ->
    run(prepare_call(Ctx, M, F, Args, #{}, default_timeout()));
call(_M, _F, _Args, _Kwargs) ->
    {error, {badarg, {kwargs, ?KWARGS_MUST_BE}}}.

%% @doc `call(Ctx, Module, Function, Args, Opts)' for a context pid, where
%% Opts is `#{kwargs => Map, timeout => Ms}' (both optional; another key or
%% a non-map gives `{error, {badarg, {opts, _}}}');
%% `call(Pool, Module, Function, Args, Kwargs)' when the last argument is a
%% map; else `call(Module, Function, Args, Kwargs, TimeoutMs)'.
-spec call(name() | ctx(), name(), name() | list(), list() | map(), map() | timeout()) ->
          result().
call(Ctx, M, F, Args, Opts) when is_pid(Ctx) ->
    case call_opts(Opts) of
        {ok, Kwargs, Timeout, value} -> run(prepare_call(Ctx, M, F, Args, Kwargs, Timeout));
        {ok, Kwargs, Timeout, ref} -> call_ref(prepare_call(Ctx, M, F, Args, Kwargs, Timeout), Ctx);
        {error, _} = Error -> Error
    end;
call(Ctx, M, F, Args, Kwargs) when is_map(Kwargs); is_list(Args), is_list(Kwargs) ->
    run(prepare_call(Ctx, M, F, Args, Kwargs, default_timeout()));
call(M, F, Args, Kwargs, Timeout) ->
    run(prepare_call(route, M, F, Args, Kwargs, Timeout)).

%% The options of call/5 on a context pid: `{ok, Kwargs, Timeout, Return}'.
call_opts(Opts) when is_map(Opts) ->
    case {maps:keys(maps:without([kwargs, timeout, return], Opts)), maps:get(return, Opts, value)} of
        {[], Return} when Return =:= value; Return =:= ref ->
            {ok, maps:get(kwargs, Opts, #{}), maps:get(timeout, Opts, default_timeout()), Return};
        {[], Return} ->
            {error, {badarg, {opts, {return, Return, [value, ref]}}}};
        {Bad, _} ->
            {error, {badarg, {opts, {unknown_keys, lists:sort(Bad), [kwargs, timeout, return]}}}}
    end;
call_opts(_Opts) ->
    {error, {badarg, {opts, not_a_map}}}.

%% A call whose result stays in the context: `{ok, Ref}' (py_ref).
call_ref({ok, {call, Sidecar, CtxId, Payload, Timeout}}, Ctx) ->
    Port = py_instance:port(Sidecar),
    case py_request:run(Sidecar, call, CtxId, erlang:append_element(Payload, ref), Timeout) of
        {ok, N} when is_integer(N), is_port(Port) -> {ok, py_ref:new(Sidecar, Ctx, N, Port)};
        {ok, _} -> {error, {stale_ref, <<"the sidecar restarted during the call">>}};
        {error, _} = Error -> Error
    end;
call_ref({error, _} = Error, _Ctx) ->
    Error.

%% @doc The caller's process-bound environment in context `Ctx' (see
%% {@link py_context:create_local_env/1}).
-spec get_local_env(pid()) -> {'$py_env', pid(), pid()} | {error, term()}.
get_local_env(Ctx) when is_pid(Ctx) ->
    py_context:create_local_env(Ctx);
get_local_env(Ctx) ->
    {error, {badarg, {ctx, Ctx}}}.

%%--------------------------------------------------------------------
%% Object references (py_ref): Python objects kept in their context

%% @doc Call method `Method' of the referenced object with `Args'; the
%% result comes back as a term.
-spec call_method(py_ref:ref(), name(), list()) -> result().
call_method(Ref, Method, Args) when is_list(Args) ->
    on_ref(Ref, '_ref_method', fun(N) -> [N, Method, Args, #{}] end);
call_method(_Ref, _Method, Args) ->
    {error, {badarg, {args, Args}}}.

%% @doc Attribute `Name' of the referenced object, as a term.
-spec getattr(py_ref:ref(), name()) -> result().
getattr(Ref, Name) ->
    on_ref(Ref, '_ref_getattr', fun(N) -> [N, Name] end).

%% @doc The referenced object itself, converted to a term.
-spec to_term(py_ref:ref()) -> result().
to_term(Ref) ->
    on_ref(Ref, '_ref_get', fun(N) -> [N] end).

%% @doc Whether `Term' is an object reference.
-spec is_ref(term()) -> boolean().
is_ref(Term) ->
    py_ref:is_ref(Term).

%% @doc Release the referenced object now (its holder's exit does too).
-spec release(py_ref:ref()) -> ok | {error, term()}.
release(Ref) ->
    case on_ref(Ref, '_ref_release', fun(N) -> [N] end) of
        {ok, None} when None =:= none; None =:= nil -> ok; % none_as
        {error, _} = Error -> Error
    end.

on_ref(Ref, Helper, ArgsOf) ->
    case py_ref:target(Ref) of
        {ok, Ctx, N} -> call(Ctx, erlang, Helper, ArgsOf(N));
        {error, _} = Error -> Error
    end.

%% @doc Evaluate a Python expression.
-spec eval(code()) -> result().
eval(Code) ->
    run(prepare(eval, route, py_payload:eval(Code, #{}), default_timeout())).

%% @doc `eval(Code, Locals)' when the second argument is a map, or a
%% keyword list (`[{Key, Value}]', `[]' too: Elixir's
%% `:py.eval("x + 1", x: 41)') after code (a binary or a list: no context is
%% one); else `eval(CtxOrPool, Code)'.
-spec eval(code() | ctx(), map() | [{atom() | binary(), term()}] | code()) -> result().
eval(Code, Locals) when is_map(Locals) ->
    run(prepare(eval, route, py_payload:eval(Code, Locals), default_timeout()));
eval(Code, Locals) when is_binary(Code); is_list(Code) ->
    case py_payload:is_keywords(Locals) of
        true -> run(prepare(eval, route, py_payload:eval(Code, Locals), default_timeout()));
        false -> run(prepare(eval, Code, py_payload:eval(Locals, #{}), default_timeout()))
    end;
eval(Ctx, Code) ->
    run(prepare(eval, Ctx, py_payload:eval(Code, #{}), default_timeout())).

%% @doc `eval(Code, Locals, TimeoutMs)' when the second argument is a map,
%% or a keyword list followed by a timeout; else
%% `eval(CtxOrPool, Code, Locals)'.
-spec eval(code() | ctx(), map() | [{atom() | binary(), term()}] | code(),
           timeout() | map() | [{atom() | binary(), term()}]) -> result().
eval(Code, Locals, Timeout)
  when is_map(Locals);
       is_list(Locals), is_integer(Timeout); is_list(Locals), Timeout =:= infinity ->
    run(prepare(eval, route, py_payload:eval(Code, Locals), Timeout));
eval(Ctx, Code, Locals) ->
    run(prepare(eval, Ctx, py_payload:eval(Code, Locals), default_timeout())).

%% @doc Run Python statements.
-spec exec(code()) -> ok | {error, term()}.
exec(Code) ->
    run(prepare(exec, route, py_payload:exec(Code), default_timeout())).

%% @doc Run Python statements in a context (its `__main__' globals) or a pool.
-spec exec(ctx(), code()) -> ok | {error, term()}.
exec(Ctx, Code) ->
    run(prepare(exec, Ctx, py_payload:exec(Code), default_timeout())).

%%--------------------------------------------------------------------
%% Asynchronous calls

%% @doc Fire and forget: returns `ok' at once (or `{error, {badarg, _}}' for bad
%% arguments). Errors are logged, as warnings that name the call.
%%
%% The caller takes a slot of {@link py_semaphore} and writes the request
%% itself, with the id `{cast, Ref}' (one `port_command'; {@link py_async});
%% the port owner gives the slot back when the reply comes. A cast still
%% running after the call timeout is cancelled. When no slot is free, the
%% sidecar restarts, the payload is large (`slot_min' bytes or more), or the
%% caller is a function called from Python, the call runs in a new process
%% instead, which waits for a slot or the restart like a call.
-spec cast(name(), name(), list()) -> ok | {error, term()}.
cast(M, F, Args) ->
    cast_call(route, M, F, Args, #{}).

%% @doc `cast(Module, Function, Args, Kwargs)' or `cast(CtxOrPool, Module,
%% Function, Args)', by the rule of call/4.
-spec cast(name() | ctx(), name(), name() | list(), map() | list()) -> ok | {error, term()}.
cast(M, F, Args, Kwargs) when is_map(Kwargs); is_list(Args), is_list(Kwargs) ->
    cast_call(route, M, F, Args, Kwargs);
cast(Ctx, M, F, Args) when is_list(Args) ->
    cast_call(Ctx, M, F, Args, #{});
cast(_M, _F, _Args, _Kwargs) ->
    {error, {badarg, {kwargs, ?KWARGS_MUST_BE}}}.

cast_call(Target, M, F, Args, Kwargs) ->
    case prepare_async(Target, M, F, Args, Kwargs, default_timeout()) of
        {now, {call, Sidecar, Ctx, Payload, Timeout} = Prepared} ->
            case py_async:cast(Sidecar, Ctx, Payload, Timeout) of
                ok -> ok;
                fallback -> cast_prepared({ok, Prepared})
            end;
        {later, Prepared} ->
            cast_prepared(Prepared)
    end.

cast_prepared({ok, Prepared}) ->
    _ = spawn(fun() ->
                      case safe_run({ok, Prepared}) of
                          {error, {overloaded, _, _} = Reason} ->
                              %% under overload these come in floods
                              py_async:refused(Reason);
                          {error, Reason} ->
                              logger:warning("erlang_python: py:cast failed: ~tp", [Reason]);
                          _ ->
                              ok
                      end
              end),
    ok;
cast_prepared({error, _} = Error) ->
    Error.

%% @doc Start a call; get its result with {@link await/1} or {@link await/2},
%% in the same process. Several may be in flight, awaited in any order.
%%
%% The caller takes a slot of {@link py_semaphore} and sends the request
%% itself, as {@link call/3} does, and the reference is the request's alias
%% ({@link py_async}); await receives the reply. When no slot is free, the
%% sidecar restarts, the payload is large (`slot_min' bytes or more), or the
%% caller is a function called from Python, the call runs in a new process
%% instead. Either way the call's timeout counts from here, a sidecar that
%% dies gives `{error, {python_crashed, _}}', and a result that comes after
%% await gave up is dropped, never left in the mailbox. A reference never
%% awaited keeps a small entry in the caller's process dictionary (or its
%% result in the mailbox) until the caller exits.
-spec spawn_call(name(), name(), list()) -> reference().
spawn_call(M, F, Args) ->
    spawn_async(route, M, F, Args, #{}, default_timeout()).

%% @doc `spawn_call(Module, Function, Args, Kwargs)' or `spawn_call(CtxOrPool,
%% Module, Function, Args)', by the rule of call/4.
-spec spawn_call(name() | ctx(), name(), name() | list(), map() | list()) -> reference().
spawn_call(M, F, Args, Kwargs) when is_map(Kwargs); is_list(Args), is_list(Kwargs) ->
    spawn_async(route, M, F, Args, Kwargs, default_timeout());
spawn_call(Ctx, M, F, Args) when is_list(Args) ->
    spawn_async(Ctx, M, F, Args, #{}, default_timeout());
spawn_call(_M, _F, _Args, _Kwargs) ->
    spawn_prepared({error, {badarg, {kwargs, ?KWARGS_MUST_BE}}}).

%% @doc `spawn_call(CtxOrPool, Module, Function, Args, Kwargs)' or
%% `spawn_call(Module, Function, Args, Kwargs, TimeoutMs)', by the rule of call/5.
-spec spawn_call(name() | ctx(), name(), name() | list(), list() | map(), map() | timeout()) ->
          reference().
spawn_call(Ctx, M, F, Args, Kwargs) when is_map(Kwargs); is_list(Args), is_list(Kwargs) ->
    spawn_async(Ctx, M, F, Args, Kwargs, default_timeout());
spawn_call(M, F, Args, Kwargs, Timeout) ->
    spawn_async(route, M, F, Args, Kwargs, Timeout).

spawn_async(Target, M, F, Args, Kwargs, Timeout) ->
    case prepare_async(Target, M, F, Args, Kwargs, Timeout) of
        {now, {Op, Sidecar, Ctx, Payload, T} = Prepared} ->
            case py_async:start(Sidecar, Op, Ctx, Payload, T) of
                {ok, Ref} -> Ref;
                fallback -> spawn_prepared({ok, Prepared})
            end;
        {later, Prepared} ->
            spawn_prepared(Prepared)
    end.

%% The fallback: the call in a new process. The reference is an alias of
%% the caller, deactivated by the first reply or by await giving up: a late
%% result is dropped, not left in the mailbox.
spawn_prepared(Prepared) ->
    Ref = erlang:alias([reply]),
    _ = case Prepared of
            {ok, _} -> spawn(fun() -> Ref ! {py_result, Ref, safe_run(Prepared)} end);
            {error, _} = Error -> Ref ! {py_result, Ref, Error}
        end,
    Ref.

%% @doc The result of {@link spawn_call/3}; waits the default call timeout plus
%% a second.
-spec await(reference()) -> result().
await(Ref) ->
    case default_timeout() of
        infinity -> await(Ref, infinity);
        T -> await(Ref, T + ?AWAIT_MARGIN)
    end.

%% @doc The result of {@link spawn_call/3}, or `{error, timeout}' (the call is
%% then cancelled). Waits no longer than the call's own timeout.
-spec await(reference(), timeout()) -> result().
await(Ref, Timeout) ->
    case py_async:awaiting(Ref) of
        true -> py_async:await(Ref, Timeout);
        false -> await_spawned(Ref, Timeout)
    end.

await_spawned(Ref, Timeout) ->
    receive
        {py_result, Ref, Result} -> Result
    after Timeout ->
        erlang:unalias(Ref),
        receive
            {py_result, Ref, Result} -> Result
        after 0 ->
            {error, timeout}
        end
    end.

%%--------------------------------------------------------------------
%% Streams (py_stream, docs/streams.md)

%% @doc Every item of `Module.Function(*Args)', a generator, an iterator,
%% an iterable or an async generator: `{ok, [Item]}' or `{error, Reason}'
%% (items before a Python exception are dropped then). The generator is
%% stepped in batches, each an ordinary request, within the default call
%% timeout for the whole.
-spec stream(name(), name(), list()) -> {ok, list()} | {error, term()}.
stream(M, F, Args) ->
    py_stream:stream(M, F, Args, #{}, default_timeout()).

%% @doc {@link stream/3} with keyword arguments (a map or a keyword list).
-spec stream(name(), name(), list(), map() | list()) -> {ok, list()} | {error, term()}.
stream(M, F, Args, Kwargs) ->
    py_stream:stream(M, F, Args, Kwargs, default_timeout()).

%% @doc Every item of the value of expression `Code', e.g. a generator
%% expression `<<"(x * x for x in range(4))">>': `{ok, [Item]}'.
-spec stream_eval(code()) -> {ok, list()} | {error, term()}.
stream_eval(Code) ->
    py_stream:stream_eval(Code, #{}, default_timeout()).

%% @doc {@link stream_eval/1} with local variables (a map or a keyword list).
-spec stream_eval(code(), map() | list()) -> {ok, list()} | {error, term()}.
stream_eval(Code, Locals) ->
    py_stream:stream_eval(Code, Locals, default_timeout()).

%% @doc Stream the items of `Module.Function(*Args)' to the caller as
%% messages: `{ok, Ref}', then `{py_stream, Ref, {data, Item}}' for each
%% item, and `{py_stream, Ref, done}' or `{py_stream, Ref, {error, Reason}}'.
%% At most `stream_max_inflight' (1000) of its messages wait in the
%% owner's mailbox at once: the generator is not stepped further until the
%% owner takes some (see {@link py_stream}).
-spec stream_start(name(), name(), list()) -> {ok, reference()} | {error, term()}.
stream_start(M, F, Args) ->
    py_stream:start(M, F, Args, #{}).

%% @doc {@link stream_start/3} with options `#{owner => Pid, kwargs =>
%% Map, max_inflight => N, batch => N, timeout => Ms}' (all optional; see
%% {@link py_stream:start/4}).
-spec stream_start(name(), name(), list(), map()) -> {ok, reference()} | {error, term()}.
stream_start(M, F, Args, Opts) ->
    py_stream:start(M, F, Args, Opts).

%% @doc Stop stream `Ref': the generator is closed (its `finally' runs),
%% then the owner gets `{py_stream, Ref, {error, cancelled}}'. `ok' at once.
-spec stream_cancel(reference()) -> ok | {error, term()}.
stream_cancel(Ref) ->
    py_stream:cancel(Ref).

%% @doc The NIF 2.x's asyncio call: `Module.Function(*Args)' as a task on
%% a context's event loop (a coroutine function's coroutine is awaited
%% there); returns a reference for {@link async_await/2} (docs/async.md,
%% {@link py_event_loop:create_task/4}).
-spec async_call(name(), name(), list()) -> reference().
async_call(M, F, Args) ->
    py_event_loop:create_task(M, F, Args).

%% @doc {@link async_call/3} with keyword arguments.
-spec async_call(name(), name(), list(), map()) -> reference().
async_call(M, F, Args, Kwargs) ->
    py_event_loop:create_task(M, F, Args, Kwargs).

%% @doc The result of {@link async_call/3}, within the call timeout.
-spec async_await(reference()) -> result().
async_await(Ref) ->
    py_event_loop:await(Ref).

%% @doc The result of {@link async_call/3} within `Timeout' ms; on timeout
%% the task is cancelled: `{error, timeout}'.
-spec async_await(reference(), timeout()) -> result().
async_await(Ref, Timeout) ->
    py_event_loop:await(Ref, Timeout).

%% @doc Run `[{Module, Function, Args}]' as tasks at once, spread over the
%% contexts: `{ok, [Result]}' in order, or the first error
%% ({@link py_event_loop:gather/1}).
-spec async_gather([{name(), name(), list()}]) -> result().
async_gather(Items) ->
    py_event_loop:gather(Items).

%% @doc Run the calls spread over the default pool's contexts (item I on
%% context I modulo the pool size) and return their results in input order.
%% Items are `{Module, Function, Args}' or `{Module, Function, Args, Kwargs}'.
-spec parallel([{name(), name(), list()} | {name(), name(), list(), map()}]) ->
          {ok, [result()]} | {error, term()}.
parallel(Items) when is_list(Items) ->
    case proper_list(Items) andalso py_context_router:pool_ctx_ids(default) of
        false ->
            {error, {badarg, {items, improper_list}}};
        {ok, Ctxs} ->
            Timeout = default_timeout(),
            N = length(Ctxs),
            Indexed = lists:zip(lists:seq(0, length(Items) - 1), Items),
            Groups = [{Ctx, [{I, Item} || {I, Item} <- Indexed, I rem N =:= K]}
                      || {K, Ctx} <- lists:zip(lists:seq(0, N - 1), Ctxs)],
            Parent = self(),
            Tag = make_ref(),
            Workers = [{spawn_monitor(
                          fun() ->
                                  Parent ! {Tag, self(),
                                            [{I, run_item(Ctx, Item, Timeout)} || {I, Item} <- Group]}
                          end), Group}
                       || {Ctx, Group} <- Groups, Group =/= []],
            Results = lists:append([collect(Tag, Worker) || Worker <- Workers]),
            {ok, [R || {_, R} <- lists:keysort(1, Results)]};
        {error, _} ->
            {error, not_started}
    end;
parallel(Items) ->
    {error, {badarg, {items, Items}}}.

proper_list(L) ->
    try length(L) of
        _ -> true
    catch
        error:badarg -> false
    end.

run_item(Ctx, {M, F, Args}, Timeout) ->
    run_item(Ctx, {M, F, Args, #{}}, Timeout);
run_item(Ctx, {M, F, Args, Kwargs}, Timeout) ->
    case py_payload:call(M, F, Args, Kwargs) of
        {ok, Payload} -> safe_run({ok, {call, default, Ctx, Payload, Timeout}});
        {error, _} = Error -> Error
    end;
run_item(_Ctx, Item, _Timeout) ->
    {error, {badarg, {item, Item}}}.

collect(Tag, {{Pid, MRef}, Group}) ->
    receive
        {Tag, Pid, Results} ->
            erlang:demonitor(MRef, [flush]),
            Results;
        {'DOWN', MRef, process, Pid, Reason} ->
            [{I, {error, {worker_crashed, Reason}}} || {I, _} <- Group]
    end.

%%--------------------------------------------------------------------
%% Contexts

%% @doc The caller's context: its bound one, else its scheduler's.
-spec context() -> pid() | {error, not_started}.
context() ->
    py_context_router:get_context().

%% @doc Context N (1-based) of the default pool.
-spec context(pos_integer()) -> pid() | {error, term()}.
context(N) when is_integer(N) ->
    py_context_router:get_context(N);
context(Other) ->
    {error, {bad_context, Other}}.

%% @doc Start the default pool ({@link py_context_router:start/0}).
-spec start_contexts() -> {ok, [pid()]} | {error, term()}.
start_contexts() ->
    py_context_router:start().

%% @doc Start the default pool of `contexts' contexts ({@link py_context_router:start/1}).
-spec start_contexts(#{contexts => pos_integer()}) -> {ok, [pid()]} | {error, term()}.
start_contexts(Opts) ->
    py_context_router:start(Opts).

%% @doc Stop the default pool.
-spec stop_contexts() -> ok.
stop_contexts() ->
    py_context_router:stop().

%% @doc Whether the default pool runs.
-spec contexts_started() -> boolean().
contexts_started() ->
    py_context_router:started().

%% @doc Route calls to `Module' (or `{Module, Function}') to pool `Name'.
-spec register_pool(py_context_router:pool_name(), name() | {name(), name()}) ->
          ok | {error, term()}.
register_pool(Name, Target) ->
    py_context_router:register_pool(Name, Target).

%% @doc Remove a registration made by {@link register_pool/2}: `Module' or
%% `{Module, Function}'.
-spec unregister_pool(name() | {name(), name()}) -> ok | {error, term()}.
unregister_pool(Target) ->
    py_context_router:unregister_pool(Target).

%%--------------------------------------------------------------------
%% Callbacks from Python

%% @doc Make `Fun' callable from Python as `erlang.Name(*Args)' (or
%% `erlang.call(Name, *Args)'); it gets the arguments as a list. It runs in
%% a process of its own, where calls without an explicit context go back to
%% the calling context, which serves them while it waits: callbacks nest.
%% An exception in it raises `erlang.Error' in Python.
-spec register_function(py_callback:name(), fun((list()) -> term())) -> ok | {error, term()}.
register_function(Name, Fun) ->
    py_callback:register(Name, Fun).

%% @doc As register_function/2 with `Module:Function(Args)': the function
%% gets the list of the Python arguments as its one argument. When it raises
%% `function_clause' or `undef' itself (Elixir's `String.upcase/1' given
%% `["abc"]'), the reason Python's `erlang.Error' has is `{function_clause,
%% Hint}' (or `{undef, Hint}'), Hint saying so: register a fun then.
-spec register_function(py_callback:name(), module(), atom()) -> ok | {error, term()}.
register_function(Name, Module, Function) ->
    py_callback:register(Name, Module, Function).

%% @doc Python can no longer call `Name'.
-spec unregister_function(py_callback:name()) -> ok | {error, term()}.
unregister_function(Name) ->
    py_callback:unregister(Name).

%%--------------------------------------------------------------------
%% Sidecar restarts (see py_lifecycle)

%% @doc Get `{py_restarted, Info}' each time the sidecar is back after a
%% crash, with its contexts, pools, registered functions, `python_path' and
%% shared state; what `py:exec' defined is gone, so a subscriber runs its
%% set-up code again. `Info' is `#{crash => CrashInfo, restarts => N,
%% down_ms => Ms}', `CrashInfo' being what calls in flight got as
%% `{error, {python_crashed, CrashInfo}}'. Ends with the caller's death.
-spec subscribe_restarts() -> ok | {error, not_started}.
subscribe_restarts() ->
    py_lifecycle:subscribe().

%% @doc Stop the notifications of {@link subscribe_restarts/0}.
-spec unsubscribe_restarts() -> ok | {error, not_started}.
unsubscribe_restarts() ->
    py_lifecycle:unsubscribe().

%%--------------------------------------------------------------------
%% Shared state (see py_state): one store for every context and Erlang

%% @doc Store `Value' under `Key' (an atom, binary or string: one UTF-8
%% binary key, which Python's str meets); Python reads it with
%% `erlang.state_get(Key)'.
-spec state_store(py_state:key(), term()) -> ok | {error, term()}.
state_store(Key, Value) ->
    py_state:store(Key, Value).

%% @doc The value under `Key', or `{error, not_found}'.
-spec state_fetch(py_state:key()) -> {ok, term()} | {error, not_found} | {error, term()}.
state_fetch(Key) ->
    py_state:fetch(Key).

%% @doc Remove `Key'; a missing key is no error.
-spec state_remove(py_state:key()) -> ok | {error, term()}.
state_remove(Key) ->
    py_state:remove(Key).

%% @doc Every key, sorted.
-spec state_keys() -> [binary()] | {error, term()}.
state_keys() ->
    py_state:keys().

%% @doc Remove every key.
-spec state_clear() -> ok | {error, term()}.
state_clear() ->
    py_state:clear().

%% @doc Add 1 to the integer under `Key' (0 if none), atomically; returns the
%% new value, or `{error, {not_integer, Key}}'.
-spec state_incr(py_state:key()) -> integer() | {error, term()}.
state_incr(Key) ->
    py_state:incr(Key, 1).

%% @doc Add `N' to the integer under `Key' (0 if none), atomically.
-spec state_incr(py_state:key(), integer()) -> integer() | {error, term()}.
state_incr(Key, N) ->
    py_state:incr(Key, N).

%% @doc Subtract 1 from the integer under `Key' (0 if none), atomically.
-spec state_decr(py_state:key()) -> integer() | {error, term()}.
state_decr(Key) ->
    py_state:decr(Key, 1).

%% @doc Subtract `N' from the integer under `Key' (0 if none), atomically.
-spec state_decr(py_state:key(), integer()) -> integer() | {error, term()}.
state_decr(Key, N) ->
    py_state:decr(Key, N).

%%--------------------------------------------------------------------
%% SharedDict (see py_shared_dict): a dict in the shared state, owned by
%% the process that made it

%% @doc A new SharedDict owned by the caller (destroyed when it exits);
%% Python wraps the handle with `erlang.SharedDict(Handle)'.
-spec shared_dict_new() -> {ok, py_shared_dict:handle()} | {error, term()}.
shared_dict_new() ->
    py_shared_dict:new().

%% @doc Store `Value' under `Key' in the dict.
-spec shared_dict_set(py_shared_dict:handle(), py_state:key(), term()) -> ok | {error, term()}.
shared_dict_set(SD, Key, Value) ->
    py_shared_dict:set(SD, Key, Value).

%% @doc The value under `Key', or `undefined'.
-spec shared_dict_get(py_shared_dict:handle(), py_state:key()) -> term().
shared_dict_get(SD, Key) ->
    py_shared_dict:get(SD, Key).

%% @doc The value under `Key', or `Default'.
-spec shared_dict_get(py_shared_dict:handle(), py_state:key(), term()) -> term().
shared_dict_get(SD, Key, Default) ->
    py_shared_dict:get(SD, Key, Default).

%% @doc Remove `Key' from the dict.
-spec shared_dict_del(py_shared_dict:handle(), py_state:key()) -> ok | {error, term()}.
shared_dict_del(SD, Key) ->
    py_shared_dict:del(SD, Key).

%% @doc The dict's keys, sorted binaries.
-spec shared_dict_keys(py_shared_dict:handle()) -> [binary()] | {error, term()}.
shared_dict_keys(SD) ->
    py_shared_dict:keys(SD).

%% @doc Destroy the dict now (its owner's exit does it too).
-spec shared_dict_destroy(py_shared_dict:handle()) -> ok | {error, term()}.
shared_dict_destroy(SD) ->
    py_shared_dict:destroy(SD).

%%--------------------------------------------------------------------
%% Introspection (from the sidecar's `info' at start-up; before the
%% application starts, from `pyport --info', which answers from its build
%% without starting Python: see py_port_exe:build_info/0)

%% @doc `subinterp', `free_threaded' or `multi_executor'; answers before the
%% application starts too.
-spec execution_mode() -> subinterp | multi_executor | free_threaded | {error, term()}.
execution_mode() ->
    info(mode).

%% @doc Whether the sidecar's Python has sub-interpreters with their own GIL;
%% answers before the application starts too.
-spec subinterp_supported() -> boolean() | {error, term()}.
subinterp_supported() ->
    info(subinterp_supported).

%% @doc The executor threads of the sidecar (`multi_executor' mode).
-spec num_executors() -> non_neg_integer() | {error, term()}.
num_executors() ->
    info(num_executors).

%% @doc The Python version, as `sys.version'; answers before the application
%% starts too.
-spec version() -> {ok, binary()} | {error, term()}.
version() ->
    case info(version) of
        {error, _} = Error -> Error;
        Version -> {ok, Version}
    end.

%% From the running default sidecar, else (before the application starts,
%% or while it restarts) from the build of the one it would run
%% (py_port_exe:build_info/0, which starts nothing that stays).
info(Key) ->
    case py_instance:info(default) of
        {ok, Info} ->
            maps:get(Key, Info);
        {error, _} ->
            case py_port_exe:build_info() of
                {ok, Info} -> maps:get(Key, Info);
                {error, _} = Error -> Error
            end
    end.

%%--------------------------------------------------------------------
%% Internals

default_timeout() ->
    py_config:call_timeout().

%% A cast or spawn_call: `{now, Prepared}' when its request can be sent by
%% the caller at once (its sidecar is up, the caller is no callback, the
%% arguments and the context are good), else `{later, Prepared | Error}' as
%% prepare_call/6 gives it (which waits for a restart under way).
-spec prepare_async(target(), term(), term(), term(), term(), term()) ->
          {now, prepared()} | {later, {ok, prepared()} | {error, term()}}.
prepare_async(Target, M, F, Args, Kwargs, Timeout) ->
    Now = case py_payload:call(M, F, Args, Kwargs) of
              {ok, {MB, FB, _, _} = Payload} ->
                  case {context_now(Target, MB, FB), py_payload:timeout(Timeout)} of
                      {{ok, Sidecar, Ctx}, {ok, T}} -> {call, Sidecar, Ctx, Payload, T};
                      _ -> later
                  end;
              {error, _} = Error ->
                  Error
          end,
    case Now of
        {call, _, _, _, _} -> {now, Now};
        {error, _} -> {later, Now};
        later -> {later, prepare_call(Target, M, F, Args, Kwargs, Timeout)}
    end.

%% The sidecar and context of a call when the sidecar is up and the caller
%% is no callback of it (whose calls are nested, see py_request); else
%% `later'.
context_now(Target, M, F) ->
    Found = case Target of
                route -> py_route:route(M, F);
                _ -> py_route:resolve(Target)
            end,
    case Found of
        {ok, Sidecar, _Ctx} ->
            case py_lifecycle:state(Sidecar) =:= up andalso py_callback:caller(Sidecar) of
                none -> Found;
                _ -> later
            end;
        {error, _} ->
            later
    end.

-spec prepare_call(target(), term(), term(), term(), term(), term()) ->
          {ok, prepared()} | {error, term()}.
prepare_call(Target, M, F, Args, Kwargs, Timeout) ->
    case py_payload:call(M, F, Args, Kwargs) of
        {ok, {MB, FB, _, _} = Payload} ->
            with_timeout(Timeout, call, py_route:target_up(Target, MB, FB, Timeout), Payload);
        {error, _} = Error ->
            Error
    end.

-spec prepare(py_request:op(), target(), {ok, tuple()} | {error, term()}, term()) ->
          {ok, prepared()} | {error, term()}.
prepare(Op, Target, {ok, Payload}, Timeout) ->
    with_timeout(Timeout, Op, py_route:target_up(Target, undefined, undefined, Timeout), Payload);
prepare(_Op, _Target, {error, _} = Error, _Timeout) ->
    Error.

with_timeout(Timeout, Op, {ok, Sidecar, Ctx}, Payload) ->
    case py_payload:timeout(Timeout) of
        {ok, T} -> {ok, {Op, Sidecar, Ctx, Payload, T}};
        {error, _} = Error -> Error
    end;
with_timeout(_Timeout, _Op, {error, _} = Error, _Payload) ->
    Error.


run({ok, {Op, Sidecar, Ctx, Payload, Timeout}}) ->
    case py_events:enabled() of
        false -> py_request:run(Sidecar, Op, Ctx, Payload, Timeout);
        true -> run_events(Op, Sidecar, Ctx, Payload, Timeout)
    end;
run({error, _} = Error) ->
    Error.

%% A call with its events, [erlang_python, call, start | stop] (py_events).
run_events(Op, Sidecar, Ctx, Payload, Timeout) ->
    Meta = call_meta(Op, Sidecar, Ctx, Payload),
    T0 = erlang:monotonic_time(),
    py_events:execute([erlang_python, call, start],
                      #{system_time => erlang:system_time(), monotonic_time => T0}, Meta),
    Result = py_request:run(Sidecar, Op, Ctx, Payload, Timeout),
    T1 = erlang:monotonic_time(),
    py_events:execute([erlang_python, call, stop],
                      #{duration => T1 - T0, monotonic_time => T1},
                      Meta#{result => result_class(Result)}),
    Result.

call_meta(call, Sidecar, Ctx, {M, F, _Args, _Kwargs}) ->
    #{op => call, sidecar => Sidecar, context => Ctx, module => M, function => F};
call_meta(Op, Sidecar, Ctx, _Payload) ->
    #{op => Op, sidecar => Sidecar, context => Ctx}.

result_class(ok) -> ok;
result_class({ok, _}) -> ok;
result_class({error, timeout}) -> timeout;
result_class({error, {overloaded, _, _}}) -> overloaded;
result_class({error, {python_crashed, _}}) -> python_crashed;
result_class({error, {Name, _}}) when is_atom(Name) -> Name;
result_class(_) -> error.

%% For processes we spawn: whatever happens, a result. They live for one call,
%% so they give their slot (if any) up at once.
safe_run(Prepared) ->
    try
        run(Prepared)
    catch
        Class:Reason -> {error, {Class, Reason}}
    after
        py_slot:drop()
    end.
