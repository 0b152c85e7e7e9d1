%% API.md section 6, the NIF 2.x's continuations: a function that returns
%% an erlang.ScheduleMarker (schedule, schedule_py, schedule_inline) has the
%% result of what the marker names; consume_time_slice. Through the port
%% into real Python.
-module(py_schedule_SUITE).

-include_lib("common_test/include/ct.hrl").
-include("py_ct.hrl").

-export([all/0, init_per_suite/1, end_per_suite/1]).
-export([schedule_registered/1, schedule_py/1, schedule_inline/1, marker_chain/1,
         marker_from_eval/1, marker_errors/1, marker_in_worker/1, consume_time_slice/1]).

all() ->
    [schedule_registered, schedule_py, schedule_inline, marker_chain, marker_from_eval,
     marker_errors, marker_in_worker, consume_time_slice].

init_per_suite(Config) ->
    py_ct:start([{num_contexts, 2}]),
    ok = py:register_function(erlmod_add, fun([A, B]) -> A + B end),
    Config.

end_per_suite(_Config) ->
    _ = py:unregister_function(erlmod_add),
    py_ct:stop().

%% erlang.schedule(name, *args) returned by the called function: the
%% result is the registered Erlang function's; schedule() alone yields.
schedule_registered(_Config) ->
    Ctx = py:context(1),
    ok = py:exec(Ctx, <<"def sched_add(a, b):\n"
                        "    return erlang.schedule('erlmod_add', a, b)\n">>),
    ?equal({ok, 12}, py:call(Ctx, '__main__', sched_add, [5, 7])),
    ?equal({ok, true}, py:eval(Ctx, <<"isinstance(erlang.schedule('erlmod_add', 1, 2), erlang.ScheduleMarker)">>)),
    ?equal({ok, none}, py:eval(Ctx, <<"erlang.schedule()">>)),
    %% a marker the function does not return has no effect
    ok = py:exec(Ctx, <<"def sched_dropped():\n"
                        "    erlang.schedule('erlmod_add', 1, 2)\n"
                        "    return 'mine'\n">>),
    ?equal({ok, <<"mine">>}, py:call(Ctx, '__main__', sched_dropped, [])).

%% schedule_py to a module's function and to a __main__ function, with
%% args and kwargs.
schedule_py(_Config) ->
    Ctx = py:context(1),
    ok = py:exec(Ctx, <<"def sched_sqrt(x):\n"
                        "    return erlang.schedule_py('math', 'sqrt', [x])\n"
                        "def greet(name, prefix='Hello'):\n"
                        "    return f'{prefix}, {name}!'\n"
                        "def sched_greet(name, prefix):\n"
                        "    return erlang.schedule_py('__main__', 'greet', [name], {'prefix': prefix})\n"
                        "def sched_dotted():\n"
                        "    return erlang.schedule_py('os', 'path.join', ('a', 'b'))\n">>),
    ?equal({ok, 4.0}, py:call(Ctx, '__main__', sched_sqrt, [16.0])),
    ?equal({ok, <<"Hi, World!">>}, py:call(Ctx, '__main__', sched_greet, [<<"World">>, <<"Hi">>])),
    ?equal({ok, <<"a/b">>}, py:call(Ctx, '__main__', sched_dotted, [])),
    %% __main__ is the caller's: the other context has no greet
    ok = py:exec(py:context(2), <<"def sched_greet2():\n"
                                  "    return erlang.schedule_py('__main__', 'greet', ['x'])\n">>),
    ?expect({error, {'NameError', _}}, py:call(py:context(2), '__main__', sched_greet2, [])).

%% schedule_inline: args, kwargs, the caller's globals.
schedule_inline(_Config) ->
    Ctx = py:context(2),
    ok = py:exec(Ctx, <<"base = 100\n"
                        "def add_base(x, extra=0):\n"
                        "    return base + x + extra\n"
                        "def sched_inline(x):\n"
                        "    return erlang.schedule_inline('__main__', 'add_base', args=[x], kwargs={'extra': 1})\n"
                        "def sched_inline_mod():\n"
                        "    return erlang.schedule_inline('operator', 'mul', [6, 7])\n">>),
    ?equal({ok, 106}, py:call(Ctx, '__main__', sched_inline, [5])),
    ?equal({ok, 42}, py:call(Ctx, '__main__', sched_inline_mod, [])).

%% A marker whose function returns a marker again: the chain runs to its
%% end (inline -> py -> Erlang), and a loop of many steps too.
marker_chain(_Config) ->
    Ctx = py:context(1),
    ok = py:exec(Ctx, <<"def step1(x):\n"
                        "    return erlang.schedule_inline('__main__', 'step2', [x + 1])\n"
                        "def step2(x):\n"
                        "    return erlang.schedule_py('__main__', 'step3', [x * 10])\n"
                        "def step3(x):\n"
                        "    return erlang.schedule('erlmod_add', x, 1)\n"
                        "def chunks(data, offset=0, acc=0):\n"
                        "    end = min(offset + 10, len(data))\n"
                        "    acc += sum(data[offset:end])\n"
                        "    if end < len(data):\n"
                        "        return erlang.schedule_inline('__main__', 'chunks', [data, end, acc])\n"
                        "    return acc\n">>),
    %% (1 + 1) * 10 + 1
    ?equal({ok, 21}, py:call(Ctx, '__main__', step1, [1])),
    Data = lists:seq(1, 1000),
    ?equal({ok, lists:sum(Data)}, py:call(Ctx, '__main__', chunks, [Data])).

