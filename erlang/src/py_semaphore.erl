%% @doc Load control for all calls (API.md section 10).
%%
%% The counter lives in an `atomics' array kept in `persistent_term', so
%% {@link acquire/0} and {@link release/0} run without a message to any
%% process. Slot 1 is the number of requests in flight, slot 2 the limit. The
%% gen_server only creates the array and removes it when the application stops.
%%
%% There is one per sidecar, under `{py_semaphore, Sidecar, counter}' (see
%% {@link py_sidecar_sup}); the functions without a sidecar argument are
%% those of the default sidecar, the ones with it take the sidecar's name
%% first.
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
-export([start_link/1, max_concurrent/1, current/1, set_max_concurrent/2,
         acquire/1, release/1, reset/1]).
-export([init/1, handle_call/3, handle_cast/2, terminate/2]).

-define(DEFAULT, default).
-define(KEY(Sidecar), {?MODULE, Sidecar, counter}).
-define(CUR, 1).
-define(MAX, 2).

%% @doc Start the default sidecar's counter.
-spec start_link() -> {ok, pid()} | {error, term()}.
start_link() ->
    start_link(?DEFAULT).

%% @doc Start sidecar `Sidecar''s counter, its limit `max_concurrent'.
-spec start_link(atom()) -> {ok, pid()} | {error, term()}.
start_link(Sidecar) ->
    gen_server:start_link({local, py_instance:name(?MODULE, Sidecar)}, ?MODULE, Sidecar, []).

%% @doc The limit: calls beyond it get `{error, {overloaded, Cur, Max}}'.
-spec max_concurrent() -> non_neg_integer().
max_concurrent() ->
    max_concurrent(?DEFAULT).

%% @doc The limit of sidecar `Sidecar'.
-spec max_concurrent(atom()) -> non_neg_integer().
max_concurrent(Sidecar) ->
    read(Sidecar, ?MAX).

%% @doc Requests in flight now.
-spec current() -> non_neg_integer().
current() ->
    current(?DEFAULT).

%% @doc Requests in flight now in sidecar `Sidecar'.
-spec current(atom()) -> non_neg_integer().
current(Sidecar) ->
    read(Sidecar, ?CUR).

%% @doc Change the limit at run time. Calls in flight are not affected.
-spec set_max_concurrent(pos_integer()) -> ok | {error, not_started}.
set_max_concurrent(N) ->
    set_max_concurrent(?DEFAULT, N).

%% @doc Change the limit of sidecar `Sidecar'.
-spec set_max_concurrent(atom(), pos_integer()) -> ok | {error, not_started}.
set_max_concurrent(Sidecar, N) when is_integer(N), N > 0 ->
    case counter(Sidecar) of
        undefined -> {error, not_started};
        Ref -> atomics:put(Ref, ?MAX, N)
    end.

%% @doc Take a slot, or fail at once when all are taken.
-spec acquire() -> ok | {error, {overloaded, non_neg_integer(), pos_integer()} | not_started}.
acquire() ->
    acquire(?DEFAULT).

%% @doc Take a slot of sidecar `Sidecar' (a call to it takes one).
-spec acquire(atom()) -> ok | {error, {overloaded, non_neg_integer(), pos_integer()} | not_started}.
acquire(Sidecar) ->
    case counter(Sidecar) of
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
    release(?DEFAULT).

%% @doc Give a slot of sidecar `Sidecar' back (its port owner does).
-spec release(atom()) -> ok.
release(Sidecar) ->
    case counter(Sidecar) of
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
    reset(?DEFAULT).

%% @doc No request in flight in sidecar `Sidecar' (its port owner says so).
-spec reset(atom()) -> ok.
reset(Sidecar) ->
    case counter(Sidecar) of
        undefined -> ok;
        Ref -> atomics:put(Ref, ?CUR, 0)
    end.

-spec counter(atom()) -> atomics:atomics_ref() | undefined.
counter(Sidecar) ->
    persistent_term:get(?KEY(Sidecar), undefined).

read(Sidecar, Slot) ->
    case counter(Sidecar) of
        undefined -> 0;
        Ref -> atomics:get(Ref, Slot)
    end.

%%--------------------------------------------------------------------

%% @private
-spec init(atom()) -> {ok, atom()}.
init(Sidecar) ->
    process_flag(trap_exit, true),
    Ref = atomics:new(2, [{signed, true}]),
    atomics:put(Ref, ?MAX, py_config:get(Sidecar, max_concurrent)),
    persistent_term:put(?KEY(Sidecar), Ref),
    {ok, Sidecar}.

%% @private
-spec handle_call(term(), gen_server:from(), State) -> {reply, {error, unknown_call}, State}.
handle_call(_Request, _From, State) ->
    {reply, {error, unknown_call}, State}.

%% @private
-spec handle_cast(term(), State) -> {noreply, State}.
handle_cast(_Msg, State) ->
    {noreply, State}.

%% @private
-spec terminate(term(), atom()) -> ok.
terminate(_Reason, Sidecar) ->
    _ = persistent_term:erase(?KEY(Sidecar)),
    ok.
