%% API.md section 6, callbacks into Erlang: registering functions, calling
%% them from Python, errors both ways, and nesting (Erlang code inside a
%% callback calling Python again, on the same context or another).
-module(py_callback_SUITE).

-include_lib("common_test/include/ct.hrl").
-include("py_ct.hrl").

-export([all/0, init_per_suite/1, end_per_suite/1]).
-export([call_forms/1, register_mfa/1, unregister/1, bad_registration/1, erlang_exception/1,
         not_registered/1, python_exception_in_nested_call/1, reentrant_bound_context/1,
         nesting_50_levels/1, other_context/1, concurrent_chains/1, slow_callback_times_out/1,
         large_arguments/1, default_max_concurrent/1, send/1, whereis/1, sleep_and_schedule/1,
         from_threads/1, timeout_stops_the_chain/1, nested_call_imports/1,
         runtime_processes_out_of_reach/1, erlang_in_globals/1, exception_classes/1]).

%% used by register_mfa
-export([sum/1]).

all() ->
    [call_forms, register_mfa, unregister, bad_registration, erlang_exception, not_registered,
     python_exception_in_nested_call, reentrant_bound_context, nesting_50_levels, other_context,
     concurrent_chains, slow_callback_times_out, large_arguments, default_max_concurrent, send,
     whereis, sleep_and_schedule, from_threads, timeout_stops_the_chain, nested_call_imports,
     runtime_processes_out_of_reach, erlang_in_globals, exception_classes].

init_per_suite(Config) ->
    %% max_concurrent: nested calls take no slot; default_max_concurrent
    %% checks that with the default too
    py_ct:start([{num_contexts, 2}, {max_concurrent, 100}]),
    Level = <<"import erlang\n"
              "def level(n, top):\n"
              "    return n if n >= top else erlang.next_level(n + 1, top)\n">>,
    [ok = py_ct:main_exec(py:context(I), Level) || I <- [1, 2]],
    ok = py:register_function(next_level, fun([N, Top]) ->
                                                  {ok, R} = py:call('__main__', level, [N, Top]),
                                                  R
                                          end),
    Config.

end_per_suite(_Config) ->
    py_ct:stop().

sum(Args) -> lists:sum(Args).

