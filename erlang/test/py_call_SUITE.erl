%% API.md section 2: calls, against the real sidecar and Python.
-module(py_call_SUITE).

-include_lib("common_test/include/ct.hrl").
-include("py_ct.hrl").

-export([all/0, groups/0, init_per_suite/1, end_per_suite/1,
         init_per_testcase/2, end_per_testcase/2]).
-export([call3/1, call4_kwargs/1, call5_timeout/1, call_on_context/1, call_on_pool/1,
         binary_names/1, eval_forms/1, code_forms/1, exec_forms/1, cast/1,
         spawn_call_await/1, parallel/1,
         python_exceptions/1, unknown_module_function/1, wrong_arity/1,
         bad_arguments/1, improper_values/1, deep_nesting/1, huge_ints/1,
         non_utf8_binaries/1, context_out_of_range/1, traceback_to_logger/1,
         timeout_interrupts_loop/1, timeout_eval/1, timeout_exec_loop/1,
         stdout_is_protected/1, stdin_is_protected/1, pipelined_callers/1,
         sidecar_crash/1, after_stop/1]).
-export([log/2]). % a logger handler, for traceback_to_logger

all() ->
    [{group, api}, {group, errors}, {group, timeouts}, stdout_is_protected,
     stdin_is_protected, pipelined_callers, sidecar_crash, after_stop].

groups() ->
    [{api, [], [call3, call4_kwargs, call5_timeout, call_on_context, call_on_pool,
                binary_names, eval_forms, code_forms, exec_forms, cast,
                spawn_call_await, parallel]},
     {errors, [], [python_exceptions, unknown_module_function, wrong_arity,
                   bad_arguments, improper_values, deep_nesting, huge_ints,
                   non_utf8_binaries, context_out_of_range, traceback_to_logger]},
     {timeouts, [], [timeout_interrupts_loop, timeout_eval, timeout_exec_loop]}].

init_per_suite(Config) ->
    py_ct:start([{num_contexts, 2}, {max_concurrent, 1000}]),
    Config.

end_per_suite(_Config) ->
    py_ct:stop().

init_per_testcase(_Case, Config) ->
    %% after_stop and sidecar_crash leave the application stopped or restarting
    case whereis(py_pool) of
        undefined -> py_ct:start([{num_contexts, 2}, {max_concurrent, 1000}]);
        _ -> ok
    end,
    Config.

end_per_testcase(_Case, _Config) ->
    py_context_router:unbind_context(),
    ok.

%%--------------------------------------------------------------------
%% The forms of API.md section 2

call3(_Config) ->
    ?expect({ok, 4.0}, py:call(math, sqrt, [16])),
    ?expect({ok, 5}, py:call(operator, add, [2, 3])),
    ?expect({ok, <<"[1, 2]">>}, py:call(json, dumps, [[1, 2]])).

