%% @doc The process that owns the port to the Go sidecar `pyport'.
%%
%% It opens the port with the flags of docs/PROTOCOL.md built from the
%% application environment, asks the sidecar for its `info' (mode, version,
%% executors) and publishes `{Port, self()}' in `persistent_term'. Callers send
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
-module(py_sidecar).

-behaviour(gen_server).

-export([start_link/0, lookup/0, port/0, info/0, crash_info/2]).
-export([init/1, handle_call/3, handle_cast/2, handle_info/2, terminate/2]).

-define(KEY, {?MODULE, port}).
-define(INFO_KEY, {?MODULE, info}).
-define(START_TIMEOUT, 60000).
-define(SWEEP_MS, 10000).

-type info() :: #{mode := subinterp | multi_executor | free_threaded,
                  version := binary(),
                  num_executors := non_neg_integer(),
                  subinterp_supported := boolean()}.
-export_type([info/0]).

-record(state, {port :: port() | undefined,
                os_pid :: integer() | undefined,
                exit_reason :: term()}). % from a '$exit' packet

-spec start_link() -> {ok, pid()} | {error, term()}.
start_link() ->
    gen_server:start_link({local, ?MODULE}, ?MODULE, [], []).

%% @doc The port and its owner, for callers that send requests themselves.
-spec lookup() -> {ok, port(), pid()} | {error, not_started}.
lookup() ->
    case persistent_term:get(?KEY, undefined) of
        {Port, Pid} -> {ok, Port, Pid};
        undefined -> {error, not_started}
    end.

%% @doc The port, or `undefined' when the application is not running.
-spec port() -> port() | undefined.
port() ->
    case persistent_term:get(?KEY, undefined) of
        {Port, _Pid} -> Port;
        undefined -> undefined
    end.

%% @doc What the running sidecar said about itself at start-up.
-spec info() -> {ok, info()} | {error, not_started}.
info() ->
    case persistent_term:get(?INFO_KEY, undefined) of
        undefined -> {error, not_started};
        Info -> {ok, Info}
    end.

%%--------------------------------------------------------------------

-spec init([]) -> {ok, #state{}} | {stop, term()}.
init([]) ->
    process_flag(trap_exit, true),
    %% Replies for many callers may queue here; keep them off the heap.
    process_flag(message_queue_data, off_heap),
    %% the requests of an earlier sidecar are gone with it
    py_semaphore:reset(),
    %% no slots without /dev/shm: everything goes through the pipe
    SlotArgs = case py_slot:open_dir() of
                   {ok, Dir} -> ["--slot-dir", binary_to_list(Dir)];
                   {error, _} -> []
               end,
    erlang:send_after(?SWEEP_MS, self(), sweep_slots),
    case py_lifecycle:backoff() of
        0 -> ok;
        Delay ->
            logger:notice("erlang_python: sidecar restarts in ~b ms", [Delay],
                          #{domain => [erlang_python]}),
            timer:sleep(Delay)
    end,
    Port = py_port_exe:open(py_config:port_args() ++ SlotArgs),
    OsPid = case erlang:port_info(Port, os_pid) of
                {os_pid, P} -> P;
                undefined -> undefined
            end,
    case handshake(Port) of
        {ok, Info} ->
            persistent_term:put(?INFO_KEY, Info),
            persistent_term:put(?KEY, {Port, self()}),
            {ok, #state{port = Port, os_pid = OsPid}};
        {error, Reason} ->
            catch port_close(Port),
            py_slot:close_dir(),
            {stop, Reason}
    end.

%% Ask for `info', then load the shared state's mirror (py_state) into the
%% new sidecar's store (`state_load', which also turns its mirror on), before
%% anyone knows the port.
handshake(Port) ->
    case startup_request(Port, {info, make_ref()}, <<>>) of
        {ok, Info} when is_map(Info) ->
            case startup_request(Port, {state_load, {ctl, make_ref()}},
                                 term_to_binary(py_state:snapshot())) of
                ok -> {ok, Info};
                {error, Reason} -> {error, {state_load, Reason}};
                Other -> {error, {state_load, Other}}
            end;
        {error, _} = Error -> Error;
        Other -> {error, {bad_info_reply, Other}}
    end.

%% One request whose answer this process waits for itself, as it routes
%% nothing yet: other packets (a log line) are skipped.
startup_request(Port, Header, Payload) ->
    Id = element(2, Header),
    true = erlang:port_command(Port, [term_to_binary(Header), Payload]),
    startup_reply(Port, Id).

