%% @doc Supervisor of the `py_context' processes (temporary children: the
%% router replaces a context that dies). It also owns the ETS table that maps a
%% context pid to the sidecar's integer context id, so the table lives exactly
%% as long as the contexts may.
-module(py_context_sup).

-behaviour(supervisor).

-export([start_link/0, start_context/2, stop_context/1, contexts/0]).
-export([init/1]).

-spec start_link() -> {ok, pid()} | ignore | {error, term()}.
start_link() ->
    supervisor:start_link({local, ?MODULE}, ?MODULE, []).

%% @doc Start a context under this supervisor.
-spec start_context(term(), py_context:mode()) -> {ok, pid()} | {error, term()}.
start_context(Id, Mode) ->
    case supervisor:start_child(?MODULE, [Id, Mode]) of
        {ok, Pid} -> {ok, Pid};
        {ok, Pid, _Info} -> {ok, Pid};
        {error, _} = Error -> Error
    end.

%% @doc Stop a context of this supervisor (its sidecar context is destroyed).
-spec stop_context(pid()) -> ok | {error, not_found}.
stop_context(Pid) ->
    supervisor:terminate_child(?MODULE, Pid).

%% @doc The contexts running under this supervisor.
-spec contexts() -> [pid()].
contexts() ->
    [Pid || {_, Pid, _, _} <- supervisor:which_children(?MODULE), is_pid(Pid)].

-spec init([]) -> {ok, {supervisor:sup_flags(), [supervisor:child_spec()]}}.
init([]) ->
    py_context:new_table(),
    SupFlags = #{strategy => simple_one_for_one, intensity => 10, period => 10},
    Child = #{id => py_context,
              start => {py_context, start_link, []},
              restart => temporary,
              shutdown => 5000,
              type => worker,
              modules => [py_context]},
    {ok, {SupFlags, [Child]}}.
