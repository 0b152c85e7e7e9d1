%% API.md section 2: a call past its timeout frees its context, also when the
%% Python work waits in time.sleep or another wait that a cancel ends
%% (README "Timeouts"). Each wait would last 600 s: the next call on the
%% context, with a timeout of 5 s, is served only if the timeout ended it.
%% The cases run in an `auto' context (an own-GIL sub-interpreter on 3.12+,
%% a namespace on a shared executor in multi_executor mode) and in a
%% `worker' context (the main interpreter).
-module(py_timeout_SUITE).

-include_lib("common_test/include/ct.hrl").
-include("py_ct.hrl").

-export([all/0, groups/0, init_per_suite/1, end_per_suite/1, init_per_group/2,
         end_per_group/2, init_per_testcase/2, end_per_testcase/2]).
-export([sleep_frees_context/1, sleep_imported_by_name/1, erlang_sleep/1, event_wait/1,
         condition_wait/1, queue_get/1, queue_put/1, semaphore_acquire/1, lock_acquire/1,
         future_result/1,
         subprocess_wait_timeout/1, sleep_in_callback_chain/1, sleep_lasts_its_time/1,
         sleep_errors/1]).

-define(WAIT, 600).

all() ->
    [{group, auto}, {group, worker}].

groups() ->
    Cases = [sleep_frees_context, sleep_imported_by_name, erlang_sleep, event_wait,
             condition_wait, queue_get, queue_put, semaphore_acquire, lock_acquire, future_result,
             subprocess_wait_timeout, sleep_in_callback_chain, sleep_lasts_its_time,
             sleep_errors],
    [{auto, [], Cases}, {worker, [], Cases}].

init_per_suite(Config) ->
    py_ct:start([{num_contexts, 2}]),
    {ok, Version} = py:version(),
    ct:log("mode ~p, Python ~s", [py:execution_mode(), Version]),
    Config.

end_per_suite(_Config) ->
    py_ct:stop().

%% One context per group, of the group's kind; not linked to the group's
%% process, which ends before the cases run.
init_per_group(Kind, Config) ->
    {ok, Ctx} = py_context:start_link({?MODULE, Kind}, Kind),
    unlink(Ctx),
    [{ctx, Ctx} | Config].

end_per_group(_Kind, Config) ->
    py_context:stop(?config(ctx, Config)).

init_per_testcase(_Case, Config) ->
    Config.

end_per_testcase(_Case, _Config) ->
    py_context_router:unbind_context(),
    ok.