call4_kwargs(_Config) ->
    ?expect({ok, 255}, py:call(builtins, int, [<<"ff">>], #{base => 16})),
    ?expect({ok, <<"{\"a\": 1, \"b\": 2}">>},
            py:call(json, dumps, [#{b => 2, a => 1}], #{sort_keys => true})),
    ?expect({ok, <<"{\"a\":1}">>},
            py:call(json, dumps, [#{a => 1}], #{<<"separators">> => {<<",">>, <<":">>}})).

call5_timeout(_Config) ->
    ?expect({ok, 3.0}, py:call(math, sqrt, [9], #{}, 5000)),
    ?expect({ok, 3.0}, py:call(math, sqrt, [9], #{}, infinity)),
    ?expect({ok, 16}, py:call(builtins, int, [<<"10">>], #{base => 16}, 5000)).

call_on_context(_Config) ->
    Ctx = py:context(1),
    true = is_pid(Ctx),
    ?expect({ok, 2.0}, py:call(Ctx, math, sqrt, [4])),
    ?expect({ok, 255}, py:call(Ctx, builtins, int, [<<"ff">>], #{kwargs => #{base => 16}})),
    ?expect({ok, 2.0}, py_context:call(Ctx, math, sqrt, [4], #{})).

call_on_pool(_Config) ->
    ?expect({ok, 3.0}, py:call(default, math, sqrt, [9])),
    ?expect({ok, 10}, py:call(default, builtins, int, [<<"a">>], #{base => 16})),
    ?expect({error, {unknown_pool, no_such_pool}}, py:call(no_such_pool, math, sqrt, [9])).

binary_names(_Config) ->
    ?expect({ok, 4.0}, py:call(<<"math">>, <<"sqrt">>, [16])),
    ?expect({ok, <<"a/b">>}, py:call('os.path', join, [<<"a">>, <<"b">>])).

eval_forms(_Config) ->
    Ctx = py:context(1),
    ?expect({ok, 3}, py:eval(<<"1 + 2">>)),
    ?expect({ok, 42}, py:eval(<<"x * y">>, #{x => 6, y => 7})),
    ?expect({ok, 42}, py:eval(<<"x * y">>, #{<<"x">> => 6, y => 7}, 5000)),
    ?expect({ok, 7}, py:eval(Ctx, <<"3 + 4">>)),
    ?expect({ok, 8}, py:eval(Ctx, <<"a + 4">>, #{a => 4})),
    ?expect({ok, 9}, py_context:eval(Ctx, <<"a + 5">>, #{a => 4})),
    ?expect({ok, 3}, py:eval(default, <<"1 + 2">>)).

code_forms(_Config) ->
    ?expect({ok, 3}, py:eval("1 + 2")),
    ?expect({ok, 3}, py:eval([<<"1 ">>, "+", [$\s, <<"2">>]])),
    ?expect({ok, <<"日本"/utf8>>}, py:eval("'日本'")),
    ?expect({ok, <<"é"/utf8>>}, py:eval(<<"'é'"/utf8>>)),
    ?expect(ok, py:exec("z = 1")).

exec_forms(_Config) ->
    Ctx = py:context(1),
    ?expect(ok, py:exec(<<"import math">>)),
    ?expect(ok, py:exec(Ctx, <<"def double(v):\n    return v * 2\n">>)),
    ?expect({ok, 42}, py:call(Ctx, '__main__', double, [21])),
    ?expect({ok, 42}, py:eval(Ctx, <<"double(21)">>)),
    ?expect(ok, py_context:exec(Ctx, <<"w = 1">>)),
    ?expect({ok, 1}, py:eval(Ctx, <<"w">>)).

cast(_Config) ->
    Ctx = py:context(1),
    ok = py:exec(Ctx, <<"marks = []\ndef mark(v):\n    marks.append(v)\n">>),
    ?expect(ok, py:cast(Ctx, '__main__', mark, [1])),
    py_context_router:bind_context(Ctx),
    ?expect(ok, py:cast('__main__', mark, [2])),
    ?expect(ok, py:cast('__main__', mark, [], #{v => 3})),
    py_context_router:unbind_context(),
    py_ct:wait_until(fun() -> py:eval(Ctx, <<"sorted(marks)">>) =:= {ok, [1, 2, 3]} end,
                     5000, "the three casts to run"),
    %% fire and forget, even for failing calls
    ?expect(ok, py:cast(math, no_such_function, [])),
    ?expect({error, {badarg, _}}, py:cast(math, sqrt, not_a_list)).

spawn_call_await(_Config) ->
    Ctx = py:context(2),
    Slow = py:spawn_call(time, sleep, [1]),
    ?expect({error, timeout}, py:await(Slow, 100)),
    R1 = py:spawn_call(math, sqrt, [16]),
    R2 = py:spawn_call(builtins, int, [<<"ff">>], #{base => 16}),
    R3 = py:spawn_call(Ctx, math, sqrt, [25]),
    R4 = py:spawn_call(Ctx, builtins, int, [<<"11">>], #{base => 2}),
    R5 = py:spawn_call(math, sqrt, [36], #{}, 5000),
    R7 = py:spawn_call(math, sqrt, not_a_list),
    ?expect({ok, 4.0}, py:await(R1)),
    ?expect({ok, 255}, py:await(R2, 5000)),
    ?expect({ok, 5.0}, py:await(R3)),
    ?expect({ok, 3}, py:await(R4)),
    ?expect({ok, 6.0}, py:await(R5)),
    ?expect({error, {badarg, _}}, py:await(R7, 1000)),
    %% the late result of Slow is dropped, not left in the mailbox
    timer:sleep(2500),
    receive
        Msg -> ct:fail("a late spawn_call result stayed in the mailbox: ~p", [Msg])
    after 0 -> ok
    end.

parallel(_Config) ->
    ?expect({ok, [{ok, 2.0}, {ok, 3.0}]}, py:parallel([{math, sqrt, [4]}, {math, sqrt, [9]}])),
    Items = [{operator, mul, [I, I]} || I <- lists:seq(1, 25)],
    Expected = [{ok, I * I} || I <- lists:seq(1, 25)],
    ?expect({ok, Expected}, py:parallel(Items)),
    ?expect({ok, [{ok, 1.0}, {error, {'ValueError', _}}, {ok, 255},
                  {error, {badarg, _}}, {error, {badarg, _}}]},
            py:parallel([{math, sqrt, [1]}, {math, sqrt, [-1]},
                         {builtins, int, [<<"ff">>], #{base => 16}},
                         {math, sqrt, oops}, not_an_item])),
    ?expect({ok, []}, py:parallel([])),
    ?expect({error, {badarg, _}}, py:parallel([{math, sqrt, [4]} | tail])),
    ?expect({error, {badarg, _}}, py:parallel(not_a_list)).

%%--------------------------------------------------------------------
%% Errors and bad input; after each, the sidecar still serves

python_exceptions(_Config) ->
    ?expect({error, {'NameError', <<_/binary>>}}, py:eval(<<"undefined_name_xyz">>)),
    ?expect({error, {'SyntaxError', <<_/binary>>}}, py:eval(<<"1 +">>)),
    ?expect({error, {'SyntaxError', <<_/binary>>}}, py:exec(<<"def f(:\n  pass">>)),
    ?expect({error, {'ZeroDivisionError', <<_/binary>>}}, py:eval(<<"1 / 0">>)),
    ?expect({error, {'ZeroDivisionError', <<_/binary>>}}, py:call(operator, truediv, [1, 0])),
    ?expect({error, {'ModuleNotFoundError', <<_/binary>>}}, py:call(no_such_module_xyz, f, [])),
    ?expect({error, {'ModuleNotFoundError', <<_/binary>>}}, py:exec(<<"import no_such_module_xyz">>)),
    ?expect({error, {'ValueError', <<"math domain error">>}}, py:call(math, sqrt, [-1])),
    ?expect({error, {'KeyError', _}}, py:eval(<<"{}['k']">>)),
    %% exceptions defined in Python code keep their name
    ok = py:exec(py:context(1), <<"class MyError(Exception):\n    pass\n"
                                  "def boom():\n    raise MyError('custom')\n">>),
    ?expect({error, {'MyError', <<"custom">>}}, py:call(py:context(1), '__main__', boom, [])),
    still_serving().

unknown_module_function(_Config) ->
    ?expect({error, {'AttributeError', <<_/binary>>}}, py:call(math, no_such_function, [])),
    ?expect({error, {'ModuleNotFoundError', _}}, py:call('no.such.pkg', f, [])),
    ?expect({error, {'TypeError', _}}, py:call(math, pi, [])),
    still_serving().

wrong_arity(_Config) ->
    ?expect({error, {'TypeError', <<_/binary>>}}, py:call(math, sqrt, [1, 2])),
    ?expect({error, {'TypeError', <<_/binary>>}}, py:call(math, sqrt, [])),
    ?expect({error, {'TypeError', <<_/binary>>}}, py:call(math, sqrt, [4], #{nope => 1})),
    still_serving().

bad_arguments(_Config) ->
    %% refused in Erlang, nothing sent
    ?expect({error, {badarg, {args, not_a_list}}}, py:call(math, sqrt, 16)),
    ?expect({error, {badarg, {args, improper_list}}}, py:call(math, sqrt, [16 | 4])),
    ?expect({error, {badarg, {module, 42}}}, py:call(42, sqrt, [16])),
    ?expect({error, {badarg, {function, "sqrt"}}}, py:call(math, "sqrt", [16])),
    ?expect({error, {badarg, {kwargs, _}}}, py:call(math, sqrt, [16], not_a_map)),
    ?expect({error, {badarg, {kwargs, _}}}, py:call(math, sqrt, [16], #{1 => 2})),
    ?expect({error, {badarg, {locals, _}}}, py:eval(<<"1">>, #{{a} => 1}, 1000)),
    ?expect({error, {badarg, {code, _}}}, py:eval(42)),
    ?expect({error, {badarg, {code, not_utf8}}}, py:eval(<<255, 254>>)),
    ?expect({error, {badarg, {code, _}}}, py:exec([foo])),
    ?expect({error, {badarg, {timeout, -1}}}, py:call(math, sqrt, [4], #{}, -1)),
    ?expect({error, {badarg, {timeout, soon}}}, py:call(math, sqrt, [4], #{}, soon)),
    ?expect({error, {bad_context, _}}, py:eval(<<"1 + 1">>, <<"not code">>)),
    ?expect({error, {bad_context, _}}, py:call(spawn(fun() -> ok end), math, sqrt, [4])),
    ?expect({error, {bad_context, _}}, py_context:eval(self(), <<"1">>, #{})),
    still_serving().

%% Values Python cannot take: clear errors from the sidecar, and it goes on.
improper_values(_Config) ->
    ?expect({error, _}, py:call(builtins, len, [[1 | 2]])),
    ?expect({error, _}, py:eval(<<"x">>, #{x => [a, b | c]})),
    %% funs pass through Python as opaque values
    Fun = fun() -> ok end,
    ?expect({ok, Fun}, py:eval(<<"x">>, #{x => Fun})),
    %% so do bitstrings: Python has no type that keeps a bit count
    ?expect({ok, <<1:3>>}, py:eval(<<"x">>, #{x => <<1:3>>})),
    ?expect({ok, [<<1, 2:7>>]}, py:eval(<<"[x]">>, #{x => <<1, 2:7>>})),
    still_serving().

deep_nesting(_Config) ->
    Deep = lists:foldl(fun(_, Acc) -> [Acc] end, [], lists:seq(1, 100000)),
    {T1, R1} = py_ct:timed(fun() -> py:call(builtins, len, [Deep]) end),
    ct:log("100000-deep list to Python: ~p in ~.1f ms", [R1, T1]),
    ?expect({error, _}, R1),
    DeepTuple = lists:foldl(fun(_, Acc) -> {Acc} end, {}, lists:seq(1, 100000)),
    ?expect({error, _}, py:eval(<<"len(x)">>, #{x => DeepTuple})),
    still_serving(),
    Ctx = py:context(1),
    ok = py:exec(Ctx, <<"def deep(n):\n    x = []\n    for _ in range(n):\n        x = [x]\n"
                        "    return x\n">>),
    {T2, R2} = py_ct:timed(fun() -> py:call(Ctx, '__main__', deep, [100000]) end),
    ct:log("100000-deep list from Python: ~p in ~.1f ms", [R2, T2]),
    ?expect({error, _}, R2),
    %% moderate nesting is fine both ways
    D100 = lists:foldl(fun(_, Acc) -> [Acc] end, [], lists:seq(1, 100)),
    ?expect({ok, D100}, py:eval(<<"x">>, #{x => D100})),
    still_serving().

huge_ints(_Config) ->
    Big = 1 bsl 3000,
    ?expect({ok, Big}, py:eval(<<"2 ** 3000">>)),
    ?equal({ok, -Big}, py:eval(<<"-(2 ** 3000)">>)),
    Sum = Big + 1,
    ?expect({ok, Sum}, py:call(operator, add, [Big, 1])),
    ?expect({ok, true}, py:eval(<<"x == 2 ** 3000">>, #{x => Big})),
    ?expect({ok, true}, py:eval(<<"x == -(2 ** 3000)">>, #{x => -Big})),
    Edges = [(1 bsl 63) - 1, 1 bsl 63, -(1 bsl 63), -(1 bsl 63) - 1, 1 bsl 64, (1 bsl 64) - 1,
             1 bsl 27, -(1 bsl 27) - 1, 1 bsl 100000],
    lists:foreach(fun(I) -> ?expect({ok, I}, py:eval(<<"x">>, #{x => I})) end, Edges),
    still_serving().

non_utf8_binaries(_Config) ->
    Bad = <<255, 254, 0, 128>>,
    ?expect({ok, <<"bytes">>}, py:eval(<<"type(b).__name__">>, #{b => Bad})),
    ?expect({ok, Bad}, py:eval(<<"b">>, #{b => Bad})),
    ?expect({ok, 4}, py:call(builtins, len, [Bad])),
    ?expect({ok, <<"str">>}, py:eval(<<"type(b).__name__">>, #{b => <<"ok"/utf8>>})),
    still_serving().

context_out_of_range(_Config) ->
    ?expect({error, {bad_context, 0}}, py:context(0)),
    ?expect({error, {bad_context, 3}}, py:context(3)),
    ?expect({error, {bad_context, 1000}}, py_context_router:get_context(1000)),
    ?expect({error, {bad_context, foo}}, py:context(foo)),
    still_serving().

%%--------------------------------------------------------------------
%% Timeouts interrupt the Python code

timeout_interrupts_loop(_Config) ->
    Ctx = py:context(1),
    ok = py:exec(Ctx, <<"def spin():\n    while True:\n        pass\n">>),
    {T, R} = py_ct:timed(fun() -> py_context:call(Ctx, '__main__', spin, [], #{}, 300) end),
    ?expect({error, timeout}, R),
    true = T < 1000 orelse ct:fail("timeout took ~.1f ms", [T]),
    %% the same context answers the next call at once
    {T2, R2} = py_ct:timed(fun() -> py:eval(Ctx, <<"1 + 1">>) end),
    ?expect({ok, 2}, R2),
    true = T2 < 1000 orelse ct:fail("next call on the context took ~.1f ms", [T2]),
    %% through the facade with a bound context, call/5 with a timeout
    ok = py_context_router:bind_context(Ctx),
    ?expect({error, timeout}, py:call('__main__', spin, [], #{}, 200)),
    {T3, R3} = py_ct:timed(fun() -> py:call('__main__', spin, [], #{}, 200) end),
    ?expect({error, timeout}, R3),
    true = T3 < 1000 orelse ct:fail("second timeout took ~.1f ms", [T3]),
    ?expect({ok, 3}, py:eval(<<"1 + 2">>)),
    %% the semaphore slot came back
    py_ct:wait_until(fun() -> py_semaphore:current() =:= 0 end, 2000, "slots released"),
    %% no late reply in the mailbox
    timer:sleep(200),
    receive Msg -> ct:fail("late message after timeouts: ~p", [Msg]) after 0 -> ok end.

timeout_eval(_Config) ->
    Ctx = py:context(2),
    {T, R} = py_ct:timed(
               fun() -> py:eval(<<"sum(1 for _ in iter(int, 1))">>, #{}, 300) end),
    ?expect({error, timeout}, R),
    true = T < 1000 orelse ct:fail("eval timeout took ~.1f ms", [T]),
    ?expect({error, timeout}, py_context:eval(Ctx, <<"sum(1 for _ in iter(int, 1))">>, #{}, 300)),
    {T2, R2} = py_ct:timed(fun() -> py:eval(Ctx, <<"40 + 2">>) end),
    ?expect({ok, 42}, R2),
    true = T2 < 1000 orelse ct:fail("next eval took ~.1f ms", [T2]).

timeout_exec_loop(_Config) ->
    Ctx = py:context(1),
    ?expect({error, timeout}, py_context:exec(Ctx, <<"while True:\n    pass\n">>, 300)),
    ?expect({ok, 2}, py:eval(Ctx, <<"1 + 1">>)),
    %% a queued request behind a running one is dropped on timeout, too
    Slow = py:spawn_call(Ctx, time, sleep, [1], #{}),
    py_ct:wait_until(fun() -> py_semaphore:current() >= 1 end, 5000, "the sleep in flight"),
    timer:sleep(100),
    ?expect({error, timeout}, py_context:eval(Ctx, <<"'queued'">>, #{}, 100)),
    ?expect({ok, none}, py:await(Slow, 5000)),
    ?expect({ok, 2}, py:eval(Ctx, <<"1 + 1">>)).

%%--------------------------------------------------------------------

%% print() and write(1, ...) go to stderr, never into the protocol stream.
stdout_is_protected(_Config) ->
    ?expect(ok, py:exec(<<"import os; os.write(1, b'garbage')">>)),
    ?expect({ok, 2.0}, py:call(math, sqrt, [4])),
    ?expect(ok, py:exec(<<"print('hello from python' * 1000)">>)),
    ?expect(ok, py:exec(<<"import sys; sys.stdout.write('x' * 100000); sys.stdout.flush()">>)),
    ?expect({ok, 3.0}, py:call(math, sqrt, [9])),
    [?expect(ok, py:exec(py:context(I), <<"import os; os.write(1, b'\\x00\\x00\\x00\\x05stray')">>))
     || I <- [1, 2]],
    still_serving().

%% Reading stdin, from Python or from a subprocess, finds end-of-file: the
%% requests are on a private descriptor.
stdin_is_protected(_Config) ->
    ?expect({ok, <<>>}, py:eval(<<"__import__('sys').stdin.read()">>)),
    ?expect({ok, <<>>}, py:eval(<<"__import__('os').read(0, 4096)">>)),
    ?expect({ok, <<>>}, py:eval(<<"__import__('subprocess').run(['cat'], capture_output=True).stdout">>)),
    still_serving().

%% Many callers at once, pipelined through the port; replies matched by id.
pipelined_callers(_Config) ->
    Parent = self(),
    N = 200,
    Pids = [spawn_link(fun() ->
                               R = [py:call(operator, add, [I, J]) || J <- lists:seq(1, 20)],
                               Parent ! {done, self(), I, R}
                       end) || I <- lists:seq(1, N)],
    lists:foreach(
      fun(Pid) ->
              receive
                  {done, Pid, I, R} ->
                      Expected = [{ok, I + J} || J <- lists:seq(1, 20)],
                      R =:= Expected orelse ct:fail("caller ~b got ~p", [I, R])
              after 30000 ->
                  ct:fail("a caller did not finish")
              end
      end, Pids).

%% A dead sidecar gives {error, {python_crashed, _}} to every call in flight,
%% then the application brings the sidecar and the contexts back.
sidecar_crash(_Config) ->
    Parent = self(),
    Ctx2 = py:context(2),
    Sleepers = [spawn_link(fun() -> Parent ! {slept, self(), py:call(Ctx2, time, sleep, [10])} end)
                || _ <- lists:seq(1, 5)],
    py_ct:wait_until(fun() -> py_semaphore:current() >= 5 end, 5000, "sleepers in flight"),
    {T, R} = py_ct:timed(fun() -> py:exec(py:context(1), <<"import os; os._exit(3)">>) end),
    ?expect({error, {python_crashed, #{status := 3}}}, R),
    true = T < 5000 orelse ct:fail("the crash took ~.1f ms to report", [T]),
    lists:foreach(
      fun(Pid) ->
              receive
                  {slept, Pid, Res} -> ?expect({error, {python_crashed, _}}, Res)
              after 5000 -> ct:fail("a call in flight hung after the crash")
              end
      end, Sleepers),
    py_ct:wait_until(fun() -> py:call(math, sqrt, [4]) =:= {ok, 2.0} end, 20000,
                     "the sidecar to come back"),
    py_ct:wait_until(fun() -> py_context_router:num_contexts() =:= 2 end, 5000,
                     "the contexts to come back"),
    ?expect({ok, 2}, py:eval(py:context(2), <<"1 + 1">>)).

%% After application:stop every call gives a clear error, none crashes.
after_stop(_Config) ->
    Ctx = py:context(1),
    py_ct:stop(),
    ?expect({error, not_started}, py:call(math, sqrt, [4])),
    ?expect({error, not_started}, py:call(math, sqrt, [4], #{}, 1000)),
    ?expect({error, not_started}, py:eval(<<"1">>)),
    ?expect({error, not_started}, py:eval(<<"x">>, #{x => 1})),
    ?expect({error, not_started}, py:exec(<<"x = 1">>)),
    ?expect({error, _}, py:eval(Ctx, <<"1">>)),
    ?expect({error, _}, py:call(Ctx, math, sqrt, [4])),
    ?expect({error, _}, py:call(default, math, sqrt, [4])),
    ?expect({error, not_started}, py:await(py:spawn_call(math, sqrt, [4]), 1000)),
    ?expect({error, not_started}, py:cast(math, sqrt, [4])),
    ?expect({error, not_started}, py:parallel([{math, sqrt, [4]}])),
    ?expect({error, not_started}, py:context()),
    ?expect({error, not_started}, py:context(1)),
    %% introspection answers from the build (API.md section 1)
    ?expect({ok, <<_, _/binary>>}, py:version()),
    ?expect(true, lists:member(py:execution_mode(), [subinterp, multi_executor, free_threaded])),
    ?expect({error, not_started}, py_semaphore:acquire(1000)),
    ?expect({error, not_started}, py_context_router:start_pool(p, 1, worker)),
    ?expect(false, py:contexts_started()),
    ?expect(0, py_context_router:num_contexts()),
    %% and it starts again
    py_ct:start([{num_contexts, 2}]),
    ?expect({ok, 2.0}, py:call(math, sqrt, [4])).

%%--------------------------------------------------------------------

still_serving() ->
    ?expect({ok, 4.0}, py:call(math, sqrt, [16])),
    ?expect({ok, 2}, py:eval(py:context(1), <<"1 + 1">>)),
    ?expect({ok, 2}, py:eval(py:context(2), <<"1 + 1">>)).

%% API.md section 2: "a traceback is available through the logger".
traceback_to_logger(_Config) ->
    #{level := Level} = logger:get_primary_config(),
    ok = logger:set_primary_config(level, info),
    ok = logger:add_handler(py_tb, ?MODULE, #{config => #{pid => self()}}),
    try
        Ctx = py:context(1),
        ok = py:exec(Ctx, <<"def inner():\n    return {}['missing']\ndef outer():\n    return inner()\n">>),
        ?expect({error, {'KeyError', _}}, py:call(Ctx, '__main__', outer, [])),
        receive
            {py_tb, #{level := info, msg := {Format, Args}, meta := #{py_context := _} = Meta}} ->
                %% no domain (OTP's default handler shows it); the caller is named
                ?equal(false, maps:is_key(domain, Meta)),
                ?equal(self(), maps:get(pid, Meta)),
                Text = unicode:characters_to_binary(io_lib:format(Format, Args)),
                [?expect(match, re:run(Text, Re, [{capture, none}]))
                 || Re <- [<<"Traceback">>, <<"in outer">>, <<"in inner">>, <<"KeyError: 'missing'">>]]
        after 5000 ->
            ct:fail("no traceback reached the logger")
        end
    after
        ok = logger:remove_handler(py_tb),
        ok = logger:set_primary_config(level, Level)
    end.

log(Event, #{config := #{pid := Pid}}) ->
    Pid ! {py_tb, Event}.
