%% @doc Fair load control for all calls (API.md section 10).
%%
%% At most `max_concurrent' calls, evals and execs run in Python at once. A
%% call that finds every slot taken waits, in arrival order (first come,
%% first served: a newcomer never overtakes a caller that already waits),
%% until a slot frees or its own timeout passes. It is refused with
%% `{error, {overloaded, Current, Max}}':
%% <ul>
%% <li>at once when `max_waiting' calls already wait (`max_waiting' 0 refuses
%%     every call that finds the slots taken, without a wait);</li>
%% <li>when its timeout passed before a slot came (a timeout of 0 never
%%     waits).</li>
%% </ul>
%% A waiter that dies leaves the queue. The time a call waits for its slot
%% counts toward its timeout: the wait for the reply gets what remains
%% ({@link py_request}). Raising the limit ({@link set_max_concurrent/1}) lets
%% waiters go at once; lowering it lets the calls in flight finish. Calls
%% made while the sidecar restarts wait for the restart, not here
%% (`py_lifecycle:when_up/3', in `py'), and calls that Erlang code makes
%% inside a callback from Python take no slot ({@link py_request}).
%%
%% == Cost ==
%% The counters live in an `atomics' array kept in `persistent_term' with the
%% server's pid: slot 1 (`CUR') the requests holding a slot, 2 (`MAX') the
%% limit, 3 (`WAIT') the callers on the slow path, 4 (`MAXW') `max_waiting'.
%% A call that finds `WAIT' at 0 and a slot free takes it with a
%% compare-and-swap and sends no message to any process; a release sends one
%% (a cast to this server) only when `WAIT' is above 0. Only a call that must
%% wait involves the server, which holds the queue of waiters (each
%% monitored) and hands a freed slot to the head.
%%
%% == Why no wake-up is lost ==
%% Erlang's atomics are sequentially consistent. The rules:
%% <ol>
%% <li>a waiter adds 1 to `WAIT' before it sends its `wait' request, and its
%%     1 is taken off only when it leaves the queue (granted, withdrawn, dead)
%%     or when it is refused before it sends the request;</li>
%% <li>whoever takes 1 off `CUR' (a release, a reset) reads `WAIT' after it,
%%     and casts `wake' to the server if it is above 0;</li>
%% <li>the server runs its grant loop (take a slot with a compare-and-swap
%%     on `CUR' against `MAX', then hand it to the head) after every `wait'
%%     it queues, every `wake', every dead holder of an unconfirmed grant.</li>
%% </ol>
%% Take a waiter W queued while a slot is free. Either the release that freed
%% it took 1 off `CUR' before the server's loop that followed W's `wait' read
%% `CUR': that loop sees the free slot (rule 3). Or it did so after: then W's
%% add to `WAIT' came before W's `wait' was sent, which came before the loop,
%% which came before the release's decrement, which came before its read of
%% `WAIT' (rule 2), so that read sees W's 1 (still there: W is queued, rule 1)
%% and a `wake' follows, and with it a loop that sees the slot. Slots are only
%% ever taken by a compare-and-swap of `CUR' from a value below `MAX', so the
%% limit is never exceeded. A newcomer reads `WAIT' first and, if it is above
%% 0, queues behind the waiters (no barging); it cannot tell apart callers
%% that arrive at the same instant, which is still first come, first served.
%%
%% A waiter that the server granted a slot confirms with a cast (`taken');
%% if it dies before that, the server gives the slot back. A waiter whose
%% timeout passes withdraws with a call; if a grant crossed the withdrawal,
%% it gives the slot back itself and is refused all the same.
%%
%% == Who holds a slot ==
%% A slot is held by a request, not by its caller: the caller takes it before
%% it sends the request, and the port owner (`py_sidecar') gives it back when
%% the sidecar's reply comes, whoever waits for it. The sidecar answers every
%% call, eval and exec exactly once (a cancelled one too), so a caller that
%% timed out or was killed never leaks its slot, and a call still running in
%% Python after its caller gave up still counts: the limit is on the work
%% Python has. When the sidecar dies its requests are gone, and the owner
%% resets the count ({@link reset/0}), which lets waiters go on.
%%
%% There is one per sidecar, under `{py_semaphore, Sidecar, counter}' (see
%% {@link py_sidecar_sup}); the functions without a sidecar argument are
%% those of the default sidecar, the ones with it take the sidecar's name
%% first.
-module(py_semaphore).

-behaviour(gen_server).

-export([start_link/0, max_concurrent/0, current/0, waiting/0, set_max_concurrent/1,
         acquire/1, release/0, reset/0]).
