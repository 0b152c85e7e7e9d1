%% @doc The process that owns the port to the Go sidecar `pyport'.
%%
%% It opens the port with the flags of docs/PROTOCOL.md built from the
%% application environment, asks the sidecar for its `info' (mode, version,
%% executors, protocol, slot size), refuses a sidecar that speaks another
%% protocol ({@link py_wire:check_info/2}: the sidecar does not start) and
%% publishes `{Port, self()}' and the info ({@link py_instance}). Callers send
%% their requests themselves with `erlang:port_command/2', in parallel
%% (see {@link py_request}); this process only routes replies: it reads the id,
%% the first term of a reply, and forwards the rest, undecoded, to that id
%% (an alias of the caller), so a large result is decoded once, by the caller.
%%
%% When the sidecar exits, this process stops with
%% `{python_crashed, Info}': callers in flight monitor it and get that error,
%% and the supervisor starts a new sidecar, after the backoff
%% {@link py_lifecycle} gives. `Info' has the exit `status' (2 for a
%% segfault or abort in Python or C, N for `os._exit(N)', 128 + S for a
%% signal S, which is also given as `signal'), and the `reason' the sidecar
%% gave before it exited, when it gave one (`{stuck, Ctx, GraceMs}': a
%% cancelled call stayed in C code). The processes Python started (its
%% process group) are killed with it.
%%
%% There is one per sidecar (see {@link py_sidecar_sup}); the functions
%% without a sidecar argument are those of the default sidecar. The backoff
%% and the start-up requests run in `handle_continue/2', after `init/1' has
%% returned, so the supervisor is not blocked; calls made meanwhile wait
%% for the service (`py_lifecycle:when_up/3'), and `py_pool' waits for the
%% port ({@link started/1}). A first start that fails is reported to
%% `py_lifecycle' ({@link py_lifecycle:start_failed/2}); every failed start
%% stops this process, and the supervisor restarts it.
-module(py_sidecar).

-behaviour(gen_server).

-export([start_link/0, lookup/0, port/0, info/0, crash_info/2, port_exit_info/2]).
-export([start_link/1, lookup/1, port/1, info/1, started/1, contexts_up/1, label/1]).
-export([init/1, handle_continue/2, handle_call/3, handle_cast/2, handle_info/2,
         terminate/2]).

-define(DEFAULT, default).
-define(START_TIMEOUT, 60000).
-define(SWEEP_MS, 10000).
-define(CAST_SWEEP_MS, 1000).
%% '$send' packets handled per {send_ack, N}: fewer than the sidecar's
%% window (4 batches, port/output.h), so its senders never wait for an ack
%% that a count short of this would hold back.
-define(SEND_ACK, 2).

-type info() :: #{mode := subinterp | multi_executor | free_threaded,
                  version := binary(),
                  num_executors := non_neg_integer(),
                  subinterp_supported := boolean(),
                  protocol := pos_integer(),
                  slot_min := pos_integer()}.
-export_type([info/0]).

-record(state, {sidecar :: atom(),
                port :: port() | undefined,
                os_pid :: integer() | undefined,
                sends = 0 :: non_neg_integer(), % '$send's not yet acknowledged
                exit_reason :: term()}). % from a '$exit' packet

%% @doc Start the default sidecar's port owner.
-spec start_link() -> {ok, pid()} | {error, term()}.
start_link() ->
    start_link(?DEFAULT).

%% @doc Start sidecar `Sidecar''s port owner.
-spec start_link(atom()) -> {ok, pid()} | {error, term()}.
start_link(Sidecar) ->
    gen_server:start_link({local, py_instance:name(?MODULE, Sidecar)}, ?MODULE, Sidecar, []).

%% @doc The port and its owner, for callers that send requests themselves.
-spec lookup() -> {ok, port(), pid()} | {error, not_started}.
lookup() ->
    lookup(?DEFAULT).

%% @doc {@link lookup/0} for sidecar `Sidecar'.
-spec lookup(atom()) -> {ok, port(), pid()} | {error, not_started}.
lookup(Sidecar) ->
    py_instance:lookup(Sidecar).

%% @doc The port, or `undefined' when the application is not running.
-spec port() -> port() | undefined.
port() ->
    port(?DEFAULT).

%% @doc The port of sidecar `Sidecar', or `undefined'.
-spec port(atom()) -> port() | undefined.
port(Sidecar) ->
    py_instance:port(Sidecar).

%% @doc What the running sidecar said about itself at start-up.
-spec info() -> {ok, info()} | {error, not_started}.
info() ->
    info(?DEFAULT).

%% @doc {@link info/0} of sidecar `Sidecar'.
-spec info(atom()) -> {ok, info()} | {error, not_started}.
info(Sidecar) ->
    py_instance:info(Sidecar).

%% @doc Wait until sidecar `Sidecar''s port is open and its start-up
%% requests answered: `ok', or `{error, Reason}' when this port owner
%% stopped instead (py_pool waits so before it starts contexts).
-spec started(atom()) -> ok | {error, term()}.
started(Sidecar) ->
    try gen_server:call(py_instance:name(?MODULE, Sidecar), started, infinity)
    catch exit:Reason -> {error, Reason}
    end.

%% @doc Sidecar `Sidecar''s contexts run (its py_pool says so once it has
%% started them): the service is up, see {@link service/2}.
-spec contexts_up(atom()) -> ok.
contexts_up(Sidecar) ->
    gen_server:cast(py_instance:name(?MODULE, Sidecar), contexts_up).

%% @doc How log lines name sidecar `Sidecar': nothing for the default one.
-spec label(atom()) -> string().
label(Sidecar) ->
    py_instance:label(Sidecar).

%%--------------------------------------------------------------------

%% @private
-spec init(atom()) -> {ok, #state{}, {continue, start}}.
init(Sidecar) ->
    process_flag(trap_exit, true),
    %% Replies for many callers may queue here; keep them off the heap.
    process_flag(message_queue_data, off_heap),
    %% the requests of an earlier sidecar are gone with it
    py_semaphore:reset(Sidecar),
    erlang:send_after(?SWEEP_MS, self(), sweep_slots),
    %% py:cast's calls in flight (py_async), before anyone can cast
    ok = py_async:new_table(Sidecar),
    erlang:send_after(?CAST_SWEEP_MS, self(), sweep_casts),
    {ok, #state{sidecar = Sidecar}, {continue, start}}.

%% The backoff, the OS process and its start-up requests, out of init/1.
%% @private
-spec handle_continue(start, #state{}) -> {noreply, #state{}} | {stop, term(), #state{}}.
handle_continue(start, #state{sidecar = Sidecar} = State) ->
    %% no slots without /dev/shm: everything goes through the pipe
    SlotArgs = case py_slot:open_dir(Sidecar) of
                   {ok, Dir} -> ["--slot-dir", binary_to_list(Dir)];
                   {error, _} -> []
               end,
    case py_lifecycle:backoff(Sidecar) of
        0 -> ok;
        Delay ->
            %% no domain: the default handler shows it
            logger:notice("erlang_python: sidecar~ts restarts in ~b ms", [label(Sidecar), Delay]),
            timer:sleep(Delay)
    end,
    %% the pyport file and the Python it runs (py_python): asked once
    case py_port_exe:launch(py_config:get(Sidecar, python)) of
        {ok, #{exe := Exe} = Launch} ->
            try py_port_exe:open(Launch, py_config:port_args(Sidecar) ++ SlotArgs) of
                Port -> open(Port, Exe, State)
            catch
                error:Reason ->
                    %% no such file, not executable...
                    py_lifecycle:start_failed(Sidecar, Reason),
                    {stop, Reason, State}
            end;
        {error, Reason} ->
            %% no domain: the default handler shows it
            logger:error("erlang_python: sidecar~ts cannot start: ~ts",
                         [label(Sidecar), py_python:format_error(Reason)]),
            py_lifecycle:start_failed(Sidecar, Reason),
            {stop, Reason, State}
    end.

open(Port, Exe, #state{sidecar = Sidecar} = State) ->
    OsPid = case erlang:port_info(Port, os_pid) of
                {os_pid, P} -> P;
                undefined -> undefined
            end,
    case handshake(Sidecar, Port, Exe) of
        {ok, Info} ->
            ok = py_instance:publish(Sidecar, Port, self(), Info),
            {noreply, State#state{port = Port, os_pid = OsPid}};
        {error, Reason} ->
            catch port_close(Port),
            py_lifecycle:start_failed(Sidecar, Reason),
            {stop, Reason, State}
    end.

%% Ask for `info', then tell the sidecar the atoms made for Python so far
%% (`atoms_load', py_atoms), then load the shared state's mirror (py_state) into the
%% new sidecar's store (`state_load', which also turns its mirror on), before
%% anyone knows the port. Exe: the sidecar's path, for the refusal's message.
handshake(Sidecar, Port, Exe) ->
    case startup_request(Sidecar, Port, py_wire:info(), <<>>) of
        {ok, Info} when is_map(Info) ->
            case py_wire:check_info(Info, Exe) of
                ok ->
                    %% the atoms made for Python so far (py_atoms), before
                    %% any Python runs: its count starts from the VM's
                    case startup_request(Sidecar, Port, py_wire:atoms_load(), py_atoms:load_payload()) of
                        ok -> load_state(Sidecar, Port, Info);
                        {error, Reason} -> {error, {atoms_load, Reason}};
                        Other -> {error, {atoms_load, Other}}
                    end;
                {error, Reason} = Error ->
                    %% no domain: the default handler shows this one
                    logger:error("erlang_python: ~ts", [py_wire:format_error(Reason)]),
                    Error
            end;
        {error, _} = Error -> Error;
        Other -> {error, {bad_info_reply, Other}}
    end.

load_state(Sidecar, Port, Info) ->
    case startup_request(Sidecar, Port, py_wire:state_load(),
                         term_to_binary(py_state:snapshot(Sidecar))) of
        ok -> {ok, Info};
        {error, Reason} -> {error, {state_load, Reason}};
        Other -> {error, {state_load, Other}}
    end.

%% One request whose answer this process waits for itself, as it routes
%% nothing yet: log lines go to py_log (which acknowledges them), other
%% packets are skipped.
startup_request(Sidecar, Port, Request, Payload) ->
    Ref = make_ref(),
    true = py_wire:send(Port, py_wire:packet(Request, py_wire:id(control, Ref), Payload)),
    startup_reply(Sidecar, Port, Ref).

startup_reply(Sidecar, Port, Ref) ->
    receive
        {Port, {data, Bin}} ->
            case py_wire:decode(Bin) of
                {reply, Ref, Body} ->
                    case py_wire:result(Body) of
                        {ok, Result} -> Result;
                        _ -> startup_reply(Sidecar, Port, Ref)
                    end;
                {log, Body} ->
                    py_log:forward(Sidecar, Port, Body),
                    startup_reply(Sidecar, Port, Ref);
                _ ->
                    startup_reply(Sidecar, Port, Ref)
            end;
        {Port, {exit_status, N}} ->
            {error, {python_crashed, #{status => N}}}
    after ?START_TIMEOUT ->
        {error, {sidecar_start_timeout, ?START_TIMEOUT}}
    end.

%% @private
-spec handle_call(term(), gen_server:from(), State) -> {reply, ok | {error, unknown_call}, State}.
handle_call(started, _From, State) ->
    %% served only once handle_continue/2 is done
    {reply, ok, State};
handle_call(_Request, _From, State) ->
    {reply, {error, unknown_call}, State}.

%% @private
-spec handle_cast(term(), #state{}) -> {noreply, #state{}}.
handle_cast(contexts_up, #state{port = Port} = State) when is_port(Port) ->
    service(up, State),
    {noreply, State};
handle_cast(_Msg, State) ->
    {noreply, State}.

%% The service of this sidecar as callers see it (py_lifecycle), declared
%% here only: down the moment its OS process is seen gone, up once py_pool
%% has started the contexts on the new one (contexts_up/1; a cast that comes
%% after a crash is lost with the process, and the next py_pool sends one).
service(up, #state{sidecar = Sidecar}) ->
    py_lifecycle:up(Sidecar);
service({down, Info}, #state{sidecar = Sidecar}) ->
    py_lifecycle:down(Sidecar, Info).

%% @private
-spec handle_info(term(), #state{}) -> {noreply, #state{}} | {stop, term(), #state{}}.
handle_info({Port, {data, Bin}}, #state{port = Port, sidecar = Sidecar} = State) ->
    case route(Sidecar, Bin) of
        ok -> {noreply, State};
        sent -> {noreply, sent(Port, State)};
        {log, Body} -> py_log:forward(Sidecar, Port, Body), {noreply, State};
        {env, Ctx, Pid} -> py_watch:watch(Sidecar, Port, Ctx, Pid), {noreply, State};
        {exit, Reason} -> {noreply, State#state{exit_reason = Reason}}
    end;
handle_info({Port, {exit_status, N}}, #state{port = Port} = State) ->
    crashed(crash_info(N, State#state.exit_reason), State);
handle_info(sweep_slots, #state{sidecar = Sidecar} = State) ->
    _ = py_slot:sweep(Sidecar),
    erlang:send_after(?SWEEP_MS, self(), sweep_slots),
    {noreply, State};
handle_info(sweep_casts, #state{sidecar = Sidecar, port = Port} = State) ->
    %% casts past their timeout are cancelled, as a call would be
    py_async:sweep(Sidecar, Port),
    erlang:send_after(?CAST_SWEEP_MS, self(), sweep_casts),
    {noreply, State};
handle_info({'EXIT', Port, Reason}, #state{port = Port, exit_reason = Announced} = State) ->
    crashed(port_exit_info(Reason, Announced), State);
handle_info(_Other, State) ->
    {noreply, State}.

%% The hot path: py_wire reads the id only and gives the rest as a
%% sub-binary, forwarded undecoded. A reply for a caller that gave up goes to
%% a dead alias and is dropped by the runtime. Other packets are for this
%% process (docs/PROTOCOL.md).
-spec route(atom(), binary()) ->
          ok | sent | {log, binary()} | {exit, term()} | {env, pos_integer(), pid()}.
route(Sidecar, Bin) ->
    case py_wire:decode(Bin) of
        {call_reply, Alias, Body} ->
            %% a call, eval or exec: its py_semaphore slot comes back
            %% now, whether or not its caller still waits
            py_semaphore:release(Sidecar),
            Alias ! {py_reply, Alias, Body},
            ok;
        {reply, Alias, Body} ->
            %% control and nested requests: no py_semaphore slot with these
            Alias ! {py_reply, Alias, Body},
            ok;
        {cast_reply, Ref, Body} ->
            %% py:cast: its slot comes back, nobody waits for the result
            py_semaphore:release(Sidecar),
            py_async:cast_reply(Sidecar, Ref, Body);
        {log, _Body} = Log ->
            %% lines for py_log, which acknowledges them
            Log;
        {state, Ops} ->
            %% the shared state's mirror (py_state), before what follows
            apply_state(Sidecar, Ops, Bin);
        {exit, Reason} ->
            %% why the sidecar is about to exit
            {exit, Reason};
        {send, Dest, Message} ->
            %% erlang.send(Dest, Message) from Python: in the receiver's
            %% mailbox before any later reply is routed
            deliver(Dest, Message),
            sent;
        {sends, Sends} ->
            %% a batch of them, in the order Python sent them
            _ = [deliver(Dest, Message) || {Dest, Message} <- Sends],
            sent;
        {bad_send, _} ->
            logger:warning("erlang_python: dropped an unreadable erlang.send (~b bytes)",
                           [byte_size(Bin)]),
            sent;
        {callback, N, Body} ->
            %% Python calls a registered Erlang function: in a process
            %% of its own, never in this one
            _ = spawn(py_callback, run, [Sidecar, N, Body]),
            ok;
        {state_limited, Ops, Keys} ->
            %% values whose atoms would pass max_atoms: not mirrored
            dropped(state, Keys),
            apply_state(Sidecar, Ops, Bin);
        {atom_limit, '$send', Info} ->
            %% its atoms would pass max_atoms (py_atoms): not sent; one
            %% line a second at most, however many come
            dropped(send, Info),
            sent;
        {chan_acks, Acks} ->
            %% Python took messages from channels: their fill counts go down
            py_channels:acked(Sidecar, Acks);
        {env, _Ctx, _Pid} = Env ->
            %% a new process-bound environment: watched (py_watch), so
            %% that it goes when its process exits
            Env;
        {bad_packet, _} ->
            logger:warning("erlang_python: dropped an unreadable reply (~b bytes)",
                           [byte_size(Bin)])
    end.

%% An erlang.send dropped for its atoms (What = send) or for its
%% destination (denied), or values of the shared state left out of the
%% mirror (state): logged at most once a second for each, with the number
%% dropped since the last line.
dropped(What, Detail) ->
    Now = erlang:monotonic_time(millisecond),
    Key = {dropped, What},
    case get(Key) of
        {Last, N} when Now - Last < 1000 ->
            put(Key, {Last, N + 1}),
            ok;
        Before ->
            Since = case Before of {_, M} -> M; undefined -> 0 end,
            put(Key, {Now, 0}),
            dropped_log(What, Since, Detail)
    end.

dropped_log(send, Since, Info) ->
    logger:warning("erlang_python: dropped an erlang.send from Python whose message holds "
                   "atoms past max_atoms (and ~b more before this line): ~p", [Since, Info]);
dropped_log(state, Since, Keys) ->
    logger:error("erlang_python: the shared state's mirror leaves out ~b key(s) whose values "
                 "hold atoms past max_atoms (~b): ~p (and ~b packets more before this line); "
                 "a restart loses them",
                 [length(Keys), py_atoms:max_atoms(), lists:sublist(Keys, 5), Since]);
dropped_log(denied, Since, Dest) ->
    logger:warning("erlang_python: dropped an erlang.send from Python to ~p (and ~b more before "
                   "this line): Python may not send to the processes of the runtime system",
                   [Dest, Since]).

%% One more '$send' handled: every ?SEND_ACK of them go back to the
%% sidecar as credits for its senders (port/log.h), so no more than its
%% window of sends are ever queued here ahead of a reply.
sent(Port, #state{sends = N} = State) when N + 1 >= ?SEND_ACK ->
    _ = py_wire:send(Port, py_wire:send_ack(N + 1)),
    State#state{sends = 0};
sent(_Port, #state{sends = N} = State) ->
    State#state{sends = N + 1}.

%% An erlang.send from Python, never to a process of the runtime system
%% (py_guard).
deliver(Dest, Message) ->
    case py_guard:may_send(Dest) of
        true -> _ = catch erlang:send(Dest, Message), ok;
        false -> dropped(denied, Dest)
    end.

%% A mirror that cannot take the sidecar's ops no longer matches its store.
apply_state(Sidecar, Ops, Bin) ->
    try
        py_state:apply_ops(Sidecar, Ops)
    catch
        Class:Reason ->
            logger:error("erlang_python: the shared state's mirror could not apply a "
                         "'$state' packet (~b bytes), it may now differ from the "
                         "sidecar's store: ~p",
                         [byte_size(Bin), {Class, Reason}])
    end.

%% The sidecar is gone: the service is down until py_pool has contexts
%% again, and so are the processes Python started (its process group).
crashed(Info, #state{sidecar = Sidecar, os_pid = OsPid} = State) ->
    service({down, Info}, State),
    py_async:lost(Sidecar, Info),
    kill_group(OsPid),
    {stop, {python_crashed, Info}, State#state{port = undefined}}.

%% @doc The `Info' of `{python_crashed, Info}' for a sidecar that exited with
%% `Status', having said why in a `'$exit'' packet (`ExitReason', or
%% `undefined'): the `status', a `signal' for a status above 128, and the
%% `reason'. A pure function.
-spec crash_info(non_neg_integer(), term()) -> map().
crash_info(Status, ExitReason) ->
    Info = case Status > 128 of
               true -> #{status => Status, signal => Status - 128};
               false -> #{status => Status}
           end,
    case ExitReason of
        undefined -> Info;
        _ -> Info#{reason => ExitReason}
    end.

%% @doc The `Info' of `{python_crashed, Info}' for a port that died
%% (`Reason', as `epipe') before the exit status came. After the stuck
%% watchdog's `'$exit'' (`Announced'; docs/PROTOCOL.md, "Stuck watchdog":
%% status 70 follows) it is that exit, which a write to the exiting sidecar
%% (a log ack, a cancel) overtook. A pure function.
-spec port_exit_info(term(), term()) -> map().
port_exit_info(_Reason, {stuck, _Ctx, _GraceMs} = Announced) -> crash_info(70, Announced);
port_exit_info(Reason, _Announced) -> #{reason => Reason}.

%% pyport leads its own process group (its pid is the group's id); what
%% Python started there is killed, in the background: an exit status
%% means pyport itself is gone already.
kill_group(OsPid) when is_integer(OsPid) ->
    %% bash's kill takes a group (dash's does not)
    Cmd = "bash -c 'kill -KILL -- -" ++ integer_to_list(OsPid) ++ "' 2>/dev/null",
    _ = spawn(fun() -> os:cmd(Cmd) end),
    ok;
kill_group(undefined) ->
    ok.

%% @private
-spec terminate(term(), #state{}) -> ok.
terminate(_Reason, #state{sidecar = Sidecar, port = Port}) ->
    ok = py_instance:unpublish(Sidecar),
    _ = is_port(Port) andalso (catch port_close(Port)),
    py_semaphore:reset(Sidecar), % its requests will never be answered
    py_slot:close_dir(Sidecar).
