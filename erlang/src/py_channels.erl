%% @doc The channels of one sidecar (docs/channels.md): what {@link
%% py_channel}, {@link py_byte_channel} and {@link py_buffer} share. One
%% process per sidecar (see {@link py_sidecar_sup}) owns a table of the open
%% channels (`Ch' -> its fill counts, its creator, its port) and monitors
%% their creators: a channel is closed, what it holds dropped, when its
%% creator exits, and every channel of a sidecar is closed when the sidecar
%% restarts (sends then answer `{error, closed}', Python receivers get
%% `ChannelClosed').
%%
%% The fill count of a channel lives in `atomics' in its handle: a send adds
%% the message's bytes and is `busy' past the channel's bound without asking
%% anyone; the sidecar acknowledges what Python took, in batches (a
%% `'$chan'' packet, at the latest when the channel is empty or half of its
%% bound was taken), which the port owner applies with {@link acked/2}.
-module(py_channels).

-behaviour(gen_server).

-export([start_link/1, opts/2, new/4, send/2, close/1, info/1, acked/2, owner/1, id/1]).
-export([init/1, handle_call/3, handle_cast/2, handle_info/2]).

-export_type([handle/0, tag/0]).

-type tag() :: py_channel | py_byte_channel | py_buffer.
-opaque handle() :: {tag(), pos_integer(), atom(), port(), atomics:atomics_ref(), pos_integer(), pid()}.
%% `{Tag, Ch, Sidecar, Port, Counts, Max, Owner}': Python reads `Ch', the
%% second element (`erlang.Channel(handle)'), and `Owner' (byte channels'
%% replies).

%% Counts: bytes queued (as Erlang sees them), messages queued, closed.
-define(BYTES, 1).
-define(COUNT, 2).
-define(CLOSED, 3).
-define(OPEN_TIMEOUT, 5000).

%% @doc Start sidecar `Sidecar''s channel registry.
-spec start_link(atom()) -> {ok, pid()} | {error, term()}.
start_link(Sidecar) ->
    gen_server:start_link({local, py_instance:name(?MODULE, Sidecar)}, ?MODULE, Sidecar, []).

%% @doc The options of a new channel, buffer or byte channel: `{ok, Max,
%% Sidecar}' from `max_size' (default `DefaultMax') and `sidecar' (default
%% `default'), or `{error, {badarg, What}}'.
-spec opts(term(), pos_integer()) -> {ok, pos_integer(), atom()} | {error, {badarg, string()}}.
opts(Opts, DefaultMax) when is_map(Opts) ->
    Max = maps:get(max_size, Opts, DefaultMax),
    Sidecar = maps:get(sidecar, Opts, default),
    if
        not (is_integer(Max) andalso Max > 0) -> {error, {badarg, "max_size must be a positive integer"}};
        not is_atom(Sidecar) -> {error, {badarg, "sidecar must be an atom"}};
        true -> {ok, Max, Sidecar}
    end;
opts(_, _) ->
    {error, {badarg, "Opts must be a map"}}.

%% @doc Open a channel of kind `Kind' on sidecar `Sidecar', bounded to `Max'
%% bytes queued, owned by the calling process: `{ok, Handle}',
%% `{error, not_started}', `{error, too_many}' (65536 channels in the
%% sidecar) or the control request's error (`{error, timeout}',
%% `{error, {python_crashed, _}}').
-spec new(tag(), term | bytes, atom(), pos_integer()) -> {ok, handle()} | {error, term()}.
new(Tag, Kind, Sidecar, Max) ->
    case {py_instance:lookup(Sidecar), whereis(py_instance:name(?MODULE, Sidecar))} of
        {{ok, Port, _Owner}, Srv} when is_pid(Srv) ->
            Ch = erlang:unique_integer([positive]),
            Counts = atomics:new(3, []),
            ok = gen_server:call(Srv, {watch, Ch, Counts, self(), Port}),
            case py_request:control(Sidecar, py_wire:chan_open(Ch, Kind, Max), <<>>, ?OPEN_TIMEOUT) of
                ok ->
                    {ok, {Tag, Ch, Sidecar, Port, Counts, Max, self()}};
                {error, _} = Error ->
                    gen_server:cast(Srv, {forget, Ch}),
                    Error
            end;
        _ ->
            {error, not_started}
    end.

%% @doc Queue `Data' (a message's bytes) on the channel: `ok', `busy' when
%% the bytes queued and `Data' pass its bound (an empty channel takes any
%% message), `{error, closed}' once closed, its creator gone or its sidecar
%% restarted. No round trip: the packet goes to the port from the caller.
-spec send(handle(), iodata()) -> ok | busy | {error, closed}.
send({_Tag, Ch, Sidecar, Port, Counts, Max, _Owner}, Data) ->
    case atomics:get(Counts, ?CLOSED) =:= 0 andalso py_instance:port(Sidecar) =:= Port of
        false ->
            {error, closed};
        true ->
            Size = iolist_size(Data),
            case atomics:add_get(Counts, ?BYTES, Size) of
                Total when Total > Max, Total =/= Size ->
                    atomics:sub(Counts, ?BYTES, Size),
                    busy;
                _ ->
                    atomics:add(Counts, ?COUNT, 1),
                    case py_wire:send(Port, [py_wire:chan_send(Ch), Data]) of
                        true -> ok;
                        false -> {error, closed}
                    end
            end
    end.

%% @doc Close the channel: Python receivers take what it holds, then get
%% `ChannelClosed'; later sends answer `{error, closed}'. `ok', also when
%% closed already.
-spec close(handle()) -> ok.
close({_Tag, Ch, Sidecar, Port, Counts, _Max, _Owner}) ->
    case atomics:exchange(Counts, ?CLOSED, 1) of
        0 ->
            _ = py_wire:send(Port, py_wire:chan_close(Ch, false)),
            case whereis(py_instance:name(?MODULE, Sidecar)) of
                undefined -> ok;
                Srv -> gen_server:cast(Srv, {forget, Ch})
            end;
        1 ->
            ok
    end.

%% @doc `#{size => Bytes, count => Messages, max_size => Max, closed =>
%% boolean()}': what is queued as Erlang knows it (what Python took is
%% counted once the sidecar acknowledged it).
-spec info(handle()) -> #{size := non_neg_integer(), count := non_neg_integer(),
                          max_size := pos_integer(), closed := boolean()}.
info({_Tag, _Ch, Sidecar, Port, Counts, Max, _Owner}) ->
    #{size => atomics:get(Counts, ?BYTES), count => atomics:get(Counts, ?COUNT), max_size => Max,
      closed => atomics:get(Counts, ?CLOSED) =/= 0 orelse py_instance:port(Sidecar) =/= Port}.

%% @doc The channel's number in the sidecar (Python's `Channel(h)._id').
-spec id(handle()) -> pos_integer().
id({_Tag, Ch, _Sidecar, _Port, _Counts, _Max, _Owner}) -> Ch.

%% @doc The process that made the channel (its byte channel replies go to it).
-spec owner(handle()) -> pid().
owner({_Tag, _Ch, _Sidecar, _Port, _Counts, _Max, Owner}) -> Owner.

%% @doc A `'$chan'' packet's acknowledgements, `[{Ch, Count, Bytes}]', applied
%% to the channels' counts. Called by the port owner; a channel gone is
%% skipped.
-spec acked(atom(), [term()]) -> ok.
acked(Sidecar, Acks) ->
    Tab = py_instance:name(?MODULE, Sidecar),
    lists:foreach(
      fun({Ch, Count, Bytes}) when is_integer(Count), is_integer(Bytes) ->
              try ets:lookup_element(Tab, Ch, 2) of
                  Counts ->
                      atomics:sub(Counts, ?BYTES, Bytes),
                      atomics:sub(Counts, ?COUNT, Count)
              catch
                  error:badarg -> ok
              end;
         (_) ->
              ok
      end, Acks).

%%--------------------------------------------------------------------

-record(state, {sidecar :: atom(), tab :: atom(),
                mons = #{} :: #{reference() => pos_integer()}}).

%% @private
-spec init(atom()) -> {ok, #state{}}.
init(Sidecar) ->
    Tab = py_instance:name(?MODULE, Sidecar),
    %% {Ch, Counts, Owner, Port, MRef}: public, for acked/2 in the port owner
    Tab = ets:new(Tab, [named_table, public, set, {read_concurrency, true}]),
    _ = py_lifecycle:subscribe(Sidecar),
    {ok, #state{sidecar = Sidecar, tab = Tab}}.

%% @private
-spec handle_call(term(), gen_server:from(), #state{}) -> {reply, term(), #state{}}.
handle_call({watch, Ch, Counts, Owner, Port}, _From, #state{tab = Tab, mons = Mons} = State) ->
    MRef = monitor(process, Owner),
    true = ets:insert(Tab, {Ch, Counts, Owner, Port, MRef}),
    {reply, ok, State#state{mons = Mons#{MRef => Ch}}};
handle_call(_Other, _From, State) ->
    {reply, {error, unknown_call}, State}.

%% @private
-spec handle_cast(term(), #state{}) -> {noreply, #state{}}.
handle_cast({forget, Ch}, #state{tab = Tab, mons = Mons} = State) ->
    case ets:take(Tab, Ch) of
        [{Ch, _Counts, _Owner, _Port, MRef}] ->
            demonitor(MRef, [flush]),
            {noreply, State#state{mons = maps:remove(MRef, Mons)}};
        [] ->
            {noreply, State}
    end;
handle_cast(_Other, State) ->
    {noreply, State}.

%% @private
-spec handle_info(term(), #state{}) -> {noreply, #state{}}.
handle_info({'DOWN', MRef, process, _Pid, _Reason}, #state{tab = Tab, mons = Mons} = State) ->
    case maps:take(MRef, Mons) of
        {Ch, Rest} ->
            case ets:take(Tab, Ch) of
                [{Ch, Counts, _Owner, Port, _}] ->
                    %% its creator is gone: closed, what it holds dropped
                    atomics:put(Counts, ?CLOSED, 1),
                    _ = py_wire:send(Port, py_wire:chan_close(Ch, true));
                [] ->
                    ok
            end,
            {noreply, State#state{mons = Rest}};
        error ->
            {noreply, State}
    end;
handle_info({py_restarted, _Info}, State) ->
    {noreply, restarted(State)};
handle_info(_Other, State) ->
    {noreply, State}.

%% The sidecar restarted: the channels of its old port are closed (their
%% queues went with it).
restarted(#state{sidecar = Sidecar, tab = Tab, mons = Mons} = State) ->
    Current = py_instance:port(Sidecar),
    Old = [E || {_, _, _, Port, _} = E <- ets:tab2list(Tab), Port =/= Current],
    Mons1 = lists:foldl(
              fun({Ch, Counts, _Owner, _Port, MRef}, M) ->
                      atomics:put(Counts, ?CLOSED, 1),
                      demonitor(MRef, [flush]),
                      ets:delete(Tab, Ch),
                      maps:remove(MRef, M)
              end, Mons, Old),
    State#state{mons = Mons1}.
