%% @doc Erlang functions that Python calls: `erlang.call(Name, *Args)',
%% `erlang.Name(*Args)' or `from erlang import Name' (docs/PROTOCOL.md,
%% "Callbacks"); `hasattr(erlang, Name)' is true only for a registered
%% Name, and `erlang.schedule(Name, *Args)' returned by a Python function
%% makes the result of the function registered as Name its result.
%%
%% The registry is an ETS table owned by this process. A call from Python
%% runs in a process of its own ({@link run/2}, spawned by the port owner),
%% never in the port owner. While it runs, calls it makes without an explicit
%% context go to the calling context, and carry the chain of the Python
%% request that waits for them, so that context runs them at once, on top of
%% the waiting request: callbacks nest, on the same context or others.
%%
%% The registry is one for the VM: every sidecar's Python calls the same
%% functions, and it outlives every sidecar. A callback knows which sidecar
%% called it ({@link callback/0}), so its calls go back there.
-module(py_callback).

-behaviour(gen_server).

-export([start_link/0, register/2, register/3, unregister/1, run/2, caller/0]).
-export([run/3, caller/1, callback/0]).
-export([init/1, handle_call/3, handle_cast/2]).

-define(TABLE, py_callbacks).
%% the calling context and chain, in the process dictionary of a callback
-define(CALLER, '$py_callback_caller').

-type name() :: atom() | binary() | string().
-export_type([name/0]).

%% @doc Start the owner of the registry (one for the VM).
-spec start_link() -> {ok, pid()} | {error, term()}.
start_link() ->
    gen_server:start_link({local, ?MODULE}, ?MODULE, [], []).

%% @doc Register `Fun', called with the list of the Python arguments.
-spec register(name(), fun((list()) -> term())) -> ok | {error, term()}.
register(Name, Fun) when is_function(Fun, 1) ->
    insert(Name, Fun);
register(_Name, Fun) ->
    {error, {badarg, {function, Fun}}}.

%% @doc Register `Module:Function(Args)', called with the list of the Python
%% arguments as its only argument. When that function raises
%% `function_clause' or `undef' (it takes something else, or another arity),
%% Python's `erlang.Error' has the reason `{function_clause, Hint}' (or
%% `{undef, Hint}'), Hint a binary that says the function gets the list.
-spec register(name(), module(), atom()) -> ok | {error, term()}.
register(Name, Module, Function) when is_atom(Module), is_atom(Function) ->
    insert(Name, {Module, Function});
register(_Name, Module, Function) ->
    {error, {badarg, {mfa, Module, Function}}}.

%% @doc Python can no longer call `Name'.
-spec unregister(name()) -> ok | {error, term()}.
unregister(Name) ->
    case key(Name) of
        {ok, Key} ->
            _ = catch ets:delete(?TABLE, Key),
            ok;
        {error, _} = Error ->
            Error
    end.

%% @doc {@link run/3} for the default sidecar.
-spec run(pos_integer(), binary()) -> ok.
run(N, Body) ->
    run(default, N, Body).

%% @doc Runs the callback whose frame body is `Body', from sidecar
%% `Sidecar', and sends it the answer, `{cb_reply, N, Ctx}' then
%% `{ok, Value}' or `{error, {Class, Reason}}'.
-spec run(atom(), pos_integer(), binary()) -> ok.
run(Sidecar, N, Body) ->
    %% py_atoms: the atoms of Python's arguments are bounded by max_atoms
    case body(Body) of
        {ok, {Ctx, Chain, Name, Args}} ->
            %% chain 0: a call from a Python thread that runs no request
            put(?CALLER, {Sidecar, Ctx, case Chain of 0 -> none; _ -> Chain end}),
            Result = try apply_registered(Name, Args) of
                         Value -> {ok, Value}
                     catch
                         Class:Reason -> {error, {Class, Reason}}
                     end,
            answer(Sidecar, N, Ctx, Result);
        {error, Ctx, Reason} ->
            %% the erlang.call raises erlang.Error('error', Reason)
            answer(Sidecar, N, Ctx, {error, {error, Reason}})
    end.

%% The body {Ctx, Chain, Name, Args}; when it cannot be decoded (its atoms
%% would pass max_atoms), its context, read on its own, so that the
%% erlang.call waiting for the answer gets an error.
body(Body) ->
    try py_atoms:decode(Body) of
        {_Ctx, _Chain, _Name, _Args} = Call -> {ok, Call};
        _ -> unreadable(Body, bad_callback)
    catch
        error:{atom_limit, _} = Why -> unreadable(Body, Why);
        error:_ -> unreadable(Body, bad_callback)
    end.

%% The context of a body {Ctx, ...} that cannot be read whole.
unreadable(<<131, 104, 4, Rest/binary>>, Reason) ->
    {Ctx, _} = binary_to_term(<<131, Rest/binary>>, [safe, used]),
    {error, Ctx, Reason}.

answer(Sidecar, N, Ctx, Result) ->
    case py_instance:lookup(Sidecar) of
        {ok, Port, _Owner} ->
            _ = py_wire:send(Port, py_wire:cb_reply(N, Ctx, Result)),
            ok;
        {error, _} ->
            ok
    end.

