%% @doc The fast paths of `py:cast' and of `py:spawn_call' with `py:await'
%% (API.md section 2): the caller sends the request itself, as a call does
%% ({@link py_request}), and does not wait.
%%
%% <ul>
%% <li><b>Cast.</b> {@link cast/4} takes a `py_semaphore' slot, writes the
%%     request with the id `{cast, Ref}' and returns: one `port_command', no
%%     process, no wait. The sidecar answers it as any call; the port owner
%%     (`py_sidecar') gives the slot back when the reply comes and logs an
%%     error result as a warning that names the call ({@link cast_reply/3},
%%     which looks at the first bytes of the reply only, so a large `ok'
%%     result is never decoded). The call's name and deadline are in a
%%     table of the port owner's ({@link new_table/1}): past the deadline
%%     (the call timeout, as a call's) the owner cancels the cast
%%     ({@link sweep/2}); casts still in flight when the sidecar dies are
%%     logged as lost ({@link lost/2}).</li>
%% <li><b>spawn_call.</b> {@link start/5} takes a slot and sends the request
%%     with an alias made by monitoring the port owner, as a call does, and
%%     returns that alias as the reference; {@link await/2} receives the
%%     reply and decodes it. A dead sidecar gives
%%     `{error, {python_crashed, Info}}' through the monitor; a timeout sends
%%     `{cancel, Id}' and removes the monitor, which deactivates the alias,
%%     so a late reply is dropped by the runtime. The port and the call's
%%     deadline are kept in the caller's process dictionary until the
%%     await.</li>
%% </ul>
%% Both answer `fallback' instead when the request cannot go at once: no
%% slot free, the sidecar not up, a payload that would need the caller's
%% slot file (which the caller's next call reuses) or a port that closed;
%% `py' then takes the path of a spawned process, so nothing is lost.
-module(py_async).

-export([cast/4, start/5, await/2, awaiting/1]).
-export([new_table/1, cast_reply/3, sweep/2, lost/2, refused/1]).

%% the port owner's table of casts in flight: {Ref, Module, Function, Deadline}
-define(CASTS, py_casts).
%% in the caller's process dictionary, for each spawn_call in flight
-define(AWAIT(Ref), {'$py_await', Ref}).

%%--------------------------------------------------------------------
%% Caller side

%% @doc A cast that load control refused (`Reason' is `{overloaded, Cur,
%% Max}'): logged as a warning at most once a second, VM-wide, with the
%% number refused since the last such line, as a flood of casts under
%% overload would otherwise flood the logger.
-spec refused(term()) -> ok.
refused(Reason) ->
    Ref = refused_counter(),
    _ = atomics:add_get(Ref, 1, 1),
    Now = erlang:monotonic_time(millisecond),
    Last = atomics:get(Ref, 2),
    case Now - Last >= 1000 andalso atomics:compare_exchange(Ref, 2, Last, Now) =:= ok of
        true ->
            N = atomics:exchange(Ref, 1, 0),
            logger:warning("erlang_python: py:cast refused: ~tp (~b casts refused since the "
                           "last such line)", [Reason, N]);
        false ->
            ok
    end.

%% {refused since the last line, monotonic ms of that line}
refused_counter() ->
    case persistent_term:get({?MODULE, refused}, undefined) of
        undefined ->
            Ref = atomics:new(2, [{signed, true}]),
            atomics:put(Ref, 2, -(1 bsl 62)),
            persistent_term:put({?MODULE, refused}, Ref),
            Ref;
        Ref ->
            Ref
    end.

%% @doc Send `Payload' (`{Module, Function, Args, Kwargs}', checked) as a
%% cast to context `Ctx' of sidecar `Sidecar', cancelled after `Timeout' ms:
%% `ok' once it is written, else `fallback' and nothing was sent.
-spec cast(atom(), pos_integer(), {binary(), binary(), list(), map()}, timeout()) -> ok | fallback.
cast(Sidecar, Ctx, {M, F, _, _} = Payload, Timeout) ->
    with_port(Sidecar, Payload,
              fun(Port, _Owner) ->
                      Ref = make_ref(),
                      try ets:insert(py_instance:name(?CASTS, Sidecar), {Ref, M, F, deadline(Timeout)}) of
                          true ->
                              case py_wire:send(Port, py_wire:packet(py_wire:op(call, Ctx, none, none),
                                                                     py_wire:id(cast, Ref),
                                                                     term_to_binary(Payload))) of
                                  true ->
                                      ok;
                                  false ->
                                      _ = catch ets:delete(py_instance:name(?CASTS, Sidecar), Ref),
                                      unsent(Sidecar)
                              end
                      catch
                          error:badarg -> unsent(Sidecar) % the port owner is gone
                      end
              end).

%% @doc Send a call, eval or exec to context `Ctx' of sidecar `Sidecar' and
%% return its reference for {@link await/2}: `{ok, Ref}', or `fallback' and
%% nothing was sent. `Timeout' is the call's own: {@link await/2} waits no
%% longer than it, counted from now.
-spec start(atom(), py_request:op(), pos_integer(), tuple(), timeout()) ->
          {ok, reference()} | fallback.
start(Sidecar, Op, Ctx, Payload, Timeout) ->
    with_port(Sidecar, Payload,
              fun(Port, Owner) ->
                      Alias = erlang:monitor(process, Owner, [{alias, demonitor}]),
                      case py_wire:send(Port, py_wire:packet(py_wire:op(Op, Ctx, none, none),
                                                             py_wire:id(call, Alias),
                                                             term_to_binary(Payload))) of
                          true ->
                              _ = put(?AWAIT(Alias), {Port, deadline(Timeout)}),
                              {ok, Alias};
                          false ->
                              erlang:demonitor(Alias, [flush]),
                              unsent(Sidecar)
                      end
              end).

%% The fast paths' common part: with Payload small enough and a slot taken,
%% Send(Port, Owner) writes the request; `fallback' (nothing sent, no slot
%% held) when the payload is large, no slot is free or the sidecar is not
%% up.
with_port(Sidecar, Payload, Send) ->
    case small(Sidecar, Payload) andalso slot(Sidecar) of
        ok ->
            case py_instance:lookup(Sidecar) of
                {ok, Port, Owner} -> Send(Port, Owner);
                {error, not_started} -> unsent(Sidecar)
            end;
        _ ->
            fallback
    end.

%% @doc Whether `Ref' is a request of {@link start/5} that this process has
%% not awaited yet.
-spec awaiting(reference()) -> boolean().
awaiting(Ref) ->
    get(?AWAIT(Ref)) =/= undefined.

%% @doc The result of request `Ref' of {@link start/5}, waiting at most
%% `Timeout' ms and no longer than the call's own timeout; on timeout the
%% request is cancelled and its late reply dropped: `{error, timeout}'.
%% Only the process that started it can await it, once.
-spec await(reference(), timeout()) -> py:result() | ok.
await(Ref, Timeout) ->
    {Port, Deadline} = erase(?AWAIT(Ref)),
    receive
        {py_reply, Ref, Bin} ->
            erlang:demonitor(Ref, [flush]),
            %% never a slot result: a request of start/5 has no slot
            py_request:decode(Bin);
        {'DOWN', Ref, process, _, Reason} ->
            {error, py_request:crashed(Reason)}
    after wait(Timeout, Deadline) ->
        py_request:give_up(Port, py_wire:id(call, Ref), Ref)
    end.

%% The call fits in a packet of the pipe: a larger payload goes through the
%% caller's slot file, which is for calls that wait.
small(Sidecar, Payload) ->
    erlang:external_size(Payload) < py_slot:min_size(Sidecar).

%% The one place these paths take a slot: at once or not at all.
slot(Sidecar) ->
    py_semaphore:acquire(Sidecar, 0).

unsent(Sidecar) ->
    py_semaphore:release(Sidecar),
    fallback.

deadline(infinity) -> infinity;
deadline(Timeout) -> erlang:monotonic_time(millisecond) + Timeout.

wait(Timeout, infinity) ->
    Timeout;
wait(Timeout, Deadline) ->
    Left = max(0, Deadline - erlang:monotonic_time(millisecond)),
    case Timeout of
        infinity -> Left;
        _ -> min(Timeout, Left)
    end.


%%--------------------------------------------------------------------
%% Port owner side

%% @doc Create sidecar `Sidecar''s table of casts in flight, owned by the
%% calling process (the port owner): it goes with it.
-spec new_table(atom()) -> ok.
new_table(Sidecar) ->
    Name = py_instance:name(?CASTS, Sidecar),
    Name = ets:new(Name, [named_table, public, set, {write_concurrency, true}]),
    _ = refused_counter(), % made here, before casts race to make it
    ok.

%% @doc The reply `Body' to cast `Ref' came (its slot was given back): an
%% error result is logged, as a warning naming the call.
-spec cast_reply(atom(), reference(), binary()) -> ok.
cast_reply(Sidecar, Ref, Body) ->
    Casts = py_instance:name(?CASTS, Sidecar),
    case py_wire:cast_error(Body) of
        none ->
            _ = ets:delete(Casts, Ref),
            ok;
        {error, Reason} ->
            Call = case ets:take(Casts, Ref) of
                       [{_, M, F, _}] -> [M, $., F];
                       [] -> "(unknown)"
                   end,
            logger:warning("erlang_python: py:cast of ~ts failed: ~tp", [Call, Reason])
    end.

%% @doc Cancel the casts of sidecar `Sidecar' past their deadline (their
%% cancelled replies give the slots back), each once.
-spec sweep(atom(), port() | undefined) -> ok.
sweep(Sidecar, Port) when is_port(Port) ->
    Casts = py_instance:name(?CASTS, Sidecar),
    Now = erlang:monotonic_time(millisecond),
    Late = ets:select(Casts, [{{'$1', '_', '_', '$2'}, [{is_integer, '$2'}, {'<', '$2', Now}], ['$1']}]),
    lists:foreach(fun(Ref) ->
                          _ = ets:update_element(Casts, Ref, {4, cancelled}),
                          py_wire:send(Port, py_wire:cancel(py_wire:id(cast, Ref)))
                  end, Late);
sweep(_Sidecar, _Port) ->
    ok.

%% @doc The sidecar died with the casts still in its table: log them as
%% lost, with the crash's `Info'.
-spec lost(atom(), map()) -> ok.
lost(Sidecar, Info) ->
    case ets:tab2list(py_instance:name(?CASTS, Sidecar)) of
        [] ->
            ok;
        Casts ->
            Names = lists:usort([iolist_to_binary([M, $., F]) || {_, M, F, _} <- Casts]),
            logger:warning("erlang_python: ~b py:cast call(s) were lost with the sidecar~ts "
                           "(~tp): ~ts",
                           [length(Casts), py_instance:label(Sidecar), Info,
                            lists:join(", ", Names)])
    end.
