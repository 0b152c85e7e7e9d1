%% Streams (API.md section 2, py:stream* rows; docs/streams.md): generators,
%% iterators and async generators as lists and as messages, their bound on
%% the owner's mailbox, cancel and the owner's exit (the generator's finally
%% runs), other calls served while a stream runs, and a sidecar killed
%% during 50 streams.
-module(py_stream_SUITE).

-include_lib("common_test/include/ct.hrl").
-include("py_ct.hrl").

-export([all/0, init_per_suite/1, end_per_suite/1, init_per_testcase/2, end_per_testcase/2]).
-export([api_examples/1, generators_and_iterators/1, async_generator/1, error_midway/1,
         bad_input/1, bounded_100k/1, bound_option_and_setting/1, cancel_runs_finally/1,
         cancel_interrupts_a_wait/1, owner_death_runs_finally/1, starter_may_exit/1,
         calls_interleave/1, relay_killed_runs_finally/1, from_a_callback/1,
         kill_during_50_streams/1, async_generator_frees_context/1]).

-define(CODE, <<"
import asyncio, time, erlang

def count_to(n):
    for i in range(1, n + 1):
        yield i

def fails_after(n):
    for i in range(n):
        yield i
    raise ValueError('after ' + str(n))

def forever_then(pid, tag):
    i = 0
    try:
        while True:
            yield i
            i += 1
    finally:
        erlang.send(pid, (erlang.Atom('finally'), tag))

def sleeps_then(key, seconds):
    # interrupted in time.sleep, its finally runs with a KeyboardInterrupt
    # raised: no callback into Erlang from there (erlang.send of a pid the
    # sidecar must check), the shared state works
    try:
        yield 'first'
        time.sleep(seconds)
        yield 'late'
    finally:
        erlang.state_set(key, 'closed')

def forever_key(key):
    i = 0
    try:
        while True:
            yield i
            i += 1
    finally:
        erlang.state_set(key, 'closed')

def stream_from_callback(n):
    return erlang.call('stream_from_erlang', n)

def blobs(n, size):
    for i in range(n):
        yield (i, b'x' * size)

async def aslow(n, seconds):
    for i in range(n):
        await asyncio.sleep(seconds)
        yield i

def slow(n, seconds):
    for i in range(n):
        time.sleep(seconds)
        yield i

async def agen(n):
    for i in range(n):
        await asyncio.sleep(0.001)
        yield i * 10

async def aforever(key):
    try:
        i = 0
        while True:
            await asyncio.sleep(0)
            yield i
            i += 1
    finally:
        erlang.state_set(key, 'closed')

def with_kw(n, step=1):
    return range(0, n, step)
">>).

all() ->
    [api_examples, generators_and_iterators, async_generator, error_midway, bad_input,
     bounded_100k, bound_option_and_setting, cancel_runs_finally, cancel_interrupts_a_wait,
     owner_death_runs_finally, starter_may_exit, calls_interleave, relay_killed_runs_finally,
     from_a_callback, async_generator_frees_context, kill_during_50_streams].

init_per_suite(Config) ->
    py_ct:start([{num_contexts, 2}]),
    Config.

end_per_suite(_Config) ->
    py_ct:stop().

init_per_testcase(_Case, Config) ->
    %% the code in every context's __main__ (a restart loses it)
    [py_ct:main_exec(Ctx, ?CODE) || Ctx <- py_context_router:contexts()],
    Config.

end_per_testcase(_Case, _Config) ->
    py_context_router:unbind_context(),
    ok.

%%--------------------------------------------------------------------

%% The rows of API.md section 2 and the NIF's documented examples.
api_examples(_Config) ->
    ?expect({ok, [1, 2, 3, 4]}, py:stream('__main__', count_to, [4])),
    ?expect({ok, [0, 2, 4]}, py:stream('__main__', with_kw, [6], #{step => 2})),
    ?expect({ok, [0, 1, 4, 9, 16, 25, 36, 49, 64, 81]}, py:stream_eval(<<"(x**2 for x in range(10))">>)),
    ?expect({ok, [<<"H">>, <<"E">>, <<"L">>, <<"L">>, <<"O">>]},
            py:stream_eval(<<"(c.upper() for c in 'hello')">>)),
    ?expect({ok, [0, 1, 2, 3, 4]}, py:stream_eval(<<"iter(range(5))">>)),
    ?expect({ok, [{<<"a">>, 1}, {<<"b">>, 2}]}, py:stream_eval(<<"iter({'a': 1, 'b': 2}.items())">>)),
    ?expect({ok, [3, 4, 5]}, py:stream_eval(<<"(x + k for x in range(3))">>, #{k => 3})),
    %% a generator function that the caller's own py:exec defined
    ok = py:exec(<<"def fibonacci(n):\n    a, b = 0, 1\n    for _ in range(n):\n        yield a\n"
                   "        a, b = b, a + b\n">>),
    ?expect({ok, [0, 1, 1, 2, 3, 5, 8, 13, 21, 34]}, py:stream('__main__', fibonacci, [10])),
    {ok, Ref} = py:stream_start(builtins, iter, [[1, 2, 3, 4, 5]]),
    ?expect(true, is_reference(Ref)),
    ?expect({done, [1, 2, 3, 4, 5]}, collect(Ref)),
    %% another owner, kwargs
    Self = self(),
    Owner = spawn_link(fun() -> receive {go, R} -> Self ! {collected, collect(R)} end end),
    {ok, Ref2} = py:stream_start('__main__', with_kw, [10], #{owner => Owner, kwargs => #{step => 3}}),
    Owner ! {go, Ref2},
    ?expect({collected, {done, [0, 3, 6, 9]}}, receive {collected, _} = M -> M after 10000 -> timeout end),
    %% fibonacci of this process's environment, as messages
    {ok, Ref3} = py:stream_start('__main__', fibonacci, [5]),
    ?expect({done, [0, 1, 1, 2, 3]}, collect(Ref3)),
    %% cancel of a stream that ended: ok, nothing more comes
    ?expect(ok, py:stream_cancel(Ref3)),
    ?expect(nothing, receive {py_stream, Ref3, _} = E -> E after 200 -> nothing end).

generators_and_iterators(_Config) ->
    ?expect({ok, [1, 2, 3]}, py:stream(builtins, iter, [[1, 2, 3]])),
    ?expect({ok, [0, 1, 2]}, py:stream(builtins, range, [3])),
    ?expect({ok, []}, py:stream(builtins, range, [0])),
    ?expect({ok, [<<"a">>, <<"b">>]}, py:stream(builtins, list, [[<<"a">>, <<"b">>]])),
    {ok, Big} = py:stream(builtins, range, [25000]),
    ?equal(lists:seq(0, 24999), Big),
    {ok, R1} = py:stream_start(builtins, range, [3]),
    ?expect({done, [0, 1, 2]}, collect(R1)),
    {ok, R2} = py:stream_start(builtins, iter, [[]]),
    ?expect({done, []}, collect(R2)),
    {ok, R3} = py:stream_start('__main__', count_to, [2500]),
    ?expect({done, _}, collect(R3)),
    {ok, R4} = py:stream_start('__main__', count_to, [2500]),
    {done, Items} = collect(R4),
    ?equal(lists:seq(1, 2500), Items).

async_generator(_Config) ->
    ?expect({ok, [0, 10, 20, 30]}, py:stream('__main__', agen, [4])),
    {ok, Ref} = py:stream_start('__main__', agen, [5]),
    ?expect({done, [0, 10, 20, 30, 40]}, collect(Ref)),
    %% an async generator expression
    ?expect({ok, [0, 20]}, py:stream_eval(<<"(x * 2 async for x in agen(2))">>)),
    %% cancel, and a killed relay, close it: its finally runs
    Key = <<"stream async_generator cancel">>,
    {ok, Ref2} = py:stream_start('__main__', aforever, [Key], #{max_inflight => 5}),
    ?expect({py_stream, Ref2, {data, 0}}, receive {py_stream, Ref2, _} = M -> M after 10000 -> timeout end),
    ok = py:stream_cancel(Ref2),
    ?expect({error, cancelled}, last_event(Ref2)),
    ?expect({ok, <<"closed">>}, py:state_fetch(Key)),
    Key2 = <<"stream async_generator relay">>,
    Before = erlang:processes(),
    {ok, Ref3} = py:stream_start('__main__', aforever, [Key2], #{max_inflight => 5}),
    ?expect({py_stream, Ref3, {data, 0}}, receive {py_stream, Ref3, _} = M3 -> M3 after 10000 -> timeout end),
    [Relay] = [P || P <- erlang:processes() -- Before,
                    {current_function, {py_stream, _, _}} <- [erlang:process_info(P, current_function)]],
    exit(Relay, kill),
    ok = py_ct:wait_until(fun() -> py:state_fetch(Key2) =:= {ok, <<"closed">>} end, 10000, "the finally"),
    %% the context still serves calls
    ?expect({ok, 2}, py:eval(<<"1 + 1">>)).

%% An exception in the middle: the items before it, then the error.
error_midway(_Config) ->
    {ok, Ref} = py:stream_start('__main__', fails_after, [3]),
    ?expect({error, {'ValueError', <<"after 3">>}, [0, 1, 2]}, collect(Ref)),
    {ok, Ref2} = py:stream_start('__main__', fails_after, [0]),
    ?expect({error, {'ValueError', <<"after 0">>}, []}, collect(Ref2)),
    {ok, Ref3} = py:stream_start('__main__', fails_after, [250]),
    {error, {'ValueError', _}, Items} = collect(Ref3),
    ?equal(lists:seq(0, 249), Items),
    ?expect({error, {'ValueError', <<"after 2">>}}, py:stream('__main__', fails_after, [2])),
    %% an item with no term ends the stream with the conversion's error
    {ok, Ref4} = py:stream_start(builtins, iter, [[1]]),
    ?expect({done, [1]}, collect(Ref4)),
    ?expect({error, {'TypeError', _}}, py:stream_eval(<<"(object() for _ in range(2))">>)).

bad_input(_Config) ->
    ?expect({error, {'ModuleNotFoundError', _}}, py:stream(no_such_module, f, [])),
    ?expect({error, {'ModuleNotFoundError', _}}, py:stream_start(no_such_module, f, [])),
    ?expect({error, {'NameError', _}}, py:stream('__main__', no_such_function, [])),
    ?expect({error, {'TypeError', _}}, py:stream(builtins, len, [[1]])),
    ?expect({error, {'TypeError', _}}, py:stream_start(builtins, len, [[1]])),
    ?expect({error, {'SyntaxError', _}}, py:stream_eval(<<"(x for">>)),
    ?expect({error, {badarg, _}}, py:stream(builtins, range, not_a_list)),
    ?expect({error, {badarg, _}}, py:stream(builtins, range, [1], not_kwargs)),
    ?expect({error, {badarg, _}}, py:stream_eval(42)),
    ?expect({error, {badarg, {opts, _}}}, py:stream_start(builtins, range, [1], #{colour => red})),
    ?expect({error, {badarg, {owner, _, _}}}, py:stream_start(builtins, range, [1], #{owner => self})),
    ?expect({error, {badarg, {max_inflight, _, _}}},
            py:stream_start(builtins, range, [1], #{max_inflight => 0})),
    ?expect({error, {badarg, {batch, _, _}}}, py:stream_start(builtins, range, [1], #{batch => x})),
    ?expect({error, {badarg, _}}, py:stream_start(builtins, range, [1], #{timeout => -1})),
    ?expect({error, {badarg, _}}, py:stream_start(builtins, range, [1], not_a_map)),
    ?expect({error, {badarg, {ref, _, _}}}, py:stream_cancel(not_a_ref)),
    %% nothing was left running
    ?expect(nothing, receive {py_stream, _, _} = E -> E after 100 -> nothing end).

%% 100k items of 1 KiB whose owner sleeps at first: the owner's mailbox
%% stays within the bound plus one batch, the BEAM's memory stays flat, and
%% every item arrives, in order. Unbounded, the mailbox would hold ~100 MB
%% of items (100k x 1 KiB binaries); bounded, at most 1100 of them, ~1.2 MB.
%% The margin, 20 MB, is a fifth of the unbounded case and leaves room
%% for what else the node allocates meanwhile.
bounded_100k(_Config) ->
    N = 100000,
    Bound = py_config:stream_max_inflight(),
    Batch = 100,
    Self = self(),
    erlang:garbage_collect(),
    Mem0 = erlang:memory(total),
    Owner = spawn_link(fun() ->
                               receive go -> ok end,
                               Self ! {owner_result, consume_in_order(N)}
                       end),
    {ok, Ref} = py:stream_start('__main__', blobs, [N, 1024], #{owner => Owner}),
    Owner ! {ref, Ref},
    %% while the owner sleeps: the relay fills its mailbox up to the bound
    ok = py_ct:wait_until(fun() -> qlen(Owner) >= Bound end, 20000, "a full mailbox"),
    Asleep = sample(Owner, 50, 10, {0, 0}),
    Owner ! go,
    {Awake, Result} = sample_until_result(Owner, {0, 0}),
    {MaxLen, MaxMem} = max2(Asleep, Awake),
    ct:log("bound ~b, max mailbox ~b, memory before ~b, max increase ~b bytes",
           [Bound, MaxLen, Mem0, MaxMem - Mem0]),
    ?expect(ok, Result),
    true = MaxLen =< Bound + Batch + 2 orelse ct:fail("mailbox reached ~b (bound ~b)", [MaxLen, Bound]),
    true = MaxMem - Mem0 < 20 * 1024 * 1024 orelse
        ct:fail("memory grew by ~b bytes", [MaxMem - Mem0]).

%% The per-stream option and the stream_max_inflight setting set the bound.
bound_option_and_setting(_Config) ->
    ?expect(ok, bounded_small(#{max_inflight => 50}, 50)),
    application:set_env(erlang_python, stream_max_inflight, 30),
    try
        ?expect(ok, bounded_small(#{}, 30)),
        %% a batch smaller than the bound
        ?expect(ok, bounded_small(#{batch => 7}, 30))
    after
        application:unset_env(erlang_python, stream_max_inflight)
    end.

bounded_small(Opts, Bound) ->
    N = 2000,
    Self = self(),
    Owner = spawn_link(fun() -> receive go -> ok end, Self ! {owner_result, consume_in_order(N)} end),
    {ok, Ref} = py:stream_start('__main__', blobs, [N, 8], Opts#{owner => Owner}),
    Owner ! {ref, Ref},
    ok = py_ct:wait_until(fun() -> qlen(Owner) >= Bound end, 20000, "a full mailbox"),
    %% no more comes while the owner sleeps; the one more is {ref, Ref},
    %% which may come after the relay looked
    {MaxLen, _} = sample(Owner, 30, 10, {0, 0}),
    ct:log("~p: max mailbox ~b", [Opts, MaxLen]),
    true = MaxLen =< Bound + 1 orelse ct:fail("mailbox ~b over the bound ~b", [MaxLen, Bound]),
    Owner ! go,
    receive {owner_result, R} -> R after 30000 -> timeout end.

%% stream_cancel closes the generator: its finally runs, then the owner
%% gets {error, cancelled}.
cancel_runs_finally(_Config) ->
    Tag = make_ref(),
    {ok, Ref} = py:stream_start('__main__', forever_then, [self(), Tag], #{max_inflight => 10}),
    ?expect({py_stream, Ref, {data, 0}}, receive {py_stream, Ref, _} = M -> M after 10000 -> timeout end),
    ?expect(ok, py:stream_cancel(Ref)),
    ?expect({finally, Tag}, receive {finally, Tag} = F -> F after 10000 -> timeout end),
    ?expect({error, cancelled}, last_event(Ref)),
    %% nothing after that
    ?expect(nothing, receive {py_stream, Ref, _} = E -> E after 200 -> nothing end),
    %% from another process too
    Tag2 = make_ref(),
    {ok, Ref2} = py:stream_start('__main__', forever_then, [self(), Tag2], #{max_inflight => 5}),
    spawn(fun() -> py:stream_cancel(Ref2) end),
    ?expect({finally, Tag2}, receive {finally, Tag2} = F2 -> F2 after 10000 -> timeout end),
    ?expect({error, cancelled}, last_event(Ref2)).

%% A cancel ends a generator that waits in time.sleep at once, not when the
%% sleep would end (30 s, over the wait here).
cancel_interrupts_a_wait(_Config) ->
    Key = <<"stream cancel_interrupts_a_wait">>,
    {ok, Ref} = py:stream_start('__main__', sleeps_then, [Key, 30]),
    ?expect({py_stream, Ref, {data, <<"first">>}},
            receive {py_stream, Ref, _} = M -> M after 10000 -> timeout end),
    timer:sleep(50),
    ?expect(ok, py:stream_cancel(Ref)),
    ?expect({error, cancelled}, last_event(Ref)),
    %% the finally ran before the owner heard
    ?expect({ok, <<"closed">>}, py:state_fetch(Key)),
    ?expect({ok, 2}, py:eval(<<"1 + 1">>)).

%% The owner's exit closes the generator: its finally runs.
owner_death_runs_finally(_Config) ->
    Tag = make_ref(),
    Owner = spawn(fun() -> receive never -> ok end end),
    {ok, _Ref} = py:stream_start('__main__', forever_then, [self(), Tag],
                                 #{owner => Owner, max_inflight => 20}),
    ok = py_ct:wait_until(fun() -> qlen(Owner) >= 20 end, 10000, "items to the owner"),
    exit(Owner, kill),
    ?expect({finally, Tag}, receive {finally, Tag} = F -> F after 10000 -> timeout end),
    %% and an owner that exits while the generator waits in time.sleep
    Key = <<"stream owner_death_runs_finally">>,
    Owner2 = spawn(fun() -> receive never -> ok end end),
    {ok, _} = py:stream_start('__main__', sleeps_then, [Key, 30], #{owner => Owner2}),
    ok = py_ct:wait_until(fun() -> qlen(Owner2) >= 1 end, 10000, "the first item"),
    timer:sleep(50),
    exit(Owner2, kill),
    ok = py_ct:wait_until(fun() -> py:state_fetch(Key) =:= {ok, <<"closed">>} end, 10000,
                          "the finally").

%% The stream belongs to its relay once started: the process that started
%% it may exit (its environment goes), the stream goes on.
starter_may_exit(_Config) ->
    Self = self(),
    {Pid, MRef} = spawn_monitor(fun() ->
                                        {ok, Ref} = py:stream_start('__main__', count_to, [3000],
                                                                    #{owner => Self, max_inflight => 100}),
                                        Self ! {ref, Ref}
                                end),
    Ref = receive {ref, R} -> R after 10000 -> ct:fail(no_ref) end,
    receive {'DOWN', MRef, process, Pid, _} -> ok end,
    %% the starter's exit reaches the sidecar ({down, _}) while items flow
    timer:sleep(100),
    {done, Items} = collect(Ref),
    ?equal(lists:seq(1, 3000), Items).

%% Calls of other processes to the same context are served while a slow
%% stream runs there: each batch is a request of its own.
calls_interleave(_Config) ->
    Ctx = py:context(1),
    ok = py_context_router:bind_context(Ctx),
    Items = 100,
    {ok, Ref} = py:stream_start('__main__', slow, [Items, 0.01]),
    ?expect({py_stream, Ref, {data, 0}}, receive {py_stream, Ref, _} = M -> M after 10000 -> timeout end),
    Self = self(),
    Calls = 20,
    [spawn_link(fun() -> Self ! {call, I, py:eval(Ctx, <<"i * 2">>, #{i => I})} end)
     || I <- lists:seq(1, Calls)],
    Results = [receive {call, I, R} -> R after 30000 -> timeout end || I <- lists:seq(1, Calls)],
    ?equal([{ok, I * 2} || I <- lists:seq(1, Calls)], Results),
    %% the calls did not wait for the stream's end (100 x 10 ms of sleeps)
    ?expect(false, receive {py_stream, Ref, done} -> true after 0 -> false end),
    ct:log("items come by the time the calls ended: ~b of ~b", [qlen(self()) + 1, Items]),
    {Last, Rest} = drain(Ref, []),
    ?expect(done, Last),
    ?equal(lists:seq(1, Items - 1), Rest).

%% A relay that is killed: the sidecar closes its stream when the BEAM says
%% the relay exited ({down, Ctxs}), as it drops an environment.
relay_killed_runs_finally(_Config) ->
    Key = <<"stream relay_killed_runs_finally">>,
    Before = erlang:processes(),
    {ok, Ref} = py:stream_start('__main__', forever_key, [Key], #{max_inflight => 5}),
    ?expect({py_stream, Ref, {data, 0}}, receive {py_stream, Ref, _} = M -> M after 10000 -> timeout end),
    [Relay] = [P || P <- erlang:processes() -- Before,
                    {current_function, {py_stream, _, _}} <- [erlang:process_info(P, current_function)]],
    exit(Relay, kill),
    ok = py_ct:wait_until(fun() -> py:state_fetch(Key) =:= {ok, <<"closed">>} end, 10000, "the finally").

%% py:stream and py:stream_start in an Erlang function that Python called,
%% on the context that waits for it.
from_a_callback(_Config) ->
    Self = self(),
    py:register_function(stream_from_erlang,
                         fun([N]) ->
                                 {ok, L} = py:stream(builtins, range, [N]),
                                 {ok, Ref} = py:stream_start(builtins, range, [N], #{owner => Self}),
                                 Self ! {callback_ref, Ref},
                                 L
                         end),
    try
        ?expect({ok, [0, 1, 2]}, py:call('__main__', stream_from_callback, [3])),
        Ref = receive {callback_ref, R} -> R after 10000 -> ct:fail(no_ref) end,
        ?expect({done, [0, 1, 2]}, collect(Ref))
    after
        py:unregister_function(stream_from_erlang)
    end.

%% A SIGKILL of the sidecar during 50 streams (and py:stream calls, an async
%% generator's stream, 50 tasks): each ends with {python_crashed, _}, none
%% hangs, and new streams work after.
kill_during_50_streams(_Config) ->
    Self = self(),
    Owners = [spawn_link(fun() -> Self ! {ended, self(), until_end(Self)} end) || _ <- lists:seq(1, 50)],
    Refs = [begin
                Tag = make_ref(),
                {ok, Ref} = py:stream_start('__main__', forever_then, [Self, Tag],
                                            #{owner => O, max_inflight => 20}),
                O ! {ref, Ref},
                Ref
            end || O <- Owners],
    ?equal(50, length(Refs)),
    Lists = [spawn_link(fun() -> Self ! {list, self(), py:stream('__main__', slow, [100000, 0.001])} end)
             || _ <- lists:seq(1, 4)],
    [receive {first, O} -> ok after 30000 -> ct:fail("no item for ~p", [O]) end || O <- Owners],
    %% and 50 tasks, half on each context, with an async generator's stream
    Tasks = [py_event_loop:create_task(py:context(1 + I rem 2), asyncio, sleep, [30]) || I <- lists:seq(1, 50)],
    {ok, ARef} = py:stream_start('__main__', aslow, [1000, 0.01]),
    receive {py_stream, ARef, {data, 0}} -> ok after 30000 -> ct:fail(no_async_item) end,
    Port = py_ct:kill_sidecar(),
    [?expect({error, {python_crashed, _}}, py_event_loop:await(T, 30000)) || T <- Tasks],
    ?expect({error, {python_crashed, _}}, last_event(ARef)),
    [receive
         {ended, O, Result} -> ?expect({error, {python_crashed, _}}, Result)
     after 30000 -> ct:fail("stream of ~p hung", [O])
     end || O <- Owners],
    [receive
         {list, L, Result} -> ?expect({error, {python_crashed, _}}, Result)
     after 30000 -> ct:fail("py:stream of ~p hung", [L])
     end || L <- Lists],
    py_ct:wait_restarted(Port),
    ?expect({ok, [0, 1, 2]}, py:stream(builtins, range, [3])),
    {ok, Ref} = py:stream_start(builtins, range, [3]),
    ?expect({done, [0, 1, 2]}, collect(Ref)).

%%--------------------------------------------------------------------

%% {done, Items} | {error, Reason, Items} | timeout
collect(Ref) ->
    collect(Ref, []).

collect(Ref, Acc) ->
    receive
        {py_stream, Ref, {data, X}} -> collect(Ref, [X | Acc]);
        {py_stream, Ref, done} -> {done, lists:reverse(Acc)};
        {py_stream, Ref, {error, E}} -> {error, E, lists:reverse(Acc)}
    after 30000 -> timeout
    end.

%% The event after the items still in the mailbox.
last_event(Ref) ->
    receive
        {py_stream, Ref, {data, _}} -> last_event(Ref);
        {py_stream, Ref, Event} -> Event
    after 10000 -> timeout
    end.

%% The owner's end: the stream's last event, items skipped; Parent hears
%% of the first item.
until_end(Parent) ->
    Ref = receive {ref, R} -> R end,
    receive {py_stream, Ref, {data, _}} -> Parent ! {first, self()} end,
    last_event_forever(Ref).

last_event_forever(Ref) ->
    receive
        {py_stream, Ref, {data, _}} -> last_event_forever(Ref);
        {py_stream, Ref, Event} -> Event
    end.

drain(Ref, Acc) ->
    receive
        {py_stream, Ref, {data, X}} -> drain(Ref, [X | Acc]);
        {py_stream, Ref, Event} -> {Event, lists:reverse(Acc)}
    after 30000 -> {timeout, Acc}
    end.

%% In the owner: N items {I, Blob} in order 0..N-1, then done.
consume_in_order(N) ->
    Ref = receive {ref, R} -> R end,
    consume_in_order(Ref, 0, N).

consume_in_order(Ref, N, N) ->
    receive
        {py_stream, Ref, done} -> ok;
        {py_stream, Ref, Other} -> {unexpected, Other}
    after 30000 -> {timeout, N}
    end;
consume_in_order(Ref, I, N) ->
    receive
        {py_stream, Ref, {data, {I, Blob}}} when is_binary(Blob) -> consume_in_order(Ref, I + 1, N);
        {py_stream, Ref, Other} -> {out_of_order, I, Other}
    after 30000 -> {timeout, I}
    end.

qlen(Pid) ->
    case erlang:process_info(Pid, message_queue_len) of
        {message_queue_len, L} -> L;
        undefined -> 0
    end.

%% Max mailbox length and memory over Times samples, Ms apart.
sample(_Pid, 0, _Ms, Acc) ->
    Acc;
sample(Pid, Times, Ms, Acc) ->
    timer:sleep(Ms),
    sample(Pid, Times - 1, Ms, max2(Acc, {qlen(Pid), erlang:memory(total)})).

sample_until_result(Pid, Acc) ->
    receive
        {owner_result, R} -> {Acc, R}
    after 5 ->
        sample_until_result(Pid, max2(Acc, {qlen(Pid), erlang:memory(total)}))
    end.

max2({A, B}, {C, D}) -> {max(A, C), max(B, D)}.

%% While an async generator awaits (0.5 s per item, on the context's loop),
%% its context serves calls: none waits for an item's await (a call that
%% did would take up to 0.5 s; the bound is half that), and the items all
%% come, in order.
async_generator_frees_context(_Config) ->
    Ctx = py:context(),
    {ok, Ref} = py:stream_start('__main__', aslow, [4, 0.5]),
    {Items, Calls, Worst} = calls_during(Ref, Ctx, [], 0, 0),
    ?expect([0, 1, 2, 3], Items),
    ct:pal("~b calls during the stream, the longest ~b us", [Calls, Worst]),
    true = Calls >= 10,
    true = Worst < 250000.

calls_during(Ref, Ctx, Items, Calls, Worst) ->
    receive
        {py_stream, Ref, {data, X}} -> calls_during(Ref, Ctx, [X | Items], Calls, Worst);
        {py_stream, Ref, done} -> {lists:reverse(Items), Calls, Worst};
        {py_stream, Ref, Other} -> ct:fail({stream, Other})
    after 0 ->
        {Us, {ok, 2}} = timer:tc(fun() -> py:eval(Ctx, <<"1 + 1">>) end),
        calls_during(Ref, Ctx, Items, Calls + 1, max(Worst, Us))
    end.
