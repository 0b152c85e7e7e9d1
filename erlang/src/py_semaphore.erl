%% @doc Load control for all calls (API.md section 10).
%%
%% The counter lives in an `atomics' array kept in `persistent_term', so
%% {@link acquire/0} and {@link release/0} run in the caller without a message to
%% any process. Slot 1 is the number of calls in flight, slot 2 the limit, slot 3
%% the time of the last sweep. The gen_server only creates the array (and the
%% holders table) and removes them when the application stops.
%%
%% A caller killed while it holds a slot never runs its release. So each holder
%% is also counted in an ETS table (pid -> slots held), and when a call finds
%% the semaphore full, it first sweeps the table for dead holders (at most
%% every 100 ms) and gives their slots back.
-module(py_semaphore).

-behaviour(gen_server).

-export([start_link/0, max_concurrent/0, current/0, set_max_concurrent/1,
         acquire/0, release/0]).
-export([init/1, handle_call/3, handle_cast/2, terminate/2]).

-define(KEY, {?MODULE, counter}).
-define(HOLDERS, py_semaphore_holders).
-define(CUR, 1).
-define(MAX, 2).
-define(SWEPT, 3).
-define(SWEEP_EVERY_MS, 100).

-spec start_link() -> {ok, pid()} | {error, term()}.
start_link() ->
    gen_server:start_link({local, ?MODULE}, ?MODULE, [], []).

%% @doc The limit: calls beyond it get `{error, {overloaded, Cur, Max}}'.
-spec max_concurrent() -> non_neg_integer().
max_concurrent() ->
    read(?MAX).

%% @doc Calls in flight now.
-spec current() -> non_neg_integer().
current() ->
    read(?CUR).

%% @doc Change the limit at run time. Calls in flight are not affected.
-spec set_max_concurrent(pos_integer()) -> ok | {error, not_started}.
set_max_concurrent(N) when is_integer(N), N > 0 ->
    case counter() of
        undefined -> {error, not_started};
        Ref -> atomics:put(Ref, ?MAX, N)
    end.

%% @doc Take a slot, or fail at once when all are taken.
-spec acquire() -> ok | {error, {overloaded, non_neg_integer(), pos_integer()} | not_started}.
acquire() ->
    case counter() of
        undefined ->
            {error, not_started};
        Ref ->
            case take(Ref) of
                ok ->
                    ok;
                {error, _} = Overloaded ->
                    case sweep(Ref) of
                        0 -> Overloaded;
                        _Freed -> take(Ref)
                    end
            end
    end.

take(Ref) ->
    Max = atomics:get(Ref, ?MAX),
    case atomics:add_get(Ref, ?CUR, 1) of
        N when N =< Max ->
            Self = self(),
            try ets:update_counter(?HOLDERS, Self, 1, {Self, 0}) of
                _ -> ok
            catch
                error:badarg -> ok          % stopping
            end;
        N ->
            atomics:sub(Ref, ?CUR, 1),
            %% N - 1 may count other callers refused at the same instant
            {error, {overloaded, min(N - 1, Max), Max}}
    end.

%% @doc Give back a slot taken by {@link acquire/0}.
-spec release() -> ok.
release() ->
    case counter() of
        undefined ->
            ok;
        Ref ->
            Self = self(),
            Held = try ets:update_counter(?HOLDERS, Self, -1) of
                       0 -> ets:delete(?HOLDERS, Self);
                       _ -> true
                   catch
                       error:badarg -> false   % no slot held (or stopping)
                   end,
            case Held of
                true -> atomics:sub(Ref, ?CUR, 1);
                false -> ok
            end
    end.

%% Give back the slots of dead holders; returns how many. Whoever takes a dead
%% holder's entry out of the table releases its slots, so two callers sweeping
%% at once never release twice.
sweep(Ref) ->
    Now = erlang:monotonic_time(millisecond),
    Last = atomics:get(Ref, ?SWEPT),
    case Now - Last >= ?SWEEP_EVERY_MS andalso
         atomics:compare_exchange(Ref, ?SWEPT, Last, Now) =:= ok of
        true ->
            Dead = try ets:select(?HOLDERS, [{{'$1', '_'}, [], ['$1']}])
                   catch error:badarg -> []
                   end,
            lists:foldl(fun(Pid, Freed) -> Freed + reap(Ref, Pid) end, 0,
                        [Pid || Pid <- Dead, not is_process_alive(Pid)]);
        false ->
            0
    end.

reap(Ref, Pid) ->
    case ets:take(?HOLDERS, Pid) of
        [{Pid, N}] when N > 0 ->
            atomics:sub(Ref, ?CUR, N),
            N;
        _ ->
            0
    end.

-spec counter() -> atomics:atomics_ref() | undefined.
counter() ->
    persistent_term:get(?KEY, undefined).

read(Slot) ->
    case counter() of
        undefined -> 0;
        Ref -> atomics:get(Ref, Slot)
    end.

%%--------------------------------------------------------------------

-spec init([]) -> {ok, atomics:atomics_ref()}.
init([]) ->
    process_flag(trap_exit, true),
    Ref = atomics:new(3, [{signed, true}]),
    atomics:put(Ref, ?MAX, py_config:max_concurrent()),
    atomics:put(Ref, ?SWEPT, erlang:monotonic_time(millisecond) - ?SWEEP_EVERY_MS),
    ?HOLDERS = ets:new(?HOLDERS, [named_table, public, set, {write_concurrency, true}]),
    persistent_term:put(?KEY, Ref),
    {ok, Ref}.

-spec handle_call(term(), gen_server:from(), State) -> {reply, {error, unknown_call}, State}.
handle_call(_Request, _From, State) ->
    {reply, {error, unknown_call}, State}.

-spec handle_cast(term(), State) -> {noreply, State}.
handle_cast(_Msg, State) ->
    {noreply, State}.

-spec terminate(term(), atomics:atomics_ref()) -> ok.
terminate(_Reason, _Ref) ->
    _ = persistent_term:erase(?KEY),
    ok.
