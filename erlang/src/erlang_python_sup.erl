%% @doc Top supervisor of erlang_python, `rest_for_one', intensity 0:
%% <ol>
%% <li>`py_callback': the registry of functions Python may call, one for the
%%     VM: it outlives every sidecar and its restarts;</li>
%% <li>`py_sidecars_sup': the sidecars, one subtree each
%%     (`py_sidecar_sup'), the default one first.</li>
%% </ol>
%% The tree, by module:
%% ```
%% erlang_python_sup                 rest_for_one, intensity 0
%% |- py_callback                    the function registry (VM-global)
%% `- py_sidecars_sup                one_for_one, intensity 0; the context table
%%    |- py_sidecar_sup(default)     rest_for_one, max_restarts in max_restart_period_s
%%    |  |- py_lifecycle             up or restarting, backoff, subscribers
%%    |  |- py_semaphore             load control: the counters, the queue of waiters
%%    |  |- py_state                 the mirror of the shared state
%%    |  |- py_sidecar               the port owner (the pyport OS process)
%%    |  |- py_context_sup           simple_one_for_one, temporary py_context
%%    |  `- py_pool                  the pools: starts, monitors, replaces contexts
%%    `- py_sidecar_sup(Name)        another sidecar (erlang_python:start_sidecar/2)
%% '''
%% A sidecar's crash restarts its `py_sidecar', contexts and pools; more than
%% `max_restarts' in `max_restart_period_s' stop its subtree, and for the
%% default sidecar the application (the BEAM stays up).
-module(erlang_python_sup).

-behaviour(supervisor).

-export([start_link/0]).
-export([init/1]).

%% @doc Start the tree; returns once the default sidecar serves calls.
-spec start_link() -> {ok, pid()} | ignore | {error, term()}.
start_link() ->
    supervisor:start_link({local, ?MODULE}, ?MODULE, []).

%% @private
-spec init([]) -> {ok, {supervisor:sup_flags(), [supervisor:child_spec()]}}.
init([]) ->
    %% the default sidecar's subtree gives up for the application
    SupFlags = #{strategy => rest_for_one, intensity => 0, period => 1},
    Children = [#{id => py_callback,
                  start => {py_callback, start_link, []},
                  restart => permanent,
                  shutdown => 5000,
                  type => worker,
                  modules => [py_callback]},
                #{id => py_sidecars_sup,
                  start => {py_sidecars_sup, start_link, []},
                  restart => permanent,
                  shutdown => infinity,
                  type => supervisor,
                  modules => [py_sidecars_sup]}],
    {ok, {SupFlags, Children}}.
