%% @doc Task requests on a context given by its sidecar and integer id
%% (docs/async.md, docs/PROTOCOL.md "Tasks"): the request's ends, shared by
%% {@link py_event_loop} (which routes) and {@link py_worker_loop}.
%%
%% A task is `{task, Id, Ctx, none, none, Caller}' with a call's payload;
%% its id is `{nested, Alias}', so it holds no `py_semaphore' slot (a
%% thousand tasks that sleep are not refused) and the port owner gives none
%% back for its reply. The waiter monitors the port owner: a dead sidecar
%% gives `{error, {python_crashed, Info}}', never a hang.
-module(py_task).

-export([run/4, start/3, await/2, spawn/3]).

%% the task process of a start/3, in the caller's process dictionary
%% until the await
-define(TASK(Ref), {'$py_task', Ref}).

-type payload() :: {binary(), binary(), list(), map()}.
-export_type([payload/0]).

%% @doc Run task `Payload' on context `Ctx' of `Sidecar' and wait for its
%% result, in the caller; past `Timeout' the task is cancelled (its
%% `finally' runs) and `{error, timeout}' returned.
-spec run(atom(), pos_integer(), payload(), timeout()) -> py:result().
run(Sidecar, Ctx, Payload, Timeout) ->
    case py_instance:lookup(Sidecar) of
        {ok, Port, Owner} ->
            Alias = erlang:monitor(process, Owner, [{alias, demonitor}]),
            Id = py_wire:id(nested, Alias),
            case py_wire:send(Port, py_wire:packet(py_wire:task(Ctx, self()), Id, term_to_binary(Payload))) of
                true ->
                    receive
                        {py_reply, Alias, Bin} ->
                            erlang:demonitor(Alias, [flush]),
                            py_request:decode(Bin);
                        {'DOWN', Alias, process, _, Reason} ->
                            {error, py_request:crashed(Reason)}
                    after Timeout ->
                        py_request:give_up(Port, Id, Alias)
                    end;
                false ->
                    erlang:demonitor(Alias, [flush]),
                    {error, {python_crashed, #{reason => port_closed}}}
            end;
        {error, not_started} ->
            not_up(Sidecar)
    end.

not_up(Sidecar) ->
    case py_lifecycle:state(Sidecar) of
        restarting -> {error, {python_crashed, #{reason => restarting}}};
        _ -> {error, not_started}
    end.

%% @doc Start task `Payload' on context `Ctx' of `Sidecar' and return its
%% reference: a process of its own sends it and waits, then sends
%% `{async_result, Ref, Result}' to the caller; it monitors the caller and
%% cancels the task if the caller dies. An error before it is sent comes
%% as that message too. The waiter's pid stays in the caller's process
%% dictionary until {@link await/2} (or the caller's exit): a caller that
%% receives the message itself and never awaits keeps that small entry.
-spec start(atom(), pos_integer(), payload()) -> reference().
start(Sidecar, Ctx, Payload) ->
    Ref = make_ref(),
    Caller = self(),
    case py_instance:lookup(Sidecar) of
        {ok, Port, Owner} ->
            Pid = spawn(fun() -> task(Caller, Ref, Port, Owner, Ctx, Payload) end),
            _ = put(?TASK(Ref), Pid),
            Ref;
        {error, not_started} ->
            Caller ! {async_result, Ref, not_up(Sidecar)},
            Ref
    end.

%% The process of a start/3: sends the task, forwards its result, cancels
%% it when the caller dies or gives up.
task(Caller, Ref, Port, Owner, Ctx, Payload) ->
    CallerMon = erlang:monitor(process, Caller),
    Alias = erlang:monitor(process, Owner, [{alias, demonitor}]),
    Id = py_wire:id(nested, Alias),
    case py_wire:send(Port, py_wire:packet(py_wire:task(Ctx, Caller), Id, term_to_binary(Payload))) of
        true ->
            receive
                {py_reply, Alias, Bin} ->
                    Caller ! {async_result, Ref, py_request:decode(Bin)};
                {'DOWN', Alias, process, _, Reason} ->
                    Caller ! {async_result, Ref, {error, py_request:crashed(Reason)}};
                {'DOWN', CallerMon, process, _, _} ->
                    py_request:give_up(Port, Id, Alias);
                {cancel, Ref} ->
                    py_request:give_up(Port, Id, Alias)
            end;
        false ->
            Caller ! {async_result, Ref, {error, {python_crashed, #{reason => port_closed}}}}
    end.

%% @doc The result of task `Ref' of {@link start/3}, waiting at most
%% `Timeout' ms: on timeout the task is cancelled (its `finally' runs) and
%% `{error, timeout}' returned; no late message is left behind.
-spec await(reference(), timeout()) -> py:result().
await(Ref, Timeout) ->
    receive
        {async_result, Ref, Result} ->
            _ = erase(?TASK(Ref)),
            Result
    after Timeout ->
        case erase(?TASK(Ref)) of
            Pid when is_pid(Pid) ->
                Mon = erlang:monitor(process, Pid),
                Pid ! {cancel, Ref},
                receive {'DOWN', Mon, process, _, _} -> ok end;
            undefined ->
                ok
        end,
        receive {async_result, Ref, _} -> ok after 0 -> ok end,
        {error, timeout}
    end.

%% @doc Send task `{M, F, Args, Kwargs}' to context `Ctx' of `Sidecar' and
%% forget it: its payload ends with `spawn', so the sidecar logs its
%% failure, and its reply goes to an inactive alias.
-spec spawn(atom(), pos_integer(), payload()) -> ok | {error, term()}.
spawn(Sidecar, Ctx, {M, F, Args, Kwargs}) ->
    case py_instance:lookup(Sidecar) of
        {ok, Port, _Owner} ->
            Alias = alias(),
            true = unalias(Alias),
            Packet = py_wire:packet(py_wire:task(Ctx, self()), py_wire:id(nested, Alias),
                                    term_to_binary({M, F, Args, Kwargs, spawn})),
            case py_wire:send(Port, Packet) of
                true -> ok;
                false -> {error, {python_crashed, #{reason => port_closed}}}
            end;
        {error, not_started} ->
            not_up(Sidecar)
    end.
