%% @doc Python generators and iterators as lists or as messages (API.md
%% section 2, `py:stream*'; docs/streams.md).
%%
%% The generator stays in its context: opening a stream is a call whose
%% result, a stream object (`pool/py/stream.py'), is kept there as an
%% object reference (`pool/env.c'). Each batch of items is then one
%% request, `erlang._stream_next(N, Count)', answered
%% `{Items, more | done}': other processes' calls to that context run
%% between batches, and no request waits in the context for a consumer.
%%
%% <ul>
%% <li><b>As a list</b> ({@link stream/5}, {@link stream_eval/3}): the caller
%%     opens the stream and asks for batches of up to 1000 items until the
%%     generator is done, within one timeout for the whole.</li>
%% <li><b>As messages</b> ({@link start/4}): the caller opens the stream (in
%%     its own environment, so `py:exec''s definitions are seen) and starts a
%%     relay process, which takes the stream over (`erlang._stream_adopt':
%%     from then on it is held by the relay, not by the caller), asks for
%%     batches and sends each item to the owner as `{py_stream, Ref, {data,
%%     Item}}', then `{py_stream, Ref, done}' or `{py_stream, Ref, {error,
%%     Reason}}'. Backpressure: the relay asks for a batch only while the
%%     owner's `message_queue_len' is under the bound (`max_inflight', the
%%     `stream_max_inflight' setting, default 1000), and for no more items
%%     than leave it at the bound, so the owner's mailbox holds at most
%%     that many of the stream's messages; while it is full, the relay looks
%%     again after 1 ms, then 2, 4... up to 20 ms. `Ref' is an alias of the
%%     relay, so {@link cancel/1} works from any process.</li>
%% </ul>
%% The relay ends the stream (the generator's `close()', its `finally'
%% runs) on {@link cancel/1} (the owner then gets `{py_stream, Ref, {error,
%% cancelled}}') and when the owner exits; a relay that is killed has its
%% stream closed by the sidecar when the BEAM tells it the relay exited
%% (`{down, Ctxs}', `py_watch'). A dead sidecar ends every stream with
%% `{py_stream, Ref, {error, {python_crashed, Info}}}' (the relay monitors
%% the port owner); a batch that takes longer than the stream's `timeout'
%% (default `call_timeout') is cancelled and ends it with
%% `{py_stream, Ref, {error, timeout}}'.
%%
%% Each batch is a task request (`py_task', no `py_semaphore' slot): an
%% async generator's batch is a coroutine that the context's event loop
%% awaits while the context serves other requests (docs/async.md); a sync
%% generator's is answered at once.
-module(py_stream).

-export([stream/5, stream_eval/3, start/4, cancel/1]).

%% Items asked for per batch when the caller collects them all.
-define(LIST_BATCH, 1000).
%% Items asked for per batch of a relay, at most (and no more than the bound).
-define(BATCH, 100).
%% How long a cancel (or the owner's exit) lets a batch under way end by
%% itself before it interrupts it (ms): a generator closed between items
%% runs its finally as usual, one interrupted gets a KeyboardInterrupt.
-define(GRACE, 100).
%% The relay's first and longest wait for room in the owner's mailbox (ms).
-define(POLL_MIN, 1).
-define(POLL_MAX, 20).

-define(ERLANG, <<"erlang">>).

-record(relay, {ref :: reference(),
                owner :: pid(),
                owner_mon :: reference(),
                sidecar :: atom(),
                ctx :: pos_integer(),
                port :: port(),
                port_owner :: pid(),
                port_mon :: reference(),
                n :: integer(),
                bound :: pos_integer(),
                batch :: pos_integer(),
                count = 1 :: pos_integer(),
                timeout :: timeout()}).

%%--------------------------------------------------------------------
%% As a list

%% @doc Every item of `Module.Function(*Args, **Kwargs)' (a generator, an
%% iterator, an iterable or an async generator): `{ok, [Item]}', or the
%% first error (a Python exception, `{error, timeout}' past `Timeout' ms
%% for the whole, `{error, {python_crashed, _}}').
-spec stream(term(), term(), term(), term(), timeout()) -> {ok, list()} | {error, term()}.
stream(M, F, Args, Kwargs, Timeout) ->
    case py_payload:call(M, F, Args, Kwargs) of
        {ok, {MB, FB, A, K}} ->
            collect(open_where(MB, FB, <<"_stream_open">>, [MB, FB, A, K], Timeout), Timeout);
        {error, _} = Error ->
            Error
    end.

%% @doc Every item of the value of expression `Code' (a generator
%% expression such as `(x * 2 for x in range(3))', an iterator, an
%% iterable), with `Locals': as {@link stream/5}.
-spec stream_eval(term(), term(), timeout()) -> {ok, list()} | {error, term()}.
stream_eval(Code, Locals, Timeout) ->
    case py_payload:eval(Code, Locals) of
        {ok, {C, L}} ->
            collect(open_where(undefined, undefined, <<"_stream_open_eval">>, [C, L], Timeout), Timeout);
        {error, _} = Error ->
            Error
    end.

collect({ok, Sidecar, Ctx, N}, Timeout) ->
    collect(Sidecar, Ctx, N, deadline(Timeout), []);
collect({error, _} = Error, _Timeout) ->
    Error.

collect(Sidecar, Ctx, N, Deadline, Acc) ->
    case batch(Sidecar, Ctx, next_payload(N, ?LIST_BATCH), left(Deadline)) of
        {ok, {Items, more}} when is_list(Items) ->
            collect(Sidecar, Ctx, N, Deadline, [Items | Acc]);
        {ok, {Items, done}} when is_list(Items) ->
            {ok, lists:append(lists:reverse(Acc, [Items]))};
        {error, timeout} = Error ->
            %% the batch was cancelled before it ran, or while: the stream goes
            _ = close(Sidecar, Ctx, N, py_config:call_timeout()),
            Error;
        {error, _} = Error ->
            %% the sidecar released the stream on its error, or died
            Error;
        {ok, Other} ->
            _ = close(Sidecar, Ctx, N, py_config:call_timeout()),
            {error, {bad_reply, Other}}
    end.

%%--------------------------------------------------------------------
%% As messages

%% @doc Start streaming `Module.Function(*Args, **Kwargs)' to `Owner' (see
%% the module doc): `{ok, Ref}' once the stream is open and its relay runs;
%% an error in opening it (the function is not found, its result is no
%% iterable) is `{error, Reason}' at once. Opts: `owner' (a local pid,
%% default the caller), `kwargs', `max_inflight' (the bound on the owner's
%% mailbox, default the `stream_max_inflight' setting), `batch' (items per
%% batch, at most; default 100, at most the bound), `timeout' (ms per batch,
%% default `call_timeout').
-spec start(term(), term(), term(), term()) -> {ok, reference()} | {error, term()}.
start(M, F, Args, Opts) when is_map(Opts) ->
    case opts(Opts) of
        {ok, Owner, Kwargs, Bound, Batch, Timeout} ->
            case py_payload:call(M, F, Args, Kwargs) of
                {ok, {MB, FB, A, K}} ->
                    case open_where(MB, FB, <<"_stream_open">>, [MB, FB, A, K], Timeout) of
                        {ok, Sidecar, Ctx, N} ->
                            relay(Sidecar, Ctx, N, Owner, Bound, Batch, Timeout);
                        {error, _} = Error ->
                            Error
                    end;
                {error, _} = Error ->
                    Error
            end;
        {error, _} = Error ->
            Error
    end;
start(_M, _F, _Args, Opts) ->
    {error, {badarg, {opts, Opts, <<"Opts must be a map">>}}}.

%% @doc Stop the stream `Ref' of {@link start/4}: its relay closes the
%% generator (its `finally' runs) and then sends the owner `{py_stream, Ref,
%% {error, cancelled}}'. Returns `ok' at once, also for a stream that ended
%% already (then nothing more comes).
-spec cancel(reference()) -> ok | {error, {badarg, term()}}.
cancel(Ref) when is_reference(Ref) ->
    Ref ! {'$py_stream_cancel', Ref},
    ok;
cancel(Ref) ->
    {error, {badarg, {ref, Ref, <<"Ref must be the reference of py:stream_start">>}}}.

-define(OPTS, [owner, kwargs, max_inflight, batch, timeout]).

opts(Opts) ->
    Owner = maps:get(owner, Opts, self()),
    Bound = maps:get(max_inflight, Opts, py_config:stream_max_inflight()),
    Batch = maps:get(batch, Opts, min(?BATCH, Bound)),
    Timeout = maps:get(timeout, Opts, py_config:call_timeout()),
    case maps:keys(maps:without(?OPTS, Opts)) of
        [_ | _] = Bad ->
            {error, {badarg, {opts, {unknown_keys, lists:sort(Bad), ?OPTS}}}};
        [] when not is_pid(Owner); node(Owner) =/= node() ->
            {error, {badarg, {owner, Owner, <<"owner must be a local pid">>}}};
        [] when not is_integer(Bound); Bound < 1 ->
            {error, {badarg, {max_inflight, Bound, <<"max_inflight must be a positive integer">>}}};
        [] when not is_integer(Batch); Batch < 1 ->
            {error, {badarg, {batch, Batch, <<"batch must be a positive integer">>}}};
        [] ->
            case py_payload:timeout(Timeout) of
                {ok, T} -> {ok, Owner, maps:get(kwargs, Opts, #{}), Bound, min(Batch, Bound), T};
                {error, _} = Error -> Error
            end
    end.

%% Starts the relay and waits until it holds the stream.
relay(Sidecar, Ctx, N, Owner, Bound, Batch, Timeout) ->
    Caller = self(),
    Tag = make_ref(),
    Early = py_callback:caller(Sidecar) =/= none,
    {Pid, Mon} = spawn_monitor(fun() ->
                                       relay_init(Caller, Tag, Early, Sidecar, Ctx, N, Owner, Bound,
                                                  Batch, Timeout)
                               end),
    receive
        {Tag, Result} ->
            erlang:demonitor(Mon, [flush]),
            Result;
        {'DOWN', Mon, process, Pid, Reason} ->
            _ = close(Sidecar, Ctx, N, Timeout),
            {error, {stream_relay, Reason}}
    end.

relay_init(Caller, Tag, Early, Sidecar, Ctx, N, Owner, Bound, Batch, Timeout) ->
    case py_instance:lookup(Sidecar) of
        {ok, Port, PortOwner} ->
            Ref = erlang:alias([explicit_unalias]),
            S = #relay{ref = Ref, owner = Owner, owner_mon = erlang:monitor(process, Owner),
                       sidecar = Sidecar, ctx = Ctx, port = Port, port_owner = PortOwner,
                       port_mon = erlang:monitor(process, PortOwner), n = N, bound = Bound,
                       batch = Batch, timeout = Timeout},
            %% In a function that Python called (a callback), the context
            %% waits for the caller: the relay's requests run once it
            %% returns, so the caller does not wait for them (the stream is
            %% held meanwhile by the process of the Python request below,
            %% whose environment the open ran in).
            _ = Early andalso (Caller ! {Tag, {ok, Ref}}),
            %% the relay holds the stream from now on: it ends with the relay
            case py_request:run(Sidecar, call, Ctx, {?ERLANG, <<"_stream_adopt">>, [N], #{}}, Timeout) of
                {ok, _} when Early ->
                    room(S, ?POLL_MIN);
                {ok, _} ->
                    Caller ! {Tag, {ok, Ref}},
                    room(S, ?POLL_MIN);
                {error, _} = Error when Early ->
                    finish(S, Error);
                {error, _} = Error ->
                    Caller ! {Tag, Error}
            end;
        {error, not_started} ->
            Caller ! {Tag, {error, {python_crashed, #{reason => restarting}}}}
    end.

%% Ask for a batch when the owner's mailbox has room, else wait for it.
room(#relay{owner = Owner, bound = Bound, count = Count} = S, Poll) ->
    case erlang:process_info(Owner, message_queue_len) of
        {message_queue_len, Len} when Len < Bound ->
            step(S, min(Count, Bound - Len));
        {message_queue_len, _} ->
            receive
                Msg -> control(S, Msg, none, fun() -> room(S, Poll) end)
            after Poll ->
                room(S, min(Poll * 2, ?POLL_MAX))
            end;
        undefined ->
            %% the owner exited: its 'DOWN' is on its way
            receive
                Msg -> control(S, Msg, none, fun() -> room(S, Poll) end)
            end
    end.

%% One batch of Count items, asked for without blocking the relay, which
%% meanwhile still takes a cancel or the owner's exit.
%% A batch is a task request (py_task): an async generator's batch is a
%% coroutine, awaited on the context's loop while the context serves
%% others; a sync one is answered at once. It holds no py_semaphore slot.
step(#relay{ctx = Ctx, port = Port, port_owner = PortOwner, n = N} = S, Count) ->
    Alias = erlang:monitor(process, PortOwner, [{alias, demonitor}]),
    Packet = py_wire:packet(py_wire:task(Ctx, self()), py_wire:id(nested, Alias),
                            term_to_binary(next_payload(N, Count))),
    case py_wire:send(Port, Packet) of
        true ->
            await(S, Alias, Count);
        false ->
            erlang:demonitor(Alias, [flush]),
            finish(S, {error, {python_crashed, #{reason => port_closed}}})
    end.

await(#relay{ref = Ref, owner = Owner, timeout = Timeout} = S, Alias, Count) ->
    receive
        {py_reply, Alias, Bin} ->
            erlang:demonitor(Alias, [flush]),
            case py_request:decode(Bin) of
                {ok, {Items, State}} when is_list(Items), (State =:= more orelse State =:= done) ->
                    _ = [Owner ! {py_stream, Ref, {data, Item}} || Item <- Items],
                    case State of
                        more -> room(S#relay{count = next_count(S, Count, length(Items))}, ?POLL_MIN);
                        done -> finish(S, done)
                    end;
                {ok, Other} ->
                    stop(S, {error, {bad_reply, Other}});
                {error, _} = Error ->
                    %% the sidecar released the stream on its error
                    finish(S, Error)
            end;
        {'DOWN', Alias, process, _, Reason} ->
            finish(S, {error, py_request:crashed(Reason)});
        Msg ->
            control(S, Msg, Alias, fun() -> await(S, Alias, Count) end)
    after Timeout ->
        _ = py_request:give_up(S#relay.port, py_wire:id(nested, Alias), Alias),
        stop(S, {error, timeout})
    end.

%% A message other than a batch's reply: a cancel, the owner's exit, the
%% sidecar's death; anything else is dropped.
control(#relay{ref = Ref, owner_mon = OMon, port_mon = PMon} = S, Msg, Alias, Continue) ->
    case Msg of
        {'$py_stream_cancel', Ref} ->
            give_up(S, Alias),
            stop(S, {error, cancelled});
        {'DOWN', OMon, process, _, _} ->
            give_up(S, Alias),
            _ = close(S),
            erlang:unalias(Ref),
            ok;
        {'DOWN', PMon, process, _, Reason} ->
            finish(S, {error, py_request:crashed(Reason)});
        _ ->
            Continue()
    end.

%% A batch under way when the stream is to stop: it may end within
%% ?GRACE ms (its items are dropped), else it is cancelled (interrupted).
give_up(_S, none) ->
    ok;
give_up(#relay{port = Port}, Alias) ->
    receive
        {py_reply, Alias, _} -> erlang:demonitor(Alias, [flush]), ok;
        {'DOWN', Alias, process, _, _} -> ok
    after ?GRACE ->
        _ = py_request:give_up(Port, py_wire:id(nested, Alias), Alias),
        ok
    end.

%% Items asked for in the next batch: 1 at first, twice as many after a
%% batch that came full, up to the batch size; back to 1 after one that
%% ended on its time budget (5 ms, pool/py/stream.py) with fewer. So the
%% first item goes out as soon as it comes, and a slow generator's items
%% one by one, while a fast one's go in full batches.
next_count(#relay{batch = Batch}, Count, Got) when Got >= Count -> min(Batch, Count * 2);
next_count(_S, _Count, _Got) -> 1.

%% Close the stream (its finally runs), then tell the owner.
stop(S, Event) ->
    _ = close(S),
    finish(S, Event).

finish(#relay{ref = Ref, owner = Owner}, Event) ->
    Owner ! {py_stream, Ref, Event},
    erlang:unalias(Ref),
    ok.

close(#relay{sidecar = Sidecar, ctx = Ctx, n = N, timeout = Timeout}) ->
    close(Sidecar, Ctx, N, Timeout).

%%--------------------------------------------------------------------

%% Open the stream in the caller's context and environment, where its
%% module's calls would go: `{ok, Sidecar, Ctx, N}', N its object reference.
open_where(M, F, Helper, Args, Timeout) ->
    case where(M, F, Timeout) of
        {ok, Sidecar, Ctx} ->
            case py_request:run(Sidecar, call, Ctx, {?ERLANG, Helper, Args, #{}, ref}, Timeout) of
                {ok, N} when is_integer(N) -> {ok, Sidecar, Ctx, N};
                {ok, Other} -> {error, {bad_reply, Other}};
                {error, _} = Error -> Error
            end;
        {error, _} = Error ->
            Error
    end.

%% The sidecar and context of module M's calls, once that sidecar is up.
where(M, F, Timeout) ->
    py_route:route_up(M, F, Timeout).

%% One batch for the caller: a task request (see step/2); in a function
%% that Python called, a call of the waiting request's chain, which its
%% context runs on top of it (an async generator cannot be stepped there:
%% the loop does not run while its context waits for the callback).
batch(Sidecar, Ctx, Payload, Timeout) ->
    case py_callback:caller(Sidecar) of
        none -> py_task:run(Sidecar, Ctx, Payload, Timeout);
        _ -> py_request:run(Sidecar, call, Ctx, Payload, Timeout)
    end.

next_payload(N, Count) ->
    {?ERLANG, <<"_stream_next">>, [N, Count], #{}}.

close(Sidecar, Ctx, N, Timeout) ->
    py_request:run(Sidecar, call, Ctx, {?ERLANG, <<"_stream_close">>, [N], #{}}, Timeout).

deadline(infinity) -> infinity;
deadline(Timeout) -> erlang:monotonic_time(millisecond) + Timeout.

left(infinity) -> infinity;
left(Deadline) -> max(0, Deadline - erlang:monotonic_time(millisecond)).
