%% @doc One sidecar's subtree, `rest_for_one', named by the sidecar:
%% <ol>
%% <li>`py_lifecycle': up or restarting, crash backoff, restart subscribers;</li>
%% <li>`py_semaphore': load control (the counters, the queue of waiters);</li>
%% <li>`py_state': the mirror of the shared state, replayed into each new
%%     sidecar;</li>
%% <li>`py_shared_dict': monitors the owners of the SharedDicts (kept in
%%     the shared state) and destroys their dicts when they exit;</li>
%% <li>`py_log': gives the sidecar's log lines to the logger and
%%     acknowledges them (their bound);</li>
%% <li>`py_watch': watches the processes the sidecar keeps an environment
%%     for, or knows alive for `erlang.send', and tells it when they exit;</li>
%% <li>`py_sidecar': owns the port to `pyport' (the OS process);</li>
%% <li>`py_context_sup': the context processes;</li>
%% <li>`py_pool': the pools: starts the contexts, monitors them and replaces
%%     one that dies.</li>
%% </ol>
%% When the sidecar dies, the contexts and the pools are restarted after it:
%% contexts do not outlive the sidecar that holds them. The service is
%% declared up and down in one place, `py_sidecar' (the port owner): down
%% when it sees the OS process gone, up when `py_pool' tells it the new
%% contexts run; {@link py_lifecycle} keeps the state and the waiters.
%% The intensity is the sidecar's `max_restarts' in `max_restart_period_s'
%% (py_config); `py_sidecar' waits the backoff `py_lifecycle' gives before
%% each new OS process, outside its `init/1', so this supervisor is never
%% blocked by it.
%%
%% Names: each process of the subtree is registered as
%% {@link py_instance:name/2} gives: the module's name for the default
%% sidecar (`py_sidecar', `py_pool'...),
%% `Module/Name' for another (`'py_sidecar/other'').
-module(py_sidecar_sup).

-behaviour(supervisor).

-export([start_link/1]).
-export([init/1]).

%% @doc Start the subtree of sidecar `Sidecar'; returns once its contexts run,
%% or with the reason its first start failed.
-spec start_link(atom()) -> {ok, pid()} | {error, term()}.
start_link(Sidecar) ->
    case supervisor:start_link({local, py_instance:name(?MODULE, Sidecar)}, ?MODULE, Sidecar) of
        {ok, Sup} ->
            case py_lifecycle:await_start(Sidecar) of
                ok ->
                    {ok, Sup};
                {error, Reason} ->
                    unlink(Sup),
                    MRef = monitor(process, Sup),
                    exit(Sup, shutdown),
                    receive {'DOWN', MRef, process, Sup, _} -> ok end,
                    {error, Reason}
            end;
        ignore ->
            {error, ignore};
        {error, _} = Error ->
            Error
    end.

%% @private
-spec init(atom()) -> {ok, {supervisor:sup_flags(), [supervisor:child_spec()]}}.
init(Sidecar) ->
    SupFlags = #{strategy => rest_for_one,
                 intensity => py_config:get(Sidecar, max_restarts),
                 period => py_config:get(Sidecar, max_restart_period_s)},
    Children = [worker(py_lifecycle, Sidecar),
                worker(py_semaphore, Sidecar),
                worker(py_state, Sidecar), % its mirror outlives sidecar restarts
                worker(py_shared_dict, Sidecar), % SharedDict owners, in py_state
                worker(py_log, Sidecar), % the sidecar's log lines, to the logger
                worker(py_watch, Sidecar), % the processes it keeps something for
                worker(py_channels, Sidecar), % channels' owners and fill counts
                worker(py_sidecar, Sidecar),
                #{id => py_context_sup,
                  start => {py_context_sup, start_link, [Sidecar]},
                  restart => permanent,
                  shutdown => infinity,
                  type => supervisor,
                  modules => [py_context_sup]},
                worker(py_pool, Sidecar)],
    {ok, {SupFlags, Children}}.

worker(Module, Sidecar) ->
    #{id => Module,
      start => {Module, start_link, [Sidecar]},
      restart => permanent,
      shutdown => 5000,
      type => worker,
      modules => [Module]}.
