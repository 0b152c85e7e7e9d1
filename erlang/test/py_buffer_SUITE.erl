%% Buffers (API.md section 8, docs/channels.md): Erlang writes bytes,
%% Python reads them as a file (erlang.PyBuffer) whose reads wait for data
%% or the close.
-module(py_buffer_SUITE).

-include_lib("common_test/include/ct.hrl").
-include("py_ct.hrl").

-export([all/0, init_per_suite/1, end_per_suite/1]).
-export([nif_example/1, readline_waits/1, read_n_waits/1, iteration_and_readlines/1,
         seek_and_tell/1, timeout_ends_read/1, write_after_close/1, bad_args/1]).

all() ->
    [nif_example, readline_waits, read_n_waits, iteration_and_readlines, seek_and_tell,
     timeout_ends_read, write_after_close, bad_args].

-define(PY, <<"
import erlang
from erlang import PyBuffer

def handle_request(environ):
    input_buf = environ['input']
    return input_buf.read()

def wrapped(environ):
    return PyBuffer(PyBuffer(environ['input'])).read()

def tell_then(pid, h, what, *args):
    buf = PyBuffer(h)
    erlang.send(pid, erlang.Atom('reading'))
    return getattr(buf, what)(*args)

def lines(h):
    return [line for line in PyBuffer(h)]

def readlines(h):
    return PyBuffer(h).readlines()

def seeks(h):
    b = PyBuffer(h)
    first = b.read(3)
    t = b.tell()
    b.seek(0)
    again = b.read(3)
    b.seek(1, 1)
    rest = b.read()
    end = b.seek(0, 2)
    b.seek(2)
    return [first, t, again, rest, end, b.readline(), b.tell()]
">>).

init_per_suite(Config) ->
    py_ct:start([{num_contexts, 2}]),
    [ok = py_ct:main_exec(py:context(I), ?PY) || I <- [1, 2]],
    Config.

end_per_suite(_Config) ->
    py_ct:stop().

call(F, Args) ->
    py:call(py:context(1), '__main__', F, Args, #{timeout => 10000}).

%% The NIF's example: the handle is a PyBuffer in Python (and PyBuffer of
%% it is itself).
nif_example(_Config) ->
    {ok, Buf} = py_buffer:new(4096),
    ok = py_buffer:write(Buf, <<"chunk1">>),
    ok = py_buffer:write(Buf, <<"chunk2">>),
    ok = py_buffer:close(Buf),
    ?expect({ok, <<"chunk1chunk2">>}, call(handle_request, [#{<<"input">> => Buf}])),
    {ok, Buf2} = py_buffer:new(),
    ok = py_buffer:write(Buf2, <<"again">>),
    ok = py_buffer:close(Buf2),
    ?expect({ok, <<"again">>}, call(wrapped, [#{<<"input">> => Buf2}])),
    ?expect({ok, <<"PyBuffer">>}, py:eval(py:context(2), <<"type(b).__name__">>, #{b => Buf2})).

%% readline waits for its newline, across writes; at the close it gives
%% what is left.
readline_waits(_Config) ->
    {ok, Buf} = py_buffer:new(),
    Self = self(),
    spawn_link(fun() -> Self ! {line, call(tell_then, [Self, Buf, readline])} end),
    receive reading -> ok after 5000 -> ct:fail(not_reading) end,
    ok = py_buffer:write(Buf, <<"hel">>),
    ?expect(nothing, receive {line, _} = L0 -> L0 after 100 -> nothing end),
    ok = py_buffer:write(Buf, <<"lo\nworld">>),
    ?expect({line, {ok, <<"hello\n">>}}, receive {line, _} = L -> L after 5000 -> timeout end),
    {ok, Buf2} = py_buffer:new(),
    spawn_link(fun() -> Self ! {line, call(tell_then, [Self, Buf2, readline])} end),
    receive reading -> ok after 5000 -> ct:fail(not_reading) end,
    ok = py_buffer:write(Buf2, <<"no newline">>),
    ok = py_buffer:close(Buf2),
    ?expect({line, {ok, <<"no newline">>}}, receive {line, _} = L2 -> L2 after 5000 -> timeout end).

%% read(n) waits for n bytes, or the close.
read_n_waits(_Config) ->
    {ok, Buf} = py_buffer:new(),
    Self = self(),
    spawn_link(fun() -> Self ! {read, call(tell_then, [Self, Buf, read, 5])} end),
    receive reading -> ok after 5000 -> ct:fail(not_reading) end,
    ok = py_buffer:write(Buf, <<"ab">>),
    ok = py_buffer:write(Buf, <<"cd">>),
    ?expect(nothing, receive {read, _} = R0 -> R0 after 100 -> nothing end),
    ok = py_buffer:write(Buf, <<"efgh">>),
    ?expect({read, {ok, <<"abcde">>}}, receive {read, _} = R -> R after 5000 -> timeout end),
    {ok, Buf2} = py_buffer:new(),
    spawn_link(fun() -> Self ! {read, call(tell_then, [Self, Buf2, read, 10])} end),
    receive reading -> ok after 5000 -> ct:fail(not_reading) end,
    ok = py_buffer:write(Buf2, <<"xyz">>),
    ok = py_buffer:close(Buf2),
    ?expect({read, {ok, <<"xyz">>}}, receive {read, _} = R2 -> R2 after 5000 -> timeout end).

iteration_and_readlines(_Config) ->
    {ok, Buf} = py_buffer:new(),
    Self = self(),
    spawn_link(fun() -> Self ! {lines, call(lines, [Buf])} end),
    ok = py_buffer:write(Buf, <<"a\nb">>),
    ok = py_buffer:write(Buf, <<"\nc\n">>),
    ok = py_buffer:write(Buf, [<<"d">>]),
    ok = py_buffer:close(Buf),
    ?expect({lines, {ok, [<<"a\n">>, <<"b\n">>, <<"c\n">>, <<"d">>]}},
            receive {lines, _} = L -> L after 5000 -> timeout end),
    {ok, Buf2} = py_buffer:new(),
    ok = py_buffer:write(Buf2, <<"1\n2\n">>),
    ok = py_buffer:close(Buf2),
    ?expect({ok, [<<"1\n">>, <<"2\n">>]}, call(readlines, [Buf2])).

seek_and_tell(_Config) ->
    {ok, Buf} = py_buffer:new(),
    ok = py_buffer:write(Buf, <<"abcdef\ngh">>),
    ok = py_buffer:close(Buf),
    ?expect({ok, [<<"abc">>, 3, <<"abc">>, <<"ef\ngh">>, 9, <<"cdef\n">>, 7]}, call(seeks, [Buf])).

%% A read waiting for data ends at its caller's timeout.
timeout_ends_read(_Config) ->
    {ok, Buf} = py_buffer:new(),
    ?expect({error, timeout},
            py:call(py:context(2), '__main__', tell_then, [self(), Buf, read], #{timeout => 300})),
    ?expect({ok, 1}, py:eval(py:context(2), <<"1">>, #{})),
    ok = py_buffer:close(Buf).

write_after_close(_Config) ->
    {ok, Buf} = py_buffer:new(),
    ok = py_buffer:close(Buf),
    ?expect({error, closed}, py_buffer:write(Buf, <<"late">>)),
    ?expect({ok, <<>>}, call(handle_request, [#{<<"input">> => Buf}])).

bad_args(_Config) ->
    ?expect({error, {badarg, _}}, py_buffer:new(0)),
    {ok, Buf} = py_buffer:new(),
    ?expect({error, {badarg, _}}, py_buffer:write(Buf, 42)),
    ?expect({error, {badarg, _}}, py_buffer:write(Buf, [1000])),
    ok = py_buffer:close(Buf).
