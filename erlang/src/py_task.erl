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

%% How long an await past its timeout waits for the task's process to
%% answer its cancel (ms); that process answers at once if it still runs.
-define(CANCEL_WAIT, 1000).

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
%% as that message too. `Ref' is that process's alias, which {@link
%% await/2} cancels through: nothing is kept in the caller, so a caller
%% that receives the message itself and never awaits keeps nothing.
-spec start(atom(), pos_integer(), payload()) -> reference().
start(Sidecar, Ctx, Payload) ->
    Caller = self(),
    case py_instance:lookup(Sidecar) of
        {ok, Port, Owner} ->
            Tag = make_ref(),
            {Pid, Mon} = spawn_monitor(fun() ->
                                               Ref = alias(),
                                               Caller ! {Tag, Ref},
                                               task(Caller, Ref, Port, Owner, Ctx, Payload)
                                       end),
            receive
                {Tag, Ref} ->
                    erlang:demonitor(Mon, [flush]),
                    Ref;
                {'DOWN', Mon, process, Pid, Reason} ->
                    Ref = make_ref(),
                    Caller ! {async_result, Ref, {error, {task_failed, Reason}}},
                    Ref
            end;
        {error, not_started} ->
            Ref = make_ref(),
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
                    _ = py_request:give_up(Port, Id, Alias),
                    Caller ! {py_task_cancelled, Ref}
            end;
        false ->
            Caller ! {async_result, Ref, {error, {python_crashed, #{reason => port_closed}}}}
    end.

%% @doc The result of task `Ref' of {@link start/3}, waiting at most
%% `Timeout' ms: on timeout the task is cancelled (its `finally' runs) and
%% `{error, timeout}' returned; no late message is left behind.
%% The task's process answers a cancel with `{py_task_cancelled, Ref}';
%% one that ended first has sent its result, and the cancel, to an alias
%% gone with it, is dropped: either way exactly one message comes.
-spec await(reference(), timeout()) -> py:result().
await(Ref, Timeout) ->
    receive
        {async_result, Ref, Result} ->
            Result
    after Timeout ->
        Ref ! {cancel, Ref},
        receive
            {async_result, Ref, _} -> ok;
            {py_task_cancelled, Ref} -> ok
        after ?CANCEL_WAIT ->
            ok % a reference whose result was taken already: no one answers
        end,
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