%% The issue's case: time.sleep(10) with a 100 ms timeout through py:eval/3
%% (a bound context); the next call on that context comes within 200 ms.
sleep_frees_context(Config) ->
    Ctx = ?config(ctx, Config),
    ok = py_context_router:bind_context(Ctx),
    ok = py:exec(<<"import time">>),
    {T, R} = py_ct:timed(fun() -> py:eval(<<"time.sleep(10)">>, #{}, 100) end),
    ?expect({error, timeout}, R),
    true = T < 1000 orelse ct:fail("the timeout took ~.1f ms", [T]),
    {T2, R2} = py_ct:timed(fun() -> py:eval(<<"1 + 1">>, #{}, 5000) end),
    ?expect({ok, 2}, R2),
    ct:log("timeout after ~.1f ms, the next call served in ~.1f ms", [T, T2]),
    true = T2 < 200 orelse ct:fail("the next call took ~.1f ms: it waited for the sleep", [T2]),
    %% the slot came back, and no late reply is left in the mailbox
    py_ct:wait_until(fun() -> py_semaphore:current() =:= 0 end, 2000, "slots released"),
    receive Msg -> ct:fail("late message after the timeout: ~p", [Msg]) after 100 -> ok end.

%% `from time import sleep' after start-up gets the sidecar's time.sleep.
sleep_imported_by_name(Config) ->
    freed(Config, <<"from time import sleep">>, <<"sleep(600)">>).

erlang_sleep(Config) ->
    freed(Config, <<"import erlang">>, <<"erlang.sleep(600)">>).

event_wait(Config) ->
    freed(Config, <<"import threading\nev = threading.Event()">>, <<"ev.wait(600)">>),
    freed(Config, <<"import threading\nev = threading.Event()">>, <<"ev.wait()">>).

condition_wait(Config) ->
    freed(Config, <<"import threading\ncv = threading.Condition()">>,
          <<"with cv:\n    cv.wait_for(lambda: False, 600)">>).

queue_get(Config) ->
    freed(Config, <<"import queue\nq = queue.Queue()">>, <<"q.get(timeout=600)">>),
    freed(Config, <<"import queue\nq = queue.Queue()">>, <<"q.get()">>).

queue_put(Config) ->
    freed(Config, <<"import queue\nq = queue.Queue(1)\nq.put(1)">>, <<"q.put(2, timeout=600)">>).

semaphore_acquire(Config) ->
    freed(Config, <<"import threading\ns = threading.BoundedSemaphore(1)\ns.acquire()">>,
          <<"s.acquire(timeout=600)">>).

%% threading.Lock, with a timeout and without, a lock already taken.
lock_acquire(Config) ->
    Setup = <<"import threading\nl = threading.Lock()\nl.acquire()">>,
    freed(Config, Setup, <<"l.acquire(timeout=600)">>),
    freed(Config, Setup, <<"with l:\n    pass">>).

future_result(Config) ->
    freed(Config, <<"import concurrent.futures as cf\nf = cf.Future()">>,
          <<"f.result(timeout=600)">>).

%% Popen.wait with a timeout polls with time.sleep; the child lives on.
subprocess_wait_timeout(Config) ->
    Ctx = ?config(ctx, Config),
    freed(Config, <<"import subprocess\np = subprocess.Popen(['sleep', '600'])">>,
          <<"p.wait(timeout=600)">>),
    ?expect({ok, none}, py:eval(Ctx, <<"p.poll()">>)),
    ?expect({ok, -9}, py:eval(Ctx, <<"p.kill() or p.wait()">>)).

%% A call that calls Erlang, whose function calls back into the context,
%% where it sleeps: the first call's timeout ends the nested sleep too.
sleep_in_callback_chain(Config) ->
    Ctx = ?config(ctx, Config),
    ok = py:register_function(timeout_suite_nap,
                              fun([]) -> py:eval(<<"__import__('time').sleep(600)">>) end),
    ok = py_context_router:bind_context(Ctx),
    ?expect({error, timeout},
            py:eval(<<"__import__('erlang').call('timeout_suite_nap')">>, #{}, 200)),
    ?expect({ok, 2}, py:eval(<<"1 + 1">>, #{}, 5000)),
    py:unregister_function(timeout_suite_nap).

%% Not cancelled, time.sleep sleeps its whole time.
sleep_lasts_its_time(Config) ->
    Ctx = ?config(ctx, Config),
    ok = py:exec(Ctx, <<"import time\nt0 = time.monotonic()\ntime.sleep(0.2)\n"
                        "slept = time.monotonic() - t0">>),
    ?expect({ok, true}, py:eval(Ctx, <<"slept >= 0.2">>)),
    ?expect({ok, <<"done">>}, py_context:eval(Ctx, <<"time.sleep(0.1) or 'done'">>, #{}, 5000)),
    ?expect({ok, none}, py:eval(Ctx, <<"time.sleep(0)">>)).

%% time.sleep's errors, as CPython's.
sleep_errors(Config) ->
    Ctx = ?config(ctx, Config),
    ok = py:exec(Ctx, <<"import time">>),
    ?expect({error, {'ValueError', <<"sleep length must be non-negative">>}},
            py:eval(Ctx, <<"time.sleep(-1)">>)),
    ?expect({error, {'ValueError', <<"sleep length must be non-negative">>}},
            py:eval(Ctx, <<"time.sleep(-0.5)">>)),
    ?expect({error, {'ValueError', _}}, py:eval(Ctx, <<"time.sleep(float('nan'))">>)),
    ?expect({error, {'TypeError', <<"'str' object cannot be interpreted as an integer">>}},
            py:eval(Ctx, <<"time.sleep('1')">>)),
    ?expect({error, {'TypeError', _}}, py:eval(Ctx, <<"time.sleep(None)">>)),
    ?expect({error, {'OverflowError', _}}, py:eval(Ctx, <<"time.sleep(10 ** 30)">>)).

%%--------------------------------------------------------------------

%% Runs Setup, then Wait (a 600 s wait) with a 100 ms timeout: {error,
%% timeout}, and the context serves the next call long before the wait's end.
freed(Config, Setup, Wait) ->
    Ctx = ?config(ctx, Config),
    ok = py:exec(Ctx, Setup),
    ?expect({error, timeout}, py_context:exec(Ctx, Wait, 100)),
    ?expect({ok, 2}, py_context:eval(Ctx, <<"1 + 1">>, #{}, 5000)).
