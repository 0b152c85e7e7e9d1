%% @doc Send one request to the sidecar and wait for its reply, in the calling
%% process (docs/PROTOCOL.md).
%%
%% The request id is an alias of the caller made by monitoring the port owner
%% (`py_sidecar'), so:
%% <ul>
%% <li>the reply comes straight to the caller;</li>
%% <li>a dead sidecar gives `{error, {python_crashed, Info}}' through the
%%     monitor, never a hang;</li>
%% <li>a reply that comes after the caller gave up is dropped by the runtime
%%     (the alias is inactive).</li>
%% </ul>
%% On timeout a `{cancel, Id}' packet tells the sidecar to drop or interrupt
%% the request.
%%
%% A payload of {@link py_slot:min_size/0} bytes or more goes through the
%% caller's slot, a shared-memory file, instead of the pipe, and so does a
%% large result of such a request ({@link py_slot}).
%%
%% Every function has a form that takes the sidecar first ({@link run/5},
%% {@link control/4}); the others are for the default sidecar.
-module(py_request).

-export([run/4, control/2, control/3]).
-export([run/5, control/4]).
%% for requests sent without waiting (py_async): the same ends of a request
-export([give_up/3, decode/1, crashed/1]).

-define(DEFAULT, default).

-type op() :: call | eval | exec.
-export_type([op/0]).

%% @doc A call, eval or exec on context `Ctx' (the sidecar's integer id), within
%% a slot of {@link py_semaphore}, waited for in arrival order when all are
%% taken: the wait counts toward `Timeout', the reply gets what remains. The
%% port owner gives the slot back when the
%% sidecar answers, even if this caller has given up by then; this caller
%% does only if its request is never sent.
%% A call made by Erlang code that Python called (a callback) is part of the
%% Python call waiting for it: it takes no slot, or nested callbacks would
%% run out of them.
-spec run(op(), pos_integer(), tuple(), timeout()) -> term().
run(Op, Ctx, Payload, Timeout) ->
    run(?DEFAULT, Op, Ctx, Payload, Timeout).

%% @doc {@link run/4} on a context of sidecar `Sidecar', within a slot of its
%% semaphore. Only a callback of that same sidecar makes a nested request.
-spec run(atom(), op(), pos_integer(), tuple(), timeout()) -> term().
run(Sidecar, Op, Ctx, Payload, Timeout) ->
    case py_callback:caller(Sidecar) of
        none ->
            case py_semaphore:acquire(Sidecar, 0) of
                ok ->
                    %% a slot at once: no clock read on this path
                    send_payload(Sidecar, Op, Ctx, Payload, Timeout, call, none);
                {error, {overloaded, _, _}} ->
                    T0 = erlang:monotonic_time(),
                    case py_semaphore:acquire(Sidecar, Timeout) of
                        ok -> send_payload(Sidecar, Op, Ctx, Payload, left(Timeout, T0), call, none);
                        {error, _} = Error -> Error
                    end;
                {error, _} = Error ->
                    Error
            end;
        {_Caller, Chain} ->
            send_payload(Sidecar, Op, Ctx, Payload, Timeout, nested, Chain)
    end.

%% What remains of Timeout since T0 (native monotonic time).
left(infinity, _T0) ->
    infinity;
left(Timeout, T0) ->
    Waited = erlang:convert_time_unit(erlang:monotonic_time() - T0, native, millisecond),
    max(0, Timeout - Waited).

send_payload(Sidecar, Op, Ctx, Payload, Timeout, Kind, Chain) ->
    case erlang:external_size(Payload) >= py_slot:min_size(Sidecar) of
        true -> large(Sidecar, Op, Ctx, Payload, Timeout, Kind, Chain);
        false -> request(Sidecar, py_wire:op(Op, Ctx, none, Chain), term_to_binary(Payload),
                         Timeout, Kind)
    end.

%% @doc A control request without payload, outside the semaphore. The header is
%% `{Tag, {ctl, Id} | Rest}' where `[Tag | Rest]' is the first argument, built
%% by {@link py_wire}, e.g. `control(py_wire:create_context(Ctx, auto), 5000)'
%% sends `{create_context, {ctl, Id}, Ctx, auto}'. The `ctl' tag tells the
%% port owner that no slot comes back with the reply.
-spec control(py_wire:request(), timeout()) -> term().
control(TagAndArgs, Timeout) ->
    request(?DEFAULT, TagAndArgs, <<>>, Timeout, control).

