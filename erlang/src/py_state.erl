%% @doc Shared state (API.md section 7): a store of key -> term in the
%% sidecar, seen by every context's Python (`from erlang import state_set,
%% state_get, state_delete, state_keys, state_incr, state_decr') and by
%% Erlang through these functions (`py:state_*' call them).
%%
%% Keys are atoms, binaries or strings, all normalised to a UTF-8 binary, so
%% `foo', `<<"foo">>', `"foo"' and Python's `"foo"' are one key. Values are
%% any term: Python gets them as it gets call arguments (a binary as str, a
%% map as dict...), and Erlang gets what Python stored as it gets a result.
%% Each operation is one control request over the port, answered by the
%% sidecar's reader at once, without waiting for Python; each is atomic,
%% incr and decr included, whoever else uses the key (docs/PROTOCOL.md,
%% "Shared state").
%%
%% Errors: `{error, {badarg, What}}' for a bad key or increment (nothing is
%% sent), `{error, not_started}' when the application is not running,
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
-module(py_state).

-behaviour(gen_server).

-export([store/2, fetch/1, remove/1, keys/0, clear/0, incr/2, decr/2]).
-export([start_link/0, apply_ops/1, snapshot/0]).
-export([init/1, handle_call/3, handle_cast/2]).

-define(TABLE, py_state_mirror).

-type key() :: atom() | binary() | string().
-type error() :: {error, term()}.
-export_type([key/0]).

-define(INT64_MIN, -(1 bsl 63)).
-define(INT64_MAX, (1 bsl 63) - 1).

%% @doc Store `Value' under `Key', replacing what was there.
-spec store(key(), term()) -> ok | error().
store(Key, Value) ->
    with_key(Key, fun(K) -> control(py_wire:state_store(K), term_to_binary(Value)) end).

%% @doc The value under `Key'.
-spec fetch(key()) -> {ok, term()} | {error, not_found} | error().
fetch(Key) ->
    with_key(Key, fun(K) -> control(py_wire:state_fetch(K), <<>>) end).

%% @doc Remove `Key'; a missing key is no error.
-spec remove(key()) -> ok | error().
remove(Key) ->
    with_key(Key, fun(K) -> control(py_wire:state_remove(K), <<>>) end).

%% @doc Every key, as binaries, sorted.
-spec keys() -> [binary()] | error().
keys() ->
    case control(py_wire:state_keys(), <<>>) of
        Keys when is_list(Keys) -> lists:sort(Keys);
        {error, _} = Error -> Error
    end.

%% @doc Remove every key.
-spec clear() -> ok | error().
clear() ->
    control(py_wire:state_clear(), <<>>).

%% @doc Add `N' to the integer under `Key' (a missing key counts as 0) and
%% return the new value, atomically.
-spec incr(key(), integer()) -> integer() | error().
incr(Key, N) when is_integer(N), N >= ?INT64_MIN, N =< ?INT64_MAX ->
    with_key(Key, fun(K) -> add(K, N) end);
incr(_Key, N) ->
    {error, {badarg, {increment, N}}}.

%% @doc Subtract `N' from the integer under `Key' (a missing key counts as
%% 0) and return the new value, atomically.
-spec decr(key(), integer()) -> integer() | error().
decr(Key, N) when is_integer(N), -N >= ?INT64_MIN, -N =< ?INT64_MAX ->
    with_key(Key, fun(K) -> add(K, -N) end);
decr(_Key, N) ->
    {error, {badarg, {decrement, N}}}.

%%--------------------------------------------------------------------

add(K, N) ->
    case control(py_wire:state_incr(K, N), <<>>) of
        {ok, Value} -> Value;
        {error, _} = Error -> Error
    end.

%% While the sidecar restarts, an operation waits for it (within the call
%% timeout) and finds the store as it was.
control(TagAndArgs, Payload) ->
    Timeout = py_config:call_timeout(),
    py_lifecycle:when_up(Timeout, fun() -> py_request:control(TagAndArgs, Payload, Timeout) end).

with_key(Key, Fun) ->
    case key(Key) of
        {ok, K} -> Fun(K);
        {error, _} = Error -> Error
    end.

key(Key) ->
    py_payload:key(key, Key).

%%--------------------------------------------------------------------
%% The mirror

%% @doc Start the owner of the mirror table.
-spec start_link() -> {ok, pid()} | {error, term()}.
start_link() ->
    gen_server:start_link({local, ?MODULE}, ?MODULE, [], []).

%% @doc Apply a `'$state'' packet's ops, in order, to the mirror. Called by
%% the port owner for each such packet.
-spec apply_ops([{set, binary(), term()} | {delete, binary()} | clear]) -> ok.
apply_ops([{set, Key, Value} | Ops]) ->
    true = ets:insert(?TABLE, {Key, Value}),
    apply_ops(Ops);
apply_ops([{delete, Key} | Ops]) ->
    true = ets:delete(?TABLE, Key),
    apply_ops(Ops);
apply_ops([clear | Ops]) ->
    true = ets:delete_all_objects(?TABLE),
    apply_ops(Ops);
apply_ops([]) ->
    ok.

%% @doc The mirror's entries, `[{Key, Value}]', for a new sidecar's store.
-spec snapshot() -> [{binary(), term()}].
snapshot() ->
    ets:tab2list(?TABLE).

-spec init([]) -> {ok, undefined}.
init([]) ->
    %% written by the port owner, read by nobody else yet
    ?TABLE = ets:new(?TABLE, [named_table, public, set]),
    {ok, undefined}.

-spec handle_call(term(), gen_server:from(), State) -> {reply, {error, unknown_call}, State}.
handle_call(_Request, _From, State) ->
    {reply, {error, unknown_call}, State}.

-spec handle_cast(term(), State) -> {noreply, State}.
handle_cast(_Msg, State) ->
    {noreply, State}.