%% A marker that an eval returns, directly or from a function it calls;
%% one in a cast and a spawn_call too.
marker_from_eval(_Config) ->
    Ctx = py:context(1),
    ?equal({ok, 4.0}, py:eval(Ctx, <<"erlang.schedule_py('math', 'sqrt', [16.0])">>)),
    ?equal({ok, 9}, py:eval(Ctx, <<"erlang.schedule('erlmod_add', 4, 5)">>)),
    ok = py:exec(Ctx, <<"def sched_sqrt_e(x):\n"
                        "    return erlang.schedule_inline('math', 'sqrt', [x])\n">>),
    ?equal({ok, 3.0}, py:eval(Ctx, <<"sched_sqrt_e(9.0)">>)),
    Ref = py:spawn_call(math, sqrt, [25.0]),
    ?equal({ok, 5.0}, py:await(Ref, 5000)),
    Ref2 = py:spawn_call(erlang, schedule_py, [math, sqrt, [36.0]]),
    ?equal({ok, 6.0}, py:await(Ref2, 5000)),
    %% py:call of schedule itself: the marker is the call's result
    ?equal({ok, 3}, py:call(erlang, schedule, [erlmod_add, 1, 2])).

%% What a marker names fails: the request's error. A marker that is not
%% the result (in a list) is an object like any other: no term for it.
marker_errors(_Config) ->
    Ctx = py:context(1),
    ?expect({error, {'Error', _}}, py:eval(Ctx, <<"erlang.schedule('erlmod_unregistered', 1)">>)),
    ?expect({error, {'AttributeError', _}}, py:eval(Ctx, <<"erlang.schedule_py('math', 'no_such_fn')">>)),
    ?expect({error, {'ModuleNotFoundError', _}},
            py:eval(Ctx, <<"erlang.schedule_inline('erlmod_no_module', 'f')">>)),
    ?expect({error, {'ZeroDivisionError', _}}, py:eval(Ctx, <<"erlang.schedule_py('operator', 'truediv', [1, 0])">>)),
    ?expect({error, {'TypeError', _}}, py:eval(Ctx, <<"erlang.schedule_py(1, 'f')">>)),
    ?expect({error, {'TypeError', _}}, py:eval(Ctx, <<"erlang.schedule_py('math', 'sqrt', 4)">>)),
    ?expect({error, {'TypeError', _}}, py:eval(Ctx, <<"erlang.schedule_inline('math', 'sqrt', [4], [])">>)),
    ?expect({error, {'TypeError', _}}, py:eval(Ctx, <<"[erlang.schedule_py('math', 'sqrt', [4.0])]">>)),
    ?equal({ok, true}, py:eval(Ctx, <<"'schedule_py' in repr(erlang.schedule_py('math', 'sqrt'))">>)),
    %% the context goes on
    ?equal({ok, 2}, py:eval(Ctx, <<"1 + 1">>)).

%% Markers in a worker context (the main interpreter).
marker_in_worker(_Config) ->
    {ok, [W]} = py_context_router:start_pool(erlmod_worker, 1, worker),
    try
        ok = py:exec(W, <<"def w_sched(x):\n"
                          "    return erlang.schedule_inline('__main__', 'w_double', [x])\n"
                          "def w_double(x):\n"
                          "    return erlang.schedule('erlmod_add', x, x)\n">>),
        ?equal({ok, 42}, py:call(W, '__main__', w_sched, [21]))
    after
        ok = py_context_router:stop_pool(erlmod_worker)
    end.

%% consume_time_slice(percent): a bool, True once the request used 100
%% percent of its slice; a new request starts a new slice.
consume_time_slice(_Config) ->
    Ctx = py:context(1),
    ?equal({ok, false}, py:eval(Ctx, <<"erlang.consume_time_slice(1)">>)),
    ?equal({ok, true}, py:eval(Ctx, <<"erlang.consume_time_slice(100)">>)),
    ?equal({ok, [false, true, false]},
           py:eval(Ctx, <<"[erlang.consume_time_slice(p) for p in (50, 50, 50)]">>)),
    %% 99 times 1 percent, then the 100th; out-of-range percents clamp
    ?equal({ok, {99, true}},
           py:eval(Ctx, <<"(lambda r: (r[:99].count(False), r[99]))"
                          "([erlang.consume_time_slice(1) for _ in range(100)])">>)),
    ?equal({ok, [false, true]}, py:eval(Ctx, <<"[erlang.consume_time_slice(0), erlang.consume_time_slice(10**30)]">>)),
    ?expect({error, {'TypeError', _}}, py:eval(Ctx, <<"erlang.consume_time_slice(1.5)">>)),
    %% the documented pattern: yield with a marker when the slice is used
    ok = py:exec(Ctx, <<"def long_sum(items, start=0, acc=0):\n"
                        "    for i in range(start, len(items)):\n"
                        "        acc += items[i]\n"
                        "        if erlang.consume_time_slice(5):\n"
                        "            return erlang.schedule_py('__main__', 'long_sum', [items], {'start': i + 1, 'acc': acc})\n"
                        "    return acc\n">>),
    Items = lists:seq(1, 500),
    ?equal({ok, lists:sum(Items)}, py:call(Ctx, '__main__', long_sum, [Items])).