%% @doc A control request whose header is followed by `Payload', e.g. the
%% value of `state_store' as `term_to_binary(Value)' (docs/PROTOCOL.md).
-spec control(py_wire:request(), iodata(), timeout()) -> term().
control(TagAndArgs, Payload, Timeout) ->
    request(?DEFAULT, TagAndArgs, Payload, Timeout, control).

%% @doc {@link control/3} to sidecar `Sidecar' (`<<>>' for no payload).
-spec control(atom(), py_wire:request(), iodata(), timeout()) -> term().
control(Sidecar, TagAndArgs, Payload, Timeout) ->
    request(Sidecar, TagAndArgs, Payload, Timeout, control).

%% Everything from the alias to the reply happens in this one function, so the
%% compiler's selective-receive optimisation for fresh references applies.
request(Sidecar, Request, Payload, Timeout, Kind) ->
    case py_instance:lookup(Sidecar) of
        {ok, Port, Owner} ->
            Alias = erlang:monitor(process, Owner, [{alias, demonitor}]),
            Id = py_wire:id(Kind, Alias),
            case py_wire:send(Port, py_wire:packet(Request, Id, Payload)) of
                true ->
                    receive
                        {py_reply, Alias, Bin} ->
                            erlang:demonitor(Alias, [flush]),
                            decode(Bin);
                        {'DOWN', Alias, process, _, Reason} ->
                            {error, crashed(Reason)}
                    after Timeout ->
                        give_up(Port, Id, Alias)
                    end;
                false ->
                    erlang:demonitor(Alias, [flush]),
                    unsent(Sidecar, Kind),
                    {error, {python_crashed, #{reason => port_closed}}}
            end;
        {error, not_started} ->
            unsent(Sidecar, Kind),
            case py_lifecycle:state(Sidecar) of
                %% the context this request was for died with the sidecar
                restarting -> {error, {python_crashed, #{reason => restarting}}};
                _ -> {error, not_started}
            end
    end.

unsent(Sidecar, call) -> py_semaphore:release(Sidecar);
unsent(_Sidecar, _NestedOrControl) -> ok.

%% @doc The caller gives up waiting for request `Id' (its alias `Alias',
%% made by monitoring the port owner): the monitor goes, the sidecar is told
%% to cancel it, a reply that came meanwhile is dropped: `{error, timeout}'.
-spec give_up(port(), py_wire:id(), reference()) -> {error, timeout}.
give_up(Port, Id, Alias) ->
    erlang:demonitor(Alias, [flush]),
    _ = py_wire:send(Port, py_wire:cancel(Id)),
    %% A reply that arrived between the timeout and the demonitor.
    receive
        {py_reply, Alias, _} -> ok
    after 0 ->
        ok
    end,
    {error, timeout}.

%% A large payload goes through the caller's slot when it can. Its encoding is
%% an iovec, which refers to large binaries instead of copying them (but costs
%% more than term_to_binary/1 for a small term).
large(Sidecar, Op, Ctx, Payload, Timeout, Kind, Chain) ->
    Enc = erlang:term_to_iovec(Payload),
    case py_slot:put(Sidecar, Enc) of
        {ok, Path} ->
            Result = request(Sidecar, py_wire:op(Op, Ctx, {slot, Path, iolist_size(Enc)}, Chain), <<>>,
                             Timeout, Kind),
            %% after a timeout or a crash the sidecar may still use the slot
            py_slot:done(not lost(Result)),
            Result;
        none ->
            request(Sidecar, py_wire:op(Op, Ctx, none, Chain), Enc, Timeout, Kind)
    end.

lost({error, timeout}) -> true;
lost({error, {python_crashed, _}}) -> true;
lost(_) -> false.

%% @doc The result in a reply's body, or in the caller's slot when the
%% sidecar put it there (py_wire:result/1); `{error, {bad_reply, Bin}}'
%% for a body that is no result.
-spec decode(binary()) -> term().
decode(Bin) ->
    case py_wire:result(Bin) of
        {ok, Result} -> Result;
        {slot, Len} ->
            case py_slot:read(Len) of
                {ok, Slot} -> decode(Slot);
                {error, Reason} -> {error, {slot, Reason}}
            end;
        error -> {error, {bad_reply, Bin}}
    end.

%% @doc The `python_crashed' error for the `DOWN' reason of the port owner.
-spec crashed(term()) -> {python_crashed, term()}.
crashed({python_crashed, Info}) -> {python_crashed, Info};
crashed(Reason) -> {python_crashed, #{reason => Reason}}.
