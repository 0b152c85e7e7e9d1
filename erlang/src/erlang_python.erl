%% @doc Sidecars beyond the default one (API.md section 13, "several
%% sidecars at once").
%%
%% The application starts one sidecar, `default', which every `py' call
%% uses. Another sidecar is a second `pyport' OS process with its own
%% contexts, pools, shared state, load limit and restarts, which may run
%% another Python (option `python'):
%% ```
%% {ok, _} = erlang_python:start_sidecar(other, #{num_contexts => 2}),
%% [Ctx | _] = py_context_router:contexts({other, default}),
%% {ok, 2.0} = py:call(Ctx, math, sqrt, [4]),         % on one of its contexts
%% {ok, 4} = py:eval({other, default}, <<"2 + 2">>),   % on its default pool
%% ok = py_state:store(other, counter, 1),             % its shared state
%% ok = erlang_python:stop_sidecar(other).
%% '''
%% Its pools are named `{Sidecar, Pool}' wherever a pool name is taken
%% (`py:call/4', `py_context_router:start_pool/3', `contexts/1'...), its
%% default pool being `{Sidecar, default}'; a context pid is used as is. The
%% modules that keep per-sidecar state take the sidecar name as an extra
%% first argument (`py_state:store/3', `py_semaphore:current/1',
%% `py_lifecycle:subscribe/1', `py_sidecar:info/1'...). Functions registered
%% with `py:register_function/2' are one registry for all sidecars; a call
%% made without a context inside such a function goes back to the context
%% (and sidecar) that called it.
%%
%% Options: the application environment keys of API.md section 1 and
%% {@link py_config} (e.g. `num_contexts', `max_concurrent',
%% `num_executors', `python', `python_path', `max_restarts'), each
%% overriding the application's value for this sidecar only. More than
%% `max_restarts' crashes in `max_restart_period_s' stop that sidecar alone.
%% `call_timeout' is the timeout of the sidecar's own requests (shared
%% state, context creation); a `py' call without a timeout takes the
%% application's, whichever sidecar it goes to.
%%
%% A sidecar whose subtree gave up is gone from {@link sidecars/0}; its pool
%% specs, registrations and options are forgotten by the next
%% {@link start_sidecar/2} or {@link stop_sidecar/1} of that name, or when
%% the application stops.
-module(erlang_python).

-export([start_sidecar/2, stop_sidecar/1, sidecars/0]).

-type sidecar() :: atom().
-export_type([sidecar/0]).

%% @doc Start sidecar `Name' (an atom other than `default') with `Opts'
%% overriding the application environment. Returns once its contexts run.
%% Errors: `{error, {bad_config, Key, Value}}' for a bad option,
%% `{error, {already_started, Name}}', `{error, not_started}' when the
%% application does not run, or why its first start failed.
-spec start_sidecar(sidecar(), map()) -> {ok, pid()} | {error, term()}.
start_sidecar(default, _Opts) ->
    {error, {already_started, default}};
start_sidecar(Name, Opts) when is_atom(Name), is_map(Opts) ->
    case py_config:validate(Opts) of
        ok -> py_sidecars_sup:start_sidecar(Name, Opts);
        {error, _} = Error -> Error
    end;
start_sidecar(Name, Opts) when is_atom(Name) ->
    {error, {badarg, {opts, Opts}}};
start_sidecar(Name, _Opts) ->
    {error, {badarg, {sidecar, Name}}}.

%% @doc Stop sidecar `Name' and everything it had. The default sidecar stops
%% with the application only.
-spec stop_sidecar(sidecar()) -> ok | {error, term()}.
stop_sidecar(default) ->
    {error, {badarg, {sidecar, default}}};
stop_sidecar(Name) when is_atom(Name) ->
    py_sidecars_sup:stop_sidecar(Name);
stop_sidecar(Name) ->
    {error, {badarg, {sidecar, Name}}}.

%% @doc The running sidecars, `default' first (`[]' when the application
%% does not run).
-spec sidecars() -> [sidecar()].
sidecars() ->
    py_sidecars_sup:sidecars().
