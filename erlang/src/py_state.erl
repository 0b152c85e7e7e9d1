%% @doc Shared state (API.md section 7): a store of key -> term in the
%% sidecar, seen by every context's Python (`from erlang import state_set,
%% state_get, state_delete, state_keys, state_incr, state_decr') and by
%% Erlang through these functions (`py:state_*' call them).
%%
%% Keys are atoms, binaries or strings, all normalised to a UTF-8 binary, so
%% `foo', `<<"foo">>', `"foo"' and Python's `"foo"' are one key. Values are
%% any term: Python gets them as it gets call arguments (a binary as str, a
%% map as dict...), and Erlang gets what Python stored as it gets a result.
%% A mutation (store, remove, clear, incr, decr) is one control request over
%% the port, answered by the sidecar's reader at once, without waiting for
%% Python; each is atomic, incr and decr included, whoever else uses the key
%% (docs/PROTOCOL.md, "Shared state"). {@link fetch/1} and {@link keys/0}
%% send nothing: they read the mirror below, an ETS lookup in the caller.
%%
%% == Reads see what a caller could have seen ==
%% The mirror is as new as anything the caller learnt from the sidecar:
%% <ul>
%% <li>a value that Python set (or deleted, incremented...) before a reply
%%     is in the mirror once that reply has come: the sidecar writes the
%%     op's `'$state'' packet before any later packet, the reply included,
%%     and the port owner applies it before it routes what follows;</li>
%% <li>a value stored with {@link store/2} (or {@link incr/2},
%%     {@link remove/1}, {@link clear/0}) is in the mirror once that
%%     function has returned: the sidecar records the op as it mutates its
%%     store, and the op goes out before the request's own reply, by the
%%     same rule;</li>
%% <li>a mutation that Python makes with no reply, `erlang.send' or other
%%     packet after it, shows within about 5 ms (the sidecar's flush).</li>
%% </ul>
%% Reads do not wait for a sidecar restart: the mirror, which outlives the
%% sidecar, is what the new one starts with.
%%
%% Errors: `{error, {badarg, What}}' for a bad key or increment (nothing is
%% sent), `{error, not_started}' when the application is not running (for
%% {@link fetch/1} and {@link keys/0}: when the mirror's owner does not run),
%% `{error, {not_integer, Key}}' for incr/decr on a value that is not an
%% integer, `{error, {overflow, Key}}' when the result would not fit 64 bits
%% (or the value is a larger integer); and the errors of any request,
%% `{error, timeout}' or `{error, {python_crashed, _}}'.
%%
%% The store survives the sidecar: this module is also a process, started
%% before `py_sidecar', that owns a public ETS table, the mirror. The
%% sidecar sends every mutation of the store, from Python or Erlang, as a
%% `'$state'' packet written before any reply that could have seen it
%% (docs/PROTOCOL.md, "Shared state"); the port owner applies it here
%% ({@link apply_ops/1}) before it routes anything behind it. A new sidecar
%% gets the table back ({@link snapshot/0}, which the port owner sends as
%% `state_load') before anyone can call it.
%%
%% Each sidecar has its own store and mirror (see {@link py_sidecar_sup}):
%% the functions without a sidecar argument are those of the default
%% sidecar (whose mirror is the table `py_state_mirror'), the ones with it
%% take the sidecar's name first, e.g. {@link store/3}.
-module(py_state).

-behaviour(gen_server).

-export([store/2, fetch/1, remove/1, keys/0, clear/0, incr/2, decr/2]).
-export([store/3, fetch/2, remove/2, keys/1, clear/1, incr/3, decr/3, prefixed/2]).
-export([start_link/0, apply_ops/1, snapshot/0]).
-export([start_link/1, apply_ops/2, snapshot/1]).
-export([init/1, handle_call/3, handle_cast/2]).

-define(DEFAULT, default).
-define(TABLE, py_state_mirror).

-type key() :: atom() | binary() | string().
-type error() :: {error, term()}.
-export_type([key/0]).

-define(INT64_MIN, -(1 bsl 63)).
-define(INT64_MAX, (1 bsl 63) - 1).

%% @doc Store `Value' under `Key', replacing what was there.
-spec store(key(), term()) -> ok | error().
store(Key, Value) ->
    store(?DEFAULT, Key, Value).

%% @doc {@link store/2} in sidecar `Sidecar''s store.
-spec store(atom(), key(), term()) -> ok | error().
store(Sidecar, Key, Value) ->
    with_key(Key, fun(K) -> control(Sidecar, py_wire:state_store(K), term_to_binary(Value)) end).

%% @doc The value under `Key'.
-spec fetch(key()) -> {ok, term()} | {error, not_found} | error().
fetch(Key) ->
    fetch(?DEFAULT, Key).

%% @doc {@link fetch/1} from sidecar `Sidecar''s store, read in its mirror.
-spec fetch(atom(), key()) -> {ok, term()} | {error, not_found} | error().
fetch(Sidecar, Key) ->
    case key(Key) of
        {ok, K} ->
            try ets:lookup(mirror(Sidecar), K) of
                [{_, Value}] -> {ok, Value};
                [] -> {error, not_found}
            catch
                error:badarg -> {error, not_started}
            end;
        {error, _} = Error ->
            Error
    end.

%% @doc Remove `Key'; a missing key is no error.
-spec remove(key()) -> ok | error().
remove(Key) ->
    remove(?DEFAULT, Key).

%% @doc {@link remove/1} from sidecar `Sidecar''s store.
-spec remove(atom(), key()) -> ok | error().
remove(Sidecar, Key) ->
    with_key(Key, fun(K) -> control(Sidecar, py_wire:state_remove(K), <<>>) end).

%% @doc Every key, as binaries, sorted. Keys that begin with a NUL byte are
%% those of the SharedDicts ({@link py_shared_dict}) and are not listed.
-spec keys() -> [binary()] | error().
keys() ->
    keys(?DEFAULT).

%% @doc {@link keys/0} of sidecar `Sidecar''s store, read in its mirror.
-spec keys(atom()) -> [binary()] | error().
keys(Sidecar) ->
    try ets:select(mirror(Sidecar), [{{'$1', '_'}, [], ['$1']}]) of
        Keys -> lists:sort([K || K <- Keys, not reserved(K)])
    catch
        error:badarg -> {error, not_started}
    end.

%% @doc Remove every key, the SharedDicts' included: those are destroyed.
-spec clear() -> ok | error().
clear() ->
    clear(?DEFAULT).

%% @doc {@link clear/0} for sidecar `Sidecar''s store.
-spec clear(atom()) -> ok | error().
clear(Sidecar) ->
    control(Sidecar, py_wire:state_clear(), <<>>).

%% @doc Add `N' to the integer under `Key' (a missing key counts as 0) and
%% return the new value, atomically.
-spec incr(key(), integer()) -> integer() | error().
incr(Key, N) ->
    incr(?DEFAULT, Key, N).

%% @doc {@link incr/2} in sidecar `Sidecar''s store.
-spec incr(atom(), key(), integer()) -> integer() | error().
incr(Sidecar, Key, N) when is_integer(N), N >= ?INT64_MIN, N =< ?INT64_MAX ->
    with_key(Key, fun(K) -> add(Sidecar, K, N) end);
incr(_Sidecar, _Key, N) ->
    {error, {badarg, {increment, N}}}.

%% @doc Subtract `N' from the integer under `Key' (a missing key counts as
%% 0) and return the new value, atomically.
-spec decr(key(), integer()) -> integer() | error().
decr(Key, N) ->
    decr(?DEFAULT, Key, N).

%% @doc {@link decr/2} in sidecar `Sidecar''s store.
-spec decr(atom(), key(), integer()) -> integer() | error().
decr(Sidecar, Key, N) when is_integer(N), -N >= ?INT64_MIN, -N =< ?INT64_MAX ->
    with_key(Key, fun(K) -> add(Sidecar, K, -N) end);
decr(_Sidecar, _Key, N) ->
    {error, {badarg, {decrement, N}}}.

%% @doc The entries of sidecar `Sidecar''s mirror whose key begins with
%% `Prefix', `[{Key, Value}]' in no order (for {@link py_shared_dict}).
-spec prefixed(atom(), binary()) -> [{binary(), term()}] | {error, not_started}.
prefixed(Sidecar, Prefix) ->
    N = byte_size(Prefix),
    try ets:tab2list(mirror(Sidecar)) of
        All -> [E || {<<P:N/binary, _/binary>>, _} = E <- All, P =:= Prefix]
    catch
        error:badarg -> {error, not_started}
    end.

%%--------------------------------------------------------------------

%% The SharedDicts' keys (py_shared_dict) begin with a NUL byte.
reserved(<<0, _/binary>>) -> true;
reserved(_) -> false.

add(Sidecar, K, N) ->
    case control(Sidecar, py_wire:state_incr(K, N), <<>>) of
        {ok, Value} -> Value;
        {error, _} = Error -> Error
    end.

%% While the sidecar restarts, an operation waits for it (within the call
%% timeout) and finds the store as it was.
control(Sidecar, TagAndArgs, Payload) ->
    Timeout = py_config:get(Sidecar, call_timeout),
    py_lifecycle:when_up(Sidecar, Timeout,
                         fun() -> py_request:control(Sidecar, TagAndArgs, Payload, Timeout) end).

with_key(Key, Fun) ->
    case key(Key) of
        {ok, K} -> Fun(K);
        {error, _} = Error -> Error
    end.

key(Key) ->
    py_payload:key(key, Key).

%%--------------------------------------------------------------------
%% The mirror

%% @doc Start the owner of the default sidecar's mirror table.
-spec start_link() -> {ok, pid()} | {error, term()}.
start_link() ->
    start_link(?DEFAULT).

%% @doc Start the owner of sidecar `Sidecar''s mirror table.
-spec start_link(atom()) -> {ok, pid()} | {error, term()}.
start_link(Sidecar) ->
    gen_server:start_link({local, py_instance:name(?MODULE, Sidecar)}, ?MODULE, Sidecar, []).

%% @doc Apply a `'$state'' packet's ops to the default sidecar's mirror.
-spec apply_ops([{set, binary(), term()} | {delete, binary()} | clear]) -> ok.
apply_ops(Ops) ->
    apply_ops(?DEFAULT, Ops).

%% @doc Apply a `'$state'' packet's ops, in order, to sidecar `Sidecar''s
%% mirror. Called by its port owner for each such packet.
-spec apply_ops(atom(), [{set, binary(), term()} | {delete, binary()} | clear]) -> ok.
apply_ops(Sidecar, Ops) ->
    apply_to(mirror(Sidecar), Ops).

apply_to(Tab, [{set, Key, Value} | Ops]) ->
    true = ets:insert(Tab, {Key, Value}),
    apply_to(Tab, Ops);
apply_to(Tab, [{delete, Key} | Ops]) ->
    true = ets:delete(Tab, Key),
    apply_to(Tab, Ops);
apply_to(Tab, [clear | Ops]) ->
    true = ets:delete_all_objects(Tab),
    apply_to(Tab, Ops);
apply_to(_Tab, []) ->
    ok.

%% @doc The default sidecar's mirror entries.
-spec snapshot() -> [{binary(), term()}].
snapshot() ->
    snapshot(?DEFAULT).

%% @doc Sidecar `Sidecar''s mirror entries, `[{Key, Value}]', for its new
%% OS process's store.
-spec snapshot(atom()) -> [{binary(), term()}].
snapshot(Sidecar) ->
    ets:tab2list(mirror(Sidecar)).

%% The mirror table of a sidecar: `py_state_mirror' for the default one,
%% `'py_state_mirror/Name'' for another.
mirror(?DEFAULT) ->
    ?TABLE;
mirror(Sidecar) ->
    py_instance:name(?TABLE, Sidecar).

%% @private
-spec init(atom()) -> {ok, undefined}.
init(Sidecar) ->
    %% written by the port owner, read by callers (fetch/2, keys/1)
    Tab = mirror(Sidecar),
    Tab = ets:new(Tab, [named_table, public, set, {read_concurrency, true}]),
    {ok, undefined}.

%% @private
-spec handle_call(term(), gen_server:from(), State) -> {reply, {error, unknown_call}, State}.
handle_call(_Request, _From, State) ->
    {reply, {error, unknown_call}, State}.

%% @private
-spec handle_cast(term(), State) -> {noreply, State}.
handle_cast(_Msg, State) ->
    {noreply, State}.
