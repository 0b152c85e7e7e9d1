%% @doc The port protocol on the Erlang side (docs/PROTOCOL.md): the one
%% module that knows how packets to and from `pyport' look.
%%
%% <ul>
%% <li><b>Requests.</b> A request is built in two steps, because its id, an
%%     alias, is made by the caller just before it sends: a builder below
%%     ({@link op/4}, {@link create_context/2}, {@link state_store/1}...)
%%     gives a {@link request()}, the header without its id, and
%%     {@link packet/3} puts the id ({@link id/2}) in and adds the payload.
%%     {@link cancel/1} and {@link cb_reply/3} have no reply, so they are whole
%%     packets at once. Callers write packets themselves ({@link send/2}), in
%%     parallel: no process sits in between.</li>
%% <li><b>Incoming packets.</b> {@link decode/1} classifies a packet for the
%%     port owner (`py_sidecar'), which only acts on the answer. It reads a
%%     reply's id and nothing else: the result stays undecoded, a sub-binary
%%     that the caller decodes with {@link result/1}.</li>
%% <li><b>The handshake.</b> The sidecar's `info' reply carries the protocol
%%     it speaks; {@link check_info/2} refuses one that is not
%%     {@link protocol_version/0}.</li>
%% </ul>
-module(py_wire).

-export([protocol_version/0, check_info/2, format_error/1]).
-export([id/2, packet/3, send/2,
         op/4, create_context/2, destroy_context/1, info/0,
         state_store/1, state_fetch/1, state_remove/1, state_keys/0,
         state_clear/0, state_incr/2, state_load/0, atoms_load/0,
         task/2, cancel/1, cb_reply/3, log_ack/1, send_ack/1, down/2,
         chan_open/3, chan_send/1, chan_close/2]).
-export([decode/1, result/1, cast_error/1, log_entries/1]).

%% body/2 runs for every reply the port owner routes, term/1 for every
%% result a caller decodes
-compile({inline, [body/2, term/1]}).

-define(PROTOCOL, 4).
-define(LEVELS, [emergency, alert, critical, error, warning, notice, info, debug]).

-type request() :: [term(), ...].
%% A request header without its id: `[Tag | Args]' stands for the header
%% `{Tag, Id | Args}'.
-type kind() :: call | nested | control | cast.
%% `call': a call, eval or exec that holds a `py_semaphore' permit, which the
%% port owner gives back when its reply comes; `nested': one made by a
%% callback, with no permit; `control': a control request, with no permit;
%% `cast': a call of `py:cast', with a permit, whose reply nobody waits for:
%% the port owner gives the permit back and logs an error result.
-type id() :: reference() | {ctl | nested | cast, reference()}.
-type slot() :: {slot, binary(), non_neg_integer()}.
-type chain() :: pos_integer().
-type state_op() :: {set, binary(), term()} | {delete, binary()} | clear.
-type log_entry() :: {logger:level(), pos_integer() | sidecar | undefined, pid() | undefined,
                      binary()}.