%% @doc In a callback: the context that called it, and the chain to send
%% with the requests it makes (that of the Python request waiting for it,
%% `none' for a call from another Python thread); elsewhere `none'.
-spec caller() -> {pos_integer(), pos_integer() | none} | none.
caller() ->
    case get(?CALLER) of
        {_Sidecar, Ctx, Chain} -> {Ctx, Chain};
        undefined -> none
    end.

%% @doc {@link caller/0} for a callback of sidecar `Sidecar' only: `none'
%% elsewhere, in a callback of another sidecar too (its chain means
%% nothing to this one).
-spec caller(atom()) -> {pos_integer(), pos_integer() | none} | none.
caller(Sidecar) ->
    case get(?CALLER) of
        {Sidecar, Ctx, Chain} -> {Ctx, Chain};
        _ -> none
    end.

%% @doc In a callback: the sidecar and context that called it and the
%% chain; elsewhere `none'.
-spec callback() -> {atom(), pos_integer(), pos_integer() | none} | none.
callback() ->
    case get(?CALLER) of
        {_Sidecar, _Ctx, _Chain} = Callback -> Callback;
        undefined -> none
    end.

%%--------------------------------------------------------------------

insert(Name, Target) ->
    case key(Name) of
        {ok, Key} ->
            try ets:insert(?TABLE, {Key, Target}) of
                true -> ok
            catch
                error:badarg -> {error, not_started}
            end;
        {error, _} = Error ->
            Error
    end.

key(Name) ->
    py_payload:key(name, Name).

%% Built in: erlang.whereis(Name) in Python; None for the processes of the
%% runtime system (py_guard).
apply_registered(<<"$whereis">>, [Name]) ->
    try binary_to_existing_atom(Name, utf8) of
        Atom ->
            case py_guard:may_send(Atom) of
                true -> whereis(Atom);
                false -> undefined
            end
    catch
        error:badarg -> undefined
    end;
%% erlang.Atom(Name) past the sidecar's budget: does the BEAM have it? It
%% makes none.
apply_registered(<<"$atom_exists">>, [Name]) when is_binary(Name) ->
    try binary_to_existing_atom(Name, utf8) of
        _ -> true
    catch
        error:badarg -> false
    end;
%% hasattr(erlang, Name), erlang.Name and `from erlang import Name' in
%% Python: is a function registered as Name? Asked at each look-up, so that
%% later registrations and unregistrations are seen.
apply_registered(<<"$registered">>, [Name]) when is_binary(Name) ->
    ets:member(?TABLE, Name);
%% erlang.send(Dest, Message, check=True): only to a live process, never
%% to one of the runtime system (py_guard); Python raises ProcessError
%% for `noproc' and `denied'.
apply_registered(<<"$send">>, [Dest, Message]) when is_pid(Dest); is_atom(Dest) ->
    Alive = case Dest of
                Pid when is_pid(Pid), node(Pid) =:= node() -> is_process_alive(Pid);
                Pid when is_pid(Pid) -> true; % on another node: cannot tell
                Name when is_atom(Name) -> whereis(Name) =/= undefined
            end,
    case {py_guard:may_send(Dest), Alive} of
        {false, _} -> denied;
        {true, true} -> Dest ! Message, ok;
        {true, false} -> noproc
    end;
%% erlang.send(Pid, Message) to a pid the sidecar does not know alive yet:
%% `alive' (now watched for the sidecar, py_watch), `remote', `dead', or
%% `denied' for a process of the runtime system.
apply_registered(<<"$alive">>, [Pid]) when is_pid(Pid) ->
    {Sidecar, _Ctx, _Chain} = get(?CALLER),
    case py_guard:may_send(Pid) of
        false -> denied;
        true -> py_watch:alive(Sidecar, Pid)
    end;
apply_registered(Name, Args) ->
    case ets:lookup(?TABLE, Name) of
        [{_, {M, F}}] -> apply_mf(M, F, Args);
        [{_, Fun}] -> Fun(Args);
        [] -> error({not_registered, Name})
    end.

%% `Module:Function(Args)': it gets the argument list as its one argument.
%% A `function_clause' or `undef' raised by that very function (an Elixir
%% `String.upcase/1' given `["a"]', a function of arity 2 registered for
%% two arguments) gets a reason that says so: `{function_clause, Hint}'.
apply_mf(M, F, Args) ->
    try M:F(Args)
    catch
        error:Why:Stack when Why =:= function_clause; Why =:= undef ->
            case Stack of
                [{M, F, _, _} | _] -> erlang:raise(error, {Why, list_hint(M, F, Args)}, Stack);
                _ -> erlang:raise(error, Why, Stack)
            end
    end.

list_hint(M, F, Args) ->
    iolist_to_binary(
      io_lib:format("~ts:~ts/1 is called with the list of the Python arguments, ~0tp, "
                    "as its one argument (register_function(Name, Module, Function) "
                    "calls Module:Function(Args)); register a fun that takes the list "
                    "to call a function of another arity",
                    [module_name(M), atom_to_binary(F, utf8), Args])).

%% An Elixir module without its "Elixir." prefix, as Elixir code names it.
module_name(M) ->
    case atom_to_binary(M, utf8) of
        <<"Elixir.", Name/binary>> -> Name;
        Name -> Name
    end.

%%--------------------------------------------------------------------

%% @private
-spec init([]) -> {ok, undefined}.
init([]) ->
    _ = ets:new(?TABLE, [named_table, public, set, {read_concurrency, true}]),
    ok = py_guard:ensure(),
    {ok, undefined}.

%% @private
-spec handle_call(term(), gen_server:from(), State) -> {reply, {error, unknown_call}, State}.
handle_call(_Request, _From, State) ->
    {reply, {error, unknown_call}, State}.

%% @private
-spec handle_cast(term(), State) -> {noreply, State}.
handle_cast(_Msg, State) ->
    {noreply, State}.
