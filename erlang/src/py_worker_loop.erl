%% @doc Worker loops (NIF 4.1, API.md section 8, docs/async.md):
%% `py_context:start_loop/1,2', `submit/4,5', `submit_await/4,5,6',
%% `stop_loop/1,2'.
%%
%% Every context here has an event loop that its executor drives between
%% requests (`py_event_loop'), so "starting" a loop does not take the
%% context's thread: calls, evals and execs on it go on being served while
%% the loop runs (beyond the NIF, whose calls answer `{error,
%% loop_running}' then). What start_loop adds is an owner: a process of
%% this module (the loop's keeper, one per context, registered in
%% `persistent_term') monitors the owner and the context; `stop_loop', the
%% owner's death or the context's end cancel every task of the loop, and
%% the owner receives `{py_loop_exit, Ctx, Result}' (`ok', or `{error,
%% Reason}').
-module(py_worker_loop).

-export([start/3, submit/5, submit_await/6, stop/2]).

%% where a context is: its sidecar and its id there (py_context:where/1)
-type where() :: {atom(), pos_integer()}.

-define(KEY(Ctx), {?MODULE, Ctx}).

%% @doc Start the loop of context `Ctx' (at `Where') for `Owner': `ok',
%% `{error, loop_running}' when it runs already, or the error of the
%% context.
-spec start(pid(), where(), pid()) -> ok | {error, term()}.
start(Ctx, {Sidecar, Id} = Where, Owner) when is_pid(Owner) ->
    case keeper(Ctx) of
        undefined ->
            case request(Where, <<"_loop_start">>, py_config:call_timeout()) of
                {ok, _} ->
                    Self = self(),
                    Keeper = spawn(fun() -> keep(Self, Ctx, {Sidecar, Id}, Owner) end),
                    receive {Keeper, ready} -> ok end;
                {error, _} = Error ->
                    Error
            end;
        _ ->
            {error, loop_running}
    end;
start(_Ctx, _Where, Owner) ->
    {error, {badarg, {"the owner must be a pid", Owner}}}.

%% @doc A task `Module.Function(*Args, **Kwargs)' on the running loop of
%% `Ctx': `{ok, Ref}', the result coming as `{async_result, Ref, Result}'
%% ({@link py_event_loop:await/2}); `{error, no_loop}' before start.
-spec submit(pid(), py:name(), py:name(), list(), map()) -> {ok, reference()} | {error, term()}.
submit(Ctx, M, F, Args, Kwargs) ->
    case {keeper(Ctx), py_payload:call(M, F, Args, Kwargs)} of
        {undefined, _} -> {error, no_loop};
        {_, {error, _} = Error} -> Error;
        {{_Keeper, {Sidecar, Id}}, {ok, Payload}} ->
            {ok, py_task:start(Sidecar, Id, Payload)}
    end.

%% @doc {@link submit/5} and its result within `Timeout' ms (on timeout
%% the task is cancelled).
-spec submit_await(pid(), py:name(), py:name(), list(), map(), timeout()) -> py:result().
submit_await(Ctx, M, F, Args, Kwargs, Timeout) ->
    case submit(Ctx, M, F, Args, Kwargs) of
        {ok, Ref} -> py_task:await(Ref, Timeout);
        {error, _} = Error -> Error
    end.

%% @doc Stop the loop of `Ctx': its tasks are cancelled (their `finally'
%% blocks run, their callers get `{error, {cancelled, _}}'); `ok' once done,
%% `{error, no_loop}' when none runs, `{error, timeout}' past `Timeout'.
-spec stop(pid(), timeout()) -> ok | {error, term()}.
stop(Ctx, Timeout) ->
    case keeper(Ctx) of
        undefined ->
            {error, no_loop};
        {Keeper, _Where} ->
            Mon = erlang:monitor(process, Keeper),
            Keeper ! {stop, self(), Timeout},
            receive
                {loop_stopped, Keeper, Result} ->
                    erlang:demonitor(Mon, [flush]),
                    Result;
                {'DOWN', Mon, process, Keeper, _} ->
                    ok
            after Timeout ->
                erlang:demonitor(Mon, [flush]),
                {error, timeout}
            end
    end.

%% {Keeper, Where} of the loop of Ctx, or undefined.
keeper(Ctx) ->
    case persistent_term:get(?KEY(Ctx), undefined) of
        {Pid, _Where} = Found when is_pid(Pid) ->
            case is_process_alive(Pid) of
                true -> Found;
                false -> undefined
            end;
        undefined ->
            undefined
    end.

%% The keeper of a started loop.
keep(Starter, Ctx, Where, Owner) ->
    OwnerMon = erlang:monitor(process, Owner),
    CtxMon = erlang:monitor(process, Ctx),
    persistent_term:put(?KEY(Ctx), {self(), Where}),
    Starter ! {self(), ready},
    {Result, Stopper} =
        receive
            {stop, From, Timeout} -> {cancel(Where, Timeout), From};
            {'DOWN', OwnerMon, process, _, _} -> {cancel(Where, py_config:call_timeout()), none};
            {'DOWN', CtxMon, process, _, Reason} -> {{error, {context_down, Reason}}, none}
        end,
    _ = persistent_term:erase(?KEY(Ctx)),
    Owner ! {py_loop_exit, Ctx, Result},
    _ = [Stopper ! {loop_stopped, self(), Result} || is_pid(Stopper)],
    ok.

cancel(Where, Timeout) ->
    case request(Where, <<"_loop_stop">>, Timeout) of
        {ok, _} -> ok;
        {error, _} = Error -> Error
    end.

%% A call of erlang.Function() on the context at Where.
request({Sidecar, Id}, Function, Timeout) ->
    py_request:run(Sidecar, call, Id, {<<"erlang">>, Function, [], #{}}, Timeout).