%% One line (or several of one write) for the logger: its level, its context
%% (`sidecar': pyport itself; `undefined': a Python thread of no context),
%% the process whose request wrote it, if known, and the text.
-type packet() ::
        {call_reply, reference(), binary()}
      | {reply, reference(), binary()}
      | {cast_reply, reference(), binary()}
      | {log, binary()}
      | {state, [state_op()]}
      | {exit, term()}
      | {send, pid() | atom(), term()}
      | {sends, [{pid() | atom(), term()} | term()]}
      | {bad_send, binary()}
      | {callback, term(), binary()}
      | {state_limited, [state_op()], [binary()]}
      | {atom_limit, '$send', py_atoms:limit_info()}
      | {env, pos_integer(), pid()}
      | {chan_acks, [{pos_integer(), non_neg_integer(), non_neg_integer()}]}
      | {bad_packet, binary()}.
%% What {@link decode/1} makes of an incoming packet:
%% <ul>
%% <li>`{call_reply, Alias, Body}': the reply to a call, eval or exec whose
%%     id is the bare alias; its `py_semaphore' permit comes back now;</li>
%% <li>`{reply, Alias, Body}': the reply to a control or a nested request
%%     (`{ctl, Alias}', `{nested, Alias}'), no permit with it;</li>
%% <li>`{cast_reply, Ref, Body}': the reply to a cast (`{cast, Ref}'): its
%%     permit comes back now, and nobody waits for it ({@link cast_error/1});</li>
%% <li>`{log, Body}': lines for the logger (`'$log''), Body undecoded, for
%%     {@link log_entries/1} in `py_log', which acknowledges it;</li>
%% <li>`{state, Ops}': the shared state's mirror (`'$state'');</li>
%% <li>`{exit, Reason}': why the sidecar is about to exit (`'$exit'');</li>
%% <li>`{send, Dest, Message}': `erlang.send' from Python (`'$send''),
%%     `{sends, [{Dest, Message}]}' for a batch of them, in order, and
%%     `{bad_send, Bin}' for one whose body cannot be read: the port owner
%%     acknowledges each packet ({@link send_ack/1});</li>
%% <li>`{callback, N, Body}': `erlang.call' from Python (`{'$cb', N}'),
%%     Body undecoded, for {@link py_callback:run/2};</li>
%% <li>`{state_limited, Ops, Keys}': a `'$state'' packet whose values of
%%     Keys hold atoms past `max_atoms' ({@link py_atoms}): Ops has a
%%     delete of each of them instead;</li>
%% <li>`{atom_limit, '$send', Info}': an `erlang.send' whose message holds
%%     atoms past `max_atoms' ({@link py_atoms}), not sent;</li>
%% <li>`{env, Ctx, Pid}': the sidecar made an environment for `Pid' in
%%     context `Ctx' (`'$env''), for {@link py_watch};</li>
%% <li>`{chan_acks, [{Ch, Count, Bytes}]}': Python took `Count' messages,
%%     `Bytes' bytes, from channel `Ch' (`'$chan'', see {@link py_channels});</li>
%% <li>`{bad_packet, Bin}': anything else.</li>
%% </ul>
%% Body is the rest of the packet after its id, a sub-binary, undecoded.
-export_type([request/0, kind/0, id/0, slot/0, chain/0, packet/0, state_op/0, log_entry/0]).

%%--------------------------------------------------------------------
%% Version

%% @doc The protocol this library speaks; a sidecar must say the same in its
%% `info' reply (`protocol => N').
-spec protocol_version() -> pos_integer().
protocol_version() -> ?PROTOCOL.

