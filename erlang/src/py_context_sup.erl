%% @doc Supervisor of one sidecar's `py_context' processes (temporary
%% children: `py_pool' replaces a context that dies). There is one per
%% sidecar, registered as `py_instance:name(py_context_sup, Sidecar)';
%% the functions without a sidecar argument are for the default one.
-module(py_context_sup).

-behaviour(supervisor).

-export([start_link/0, start_context/2, stop_context/1, contexts/0]).
-export([start_link/1, start_context/3, stop_context/2, contexts/1]).
-export([init/1]).

-define(DEFAULT, default).

%% @doc Start the default sidecar's context supervisor.
-spec start_link() -> {ok, pid()} | ignore | {error, term()}.
start_link() ->
    start_link(?DEFAULT).

%% @doc Start sidecar `Sidecar''s context supervisor.
-spec start_link(atom()) -> {ok, pid()} | ignore | {error, term()}.
start_link(Sidecar) ->
    supervisor:start_link({local, name(Sidecar)}, ?MODULE, Sidecar).

%% @doc Start a context under the default sidecar's supervisor.
-spec start_context(term(), py_context:mode()) -> {ok, pid()} | {error, term()}.
start_context(Id, Mode) ->
    start_context(?DEFAULT, Id, Mode).

%% @doc Start a context of sidecar `Sidecar', labelled `Id'.
-spec start_context(atom(), term(), py_context:mode()) -> {ok, pid()} | {error, term()}.
start_context(Sidecar, Id, Mode) ->
    case supervisor:start_child(name(Sidecar), [Id, Mode]) of
        {ok, Pid} -> {ok, Pid};
        {ok, Pid, _Info} -> {ok, Pid};
        {error, _} = Error -> Error
    end.

%% @doc Stop a context of the default sidecar (its sidecar context is destroyed).
-spec stop_context(pid()) -> ok | {error, not_found}.
stop_context(Pid) ->
    stop_context(?DEFAULT, Pid).

%% @doc Stop a context of sidecar `Sidecar'.
-spec stop_context(atom(), pid()) -> ok | {error, not_found}.
stop_context(Sidecar, Pid) ->
    supervisor:terminate_child(name(Sidecar), Pid).

%% @doc The contexts running under the default sidecar's supervisor.
-spec contexts() -> [pid()].
contexts() ->
    contexts(?DEFAULT).

%% @doc The contexts running under sidecar `Sidecar''s supervisor.
-spec contexts(atom()) -> [pid()].
contexts(Sidecar) ->
    [Pid || {_, Pid, _, _} <- supervisor:which_children(name(Sidecar)), is_pid(Pid)].

name(Sidecar) ->
    py_instance:name(?MODULE, Sidecar).

%% @private
-spec init(atom()) -> {ok, {supervisor:sup_flags(), [supervisor:child_spec()]}}.
init(Sidecar) ->
    %% rows of contexts killed with an earlier sidecar, if any
    ok = py_context:forget_sidecar(Sidecar),
    SupFlags = #{strategy => simple_one_for_one, intensity => 10, period => 10},
    Child = #{id => py_context,
              start => {py_context, start_link, [Sidecar]},
              restart => temporary,
              shutdown => 5000,
              type => worker,
              modules => [py_context]},
    {ok, {SupFlags, [Child]}}.
