%% @doc The Erlang processes a sidecar keeps something for, watched, so the
%% sidecar hears when they exit (docs/PROTOCOL.md, "Environments"): one per
%% sidecar (see {@link py_sidecar_sup}).
%%
%% A process has something in the sidecar in two cases:
%% <ul>
%% <li>its environment in a context (API.md section 3: each process has its
%%     own globals there, made on its first request): the sidecar says so
%%     with a `'$env'' packet, which the port owner forwards here
%%     ({@link watch/4});</li>
%% <li>`erlang.send' to it from Python: the sidecar keeps the pids it knows
%%     alive, so that a send raises `erlang.ProcessError' for a dead
%%     process without asking the BEAM each time; it asks once per pid
%%     ({@link alive/2}, in the callback's process).</li>
%% </ul>
%% This process monitors each such pid once; when one exits it sends the
%% sidecar `{down, Ctxs}' and the pid, and the sidecar drops the process's
%% environments in `Ctxs' and forgets it as alive. So a sidecar's memory
%% for processes follows the processes that live, however many come and
%% go. After a sidecar restart the new one has no environments: a watch
%% for the old one still sends its `down' (to the new port, where it finds
%% nothing), and a process that calls again is watched for the new one.
-module(py_watch).

-behaviour(gen_server).

-export([start_link/1, watch/4, alive/2]).
-export([init/1, handle_call/3, handle_cast/2, handle_info/2]).

%% A watched process: its monitor, the port of the sidecar that keeps
%% something for it, and the contexts where it has an environment.
-record(watched, {mref :: reference(), port :: port(), ctxs = [] :: [pos_integer()]}).

%% @doc Start sidecar `Sidecar''s watcher.
-spec start_link(atom()) -> {ok, pid()} | {error, term()}.
start_link(Sidecar) ->
    gen_server:start_link({local, py_instance:name(?MODULE, Sidecar)}, ?MODULE, Sidecar, []).

%% @doc The sidecar on `Port' made an environment for `Pid' in context
%% `Ctx': watch `Pid'. Called by the port owner for a `'$env'' packet; a
%% message, never a wait. Without a watcher (the subtree stops) the
%% environment stays until the sidecar goes.
-spec watch(atom(), port(), pos_integer(), pid()) -> ok.
watch(Sidecar, Port, Ctx, Pid) ->
    case whereis(py_instance:name(?MODULE, Sidecar)) of
        undefined -> ok;
        Watcher -> Watcher ! {watch, Port, Ctx, Pid}, ok
    end.

%% @doc Whether `erlang.send' to `Pid' from sidecar `Sidecar' goes to a
%% live process: `alive' (then it is watched, and the sidecar may keep it
%% as alive until it hears it exited), `dead', or `remote' for a process of
%% another node, which a send never checks (as Erlang's `!'). Called in the
%% callback process of the sidecar's `$alive' question.
-spec alive(atom(), pid()) -> alive | dead | remote.
alive(_Sidecar, Pid) when node(Pid) =/= node() ->
    remote;
alive(Sidecar, Pid) ->
    case is_process_alive(Pid) of
        false ->
            dead;
        true ->
            %% watched before the answer goes: a process that exits after
            %% is reported to the sidecar (by then it knows it as alive)
            _ = case {whereis(py_instance:name(?MODULE, Sidecar)), py_instance:port(Sidecar)} of
                    {Watcher, Port} when is_pid(Watcher), is_port(Port) ->
                        Watcher ! {watch, Port, none, Pid};
                    _ ->
                        ok
                end,
            alive
    end.

%%--------------------------------------------------------------------

%% @private
-spec init(atom()) -> {ok, #{pid() => #watched{}}}.
init(_Sidecar) ->
    {ok, #{}}.

%% @private
-spec handle_call(term(), gen_server:from(), map()) -> {reply, {error, unknown_call}, map()}.
handle_call(_Request, _From, Watched) ->
    {reply, {error, unknown_call}, Watched}.

%% @private
-spec handle_cast(term(), map()) -> {noreply, map()}.
handle_cast(_Msg, Watched) ->
    {noreply, Watched}.

%% @private
-spec handle_info(term(), map()) -> {noreply, map()}.
handle_info({watch, Port, Ctx, Pid}, Watched) ->
    W = case Watched of
            #{Pid := #watched{port = Port} = Known} -> Known;
            %% watched for a sidecar that has gone since: for this one now
            #{Pid := Known} -> Known#watched{port = Port, ctxs = []};
            #{} -> #watched{mref = monitor(process, Pid), port = Port}
        end,
    Ctxs = case Ctx of
               none -> W#watched.ctxs;
               _ -> lists:usort([Ctx | W#watched.ctxs])
           end,
    {noreply, Watched#{Pid => W#watched{ctxs = Ctxs}}};
handle_info({'DOWN', MRef, process, Pid, _}, Watched) ->
    case maps:take(Pid, Watched) of
        {#watched{mref = MRef, port = Port, ctxs = Ctxs}, Rest} ->
            %% a port that closed since has nobody to tell
            _ = py_wire:send(Port, py_wire:down(Ctxs, Pid)),
            {noreply, Rest};
        _ ->
            {noreply, Watched}
    end;
handle_info(_Info, Watched) ->
    {noreply, Watched}.