%% @doc Check the `info' reply of the sidecar at `Exe': `ok' when it speaks
%% {@link protocol_version/0} and gives the size from which results come in
%% the slot (`slot_min'). A sidecar that says no `protocol' is older than
%% version 1 (`sidecar => none').
-spec check_info(map(), file:filename_all()) ->
          ok | {error, {protocol_mismatch, #{sidecar := term(), library := pos_integer(),
                                             path := file:filename_all()}}
                      | {bad_info_reply, map()}}.
check_info(#{protocol := ?PROTOCOL, slot_min := N}, _Exe) when is_integer(N), N > 0 ->
    ok;
check_info(#{protocol := ?PROTOCOL} = Info, _Exe) ->
    {error, {bad_info_reply, Info}};
check_info(Info, Exe) when is_map(Info) ->
    {error, {protocol_mismatch, #{sidecar => maps:get(protocol, Info, none),
                                  library => ?PROTOCOL, path => Exe}}}.

%% @doc A line for the logger about an error of {@link check_info/2}.
-spec format_error(term()) -> unicode:chardata().
format_error({protocol_mismatch, #{sidecar := Sidecar, library := Library, path := Exe}}) ->
    Speaks = case Sidecar of
                 none -> "no protocol version (older than 1)";
                 _ -> io_lib:format("protocol ~p", [Sidecar])
             end,
    io_lib:format("the sidecar ~ts speaks ~ts, this erlang_python speaks protocol ~b: "
                  "it is not started (use a pyport built with this erlang_python)",
                  [Exe, Speaks, Library]);
format_error({bad_info_reply, Info}) ->
    io_lib:format("the sidecar's info reply has no valid slot_min: ~p", [Info]);
format_error(Reason) ->
    io_lib:format("~p", [Reason]).

%%--------------------------------------------------------------------
%% Requests (BEAM -> pyport)

%% @doc The id of a request of this kind, for the alias the caller made.
-spec id(kind(), reference()) -> id().
id(call, Alias) -> Alias;
id(nested, Alias) -> {nested, Alias};
id(control, Alias) -> {ctl, Alias};
id(cast, Ref) -> {cast, Ref}.

%% @doc A request packet: the header `{Tag, Id | Args}' then the payload
%% (`<<>>' for none), as iodata for `erlang:port_command/2'.
-spec packet(request(), id() | reference(), iodata()) -> iodata().
packet([Tag | Args], Id, Payload) ->
    [term_to_binary(list_to_tuple([Tag, Id | Args])), Payload].

%% @doc Write a packet to the port: `false' when the port is closed.
-spec send(port(), iodata()) -> boolean().
send(Port, Packet) ->
    try
        erlang:port_command(Port, Packet)
    catch
        error:badarg -> false
    end.

%% @doc A call, eval or exec on context `Ctx' from the calling process:
%% `{Op, Id, Ctx, Slot | none, Chain | none, self()}' (Chain: in a callback
%% from Python). The caller's pid names it in the request's log lines. Its
%% payload is `term_to_binary(Payload)', none when it is in the slot.
-spec op(call | eval | exec, pos_integer(), slot() | none, chain() | none) -> request().
op(Op, Ctx, Slot, Chain) -> [Op, Ctx, Slot, Chain, self()].

%% @doc A task on context `Ctx' for process `Caller' (in whose environment
%% it runs, and whose exit cancels it): `{task, Id, Ctx, none, none,
%% Caller}', its payload a call's (docs/async.md).
-spec task(pos_integer(), pid()) -> request().
task(Ctx, Caller) -> [task, Ctx, none, none, Caller].

%% @doc `{create_context, Id, Ctx, Kind}'.
-spec create_context(pos_integer(), auto | subinterp | worker) -> request().
create_context(Ctx, Kind) -> [create_context, Ctx, Kind].

%% @doc `{destroy_context, Id, Ctx}'.
-spec destroy_context(pos_integer()) -> request().
destroy_context(Ctx) -> [destroy_context, Ctx].

%% @doc `{info, Id}'.
-spec info() -> request().
info() -> [info].

%% @doc `{state_store, Id, Key}', followed by `term_to_binary(Value)'.
-spec state_store(binary()) -> request().
state_store(Key) -> [state_store, Key].

%% @doc `{state_fetch, Id, Key}'.
-spec state_fetch(binary()) -> request().
state_fetch(Key) -> [state_fetch, Key].

%% @doc `{state_remove, Id, Key}'.
-spec state_remove(binary()) -> request().
state_remove(Key) -> [state_remove, Key].

%% @doc `{state_keys, Id}'.
-spec state_keys() -> request().
state_keys() -> [state_keys].

%% @doc `{state_clear, Id}'.
-spec state_clear() -> request().
state_clear() -> [state_clear].

%% @doc `{state_incr, Id, Key, N}' (a decrement sends -N).
-spec state_incr(binary(), integer()) -> request().
state_incr(Key, N) -> [state_incr, Key, N].

%% @doc `{state_load, Id}', followed by `term_to_binary([{Key, Value}])'.
-spec state_load() -> request().
state_load() -> [state_load].

%% @doc `{atoms_load, Id}', followed by {@link py_atoms:load_payload/0}:
%% what the BEAM made for Python so far, for the sidecar's own count.
-spec atoms_load() -> request().
atoms_load() -> [atoms_load].

%% @doc The packet `{cancel, Id}': drop or interrupt request `Id'.
-spec cancel(id()) -> binary().
cancel(Id) -> term_to_binary({cancel, Id}).

%% @doc The answer to callback `N' of context `Ctx': `{cb_reply, N, Ctx}'
%% then `{ok, Value}' or `{error, {Class, Reason}}'.
-spec cb_reply(term(), term(), {ok, term()} | {error, {atom(), term()}}) -> iodata().
cb_reply(N, Ctx, Result) ->
    [term_to_binary({cb_reply, N, Ctx}), term_to_binary(Result)].

%% @doc The packet `{log_ack, N}': `N' `'$log'' packets were handled, so
%% the sidecar may send more (docs/PROTOCOL.md, "Log packets").
-spec log_ack(pos_integer()) -> binary().
log_ack(N) -> term_to_binary({log_ack, N}).

%% @doc The packet `{send_ack, N}': the port owner handled `N' `'$send''
%% packets, whose credits go back to the sidecar's senders.
-spec send_ack(pos_integer()) -> binary().
send_ack(N) -> term_to_binary({send_ack, N}).

%% @doc The packet `{down, Ctxs}' then `term_to_binary(Pid)': `Pid', which
%% the sidecar kept something for, exited; its environments in `Ctxs' go
%% ({@link py_watch}).
-spec down([pos_integer()], pid()) -> iodata().
down(Ctxs, Pid) -> [term_to_binary({down, Ctxs}), term_to_binary(Pid)].

%% @doc `{chan_open, Id, Ch, Kind, Max}': open channel `Ch' (docs/channels.md).
-spec chan_open(pos_integer(), term | bytes, pos_integer()) -> request().
chan_open(Ch, Kind, Max) -> [chan_open, Ch, Kind, Max].

%% @doc The header `{chan_send, Ch}' of a message for channel `Ch' (the
%% message's bytes follow it; no reply).
-spec chan_send(pos_integer()) -> binary().
chan_send(Ch) -> term_to_binary({chan_send, Ch}).

%% @doc The packet `{chan_close, Ch, Drop}' (no reply): receivers take what
%% is queued, unless `Drop', then get `ChannelClosed'.
-spec chan_close(pos_integer(), boolean()) -> binary().
chan_close(Ch, Drop) -> term_to_binary({chan_close, Ch, Drop}).

%%--------------------------------------------------------------------
%% Packets (pyport -> BEAM)

%% @doc Classify an incoming packet (see {@link packet()}). The hot path:
%% for a reply only the id is decoded, and the rest is a sub-binary of `Bin'.
%% Never fails: what cannot be read is `{bad_packet, Bin}'.
-spec decode(binary()) -> packet().
decode(Bin) ->
    %% [safe]: the id is the request's own, made of atoms that exist
    try binary_to_term(Bin, [safe, used]) of
        {Id, Used} when is_reference(Id) ->
            {call_reply, Id, body(Bin, Used)};
        {{Tag, Alias}, Used} when (Tag =:= ctl orelse Tag =:= nested), is_reference(Alias) ->
            {reply, Alias, body(Bin, Used)};
        {{cast, Ref}, Used} when is_reference(Ref) ->
            {cast_reply, Ref, body(Bin, Used)};
        {{'$cb', N}, Used} ->
            {callback, N, body(Bin, Used)};
        {'$state', Used} ->
            case term(body(Bin, Used)) of
                {ok, Ops} when is_list(Ops) -> {state, Ops};
                {atom_limit, _} -> state_within_limit(body(Bin, Used), Bin);
                _ -> {bad_packet, Bin}
            end;
        {'$log', Used} ->
            %% decoded by py_log, out of the port owner
            {log, body(Bin, Used)};
        {'$send', Used} ->
            case term(body(Bin, Used)) of
                %% a pid or a registered name, as erlang.send takes (an
                %% erlang.Pid made of other bytes, e.g. {Name, Node}, is not)
                {ok, {Dest, Message}} when is_pid(Dest); is_atom(Dest) -> {send, Dest, Message};
                {ok, [_ | _] = Sends} -> {sends, Sends};
                {atom_limit, Info} -> {atom_limit, '$send', Info};
                %% still a '$send': its credit goes back all the same
                _ -> {bad_send, Bin}
            end;
        {'$env', Used} ->
            case term(body(Bin, Used)) of
                {ok, {Ctx, Pid}} when is_integer(Ctx), is_pid(Pid) -> {env, Ctx, Pid};
                _ -> {bad_packet, Bin}
            end;
        {'$chan', Used} ->
            case term(body(Bin, Used)) of
                {ok, Acks} when is_list(Acks) -> {chan_acks, Acks};
                _ -> {bad_packet, Bin}
            end;
        {'$exit', Used} ->
            case term(body(Bin, Used)) of
                {ok, Reason} -> {exit, Reason};
                _ -> {bad_packet, Bin}
            end;
        _ ->
            {bad_packet, Bin}
    catch
        error:badarg -> {bad_packet, Bin}
    end.

%% @doc A reply's result, from the body that {@link decode/1} gave: `{ok,
%% Result}', `{slot, Len}' when the result is in the caller's slot (a zero
%% byte, never the start of a term, then its length), or `error' when it is
%% no term. A result whose new atoms would pass `max_atoms' is
%% `{ok, {error, {atom_limit, Info}}}' ({@link py_atoms:decode/1}).
-spec result(binary()) -> {ok, term()} | {slot, non_neg_integer()} | error.
result(<<0, Len:64>>) ->
    {slot, Len};
result(Body) ->
    case term(Body) of
        {atom_limit, Info} -> {ok, {error, {atom_limit, Info}}};
        Other -> Other
    end.

%% @doc Whether a cast's reply (its body, from {@link decode/1}) is an error:
%% `none' for `ok' or `{ok, _}', which the first bytes tell, so that a large
%% result is never decoded; `{error, Reason}' for an error result, or for a
%% body that is no term (`{bad_reply, Size}').
-spec cast_error(binary()) -> none | {error, term()}.
cast_error(<<131, 104, 2, 119, 2, "ok", _/binary>>) -> none;
cast_error(<<131, 104, 2, 118, 0, 2, "ok", _/binary>>) -> none;
cast_error(<<131, 104, 2, 100, 0, 2, "ok", _/binary>>) -> none;
cast_error(<<131, 119, 2, "ok">>) -> none;
cast_error(Body) ->
    case result(Body) of
        {ok, {error, _} = Error} -> Error;
        {ok, _} -> none;
        _ -> {error, {bad_reply, byte_size(Body)}}
    end.

%% @doc The lines of a `'$log'' packet's body ({@link decode/1}'s `{log,
%% Body}'): `{ok, Dropped, Entries}', Dropped the number of lines the sidecar
%% dropped before these (over its bound), by level, `[{Level, N}]', or
%% `error' for a body that is no `{Dropped, [Entry]}'. An entry that is not
%% a {@link log_entry()}, or a count that is no `{Level, N}', is left out.
-spec log_entries(binary()) ->
          {ok, [{logger:level(), pos_integer()}], [log_entry()]} | error.
log_entries(Body) ->
    try py_atoms:decode(Body) of
        {Dropped, Entries} when is_list(Dropped), is_list(Entries) ->
            {ok, [D || {Level, N} = D <- Dropped, is_integer(N), N > 0,
                       lists:member(Level, ?LEVELS)],
             [E || {Level, _Ctx, _Caller, Text} = E <- Entries,
                   is_binary(Text), lists:member(Level, ?LEVELS)]};
        _ ->
            error
    catch
        error:badarg -> error;
        error:{atom_limit, _} -> error
    end.

%%--------------------------------------------------------------------

%% What follows a packet's id.
body(Bin, Used) ->
    binary_part(Bin, Used, byte_size(Bin) - Used).

%% Every term from the sidecar is decoded by py_atoms, which bounds the
%% atoms it makes.
term(Bin) ->
    try py_atoms:decode(Bin) of
        T -> {ok, T}
    catch
        error:badarg -> error;
        error:{atom_limit, Info} -> {atom_limit, Info}
    end.

%% A '$state' packet whose new atoms would pass max_atoms: the ops that
%% can be read, and for an op that cannot, a delete of its key (the mirror
%% then lacks a value the sidecar's store has; the port owner logs it).
state_within_limit(Body, Bin) ->
    try
        Ops = [state_op(E) || E <- py_atoms:list_elements(Body)],
        {state_limited, [case Op of {limited, Key} -> {delete, Key}; _ -> Op end || Op <- Ops],
         [Key || {limited, Key} <- Ops]}
    catch
        error:_ -> {bad_packet, Bin}
    end.

state_op(<<131, 104, 3, _/binary>> = E) ->
    case term(E) of
        {ok, Op} -> Op;
        {atom_limit, _} ->
            %% {set, Key, Value}: the key is a binary, read on its own
            <<131, 104, 3, Set/binary>> = E,
            Rest = skip_atom(Set),
            {Key, _} = binary_to_term(<<131, Rest/binary>>, [safe, used]),
            true = is_binary(Key),
            {limited, Key}
    end;
state_op(E) ->
    {ok, Op} = term(E),
    Op.

skip_atom(<<119, N, _:N/binary, Rest/binary>>) -> Rest;
skip_atom(<<115, N, _:N/binary, Rest/binary>>) -> Rest;
skip_atom(<<118, N:16, _:N/binary, Rest/binary>>) -> Rest;
skip_atom(<<100, N:16, _:N/binary, Rest/binary>>) -> Rest.