-export([start_link/1, max_concurrent/1, current/1, waiting/1, set_max_concurrent/2,
         acquire/2, release/1, reset/1]).
-export([init/1, handle_call/3, handle_cast/2, handle_info/2, terminate/2]).

-define(DEFAULT, default).
-define(KEY(Sidecar), {?MODULE, Sidecar, counter}).
-define(CUR, 1).
-define(MAX, 2).
-define(WAIT, 3).
-define(MAXW, 4).
%% (a sidecar's name is an atom too: the old acquire(Sidecar) fails loudly)
-define(IS_TIMEOUT(T), (T =:= infinity orelse (is_integer(T) andalso T >= 0))).

-type overloaded() :: {overloaded, non_neg_integer(), pos_integer()}.
-export_type([overloaded/0]).

-record(state, {sidecar :: atom(),
                ref :: atomics:atomics_ref(),
                seq = 0 :: non_neg_integer(),
                %% arrival number => waiter, the head is the smallest
                queue = gb_trees:empty() :: gb_trees:tree(non_neg_integer(), pid()),
                waiters = #{} :: #{pid() => {non_neg_integer(), gen_server:from(), reference()}},
                %% granted a slot, not yet confirmed: the monitor
                granted = #{} :: #{pid() => reference()}}).

%% @doc Start the default sidecar's counter.
-spec start_link() -> {ok, pid()} | {error, term()}.
start_link() ->
    start_link(?DEFAULT).

%% @doc Start sidecar `Sidecar''s counter, its limit `max_concurrent', its
%% queue bounded by `max_waiting'.
-spec start_link(atom()) -> {ok, pid()} | {error, term()}.
start_link(Sidecar) ->
    gen_server:start_link({local, py_instance:name(?MODULE, Sidecar)}, ?MODULE, Sidecar, []).

%% @doc The limit: at most this many calls run in Python at once.
-spec max_concurrent() -> non_neg_integer().
max_concurrent() ->
    max_concurrent(?DEFAULT).

%% @doc The limit of sidecar `Sidecar'.
-spec max_concurrent(atom()) -> non_neg_integer().
max_concurrent(Sidecar) ->
    read(Sidecar, ?MAX).

%% @doc Requests holding a slot now.
-spec current() -> non_neg_integer().
current() ->
    current(?DEFAULT).

%% @doc Requests holding a slot now in sidecar `Sidecar'.
-spec current(atom()) -> non_neg_integer().
current(Sidecar) ->
    read(Sidecar, ?CUR).

%% @doc Calls waiting for a slot now (those on their way into the queue
%% count too).
-spec waiting() -> non_neg_integer().
waiting() ->
    waiting(?DEFAULT).

%% @doc Calls waiting for a slot of sidecar `Sidecar' now.
-spec waiting(atom()) -> non_neg_integer().
waiting(Sidecar) ->
    read(Sidecar, ?WAIT).

%% @doc Change the limit at run time. Calls in flight are not affected; a
%% higher limit lets waiters go at once.
-spec set_max_concurrent(pos_integer()) -> ok | {error, not_started}.
set_max_concurrent(N) ->
    set_max_concurrent(?DEFAULT, N).

%% @doc Change the limit of sidecar `Sidecar'.
-spec set_max_concurrent(atom(), pos_integer()) -> ok | {error, not_started}.
set_max_concurrent(Sidecar, N) when is_integer(N), N > 0 ->
    case counter(Sidecar) of
        undefined ->
            {error, not_started};
        {Ref, Server} ->
            atomics:put(Ref, ?MAX, N),
            wake(Ref, Server)
    end.

%% @doc Take a slot, waiting in arrival order up to `Timeout' ms (or
%% `infinity') when all are taken. `{error, {overloaded, Cur, Max}}' at once
%% when `max_waiting' calls already wait, or when `Timeout' passed first.
%% Whoever takes a slot by hand gives it back with {@link release/0}.
-spec acquire(timeout()) -> ok | {error, overloaded() | not_started}.
acquire(Timeout) when ?IS_TIMEOUT(Timeout) ->
    acquire(?DEFAULT, Timeout).

%% @doc Take a slot of sidecar `Sidecar' (a call to it takes one), as
%% {@link acquire/1}.
-spec acquire(atom(), timeout()) -> ok | {error, overloaded() | not_started}.
acquire(Sidecar, Timeout) when is_atom(Sidecar), ?IS_TIMEOUT(Timeout) ->
    case counter(Sidecar) of
        undefined ->
            {error, not_started};
        {Ref, Server} ->
            %% nobody waits and a slot is free: no message (see the module doc)
            case atomics:get(Ref, ?WAIT) =:= 0 andalso take(Ref) of
                ok -> ok;
                _ -> refused(Sidecar, Ref, wait(Sidecar, Ref, Server, Timeout))
            end
    end.

%% A refusal is an event (py_events), with the queue's length.
refused(Sidecar, Ref, {error, {overloaded, Current, Max}} = Error) ->
    py_events:execute([erlang_python, overload],
                      #{current => Current, max => Max, waiting => atomics:get(Ref, ?WAIT)},
                      #{sidecar => Sidecar}),
    Error;
refused(_Sidecar, _Ref, Result) ->
    Result.

%% @doc Give a slot back: the owner does when a reply comes, a caller does when
%% its request could not be sent. Never below 0 (after a {@link reset/0}, a
%% slot taken before it may still come back). The head of the queue, if any,
%% gets the slot.
-spec release() -> ok.
release() ->
    release(?DEFAULT).

%% @doc Give a slot of sidecar `Sidecar' back (its port owner does).
-spec release(atom()) -> ok.
release(Sidecar) ->
    case counter(Sidecar) of
        undefined -> ok;
        {Ref, Server} -> give_back(Ref, Server)
    end.

%% @doc No request in flight: the sidecar that had them is gone. Waiters get
%% the slots.
-spec reset() -> ok.
reset() ->
    reset(?DEFAULT).

%% @doc No request in flight in sidecar `Sidecar' (its port owner says so).
-spec reset(atom()) -> ok.
reset(Sidecar) ->
    case counter(Sidecar) of
        undefined ->
            ok;
        {Ref, Server} ->
            atomics:put(Ref, ?CUR, 0),
            wake(Ref, Server)
    end.

-spec counter(atom()) -> {atomics:atomics_ref(), pid()} | undefined.
counter(Sidecar) ->
    persistent_term:get(?KEY(Sidecar), undefined).

read(Sidecar, Slot) ->
    case counter(Sidecar) of
        undefined -> 0;
        {Ref, _Server} -> atomics:get(Ref, Slot)
    end.

%% A slot if one is free: CUR goes from a value below MAX to one more.
take(Ref) ->
    take(Ref, atomics:get(Ref, ?MAX), atomics:get(Ref, ?CUR)).

take(_Ref, Max, Cur) when Cur >= Max ->
    full;
take(Ref, Max, Cur) ->
    case atomics:compare_exchange(Ref, ?CUR, Cur, Cur + 1) of
        ok -> ok;
        Now -> take(Ref, Max, Now)
    end.

%% Take 1 off CUR (never below 0), then wake the server if anyone waits.
give_back(Ref, Server) ->
    decrement(Ref, atomics:get(Ref, ?CUR)),
    wake(Ref, Server).

decrement(_Ref, N) when N =< 0 ->
    ok;
decrement(Ref, N) ->
    case atomics:compare_exchange(Ref, ?CUR, N, N - 1) of
        ok -> ok;
        Now -> decrement(Ref, Now)
    end.

wake(Ref, Server) ->
    case atomics:get(Ref, ?WAIT) of
        0 -> ok;
        _ -> gen_server:cast(Server, wake)
    end.

overloaded(Ref) ->
    Max = atomics:get(Ref, ?MAX),
    {error, {overloaded, min(atomics:get(Ref, ?CUR), Max), Max}}.

%% The slow path: into the queue, unless it is full or there is no time.
wait(_Sidecar, Ref, _Server, 0) ->
    overloaded(Ref);
wait(Sidecar, Ref, Server, Timeout) ->
    MaxWaiting = atomics:get(Ref, ?MAXW),
    case atomics:add_get(Ref, ?WAIT, 1) of
        Waiting when Waiting > MaxWaiting ->
            atomics:sub(Ref, ?WAIT, 1),
            overloaded(Ref);
        Waiting ->
            py_events:execute([erlang_python, semaphore, wait], #{waiting => Waiting},
                              #{sidecar => Sidecar}),
            ReqId = gen_server:send_request(Server, wait),
            case gen_server:receive_response(ReqId, Timeout) of
                {reply, ok} ->
                    gen_server:cast(Server, {taken, self()}),
                    ok;
                timeout ->
                    withdraw(Ref, Server);
                {error, _} ->
                    {error, not_started}
            end
    end.

%% The timeout passed: out of the queue; a grant that crossed is given back.
withdraw(Ref, Server) ->
    try gen_server:call(Server, withdraw, infinity) of
        withdrawn ->
            overloaded(Ref);
        granted ->
            give_back(Ref, Server),
            overloaded(Ref)
    catch
        exit:_ -> {error, not_started}
    end.

%%--------------------------------------------------------------------

%% @private
-spec init(atom()) -> {ok, #state{}}.
init(Sidecar) ->
    process_flag(trap_exit, true),
    Ref = atomics:new(4, [{signed, true}]),
    atomics:put(Ref, ?MAX, py_config:get(Sidecar, max_concurrent)),
    atomics:put(Ref, ?MAXW, py_config:get(Sidecar, max_waiting)),
    persistent_term:put(?KEY(Sidecar), {Ref, self()}),
    {ok, #state{sidecar = Sidecar, ref = Ref}}.

%% @private
-spec handle_call(wait | withdraw | term(), gen_server:from(), #state{}) ->
          {noreply, #state{}} | {reply, withdrawn | granted | {error, unknown_call}, #state{}}.
handle_call(wait, {Pid, _} = From, #state{seq = Seq, queue = Queue, waiters = Waiters} = State) ->
    MRef = erlang:monitor(process, Pid),
    {noreply, grant(State#state{seq = Seq + 1, queue = gb_trees:insert(Seq, Pid, Queue),
                                waiters = Waiters#{Pid => {Seq, From, MRef}}})};
handle_call(withdraw, {Pid, _}, #state{waiters = Waiters, granted = Granted} = State) ->
    case {Waiters, Granted} of
        {#{Pid := _}, _} ->
            {reply, withdrawn, leave(Pid, State)};
        {_, #{Pid := MRef}} ->
            erlang:demonitor(MRef, [flush]),
            {reply, granted, State#state{granted = maps:remove(Pid, Granted)}};
        _ ->
            {reply, withdrawn, State}
    end;
handle_call(_Request, _From, State) ->
    {reply, {error, unknown_call}, State}.

%% @private
-spec handle_cast(wake | {taken, pid()} | term(), #state{}) -> {noreply, #state{}}.
handle_cast(wake, State) ->
    {noreply, grant(State)};
handle_cast({taken, Pid}, #state{granted = Granted} = State) ->
    case Granted of
        #{Pid := MRef} ->
            erlang:demonitor(MRef, [flush]),
            {noreply, State#state{granted = maps:remove(Pid, Granted)}};
        _ ->
            {noreply, State}
    end;
handle_cast(_Msg, State) ->
    {noreply, State}.

%% @private
-spec handle_info(term(), #state{}) -> {noreply, #state{}}.
handle_info({'DOWN', MRef, process, Pid, _}, #state{ref = Ref, waiters = Waiters,
                                                     granted = Granted} = State) ->
    case {Waiters, Granted} of
        {#{Pid := {_, _, MRef}}, _} ->
            %% a waiter died: out of the queue
            {noreply, leave(Pid, State)};
        {_, #{Pid := MRef}} ->
            %% it died with a slot it never used
            decrement(Ref, atomics:get(Ref, ?CUR)),
            {noreply, grant(State#state{granted = maps:remove(Pid, Granted)})};
        _ ->
            {noreply, State}
    end;
handle_info(_Info, State) ->
    {noreply, State}.

%% @private
-spec terminate(term(), #state{}) -> ok.
terminate(_Reason, #state{sidecar = Sidecar}) ->
    _ = persistent_term:erase(?KEY(Sidecar)),
    ok.

%% Hand free slots to the head of the queue, in order, while there are both.
grant(#state{ref = Ref, queue = Queue, waiters = Waiters, granted = Granted} = State) ->
    case gb_trees:is_empty(Queue) orelse take(Ref) of
        true ->
            State;
        full ->
            State;
        ok ->
            {_Seq, Pid, Rest} = gb_trees:take_smallest(Queue),
            {_, From, MRef} = maps:get(Pid, Waiters),
            atomics:sub(Ref, ?WAIT, 1),
            gen_server:reply(From, ok),
            grant(State#state{queue = Rest, waiters = maps:remove(Pid, Waiters),
                              granted = Granted#{Pid => MRef}})
    end.

%% Waiter Pid leaves the queue without a slot.
leave(Pid, #state{ref = Ref, queue = Queue, waiters = Waiters} = State) ->
    {Seq, _From, MRef} = maps:get(Pid, Waiters),
    erlang:demonitor(MRef, [flush]),
    atomics:sub(Ref, ?WAIT, 1),
    State#state{queue = gb_trees:delete(Seq, Queue), waiters = maps:remove(Pid, Waiters)}.
