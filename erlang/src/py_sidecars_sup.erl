%% @doc The sidecars: one `py_sidecar_sup' subtree each, `one_for_one'.
%%
%% The default sidecar (named `default') starts with the application and is
%% permanent: when its subtree gives up (too many crashes) this supervisor
%% stops, and with it the application (intensity 0). Other sidecars are
%% started and stopped at run time ({@link erlang_python:start_sidecar/2})
%% and are temporary: when one gives up, it is gone and the rest go on.
%%
%% It also owns the table of context processes (`py_context:new_table/0'):
%% a context pid and its sidecar's context id are unique in the VM, so one
%% table maps a pid to its sidecar and context for every sidecar.
-module(py_sidecars_sup).

-behaviour(supervisor).

-export([start_link/0, start_sidecar/2, stop_sidecar/1, sidecars/0, forget_all/0]).
-export([init/1]).

%% @doc Start the supervisor and the default sidecar.
-spec start_link() -> {ok, pid()} | ignore | {error, term()}.
start_link() ->
    supervisor:start_link({local, ?MODULE}, ?MODULE, []).

%% @doc Start sidecar `Name' with `Opts' (checked already) overriding the
%% application environment; returns once it serves calls.
-spec start_sidecar(atom(), map()) -> {ok, pid()} | {error, term()}.
start_sidecar(Name, Opts) ->
    case {whereis(?MODULE), lists:member(Name, sidecars())} of
        {undefined, _} ->
            {error, not_started};
        {_, true} ->
            {error, {already_started, Name}};
        {_, false} ->
            forget(Name), % what a stopped sidecar of that name left
            ok = py_config:set_opts(Name, Opts),
            case supervisor:start_child(?MODULE, child(Name, temporary)) of
                {ok, Pid} ->
                    {ok, Pid};
                {error, {already_started, _}} ->
                    {error, {already_started, Name}};
                {error, already_present} ->
                    {error, {already_started, Name}};
                {error, Error} ->
                    forget(Name),
                    %% {Reason, ChildSpec}: why its first start failed
                    {error, case Error of {Reason, _Child} -> Reason; _ -> Error end}
            end
    end.

%% @doc Stop sidecar `Name': its contexts, pools, state and OS process go,
%% and so do its registered names, tables and `persistent_term' keys.
-spec stop_sidecar(atom()) -> ok | {error, {unknown_sidecar, atom()}}.
stop_sidecar(Name) ->
    Id = {py_sidecar_sup, Name},
    try supervisor:terminate_child(?MODULE, Id) of
        ok ->
            _ = supervisor:delete_child(?MODULE, Id), % a temporary child is gone already
            forget(Name),
            ok;
        {error, not_found} ->
            forget(Name),
            {error, {unknown_sidecar, Name}}
    catch
        exit:_ -> {error, {unknown_sidecar, Name}}
    end.

%% @doc The running sidecars, `default' first.
-spec sidecars() -> [atom()].
sidecars() ->
    try supervisor:which_children(?MODULE) of
        Children ->
            lists:sort(fun(A, _) -> A =:= default end,
                       [Name || {{py_sidecar_sup, Name}, Pid, _, _} <- Children, is_pid(Pid)])
    catch
        exit:_ -> []
    end.

%% @doc Forget what outlives a sidecar's restarts but not the application
%% (pool specs, routes, start options), for every sidecar: the application
%% stops.
-spec forget_all() -> ok.
forget_all() ->
    _ = [persistent_term:erase(Key)
         || {{Module, _Sidecar, _} = Key, _} <- persistent_term:get(),
            lists:member(Module, [py_pool, py_route, py_config])],
    ok.

forget(Name) ->
    ok = py_pool:forget(Name),
    ok = py_config:forget_opts(Name).

child(Name, Restart) ->
    #{id => {py_sidecar_sup, Name},
      start => {py_sidecar_sup, start_link, [Name]},
      restart => Restart,
      shutdown => infinity,
      type => supervisor,
      modules => [py_sidecar_sup]}.

%% @private
-spec init([]) -> {ok, {supervisor:sup_flags(), [supervisor:child_spec()]}}.
init([]) ->
    py_context:new_table(),
    SupFlags = #{strategy => one_for_one, intensity => 0, period => 1},
    {ok, {SupFlags, [child(default, permanent)]}}.