startup_reply(Port, Id) ->
    receive
        {Port, {data, Bin}} ->
            try binary_to_term(Bin, [used]) of
                {Id, Used} -> binary_to_term(body(Bin, Used));
                _ -> startup_reply(Port, Id)
            catch
                error:_ -> startup_reply(Port, Id)
            end;
        {Port, {exit_status, N}} ->
            {error, {python_crashed, #{status => N}}}
    after ?START_TIMEOUT ->
        {error, {sidecar_start_timeout, ?START_TIMEOUT}}
    end.

%% What follows a packet's id.
body(Bin, Used) ->
    binary_part(Bin, Used, byte_size(Bin) - Used).

-spec handle_call(term(), gen_server:from(), State) -> {reply, {error, unknown_call}, State}.
handle_call(_Request, _From, State) ->
    {reply, {error, unknown_call}, State}.

-spec handle_cast(term(), State) -> {noreply, State}.
handle_cast(_Msg, State) ->
    {noreply, State}.

-spec handle_info(term(), #state{}) -> {noreply, #state{}} | {stop, term(), #state{}}.
handle_info({Port, {data, Bin}}, #state{port = Port} = State) ->
    case route(Bin) of
        ok -> {noreply, State};
        {exit, Reason} -> {noreply, State#state{exit_reason = Reason}}
    end;
handle_info({Port, {exit_status, N}}, #state{port = Port} = State) ->
    crashed(crash_info(N, State#state.exit_reason), State);
handle_info(sweep_slots, State) ->
    _ = py_slot:sweep(),
    erlang:send_after(?SWEEP_MS, self(), sweep_slots),
    {noreply, State};
handle_info({'EXIT', Port, Reason}, #state{port = Port} = State) ->
    crashed(#{reason => Reason}, State);
handle_info(_Other, State) ->
    {noreply, State}.

%% The hot path: read the id only, forward the rest as a sub-binary. A reply
%% for a caller that gave up goes to a dead alias and is dropped by the runtime.
%% A packet whose id is '$log' is for the logger (docs/PROTOCOL.md).
-spec route(binary()) -> ok | {exit, term()}.
route(Bin) ->
    try
        case binary_to_term(Bin, [used]) of
            {'$log', Used} ->
                log(binary_to_term(body(Bin, Used)));
            {'$state', Used} ->
                %% the shared state's mirror (py_state), before what follows
                py_state:apply_ops(binary_to_term(body(Bin, Used)));
            {'$exit', Used} ->
                %% why the sidecar is about to exit
                {exit, binary_to_term(body(Bin, Used))};
            {'$send', Used} ->
                %% erlang.send(Dest, Message) from Python
                {Dest, Message} = binary_to_term(body(Bin, Used)),
                _ = catch erlang:send(Dest, Message),
                ok;
            {{'$cb', N}, Used} ->
                %% Python calls a registered Erlang function: in a process
                %% of its own, never in this one
                _ = spawn(py_callback, run, [N, body(Bin, Used)]),
                ok;
            {{Tag, Alias}, Used} when Tag =:= ctl; Tag =:= nested ->
                %% no py_semaphore slot comes back with these
                Alias ! {py_reply, Alias, body(Bin, Used)},
                ok;
            {Id, Used} ->
                %% a call, eval or exec: its py_semaphore slot comes back
                %% now, whether or not its caller still waits
                py_semaphore:release(),
                Id ! {py_reply, Id, body(Bin, Used)},
                ok
        end
    catch
        error:_ ->
            logger:warning("erlang_python: dropped an unreadable reply (~b bytes)",
                           [byte_size(Bin)])
    end.

%% The sidecar is gone: the service is down until the router has contexts
%% again, and so are the processes Python started (its process group).
crashed(Info, #state{os_pid = OsPid} = State) ->
    py_lifecycle:down(Info),
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

%% A Python traceback (or another message of the sidecar) for the logger.
log({Level, Ctx, Text}) when is_atom(Level), is_binary(Text) ->
    logger:log(Level, "Python, context ~p:~n~ts", [Ctx, Text],
               #{domain => [erlang_python], py_context => Ctx}).

-spec terminate(term(), #state{}) -> ok.
terminate(_Reason, #state{port = Port}) ->
    _ = persistent_term:erase(?KEY),
    _ = persistent_term:erase(?INFO_KEY),
    _ = is_port(Port) andalso (catch port_close(Port)),
    py_semaphore:reset(), % its requests will never be answered
    py_slot:close_dir().
