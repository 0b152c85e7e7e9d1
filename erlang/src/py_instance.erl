%% @doc What one sidecar instance publishes for the modules that serve it:
%% the registered names of its processes, its port with the port owner,
%% and what the sidecar said about itself at start-up (`info').
%%
%% A leaf: it calls no other module of the application, so the modules of a
%% sidecar's subtree and the callers' side ({@link py_request},
%% {@link py_slot}, {@link py_callback}, {@link py_config}) read what
%% {@link py_sidecar} publishes here without calling the port owner's module,
%% and no module cycle runs through it. Reads are `persistent_term' gets.
-module(py_instance).

-export([name/2, label/1]).
-export([publish/4, unpublish/1, lookup/1, port/1, info/1, slot_min/1]).

-define(DEFAULT, default).
-define(PORT_KEY(Sidecar), {py_sidecar, Sidecar, port}).
-define(INFO_KEY(Sidecar), {py_sidecar, Sidecar, info}).
-define(SLOT_MIN_KEY(Sidecar), {py_sidecar, Sidecar, slot_min}).

%% @doc The registered name of `Module''s process in sidecar `Sidecar': the
%% module's name for the default sidecar, `'Module/Sidecar'' for another.
-spec name(atom(), atom()) -> atom().
name(Module, ?DEFAULT) ->
    Module;
name(Module, Sidecar) ->
    list_to_atom(atom_to_list(Module) ++ "/" ++ atom_to_list(Sidecar)).

%% @doc How log lines name sidecar `Sidecar': nothing for the default one.
-spec label(atom()) -> string().
label(?DEFAULT) -> "";
label(Sidecar) -> lists:flatten(io_lib:format(" ~p", [Sidecar])).

%% @doc Publish sidecar `Sidecar''s port, its owner and its `info', once the
%% start-up requests are answered (the info first: whoever finds the port
%% finds the info).
-spec publish(atom(), port(), pid(), py_sidecar:info()) -> ok.
publish(Sidecar, Port, Owner, #{slot_min := SlotMin} = Info) ->
    persistent_term:put(?INFO_KEY(Sidecar), Info),
    persistent_term:put(?SLOT_MIN_KEY(Sidecar), SlotMin),
    persistent_term:put(?PORT_KEY(Sidecar), {Port, Owner}).

%% @doc Forget what {@link publish/4} published (the port is gone).
-spec unpublish(atom()) -> ok.
unpublish(Sidecar) ->
    _ = persistent_term:erase(?PORT_KEY(Sidecar)),
    _ = persistent_term:erase(?INFO_KEY(Sidecar)),
    _ = persistent_term:erase(?SLOT_MIN_KEY(Sidecar)),
    ok.

%% @doc The port and its owner, for callers that send requests themselves.
-spec lookup(atom()) -> {ok, port(), pid()} | {error, not_started}.
lookup(Sidecar) ->
    case persistent_term:get(?PORT_KEY(Sidecar), undefined) of
        {Port, Pid} -> {ok, Port, Pid};
        undefined -> {error, not_started}
    end.

%% @doc The port, or `undefined' when the sidecar does not run.
-spec port(atom()) -> port() | undefined.
port(Sidecar) ->
    case persistent_term:get(?PORT_KEY(Sidecar), undefined) of
        {Port, _Pid} -> Port;
        undefined -> undefined
    end.

%% @doc What the running sidecar said about itself at start-up.
-spec info(atom()) -> {ok, py_sidecar:info()} | {error, not_started}.
info(Sidecar) ->
    case persistent_term:get(?INFO_KEY(Sidecar), undefined) of
        undefined -> {error, not_started};
        Info -> {ok, Info}
    end.

%% @doc The info's `slot_min', read on every call (a key of its own, not a
%% map lookup); `infinity' when the sidecar does not run.
-spec slot_min(atom()) -> pos_integer() | infinity.
slot_min(Sidecar) ->
    persistent_term:get(?SLOT_MIN_KEY(Sidecar), infinity).