call_forms(_Config) ->
    ok = py:register_function(add, fun([A, B]) -> A + B end),
    ?expect({ok, 3}, py:eval(<<"__import__('erlang').call('add', 1, 2)">>)),
    ?expect({ok, 42}, py:eval(<<"__import__('erlang').add(40, 2)">>)),
    Ctx = py:context(1),
    ok = py:exec(Ctx, <<"from erlang import add\ndef use_add(a, b):\n    return add(a, b)\n">>),
    ?expect({ok, 7}, py:call(Ctx, '__main__', use_add, [3, 4])),
    %% terms both ways
    ok = py:register_function(<<"echo">>, fun([X]) -> X end),
    ?expect({ok, #{<<"a">> := [1, 2.5, <<"x">>]}},
            py:eval(<<"__import__('erlang').echo({'a': [1, 2.5, 'x']})">>)),
    Self = self(),
    ok = py:register_function("whoami", fun([]) -> Self end),
    ?expect({ok, Self}, py:eval(<<"__import__('erlang').whoami()">>)).

register_mfa(_Config) ->
    ok = py:register_function(sum, ?MODULE, sum),
    ?expect({ok, 10}, py:eval(<<"__import__('erlang').sum(1, 2, 3, 4)">>)).

unregister(_Config) ->
    ok = py:register_function(short_lived, fun(_) -> ok end),
    ?expect({ok, <<"ok">>}, py:eval(<<"__import__('erlang').short_lived()">>)),
    ok = py:unregister_function(short_lived),
    %% no attribute any more (py_erlmod_SUITE); erlang.call says why
    ?expect({error, {'AttributeError', _}}, py:eval(<<"__import__('erlang').short_lived()">>)),
    ?expect({error, {'Error', _}}, py:eval(<<"__import__('erlang').call('short_lived')">>)).

bad_registration(_Config) ->
    ?expect({error, {badarg, _}}, py:register_function(f, not_a_fun)),
    ?expect({error, {badarg, _}}, py:register_function(f, fun(A, B) -> {A, B} end)),
    ?expect({error, {badarg, _}}, py:register_function({no}, fun(_) -> ok end)),
    ?expect({error, {badarg, _}}, py:register_function([no], fun(_) -> ok end)),
    ?expect({error, {badarg, _}}, py:unregister_function([no])),
    ?expect({error, {badarg, _}}, py:register_function(f, "m", f)).

%% An exception in the callback: erlang.Error with class and reason.
erlang_exception(_Config) ->
    ok = py:register_function(boom, fun([How]) ->
                                            case How of
                                                <<"error">> -> error(bad_thing);
                                                <<"exit">> -> exit(gone);
                                                <<"throw">> -> throw({my, ball})
                                            end
                                    end),
    Ctx = py:context(1),
    ok = py:exec(Ctx, <<"import erlang\n"
                        "def catch(how):\n"
                        "    try:\n"
                        "        erlang.boom(how)\n"
                        "    except erlang.Error as e:\n"
                        "        return (e.class_, e.reason)\n">>),
    ?expect({ok, {<<"error">>, <<"bad_thing">>}}, py:call(Ctx, '__main__', 'catch', [<<"error">>])),
    ?expect({ok, {<<"exit">>, <<"gone">>}}, py:call(Ctx, '__main__', 'catch', [<<"exit">>])),
    ?expect({ok, {<<"throw">>, {<<"my">>, <<"ball">>}}}, py:call(Ctx, '__main__', 'catch', [<<"throw">>])),
    %% uncaught, it is the call's error
    ?expect({error, {'Error', _}}, py:eval(<<"__import__('erlang').boom('error')">>)),
    %% the context goes on
    ?expect({ok, 2}, py:eval(Ctx, <<"1 + 1">>)).

not_registered(_Config) ->
    Ctx = py:context(1),
    ok = py:exec(Ctx, <<"import erlang\n"
                        "def call_missing():\n"
                        "    try:\n"
                        "        erlang.call('no_such_fun', 1)\n"
                        "    except erlang.Error as e:\n"
                        "        return (e.class_, e.reason)\n">>),
    ?expect({ok, {<<"error">>, {<<"not_registered">>, <<"no_such_fun">>}}},
            py:call(Ctx, '__main__', call_missing, [])),
    %% dunder names are not functions: modules and tools probe for them
    ?expect({ok, false}, py:eval(<<"hasattr(__import__('erlang'), '__path__')">>)).

python_exception_in_nested_call(_Config) ->
    %% Python raises inside a call made from a callback: the callback sees
    %% {error, _} and passes it back up as its result
    ok = py:register_function(nested_fail, fun([]) -> py:eval(<<"1 / 0">>) end),
    ?expect({ok, {<<"error">>, {<<"ZeroDivisionError">>, _}}},
            py:eval(<<"__import__('erlang').nested_fail()">>)).

%% A nested call of a module (not __main__) imports it while erlang.call's
%% frame is the running one: its globals must have the builtins.
nested_call_imports(_Config) ->
    ok = py:register_function(add_one, fun([X]) -> py:call(operator, add, [X, 1]) end),
    ok = py:register_function(dumps, fun([X]) -> py:call(json, dumps, [X]) end),
    ?expect({ok, {<<"ok">>, 42}}, py:eval(<<"__import__('erlang').add_one(41)">>)),
    ?expect({ok, {<<"ok">>, <<"[1, 2]">>}}, py:eval(<<"__import__('erlang').dumps([1, 2])">>)),
    ok = py:exec(<<"import erlang\ndef via_main(x): return erlang.add_one(x)">>),
    ?expect({ok, {<<"ok">>, 2}}, py:call('__main__', via_main, [1])),
    {ok, W} = py_context:start_link(900, worker),
    try
        ?expect({ok, {<<"ok">>, 42}}, py:eval(W, <<"__import__('erlang').add_one(41)">>))
    after
        py_context:stop(W)
    end.

%% Python cannot stop the VM with a message: init (and the other processes
%% of the runtime system) are out of erlang.send's and erlang.whereis' reach,
%% by name or by pid.
runtime_processes_out_of_reach(_Config) ->
    %% stop_by: unchecked, dropped by the port owner; a checked send raises
    [ok = py_ct:main_exec(C, <<"import erlang\n"
                   "def stop_by(dest):\n"
                   "    erlang.send(dest, (erlang.Atom('stop'), erlang.Atom('stop')), check=False)\n"
                   "    return True\n"
                   "def stop_checked(dest):\n"
                   "    try:\n"
                   "        erlang.send(dest, (erlang.Atom('stop'), erlang.Atom('stop')), check=True)\n"
                   "    except Exception as e:\n"
                   "        return type(e).__name__\n"
                   "    return 'sent'\n">>) || C <- py_context_router:contexts()],
    Init = erlang:whereis(init),
    Status = init:get_status(),
    ?expect({ok, none}, py:eval(<<"__import__('erlang').whereis('init')">>)),
    ?expect({ok, none}, py:eval(<<"__import__('erlang').whereis('application_controller')">>)),
    ?expect({ok, true}, py:eval(<<"stop_by(erlang.Atom('init'))">>)),
    ?expect({ok, true}, py:call('__main__', stop_by, [Init])),
    ?expect({ok, Name} when Name =/= <<"sent">>, py:call('__main__', stop_checked, [Init])),
    ?expect({error, {'ProcessError', <<"erlang.send: ", _/binary>>}},
            py:eval(<<"erlang.send(p, 1)">>, #{p => Init})),
    %% a process of the application's own is reachable as before
    Self = self(),
    ?expect({ok, true}, py:call('__main__', stop_by, [Self])),
    receive {stop, stop} -> ok after 5000 -> ct:fail(no_message) end,
    timer:sleep(200),
    Status = init:get_status(), % not stopping
    Init = erlang:whereis(init).

%% The reentrant example: level/next_level, 10 levels, with a bound context.
reentrant_bound_context(_Config) ->
    Ctx = py:context(2),
    ok = py_context_router:bind_context(Ctx),
    try
        ?expect({ok, 10}, py:call('__main__', level, [0, 10]))
    after
        py_context_router:unbind_context()
    end.

nesting_50_levels(_Config) ->
    ?expect({ok, 50}, py:call(py:context(1), '__main__', level, [0, 50])).

%% A callback calls another context explicitly, which calls back in turn.
other_context(_Config) ->
    ok = py:register_function(on_other, fun([N]) ->
                                                {ok, R} = py:call(py:context(2), '__main__', level, [0, N]),
                                                R * 100
                                        end),
    ok = py:exec(py:context(1), <<"import erlang\ndef via_other(n):\n    return erlang.on_other(n)\n">>),
    ?expect({ok, 500}, py:call(py:context(1), '__main__', via_other, [5])).

%% 64 callers, each nesting 5 levels, on 2 contexts at once.
concurrent_chains(_Config) ->
    Parent = self(),
    Pids = [spawn_link(fun() ->
                               Ctx = py:context(1 + I rem 2),
                               R = [py:call(Ctx, '__main__', level, [J, J + 5]) || J <- lists:seq(1, 5)],
                               Parent ! {done, self(), R}
                       end) || I <- lists:seq(1, 64)],
    [receive
         {done, P, R} -> ?expect([{ok, 6}, {ok, 7}, {ok, 8}, {ok, 9}, {ok, 10}], R)
     after 60000 ->
         ct:fail("a caller hung")
     end || P <- Pids].

%% A callback slower than the caller's timeout: the caller gets
%% {error, timeout} and the context serves the next call while the callback
%% still runs; its late answer is dropped.
slow_callback_times_out(_Config) ->
    Parent = self(),
    ok = py:register_function(stuck, fun([]) ->
                                             Parent ! {stuck, self()},
                                             receive go -> done end
                                     end),
    Ctx = py:context(1),
    ok = py:exec(Ctx, <<"import erlang\ndef call_stuck():\n    return erlang.stuck()\n">>),
    ?expect({error, timeout}, py_context:call(Ctx, '__main__', call_stuck, [], #{}, 100)),
    Callback = receive {stuck, P} -> P after 5000 -> ct:fail("the callback did not run") end,
    ?expect({ok, 4}, py_context:call(Ctx, builtins, abs, [-4], #{}, 5000)),
    Callback ! go, % its answer now goes to a call that gave up
    ?expect({ok, 5}, py_context:call(Ctx, builtins, abs, [-5], #{}, 5000)).

%% Arguments and results large enough for slots, through callbacks.
large_arguments(_Config) ->
    Bin = rand:bytes(300000),
    ok = py:register_function(size_and_back, fun([B]) -> {byte_size(B), B} end),
    ok = py:exec(py:context(1), <<"import erlang\ndef roundtrip(b):\n    return erlang.size_and_back(b)\n">>),
    ?expect({ok, {300000, Bin}}, py:call(py:context(1), '__main__', roundtrip, [{bytes, Bin}])).

%% Nested calls take no py_semaphore slot: 20 levels with max_concurrent 5.
default_max_concurrent(_Config) ->
    Old = py_semaphore:max_concurrent(),
    ok = py_semaphore:set_max_concurrent(5),
    try
        ?expect({ok, 20}, py:call(py:context(1), '__main__', level, [0, 20])),
        ?expect(0, py_semaphore:current())
    after
        py_semaphore:set_max_concurrent(Old)
    end.

%% erlang.send: to a pid, to a registered name, to a dead pid (no error);
%% from the context's thread and from another Python thread.
send(_Config) ->
    Ctx = py:context(1),
    ok = py:exec(Ctx, <<"import erlang, threading\n"
                        "def send_to(pid, msg):\n"
                        "    erlang.send(pid, msg)\n"
                        "    return 'sent'\n"
                        "def send_from_thread(pid, msg):\n"
                        "    t = threading.Thread(target=erlang.send, args=(pid, msg))\n"
                        "    t.start()\n"
                        "    t.join()\n"
                        "    return 'sent'\n">>),
    Self = self(),
    ?expect({ok, <<"sent">>}, py:call(Ctx, '__main__', send_to, [Self, {hello, [1, 2.5, <<"x">>]}])),
    ?expect({<<"hello">>, [1, 2.5, <<"x">>]}, receive M1 -> M1 after 5000 -> none end),
    ?expect({ok, <<"sent">>}, py:call(Ctx, '__main__', send_from_thread, [Self, threaded])),
    ?expect(<<"threaded">>, receive M2 -> M2 after 5000 -> none end),
    true = register(py_callback_suite_target, Self),
    ?expect({ok, <<"sent">>},
            py:eval(Ctx, <<"send_to(erlang.Atom('py_callback_suite_target'), 'by name')">>)),
    ?expect(<<"by name">>, receive M3 -> M3 after 5000 -> none end),
    erlang:unregister(py_callback_suite_target),
    Dead = spawn(fun() -> ok end),
    timer:sleep(50),
    %% a dead pid raises erlang.ProcessError (API.md section 6), unless
    %% check=False, the fire-and-forget path (py_env_SUITE has more)
    ?expect({error, {'ProcessError', _}}, py:call(Ctx, '__main__', send_to, [Dead, lost])),
    ?expect({ok, none}, py:eval(Ctx, <<"erlang.send(p, 'lost', check=False)">>, #{p => Dead})),
    %% check=True waits for the BEAM: it raises for an unknown name too
    ok = py:exec(Ctx, <<"def send_checked(dest, msg):\n"
                        "    try:\n"
                        "        erlang.send(dest, msg, check=True)\n"
                        "        return 'sent'\n"
                        "    except erlang.ProcessError as e:\n"
                        "        return str(e)\n">>),
    ?expect({ok, <<"erlang.send: no process", _/binary>>}, py:call(Ctx, '__main__', send_checked, [Dead, lost])),
    ?expect({ok, <<"erlang.send: no process", _/binary>>},
            py:eval(Ctx, <<"send_checked(erlang.Atom('no_such_registered_name'), 1)">>)),
    ?expect({ok, <<"sent">>}, py:call(Ctx, '__main__', send_checked, [Self, checked])),
    ?expect(<<"checked">>, receive M4 -> M4 after 5000 -> none end),
    ?expect({error, {'TypeError', _}}, py:call(Ctx, '__main__', send_to, [<<"not a pid">>, x])).

whereis(_Config) ->
    true = register(py_callback_suite_name, self()),
    Self = self(),
    ?expect({ok, Self}, py:eval(<<"__import__('erlang').whereis('py_callback_suite_name')">>)),
    erlang:unregister(py_callback_suite_name),
    ?expect({ok, none},
            py:eval(<<"__import__('erlang').whereis('py_callback_suite_name')">>)),
    ?expect({ok, none}, py:eval(<<"__import__('erlang').whereis('no_atom_of_that_name_9f3a')">>)),
    %% bytes and erlang.Atom too (API.md section 6); another type is a TypeError
    true = register(py_callback_suite_name, self()),
    ?expect({ok, Self}, py:eval(<<"erlang.whereis(b'py_callback_suite_name')">>)),
    ?expect({ok, Self}, py:eval(<<"erlang.whereis(erlang.Atom('py_callback_suite_name'))">>)),
    erlang:unregister(py_callback_suite_name),
    ?expect({error, {'TypeError', <<"erlang.whereis: name must be str, bytes or erlang.Atom, not int">>}},
            py:eval(<<"erlang.whereis(42)">>)),
    ?expect({error, {'UnicodeDecodeError', _}}, py:eval(<<"erlang.whereis(b'\\xff')">>)).

%% The exception classes of the NIF 2.x: ProcessError is an Exception,
%% SuspensionRequired a BaseException that `except Exception` does not catch.
exception_classes(_Config) ->
    ?expect({ok, true}, py:eval(<<"issubclass(erlang.ProcessError, Exception)">>)),
    ?expect({ok, true}, py:eval(<<"issubclass(erlang.SuspensionRequired, BaseException)">>)),
    ?expect({ok, false}, py:eval(<<"issubclass(erlang.SuspensionRequired, Exception)">>)),
    Ctx = py:context(1),
    ok = py:exec(Ctx, <<"def caught():\n"
                        "    try:\n"
                        "        try:\n"
                        "            raise erlang.SuspensionRequired()\n"
                        "        except Exception:\n"
                        "            return 'by except Exception'\n"
                        "    except BaseException:\n"
                        "        return 'by except BaseException'\n">>),
    ?expect({ok, <<"by except BaseException">>}, py:call(Ctx, '__main__', caught, [])).

%% erlang.sleep releases the context's GIL: a Python thread of the same
%% context runs meanwhile; and a caller's timeout ends it.
sleep_and_schedule(_Config) ->
    Ctx = py:context(1),
    ok = py:exec(Ctx, <<"import erlang, threading\n"
                        "def ticks_while_sleeping():\n"
                        "    n = [0]\n"
                        "    stop = threading.Event()\n"
                        "    def tick():\n"
                        "        while not stop.is_set():\n"
                        "            n[0] += 1\n"
                        "            erlang.schedule()\n"
                        "    t = threading.Thread(target=tick)\n"
                        "    t.start()\n"
                        "    erlang.sleep(0.2)\n"
                        "    stop.set()\n"
                        "    t.join()\n"
                        "    return n[0]\n">>),
    {ok, Ticks} = py:call(Ctx, '__main__', ticks_while_sleeping, []),
    true = Ticks > 0,
    ?expect({error, timeout}, py_context:call(Ctx, erlang, sleep, [30], #{}, 100)),
    ?expect({ok, 3}, py_context:call(Ctx, operator, add, [1, 2], #{}, 5000)),
    ?expect({error, {'ValueError', _}}, py:call(Ctx, erlang, sleep, [-1])).

%% Callbacks from Python threads: 8 threading.Thread and a
%% ThreadPoolExecutor at once, each thread waiting for its own answer.
from_threads(_Config) ->
    ok = py:register_function(double, fun([X]) -> timer:sleep(20), 2 * X end),
    Ctx = py:context(1),
    ok = py:exec(Ctx, <<"import erlang, threading\n"
                        "from concurrent.futures import ThreadPoolExecutor\n"
                        "def threads(n):\n"
                        "    out = [None] * n\n"
                        "    def run(i):\n"
                        "        out[i] = erlang.double(i)\n"
                        "    ts = [threading.Thread(target=run, args=(i,)) for i in range(n)]\n"
                        "    for t in ts: t.start()\n"
                        "    for t in ts: t.join()\n"
                        "    return out\n"
                        "def pool(n):\n"
                        "    with ThreadPoolExecutor(max_workers=n) as ex:\n"
                        "        return list(ex.map(lambda i: erlang.call('double', i), range(n)))\n"
                        "def thread_error():\n"
                        "    box = []\n"
                        "    def run():\n"
                        "        try:\n"
                        "            erlang.call('no_such_function')\n"
                        "        except erlang.Error as e:\n"
                        "            box.append((e.class_, e.reason))\n"
                        "    t = threading.Thread(target=run)\n"
                        "    t.start()\n"
                        "    t.join()\n"
                        "    return box[0]\n">>),
    Want = [2 * I || I <- lists:seq(0, 7)],
    ?expect({ok, Want}, py:call(Ctx, '__main__', threads, [8])),
    ?expect({ok, Want}, py:call(Ctx, '__main__', pool, [8])),
    ?expect({ok, {<<"error">>, {<<"not_registered">>, <<"no_such_function">>}}},
            py:call(Ctx, '__main__', thread_error, [])),
    %% a thread's callback may call Python again, on another context
    ok = py:register_function(via_ctx2, fun([X]) -> {ok, R} = py:call(py:context(2), operator, add, [X, 1]), R end),
    ok = py:exec(Ctx, <<"def thread_via_ctx2():\n"
                        "    box = []\n"
                        "    t = threading.Thread(target=lambda: box.append(erlang.via_ctx2(41)))\n"
                        "    t.start()\n"
                        "    t.join()\n"
                        "    return box[0]\n">>),
    ?expect({ok, 42}, py:call(Ctx, '__main__', thread_via_ctx2, [])).

%% The caller of a chain times out while a request of the chain runs on top
%% of the waiting one: the whole chain stops, and the context serves the
%% next call.
timeout_stops_the_chain(_Config) ->
    Ctx = py:context(1),
    ok = py:exec(Ctx, <<"import erlang\n"
                        "def spin_forever():\n"
                        "    while True:\n"
                        "        pass\n"
                        "def top():\n"
                        "    return erlang.into_spin()\n">>),
    Parent = self(),
    ok = py:register_function(into_spin, fun([]) ->
                                                 R = py:call('__main__', spin_forever, []),
                                                 Parent ! {nested_result, R},
                                                 R
                                         end),
    ?expect({error, timeout}, py_context:call(Ctx, '__main__', top, [], #{}, 300)),
    %% the nested request was interrupted, not left spinning
    ?expect({error, {'KeyboardInterrupt', _}},
            receive {nested_result, R} -> R after 5000 -> still_spinning end),
    ?expect({ok, 3}, py_context:call(Ctx, operator, add, [1, 2], #{}, 5000)).

%% eval and exec see the erlang module without an import, as in the NIF
%% 2.x, in a sub-interpreter (or multi_executor) context and in a worker
%% context; a name that the code binds itself wins.
erlang_in_globals(_Config) ->
    ok = py:register_function(add, fun([A, B]) -> A + B end),
    ?equal({ok, 12}, py:eval(<<"erlang.call('add', 5, 7)">>)),
    Ctx = py:context(2),
    ?equal(ok, py:exec(Ctx, <<"r = erlang.add(1, 2)">>)),
    ?equal({ok, 3}, py:eval(Ctx, <<"r">>)),
    {ok, [W]} = py_context_router:start_pool(erlang_globals, 1, worker),
    try
        ?equal({ok, 12}, py:eval(W, <<"erlang.call('add', 5, 7)">>)),
        ?equal(ok, py:exec(W, <<"erlang = 'mine'">>)),
        ?equal({ok, <<"mine">>}, py:eval(W, <<"erlang">>))
    after
        ok = py_context_router:stop_pool(erlang_globals)
    end.
