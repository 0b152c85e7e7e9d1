%% Channels (API.md section 8, docs/channels.md): Erlang -> Python queues
%% of terms and bytes, bounded (busy), closed by close/1, by their creator's
%% death and by a sidecar restart; Python's Channel receives blocking,
%% without blocking other contexts, ended by a timeout, and in asyncio.
-module(py_channel_SUITE).

-include_lib("common_test/include/ct.hrl").
-include("py_ct.hrl").

-export([all/0, init_per_suite/1, end_per_suite/1]).
-export([nif_example/1, ping_pong/1, busy_when_full/1, try_receive/1, iteration_ends_at_close/1,
         channel_closed/1, receive_blocks_caller_only/1, timeout_ends_receive/1,
         creator_death_closes/1, async_receive/1, many_async_waiters/1, byte_channel_both_ways/1, info_and_badarg/1,
         from_erlang_channel_module/1, kill_during_receive/1]).

all() ->
    [nif_example, ping_pong, busy_when_full, try_receive, iteration_ends_at_close, channel_closed,
     receive_blocks_caller_only, timeout_ends_receive, creator_death_closes, async_receive,
     many_async_waiters,
     byte_channel_both_ways, info_and_badarg, from_erlang_channel_module, kill_during_receive].

-define(PY, <<"
import erlang
from erlang import Channel, ByteChannel, ChannelClosed, Atom

def serve(h):
    from erlang.channel import Channel, reply
    ch = Channel(h)
    for msg in ch:
        _, sender_pid, data = msg
        reply(sender_pid, (Atom('response'), data.upper()))
    return 'closed'

def pong(h, n):
    ch = Channel(h)
    for i in range(n):
        _, pid, k = ch.receive()
        erlang.send(pid, (Atom('pong'), k + 1))
    return n

def recv_one(h, timeout=None):
    return Channel(h).receive(timeout)

def try_one(h):
    return Channel(h).try_receive()

def drain(h):
    return list(Channel(h))

def closed_or(h):
    try:
        return Channel(h).receive()
    except ChannelClosed:
        return 'closed'

def tell_then_receive(h, pid):
    erlang.send(pid, Atom('receiving'))
    return closed_or(h)

async def _amain(h, pid):
    import asyncio
    ch = Channel(h)
    ticks = 0
    async def ticker():
        nonlocal ticks
        while True:
            await asyncio.sleep(0.001)
            ticks += 1
            if ticks == 1:
                erlang.send(pid, Atom('ticking'))
    t = asyncio.ensure_future(ticker())
    first = await ch.async_receive()
    rest = [m async for m in ch]
    t.cancel()
    return [first] + rest, ticks

def async_drain(h, pid):
    import asyncio
    got, ticks = asyncio.run(_amain(h, pid))
    return [got, ticks > 0]

async def _many(h, pid, n):
    import asyncio
    ch = Channel(h)
    tasks = [asyncio.ensure_future(ch.async_receive()) for _ in range(n)]
    await asyncio.sleep(0.01)
    erlang.send(pid, Atom('waiting'))
    got = await asyncio.wait_for(asyncio.gather(*tasks), 10)
    return sorted(got)

def many_waiters(h, pid, n):
    import asyncio
    return asyncio.run(_many(h, pid, n))

def bytes_echo(h, n):
    ch = ByteChannel(h)
    for _ in range(n):
        ch.send_bytes(ch.receive_bytes()[::-1])
    return n
">>).

init_per_suite(Config) ->
    py_ct:start([{num_contexts, 2}]),
    [ok = py_ct:main_exec(py:context(I), ?PY) || I <- [1, 2]],
    Config.

end_per_suite(_Config) ->
    py_ct:stop().

call(Ctx, F, Args) ->
    py:call(Ctx, '__main__', F, Args, #{timeout => 10000}).

%% The NIF's example: Python replies to the sender named in each message.
nif_example(_Config) ->
    {ok, Ch} = py_channel:new(),
    Self = self(),
    Server = spawn_link(fun() -> Self ! {served, call(py:context(1), serve, [Ch])} end),
    ok = py_channel:send(Ch, {request, self(), <<"data">>}),
    ?expect({response, <<"DATA">>}, receive {response, _} = R -> R after 5000 -> timeout end),
    ok = py_channel:close(Ch),
    ?expect({served, {ok, <<"closed">>}}, receive {served, _} = S -> S after 5000 -> timeout end),
    unlink(Server).

%% Erlang -> Python by the channel, Python -> Erlang by erlang.send.
ping_pong(_Config) ->
    N = 200,
    {ok, Ch} = py_channel:new(#{max_size => 1024}),
    Self = self(),
    spawn_link(fun() -> Self ! {done, call(py:context(2), pong, [Ch, N])} end),
    lists:foreach(fun(K) ->
                          ok = py_channel:send(Ch, {ping, self(), K}),
                          receive {pong, K1} -> ?equal(K + 1, K1) after 5000 -> ct:fail(no_pong) end
                  end, lists:seq(1, N)),
    ?expect({done, {ok, N}}, receive {done, _} = D -> D after 5000 -> timeout end),
    ok = py_channel:close(Ch).

%% busy once the bound is reached, with no round trip; ok again once Python
%% took messages and the sidecar said so.
busy_when_full(_Config) ->
    Msg = binary:copy(<<"x">>, 50),
    Size = byte_size(term_to_binary(Msg)),
    {ok, Ch} = py_channel:new(#{max_size => 3 * Size}),
    [ok = py_channel:send(Ch, Msg) || _ <- [1, 2, 3]],
    ?expect(busy, py_channel:send(Ch, Msg)),
    ?expect(#{count := 3, closed := false}, py_channel:info(Ch)),
    ?equal(3 * Size, maps:get(size, py_channel:info(Ch))),
    ?expect({ok, Msg}, call(py:context(1), try_one, [Ch])),
    py_ct:wait_until(fun() -> py_channel:send(Ch, Msg) =:= ok end, 5000, "room in the channel"),
    ?expect(busy, py_channel:send(Ch, Msg)),
    [?expect({ok, Msg}, call(py:context(2), try_one, [Ch])) || _ <- [1, 2, 3]],
    py_ct:wait_until(fun() -> maps:get(size, py_channel:info(Ch)) =:= 0 end, 5000, "acks"),
    ?expect(#{count := 0}, py_channel:info(Ch)),
    ?expect({ok, []}, call(py:context(1), drain, [close_first(Ch)])),
    %% an empty channel takes one message of any size
    {ok, Small} = py_channel:new(#{max_size => 10}),
    ?expect(ok, py_channel:send(Small, binary:copy(<<"y">>, 1000))),
    ?expect(busy, py_channel:send(Small, 1)).

close_first(Ch) ->
    ok = py_channel:close(Ch),
    Ch.

try_receive(_Config) ->
    {ok, Ch} = py_channel:new(),
    ?expect({ok, none}, call(py:context(1), try_one, [Ch])),
    ok = py_channel:send(Ch, #{a => [1, 2.5, <<"b">>]}),
    ?expect({ok, #{<<"a">> := [1, 2.5, <<"b">>]}}, call(py:context(2), try_one, [Ch])),
    ?expect({ok, none}, call(py:context(1), try_one, [Ch])),
    ok = py_channel:close(Ch),
    ?expect({error, {'ChannelClosed', _}}, call(py:context(1), try_one, [Ch])).

iteration_ends_at_close(_Config) ->
    Count = fun() -> {ok, N} = py:eval(py:context(2), <<"erlang._chan_count()">>), N end,
    Before = Count(),
    {ok, Ch} = py_channel:new(),
    ?equal(Before + 1, Count()),
    Self = self(),
    spawn_link(fun() -> Self ! {drained, call(py:context(1), drain, [Ch])} end),
    [ok = py_channel:send(Ch, I) || I <- [1, 2, 3]],
    timer:sleep(50),
    [ok = py_channel:send(Ch, I) || I <- [4, 5]],
    ok = py_channel:close(Ch),
    ?expect({drained, {ok, [1, 2, 3, 4, 5]}}, receive {drained, _} = D -> D after 5000 -> timeout end),
    %% closed and drained: gone from the sidecar's table and from py_channels'
    ?equal(Before, Count()),
    ?equal([], ets:lookup(py_channels, py_channels:id(Ch))).

channel_closed(_Config) ->
    {ok, Ch} = py_channel:new(),
    ok = py_channel:send(Ch, last),
    ok = py_channel:close(Ch),
    ok = py_channel:close(Ch),
    ?expect({error, closed}, py_channel:send(Ch, more)),
    ?expect(#{closed := true}, py_channel:info(Ch)),
    ?expect({ok, <<"last">>}, call(py:context(1), recv_one, [Ch])),
    ?expect({error, {'ChannelClosed', _}}, call(py:context(1), recv_one, [Ch])),
    ?expect({ok, <<"closed">>}, call(py:context(2), closed_or, [Ch])).

%% A receive() blocks its caller, never its context: other contexts serve,
%% and so does its own, for other processes.
receive_blocks_caller_only(_Config) ->
    {ok, Ch} = py_channel:new(),
    Self = self(),
    spawn_link(fun() -> Self ! {got, call(py:context(1), tell_then_receive, [Ch, Self])} end),
    receive receiving -> ok after 5000 -> ct:fail(not_receiving) end,
    [?expect({ok, 2}, py:eval(py:context(2), <<"1 + 1">>)) || _ <- lists:seq(1, 20)],
    %% the receiving context serves other processes' calls meanwhile, each
    %% on top of the waiting receive, in their own environments
    Others = [spawn_monitor(fun() ->
                                    ok = py:exec(py:context(1), <<"mine = 7">>),
                                    exit({py:eval(py:context(1), <<"mine * 6">>),
                                          py:eval(py:context(1), <<"'ch' in dir()">>)})
                            end) || _ <- lists:seq(1, 10)],
    [?expect({'DOWN', M, process, P, {{ok, 42}, {ok, false}}},
             receive {'DOWN', M, process, P, _} = D -> D after 5000 -> {timeout, P} end)
     || {P, M} <- Others],
    ?expect(no_message_yet, receive {got, _} = Early -> Early after 0 -> no_message_yet end),
    ok = py_channel:send(Ch, hello),
    ?expect({got, {ok, <<"hello">>}}, receive {got, _} = G -> G after 5000 -> timeout end),
    ok = py_channel:close(Ch).

%% A caller's timeout ends the receive it waits in: the context is free.
timeout_ends_receive(_Config) ->
    {ok, Ch} = py_channel:new(),
    ?expect({error, timeout}, py:call(py:context(1), '__main__', recv_one, [Ch], #{timeout => 300})),
    ?expect({ok, 1}, py:eval(py:context(1), <<"1">>, #{})),
    %% Python's own timeout: TimeoutError
    ?expect({error, {'TimeoutError', _}}, call(py:context(1), recv_one, [Ch, 0.05])),
    %% the channel still works
    ok = py_channel:send(Ch, after_timeout),
    ?expect({ok, <<"after_timeout">>}, call(py:context(1), recv_one, [Ch])),
    ok = py_channel:close(Ch).

%% The creator's exit closes its channels: what they hold is dropped, a
%% blocked receiver gets ChannelClosed.
creator_death_closes(_Config) ->
    Self = self(),
    Creator = spawn(fun() ->
                            {ok, Full} = py_channel:new(),
                            {ok, Empty} = py_channel:new(),
                            ok = py_channel:send(Full, dropped),
                            Self ! {chs, Full, Empty},
                            receive stop -> ok end
                    end),
    {Full, Empty} = receive {chs, F, E} -> {F, E} after 5000 -> ct:fail(no_channel) end,
    spawn_link(fun() -> Self ! {got, call(py:context(2), tell_then_receive, [Empty, Self])} end),
    receive receiving -> ok after 5000 -> ct:fail(not_receiving) end,
    Creator ! stop,
    ?expect({got, {ok, <<"closed">>}}, receive {got, _} = G -> G after 5000 -> timeout end),
    py_ct:wait_until(fun() -> py_channel:send(Full, x) =:= {error, closed} end, 5000, "closed"),
    ?expect({ok, []}, call(py:context(1), drain, [Full])).

%% await async_receive() in asyncio.run: the loop runs other coroutines
%% while it waits (the ticker told us before anything was sent).
async_receive(_Config) ->
    {ok, Ch} = py_channel:new(),
    Self = self(),
    spawn_link(fun() -> Self ! {async, call(py:context(1), async_drain, [Ch, Self])} end),
    receive ticking -> ok after 5000 -> ct:fail(not_ticking) end,
    [ok = py_channel:send(Ch, I) || I <- [a, b, c]],
    ok = py_channel:close(Ch),
    ?expect({async, {ok, [[<<"a">>, <<"b">>, <<"c">>], true]}}, receive {async, _} = A -> A after 5000 -> timeout end).

%% More coroutines await one channel than it has eventfd watchers (64):
%% the others poll; each message goes to one of them.
many_async_waiters(_Config) ->
    N = 80,
    {ok, Ch} = py_channel:new(),
    Self = self(),
    spawn_link(fun() -> Self ! {many, call(py:context(1), many_waiters, [Ch, Self, N])} end),
    receive waiting -> ok after 5000 -> ct:fail(not_waiting) end,
    [ok = py_channel:send(Ch, I) || I <- lists:seq(1, N)],
    Expected = lists:seq(1, N),
    ?expect({many, {ok, Expected}}, receive {many, _} = M -> M after 15000 -> timeout end),
    ok = py_channel:close(Ch).

%% Raw bytes to Python, and back with send_bytes to the creator.
byte_channel_both_ways(_Config) ->
    {ok, Ch} = py_byte_channel:new(),
    Self = self(),
    spawn_link(fun() -> Self ! {echo, call(py:context(2), bytes_echo, [Ch, 3])} end),
    ok = py_byte_channel:send(Ch, <<"abc">>),
    ?expect({ok, <<"cba">>}, py_byte_channel:recv(Ch, 5000)),
    ok = py_byte_channel:send(Ch, [<<"12">>, "3"]),
    ok = py_byte_channel:send(Ch, <<>>),
    ?expect({ok, <<"321">>}, py_byte_channel:recv(Ch, 5000)),
    ?expect({ok, <<>>}, py_byte_channel:recv(Ch, 5000)),
    ?expect(empty, py_byte_channel:try_receive(Ch)),
    ?expect({echo, {ok, 3}}, receive {echo, _} = E -> E after 5000 -> timeout end),
    ?expect({error, {badarg, _}}, py_byte_channel:send(Ch, atom)),
    ok = py_byte_channel:send(Ch, <<"raw">>),
    ?expect({ok, <<"raw">>}, call(py:context(1), recv_one, [Ch])),
    ok = py_byte_channel:close(Ch),
    ?expect({error, closed}, py_byte_channel:send(Ch, <<"x">>)).

info_and_badarg(_Config) ->
    {ok, Ch} = py_channel:new(#{max_size => 1000}),
    ?expect(#{size := 0, count := 0, max_size := 1000, closed := false}, py_channel:info(Ch)),
    ?expect({error, {badarg, _}}, py_channel:new(#{max_size => 0})),
    ?expect({error, {badarg, _}}, py_channel:new(#{max_size => big})),
    ?expect({error, {badarg, _}}, py_channel:new(not_a_map)),
    ok = py_channel:close(Ch).

%% `from erlang.channel import Channel, reply', and Channel(handle) from
%% any context; a handle that is none is a TypeError.
from_erlang_channel_module(_Config) ->
    {ok, Ch} = py_channel:new(),
    ok = py_channel:send(Ch, 7),
    ?expect({ok, 7}, py:eval(py:context(2), <<"__import__('erlang.channel').channel.Channel(h).receive()">>,
                             #{h => Ch})),
    ?expect({error, {'TypeError', _}}, py:eval(py:context(2), <<"__import__('erlang').Channel((1, 2))">>)),
    ok = py_channel:close(Ch).

%% kill -9 of the sidecar during a blocked receive: the caller gets
%% python_crashed, the channel reports closed, a new channel works.
kill_during_receive(_Config) ->
    {ok, Ch} = py_channel:new(),
    Self = self(),
    spawn(fun() -> Self ! {got, call(py:context(1), tell_then_receive, [Ch, Self])} end),
    receive receiving -> ok after 5000 -> ct:fail(not_receiving) end,
    Port = py_ct:kill_sidecar(),
    ?expect({got, {error, {python_crashed, _}}}, receive {got, _} = G -> G after 10000 -> timeout end),
    ?expect({error, closed}, py_channel:send(Ch, x)),
    py_ct:wait_restarted(Port),
    ?expect({error, closed}, py_channel:send(Ch, x)),
    ?expect(#{closed := true}, py_channel:info(Ch)),
    %% py_channels forgot the old sidecar's channels
    py_ct:wait_until(fun() -> ets:lookup(py_channels, py_channels:id(Ch)) =:= [] end, 5000,
                     "the old channels forgotten"),
    %% from other processes: this one's environments must start from the
    %% __main__ that main_exec fills
    [py_ct:wait_until(fun() -> in_process(fun() -> py:eval(py:context(I), <<"1">>) end) =:= {ok, 1} end,
                      10000, "context")
     || I <- [1, 2]],
    [ok = py_ct:main_exec(py:context(I), ?PY) || I <- [1, 2]],
    {ok, Ch2} = py_channel:new(),
    ok = py_channel:send(Ch2, again),
    %% (py_ct:wait_restarted made this process's environment already)
    ?expect({ok, <<"again">>}, in_process(fun() -> call(py:context(2), recv_one, [Ch2]) end)),
    ok = py_channel:close(Ch2).

in_process(Fun) ->
    {Pid, MRef} = spawn_monitor(fun() -> exit({done, Fun()}) end),
    receive {'DOWN', MRef, process, Pid, {done, R}} -> R; {'DOWN', MRef, process, Pid, R} -> R end.
