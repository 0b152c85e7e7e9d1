%% @doc Object references (API.md section 12): the handle of a Python
%% object that stays in its context, which `py:call(Ctx, M, F, Args,
%% #{return => ref})' gives and `py:call_method/3', `py:getattr/2',
%% `py:to_term/1' and `py:release/1' use.
%%
%% The object is held by the process that made the call (the one whose
%% environment the call ran in) and released when that process exits, or
%% by `py:release/1'. A port cannot see Erlang's garbage collection, so a
%% handle that is dropped does not free its object: the process's exit
%% does. Any process may use the handle while the object lives. A handle
%% names the sidecar's OS process it was made in (its port): after a
%% sidecar restart it gives `{error, {stale_ref, Why}}'.
-module(py_ref).

-export([new/4, is_ref/1, target/1]).

-opaque ref() :: {'$py_ref', atom(), port(), pid(), pos_integer()}.
-export_type([ref/0]).

%% @doc The handle of object `N' of context `Ctx' (a pid) of sidecar
%% `Sidecar', made now.
-spec new(atom(), pid(), pos_integer(), port() | undefined) -> ref().
new(Sidecar, Ctx, N, Port) when is_port(Port) ->
    {'$py_ref', Sidecar, Port, Ctx, N}.

%% @doc Whether `Term' is an object reference.
-spec is_ref(term()) -> boolean().
is_ref({'$py_ref', Sidecar, Port, Ctx, N}) ->
    is_atom(Sidecar) andalso is_port(Port) andalso is_pid(Ctx) andalso is_integer(N);
is_ref(_) ->
    false.

%% @doc The context and number of a handle whose sidecar still runs.
-spec target(term()) -> {ok, pid(), pos_integer()} | {error, term()}.
target({'$py_ref', Sidecar, Port, Ctx, N} = Ref) ->
    case is_ref(Ref) andalso py_instance:port(Sidecar) of
        Port -> {ok, Ctx, N};
        false -> {error, {badarg, {ref, Ref}}};
        _ -> {error, {stale_ref, <<"the object reference was made in a sidecar that has "
                                   "restarted since: its object is gone">>}}
    end;
target(Other) ->
    {error, {badarg, {ref, Other}}}.
