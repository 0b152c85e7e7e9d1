%% @doc One Python context: an execution environment with its own globals in
%% the sidecar (API.md section 3).
%%
%% The process is a handle and the owner of the context's lifetime: it creates
%% the sidecar context when it starts and destroys it when it stops. Calls do
%% not go through it: callers look the sidecar's integer context id up in an
%% ETS table (pid -> id) and talk to the port themselves, so calls on one
%% context run in parallel with everything else in Erlang.
%%
%% The table is one for the VM (owned by `py_sidecars_sup'): a row is
%% `{Pid, {Sidecar, CtxId}, Mode, Label}', so a context pid names its
%% sidecar too (`where/1') and is used as is whichever sidecar holds it.
-module(py_context).

-behaviour(gen_server).

-export([start_link/2, new/1, stop/1, exec/2, exec/3, eval/3, eval/4, call/5, call/6,
         ctx_id/1, mode/1, label/1, new_table/0, cleanup/2, create_local_env/1]).
-export([start_link/3, where/1, cleanup/3, forget_sidecar/1, all/0]).
%% worker loops (NIF 4.1): py_worker_loop
-export([start_loop/1, start_loop/2, submit/4, submit/5, submit_await/4, submit_await/5,
         submit_await/6, stop_loop/1, stop_loop/2]).
-export([init/1, handle_call/3, handle_cast/2, handle_info/2, terminate/2]).

-define(TAB, py_contexts).

-type mode() :: auto | subinterp | owngil | worker.
-export_type([mode/0]).

-record(state, {sidecar :: atom(), id :: term(), ctx :: pos_integer(), mode :: mode()}).

%% @doc Create a context in the sidecar, then start its handle process.
%% `Id' is a label of the caller's choice (the router uses `{Pool, Index}');
%% the sidecar's context id is allocated here, unique for the VM's life.
%% Mode: `auto' (the sidecar's mode: a sub-interpreter where supported),
%% `subinterp', `owngil' or `worker' (the main interpreter, for extensions
%% that refuse sub-interpreters). `owngil' is an own-GIL sub-interpreter, as
%% in the NIF 2.x; this sidecar's sub-interpreters all have their own GIL,
%% so it is `subinterp' under another name. A sidecar whose Python has
%% none (3.11 and older: `multi_executor' mode; free-threaded builds)
%% refuses it with `{error, {owngil_unsupported, Why}}', Why a binary
%% that says it needs Python 3.12+.
%% Before it returns, the new context has run the
%% paths, imports and preload code of {@link py_import} and
%% {@link py_preload} ({@link py_context_setup}).
-spec start_link(term(), mode()) -> {ok, pid()} | {error, term()}.
start_link(Id, Mode) ->
    start_link(default, Id, Mode).

%% @doc A context of the default sidecar, linked to the caller, as the NIF
%% 2.x's `new/1': `#{mode => Mode}' (default `auto', see
%% {@link start_link/2}). Its label is `{new, N}', N unique.
-spec new(#{mode => mode()}) -> {ok, pid()} | {error, term()}.
new(Opts) when is_map(Opts) ->
    case maps:keys(maps:without([mode], Opts)) of
        [] -> start_link({new, erlang:unique_integer([positive])}, maps:get(mode, Opts, auto));
        Bad -> {error, {badarg, {opts, {unknown_keys, lists:sort(Bad), [mode]}}}}
    end;
new(_Opts) ->
    {error, {badarg, {opts, not_a_map}}}.

%% @doc {@link start_link/2} in sidecar `Sidecar'.
-spec start_link(atom(), term(), mode()) -> {ok, pid()} | {error, term()}.
start_link(Sidecar, Id, Mode)
  when Mode =:= auto; Mode =:= subinterp; Mode =:= owngil; Mode =:= worker ->
    case {ets:whereis(?TAB), kind(Sidecar, Mode)} of
        {undefined, _} ->
            {error, not_started};
        {_, {error, _} = Error} ->
            Error;
        {_, {ok, Kind}} ->
            Ctx = erlang:unique_integer([positive, monotonic]),
            case py_request:control(Sidecar, py_wire:create_context(Ctx, Kind), <<>>,
                                    py_config:get(Sidecar, call_timeout)) of
                ok ->
                    case gen_server:start_link(?MODULE, {Sidecar, Id, Ctx, Mode}, []) of
                        {ok, Pid} -> {ok, Pid};
                        {error, _} = Error -> destroy(Sidecar, Ctx), Error
                    end;
                {error, Reason} ->
                    {error, {create_context, Reason}}
            end
    end;
start_link(_Sidecar, _Id, Mode) ->
    {error, {badarg, {mode, Mode}}}.

%% The kind of sidecar context a mode asks for: owngil is subinterp where
%% the sidecar has own-GIL sub-interpreters, refused elsewhere.
kind(Sidecar, owngil) ->
    case py_instance:info(Sidecar) of
        {ok, #{mode := subinterp}} ->
            {ok, subinterp};
        {ok, #{mode := Mode, version := Version}} ->
            {error, {owngil_unsupported,
                     iolist_to_binary(
                       ["owngil needs Python 3.12+ (a GIL per sub-interpreter); this sidecar's "
                        "Python ", hd(binary:split(Version, <<" ">>)), " runs in ",
                        atom_to_binary(Mode), " mode: use auto, subinterp or worker"])}};
        {error, _} = Error ->
            Error
    end;
kind(_Sidecar, Mode) ->
    {ok, Mode}.

%% @doc Stop the context: its globals are gone.
-spec stop(pid()) -> ok.
stop(Pid) ->
    gen_server:stop(Pid).

%% @doc Start the worker loop of `Ctx', owned by the caller
%% ({@link py_worker_loop}, docs/async.md): `ok' or `{error, loop_running}'.
-spec start_loop(pid()) -> ok | {error, term()}.
start_loop(Ctx) ->
    start_loop(Ctx, #{}).

%% @doc {@link start_loop/1} with `#{owner => Pid}', the process that gets
%% `{py_loop_exit, Ctx, Result}' and whose death stops the loop.
-spec start_loop(pid(), map()) -> ok | {error, term()}.
start_loop(Ctx, Opts) when is_map(Opts) ->
    case where(Ctx) of
        {ok, Sidecar, Id} -> py_worker_loop:start(Ctx, {Sidecar, Id}, maps:get(owner, Opts, self()));
        {error, _} = Error -> Error
    end;
start_loop(_Ctx, Opts) ->
    {error, {badarg, {"Opts must be a map", Opts}}}.

%% @doc A task on the loop of `Ctx': `{ok, Ref}', its result as
%% `{async_result, Ref, Result}'; `{error, no_loop}' before start_loop.
-spec submit(pid(), py:name(), py:name(), list()) -> {ok, reference()} | {error, term()}.
submit(Ctx, M, F, Args) ->
    py_worker_loop:submit(Ctx, M, F, Args, #{}).

%% @doc {@link submit/4} with keyword arguments.
-spec submit(pid(), py:name(), py:name(), list(), map()) -> {ok, reference()} | {error, term()}.
submit(Ctx, M, F, Args, Kwargs) ->
    py_worker_loop:submit(Ctx, M, F, Args, Kwargs).

%% @doc {@link submit/4} and its result, within the call timeout.
-spec submit_await(pid(), py:name(), py:name(), list()) -> py:result().
submit_await(Ctx, M, F, Args) ->
    py_worker_loop:submit_await(Ctx, M, F, Args, #{}, py_config:call_timeout()).

%% @doc {@link submit_await/6} with keyword arguments (a map) or a timeout.
-spec submit_await(pid(), py:name(), py:name(), list(), map() | timeout()) -> py:result().
submit_await(Ctx, M, F, Args, Kwargs) when is_map(Kwargs) ->
    py_worker_loop:submit_await(Ctx, M, F, Args, Kwargs, py_config:call_timeout());
submit_await(Ctx, M, F, Args, Timeout) ->
    py_worker_loop:submit_await(Ctx, M, F, Args, #{}, Timeout).

%% @doc {@link submit/5} and its result within `Timeout' ms (on timeout the
%% task is cancelled).
-spec submit_await(pid(), py:name(), py:name(), list(), map(), timeout()) -> py:result().
submit_await(Ctx, M, F, Args, Kwargs, Timeout) ->
    py_worker_loop:submit_await(Ctx, M, F, Args, Kwargs, Timeout).

%% @doc Stop the loop of `Ctx' (its tasks cancelled), within the call timeout:
%% `ok' or `{error, no_loop}'.
-spec stop_loop(pid()) -> ok | {error, term()}.
stop_loop(Ctx) ->
    py_worker_loop:stop(Ctx, py_config:call_timeout()).

%% @doc {@link stop_loop/1} within `Timeout' ms: `{error, timeout}' past it.
-spec stop_loop(pid(), timeout()) -> ok | {error, term()}.
stop_loop(Ctx, Timeout) ->
    py_worker_loop:stop(Ctx, Timeout).

%% @doc Run statements in the context's `__main__'.
-spec exec(pid(), iodata() | unicode:chardata()) -> ok | {error, term()}.
exec(Ctx, Code) ->
    exec(Ctx, Code, py_config:call_timeout()).

%% @doc {@link exec/2} within `Timeout' ms.
-spec exec(pid(), iodata() | unicode:chardata(), timeout()) -> ok | {error, term()}.
exec(Ctx, Code, Timeout) ->
    run(exec, Ctx, py_payload:exec(Code), Timeout).

%% @doc Evaluate an expression with the context's `__main__' as globals and
%% `Locals' as locals.
-spec eval(pid(), iodata() | unicode:chardata(), map()) -> {ok, term()} | {error, term()}.
eval(Ctx, Code, Locals) ->
    eval(Ctx, Code, Locals, py_config:call_timeout()).

%% @doc {@link eval/3} within `Timeout' ms.
-spec eval(pid(), iodata() | unicode:chardata(), map(), timeout()) ->
          {ok, term()} | {error, term()}.
eval(Ctx, Code, Locals, Timeout) ->
    run(eval, Ctx, py_payload:eval(Code, Locals), Timeout).

%% @doc The caller's process-bound environment in context `Ctx' (API.md
%% section 3), made now if it has none yet: an opaque term naming it. It
%% is the globals that the caller's `exec', `eval' and `call' on `Ctx'
%% run in, a copy of the context's `__main__' when it was made, and it
%% goes when the caller exits. `{error, Reason}' if the context cannot be
%% reached.
-spec create_local_env(pid()) -> {'$py_env', pid(), pid()} | {error, term()}.
create_local_env(Ctx) ->
    case eval(Ctx, <<"None">>, #{}) of
        {ok, None} when None =:= none; None =:= nil -> {'$py_env', Ctx, self()};
        {error, _} = Error -> Error
    end.

%% @doc Call `Module.Function(*Args, **Kwargs)' in the context.
-spec call(pid(), atom() | binary(), atom() | binary(), list(), map()) ->
          {ok, term()} | {error, term()}.
call(Ctx, M, F, Args, Kwargs) ->
    call(Ctx, M, F, Args, Kwargs, py_config:call_timeout()).

%% @doc {@link call/5} within `Timeout' ms.
-spec call(pid(), atom() | binary(), atom() | binary(), list(), map(), timeout()) ->
          {ok, term()} | {error, term()}.
call(Ctx, M, F, Args, Kwargs, Timeout) ->
    run(call, Ctx, py_payload:call(M, F, Args, Kwargs), Timeout).

run(Op, Ctx, {ok, Payload}, Timeout) ->
    case {where(Ctx), py_payload:timeout(Timeout)} of
        {{ok, Sidecar, Id}, {ok, T}} -> py_request:run(Sidecar, Op, Id, Payload, T);
        {{error, _} = Error, _} -> Error;
        {_, {error, _} = Error} -> Error
    end;
run(_Op, _Ctx, {error, _} = Error, _Timeout) ->
    Error.

%% @doc The sidecar's integer id of a context process.
-spec ctx_id(term()) -> {ok, pos_integer()} | {error, not_started | {bad_context, term()}}.
ctx_id(Pid) ->
    case where(Pid) of
        {ok, _Sidecar, Id} -> {ok, Id};
        {error, _} = Error -> Error
    end.

%% @doc The sidecar of a context process and its integer id there.
-spec where(term()) -> {ok, atom(), pos_integer()} | {error, not_started | {bad_context, term()}}.
where(Pid) when is_pid(Pid) ->
    try ets:lookup_element(?TAB, Pid, 2) of
        {Sidecar, Id} -> {ok, Sidecar, Id}
    catch
        error:badarg ->
            case ets:whereis(?TAB) of
                undefined -> {error, not_started};
                _ -> {error, {bad_context, Pid}}
            end
    end;
where(Other) ->
    {error, {bad_context, Other}}.

%% @doc Every context of every sidecar: `[{Pid, Sidecar, CtxId}]' (none
%% when the application does not run).
-spec all() -> [{pid(), atom(), pos_integer()}].
all() ->
    try ets:select(?TAB, [{{'$1', {'$2', '$3'}, '_', '_'}, [], [{{'$1', '$2', '$3'}}]}])
    catch
        error:badarg -> []
    end.

%% @doc The mode the context was created with.
-spec mode(pid()) -> {ok, mode()} | {error, not_started | {bad_context, pid()}}.
mode(Pid) ->
    column(Pid, 3).

%% @doc The label the context was started with (`{Pool, Index}' for the
%% router's contexts).
-spec label(pid()) -> {ok, term()} | {error, {bad_context, pid()}}.
label(Pid) ->
    column(Pid, 4).

%% A column of the context's row: {Pid, {Sidecar, Ctx}, Mode, Label}.
column(Pid, Pos) ->
    try ets:lookup_element(?TAB, Pid, Pos) of
        Value -> {ok, Value}
    catch
        error:badarg -> {error, {bad_context, Pid}}
    end.

%% @doc Create the pid -> context table; called by its owner, `py_sidecars_sup'.
-spec new_table() -> ok.
new_table() ->
    ?TAB = ets:new(?TAB, [named_table, public, set, {read_concurrency, true}]),
    ok.

%% @doc Clean up after a context process that died without running its
%% `terminate/2' (e.g. killed): forget its id and destroy the sidecar context.
-spec cleanup(pid(), pos_integer()) -> ok.
cleanup(Pid, Ctx) ->
    cleanup(default, Pid, Ctx).

%% @doc {@link cleanup/2} for a context of sidecar `Sidecar'.
-spec cleanup(atom(), pid(), pos_integer()) -> ok.
cleanup(Sidecar, Pid, Ctx) ->
    catch ets:delete(?TAB, Pid),
    destroy(Sidecar, Ctx).

%% @doc Forget the rows of sidecar `Sidecar''s contexts, dead with an
%% earlier OS process (its new `py_context_sup' starts).
-spec forget_sidecar(atom()) -> ok.
forget_sidecar(Sidecar) ->
    _ = ets:match_delete(?TAB, {'_', {Sidecar, '_'}, '_', '_'}),
    ok.

%% Fire and forget: the reply goes to a reference that is no alias and is
%% dropped. Its id is a control one, as it holds no py_semaphore permit.
destroy(Sidecar, Ctx) ->
    case py_instance:lookup(Sidecar) of
        {ok, Port, _Owner} ->
            Id = py_wire:id(control, make_ref()),
            _ = py_wire:send(Port, py_wire:packet(py_wire:destroy_context(Ctx), Id, <<>>)),
            ok;
        {error, _} ->
            ok
    end.

%%--------------------------------------------------------------------

%% @private
-spec init({atom(), term(), pos_integer(), mode()}) -> {ok, #state{}}.
init({Sidecar, Id, Ctx, Mode}) ->
    process_flag(trap_exit, true),
    true = ets:insert(?TAB, {self(), {Sidecar, Ctx}, Mode, Id}),
    %% paths, imports and preload code (py_import, py_preload), before the
    %% pid is known to any caller
    ok = py_context_setup:run(Sidecar, Ctx),
    {ok, #state{sidecar = Sidecar, id = Id, ctx = Ctx, mode = Mode}}.

%% @private
-spec handle_call(term(), gen_server:from(), State) -> {reply, {error, unknown_call}, State}.
handle_call(_Request, _From, State) ->
    {reply, {error, unknown_call}, State}.

%% @private
-spec handle_cast(term(), State) -> {noreply, State}.
handle_cast(_Msg, State) ->
    {noreply, State}.

%% @private
-spec handle_info(term(), State) -> {noreply, State}.
handle_info(_Msg, State) ->
    {noreply, State}.

%% @private
-spec terminate(term(), #state{}) -> ok.
terminate(_Reason, #state{sidecar = Sidecar, ctx = Ctx}) ->
    catch ets:delete(?TAB, self()),
    destroy(Sidecar, Ctx).
