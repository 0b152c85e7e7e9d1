%% @doc Top supervisor of erlang_python, `rest_for_one':
%% <ol>
%% <li>`py_callback': the registry of functions Python may call;</li>
%% <li>`py_lifecycle': up or restarting, crash backoff, restart subscribers;</li>
%% <li>`py_semaphore': the load-control counter;</li>
%% <li>`py_state': the mirror of the shared state, replayed into each new
%% sidecar;</li>
%% <li>`py_sidecar': owns the port to `pyport';</li>
%% <li>`py_context_sup': the context processes (and their pid -> id table);</li>
%% <li>`py_context_router': the pools and the routing of calls.</li>
%% </ol>
%% When the sidecar dies, the contexts and the router are restarted after it:
%% contexts do not outlive the sidecar that holds them. The intensity is
%% `max_restarts' in `max_restart_period_s' (py_config); `py_sidecar' waits
%% the backoff `py_lifecycle' gives before each new sidecar.
-module(erlang_python_sup).

-behaviour(supervisor).

-export([start_link/0]).
-export([init/1]).

-spec start_link() -> {ok, pid()} | ignore | {error, term()}.
start_link() ->
    supervisor:start_link({local, ?MODULE}, ?MODULE, []).

-spec init([]) -> {ok, {supervisor:sup_flags(), [supervisor:child_spec()]}}.
init([]) ->
    SupFlags = #{strategy => rest_for_one,
                 intensity => py_config:max_restarts(),
                 period => py_config:max_restart_period_s()},
    Children = [worker(py_callback), % its registry outlives sidecar restarts
                worker(py_lifecycle),
                worker(py_semaphore),
                worker(py_state), % its mirror of the shared state outlives sidecar restarts
                worker(py_sidecar),
                #{id => py_context_sup,
                  start => {py_context_sup, start_link, []},
                  restart => permanent,
                  shutdown => infinity,
                  type => supervisor,
                  modules => [py_context_sup]},
                worker(py_context_router)],
    {ok, {SupFlags, Children}}.

worker(Module) ->
    #{id => Module,
      start => {Module, start_link, []},
      restart => permanent,
      shutdown => 5000,
      type => worker,
      modules => [Module]}.
