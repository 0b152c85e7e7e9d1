%% @doc SharedDict (API.md section 7, as the NIF erlang_python 2.x): a dict
%% of key -> term that every context's Python and Erlang see, owned by the
%% process that made it and freed when that process exits.
%%
%% ```
%% {ok, SD} = py:shared_dict_new(),
%% ok = py:shared_dict_set(SD, <<"config">>, #{port => 8080}),
%% #{port := 8080} = py:shared_dict_get(SD, <<"config">>),
%% default = py:shared_dict_get(SD, <<"missing">>, default),
%% {ok, 8080} = py:eval(<<"erlang.SharedDict(sd)['config']['port']">>, #{sd => SD}).
%% '''
%% In Python, `erlang.SharedDict(Handle)', with the handle passed as an
%% argument, has `d[k]', `d[k] = v', `del d[k]', `get', `keys', `values',
%% `items', `in', `len' and iteration; once the dict is destroyed every
%% operation raises `RuntimeError'.
%%
%% == Where the entries live ==
%% A SharedDict is part of its sidecar's shared state ({@link py_state}):
%% entry `K' of dict `Id' is the store key `<<0, "sd:", Id, "/", K>>' (Id in
%% decimal), and the key `<<0, "sd:", Id>>' holds the owner's pid while the
%% dict lives. So a dict is as atomic, per operation, as the shared state,
%% its reads in Erlang are ETS lookups in the mirror, and it survives a
%% sidecar restart (kill -9 included) as the shared state does. Keys that
%% begin with a NUL byte are reserved for this: `py:state_keys()' and
%% Python's `state_keys()' do not list them, and `py:state_clear()' removes
%% them too, which destroys every SharedDict of that sidecar.
%%
%% Keys are binaries (an atom or a string is its UTF-8, as Python's str); a
%% value is converted as a call's arguments and results are: Python reads
%% what Erlang stored as an argument, Erlang reads what Python stored as a
%% result. Unlike the NIF, which pickles every value through Python, a
%% value stored by Erlang reads back in Erlang as the very term stored (as
%% {@link py_state:fetch/1} does): `#{port => 8080}', not
%% `#{<<"port">> => 8080}'.
%%
%% == Owners ==
%% This module is also a process per sidecar (started after `py_state', so
%% a sidecar restart leaves it alone) that monitors the owners; when one
%% exits, its dicts are destroyed (their keys removed). If this process
%% restarts it finds the live dicts and their owners again in the mirror.
%% {@link destroy/1} may be called by any process.
%%
%% Not atomic: a set racing a destroy may leave its one entry behind, an
%% orphan no dict reaches (a later destroy of the same dict removes it).
%%
%% Errors: `{error, {badarg, {shared_dict, T}}}' for a term that is no
%% handle, `{error, {badarg, {key, K}}}' for a bad key, `{error, {destroyed,
%% SD}}' for a destroyed dict, and the errors of {@link py_state}.
-module(py_shared_dict).

-behaviour(gen_server).

-export([new/0, new/1, set/3, get/2, get/3, del/2, keys/1, destroy/1]).
-export([start_link/1]).
-export([init/1, handle_call/3, handle_cast/2, handle_info/2]).

-define(DEFAULT, default).
-define(TAG, '$py_shared_dict').
-define(PREFIX, <<0, "sd:">>).

-type handle() :: {'$py_shared_dict', atom(), pos_integer()}.
-export_type([handle/0]).

-type error() :: {error, term()}.

%% owners: pid -> {monitor, [Id]}; monitors: monitor -> pid
-record(state, {sidecar :: atom(),
                owners = #{} :: #{pid() => {reference(), [pos_integer()]}},
                monitors = #{} :: #{reference() => pid()}}).

%% @doc A new, empty SharedDict in the default sidecar, owned by the
%% caller; its handle is an opaque term to pass to Python.
-spec new() -> {ok, handle()} | error().
new() ->
    new(?DEFAULT).

%% @doc {@link new/0} in sidecar `Sidecar''s shared state.
-spec new(atom()) -> {ok, handle()} | error().
new(Sidecar) when is_atom(Sidecar) ->
    Owner = self(),
    try gen_server:call(py_instance:name(?MODULE, Sidecar), {new, Owner}, infinity) of
        {ok, Id} ->
            case py_state:store(Sidecar, marker(Id), Owner) of
                ok ->
                    {ok, {?TAG, Sidecar, Id}};
                {error, _} = Error ->
                    gen_server:cast(py_instance:name(?MODULE, Sidecar), {forget, Owner, Id}),
                    Error
            end
    catch
        exit:{noproc, _} -> {error, not_started}
    end;
new(Sidecar) ->
    {error, {badarg, {sidecar, Sidecar}}}.

%% @doc Store `Value' under `Key' in the dict.
-spec set(handle(), py_state:key(), term()) -> ok | error().
set(SD, Key, Value) ->
    with_entry(SD, Key, fun(Sidecar, K) -> py_state:store(Sidecar, K, Value) end).

%% @doc The value under `Key', or `undefined'.
-spec get(handle(), py_state:key()) -> term().
get(SD, Key) ->
    get(SD, Key, undefined).

%% @doc The value under `Key', or `Default'; `{error, {destroyed, SD}}' for
%% a destroyed dict.
-spec get(handle(), py_state:key(), term()) -> term().
get(SD, Key, Default) ->
    with_entry(SD, Key, fun(Sidecar, K) ->
                                case py_state:fetch(Sidecar, K) of
                                    {ok, Value} -> Value;
                                    {error, not_found} -> Default;
                                    {error, _} = Error -> Error
                                end
                        end).

%% @doc Remove `Key' from the dict; a missing key is no error.
-spec del(handle(), py_state:key()) -> ok | error().
del(SD, Key) ->
    with_entry(SD, Key, fun(Sidecar, K) -> py_state:remove(Sidecar, K) end).

%% @doc The dict's keys, binaries, sorted.
-spec keys(handle()) -> [binary()] | error().
keys(SD) ->
    with_alive(SD, fun(Sidecar, Id) ->
                           Prefix = entry_prefix(Id),
                           N = byte_size(Prefix),
                           case py_state:prefixed(Sidecar, Prefix) of
                               {error, _} = Error -> Error;
                               Entries -> lists:sort([K || {<<_:N/binary, K/binary>>, _} <- Entries])
                           end
                   end).

%% @doc Destroy the dict: its entries go, and later operations on it give
%% `{error, {destroyed, SD}}' (Python: RuntimeError). Destroying a dict
%% twice is no error.
-spec destroy(handle()) -> ok | error().
destroy({?TAG, Sidecar, Id}) when is_atom(Sidecar), is_integer(Id), Id > 0 ->
    Result = case py_state:fetch(Sidecar, marker(Id)) of
                 {ok, _} -> remove_dict(Sidecar, Id);
                 {error, not_found} -> ok;
                 {error, _} = Error -> Error
             end,
    case whereis(py_instance:name(?MODULE, Sidecar)) of
        undefined -> ok;
        Pid -> gen_server:cast(Pid, {destroyed, Id})
    end,
    Result;
destroy(SD) ->
    {error, {badarg, {shared_dict, SD}}}.

%%--------------------------------------------------------------------

with_entry(SD, Key, Fun) ->
    case py_payload:key(key, Key) of
        {ok, K} -> with_alive(SD, fun(Sidecar, Id) -> Fun(Sidecar, entry(Id, K)) end);
        {error, _} = Error -> Error
    end.

%% The dict's sidecar and id, if the dict lives (its marker is in the mirror).
with_alive({?TAG, Sidecar, Id} = SD, Fun) when is_atom(Sidecar), is_integer(Id), Id > 0 ->
    case py_state:fetch(Sidecar, marker(Id)) of
        {ok, _} -> Fun(Sidecar, Id);
        {error, not_found} -> {error, {destroyed, SD}};
        {error, _} = Error -> Error
    end;
with_alive(SD, _Fun) ->
    {error, {badarg, {shared_dict, SD}}}.

marker(Id) ->
    <<(?PREFIX)/binary, (integer_to_binary(Id))/binary>>.

entry_prefix(Id) ->
    <<(marker(Id))/binary, "/">>.

entry(Id, K) ->
    <<(entry_prefix(Id))/binary, K/binary>>.

%% The marker first, so no operation finds the dict alive once its entries
%% start to go.
remove_dict(Sidecar, Id) ->
    case py_state:remove(Sidecar, marker(Id)) of
        ok ->
            case py_state:prefixed(Sidecar, entry_prefix(Id)) of
                {error, _} = Error -> Error;
                Entries -> lists:foldl(fun({K, _}, ok) -> py_state:remove(Sidecar, K);
                                          (_, Error) -> Error
                                       end, ok, Entries)
            end;
        {error, _} = Error ->
            Error
    end.

%%--------------------------------------------------------------------
%% The owners' monitor

%% @doc Start sidecar `Sidecar''s monitor of SharedDict owners.
-spec start_link(atom()) -> {ok, pid()} | {error, term()}.
start_link(Sidecar) ->
    gen_server:start_link({local, py_instance:name(?MODULE, Sidecar)}, ?MODULE, Sidecar, []).

%% @private
-spec init(atom()) -> {ok, #state{}}.
init(Sidecar) ->
    %% the dicts that live (a restart of this process): their owners again
    N = byte_size(?PREFIX),
    Live = case py_state:prefixed(Sidecar, ?PREFIX) of
               {error, _} -> [];
               Entries -> [{Id, Owner} || {<<_:N/binary, IdBin/binary>>, Owner} <- Entries,
                                          Id <- id(IdBin)]
           end,
    State = lists:foldl(fun({Id, Owner}, S) when is_pid(Owner) -> own(Owner, Id, S);
                           ({Id, _}, S) -> cleanup(Sidecar, [Id]), S
                        end, #state{sidecar = Sidecar}, Live),
    {ok, State}.

id(IdBin) ->
    try binary_to_integer(IdBin) of
        Id when Id > 0 -> [Id];
        _ -> []
    catch
        error:badarg -> []                      % an entry's key (has a "/")
    end.

%% @private
-spec handle_call(term(), gen_server:from(), #state{}) -> {reply, term(), #state{}}.
handle_call({new, Owner}, _From, State) ->
    Id = erlang:unique_integer([positive]),
    {reply, {ok, Id}, own(Owner, Id, State)};
handle_call(_Request, _From, State) ->
    {reply, {error, unknown_call}, State}.

%% @private
-spec handle_cast(term(), #state{}) -> {noreply, #state{}}.
handle_cast({forget, Owner, Id}, State) ->
    {noreply, disown(Owner, Id, State)};
handle_cast({destroyed, Id}, #state{owners = Owners} = State) ->
    case [O || {O, {_, Ids}} <- maps:to_list(Owners), lists:member(Id, Ids)] of
        [Owner | _] -> {noreply, disown(Owner, Id, State)};
        [] -> {noreply, State}
    end;
handle_cast(_Msg, State) ->
    {noreply, State}.

%% @private
-spec handle_info(term(), #state{}) -> {noreply, #state{}}.
handle_info({'DOWN', MRef, process, Owner, _Reason},
            #state{owners = Owners, monitors = Mons} = State) ->
    case maps:take(MRef, Mons) of
        {Owner, Mons1} ->
            {{MRef, Ids}, Owners1} = maps:take(Owner, Owners),
            cleanup(State#state.sidecar, Ids),
            {noreply, State#state{owners = Owners1, monitors = Mons1}};
        error ->
            {noreply, State}
    end;
handle_info(_Msg, State) ->
    {noreply, State}.

own(Owner, Id, #state{owners = Owners, monitors = Mons} = State) ->
    case Owners of
        #{Owner := {MRef, Ids}} ->
            State#state{owners = Owners#{Owner := {MRef, [Id | Ids]}}};
        #{} ->
            MRef = erlang:monitor(process, Owner),
            State#state{owners = Owners#{Owner => {MRef, [Id]}}, monitors = Mons#{MRef => Owner}}
    end.

disown(Owner, Id, #state{owners = Owners, monitors = Mons} = State) ->
    case Owners of
        #{Owner := {MRef, [Id]}} ->
            erlang:demonitor(MRef, [flush]),
            State#state{owners = maps:remove(Owner, Owners), monitors = maps:remove(MRef, Mons)};
        #{Owner := {MRef, Ids}} ->
            State#state{owners = Owners#{Owner := {MRef, lists:delete(Id, Ids)}}};
        #{} ->
            State
    end.

%% The removals wait for the sidecar when it restarts: not in this process.
cleanup(Sidecar, Ids) ->
    _ = spawn(fun() -> [remove_dict(Sidecar, Id) || Id <- Ids] end),
    ok.
