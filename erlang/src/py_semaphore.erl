%% @doc Load control for all calls (API.md section 10).
%%
%% The counter lives in an `atomics' array kept in `persistent_term', so
%% {@link acquire/0} and {@link release/0} run without a message to any
%% process. Slot 1 is the number of requests in flight, slot 2 the limit. The
%% gen_server only creates the array and removes it when the application stops.
%%
%% A slot is held by a request, not by its caller: the caller takes it before
%% it sends the request, and the port owner (`py_sidecar') gives it back when
%% the sidecar's reply comes, whoever waits for it. The sidecar answers every
%% call, eval and exec exactly once (a cancelled one too), so a caller that
%% timed out or was killed never leaks its slot, and a call still running in
%% Python after its caller gave up still counts: the limit is on the work
%% Python has. When the sidecar dies its requests are gone, and the owner
%% resets the count ({@link reset/0}).
-module(py_semaphore).

-behaviour(gen_server).

-export([start_link/0, max_concurrent/0, current/0, set_max_concurrent/1,
         acquire/0, release/0, reset/0]).
-export([init/1, handle_call/3, handle_cast/2, terminate/2]).

-define(KEY, {?MODULE, counter}).
-define(CUR, 1).
-define(MAX, 2).

-spec start_link() -> {ok, pid()} | {error, term()}.
start_link() ->
    gen_server:start_link({local, ?MODULE}, ?MODULE, [], []).

%% @doc The limit: calls beyond it get `{error, {overloaded, Cur, Max}}'.
-spec max_concurrent() -> non_neg_integer().
max_concurrent() ->
    read(?MAX).

%% @doc Requests in flight now.
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
            Max = atomics:get(Ref, ?MAX),
            case atomics:add_get(Ref, ?CUR, 1) of
                N when N =< Max ->
                    ok;
                N ->
                    atomics:sub(Ref, ?CUR, 1),
                    %% N - 1 may count other callers refused at the same instant
                    {error, {overloaded, min(N - 1, Max), Max}}
            end
    end.

%% @doc Give a slot back: the owner does when a reply comes, a caller does when
%% its request could not be sent. Never below 0 (after a {@link reset/0}, a
%% slot taken before it may still come back).
-spec release() -> ok.
release() ->
    case counter() of
        undefined -> ok;
        Ref -> release(Ref, atomics:get(Ref, ?CUR))
    end.

release(_Ref, N) when N =< 0 ->
    ok;
release(Ref, N) ->
    case atomics:compare_exchange(Ref, ?CUR, N, N - 1) of
        ok -> ok;
        Now -> release(Ref, Now)
    end.

%% @doc No request in flight: the sidecar that had them is gone.
-spec reset() -> ok.
reset() ->
    case counter() of
        undefined -> ok;
        Ref -> atomics:put(Ref, ?CUR, 0)
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
    Ref = atomics:new(2, [{signed, true}]),
    atomics:put(Ref, ?MAX, py_config:max_concurrent()),
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
