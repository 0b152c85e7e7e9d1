#!/usr/bin/env escript
%% -*- erlang -*-
%% erlang_python in a few steps, with timings: the application starts the Go
%% sidecar `pyport', which embeds Python and runs one context per
%% sub-interpreter (own GIL) where the Python supports it.
%%
%% Usage: escript demo/demo.escript [path/to/pyport]
%% The application is loaded from erlang/_build/default/lib/*/ebin (`make build');
%% it runs the pyport of its priv directory, erlang/priv/pyport.
-mode(compile).

-define(LOOP, 5000000).   % iterations of a pure-Python loop, ~0.3 s

main(Args) ->
    ok = io:setopts([{encoding, unicode}]),
    Root = filename:dirname(filename:dirname(filename:absname(escript:script_name()))),
    check_exe(Args, Root),
    ok = code:add_pathsa(filelib:wildcard(
                           filename:join([Root, "erlang", "_build", "default", "lib", "*", "ebin"]))),
    ok = application:load(erlang_python),
    ok = application:set_env(erlang_python, num_contexts, 2),
    {T0, Started} = timed(fun() -> application:ensure_all_started(erlang_python) end),
    case Started of
        {ok, _} -> ok;
        {error, Reason} -> fail("erlang_python did not start: ~p", [Reason])
    end,
    {ok, Version} = py:version(),
    io:format("erlang_python demo (OTP ~s)~n", [erlang:system_info(otp_release)]),
    io:format("  Python ~ts~n  mode ~p, ~b contexts, started in ~.1f ms~n~n",
              [Version, py:execution_mode(), py_context_router:num_contexts(), T0 / 1000]),

    section("calls"),
    show("py:call(math, sqrt, [16])", fun() -> py:call(math, sqrt, [16]) end, {ok, 4.0}),
    show("py:call(json, dumps, [Map], #{sort_keys => true})",
         fun() -> py:call(json, dumps, [#{name => <<"erlang_python">>, tags => [port, go, python], n => 1}],
                          #{sort_keys => true}) end,
         {ok, <<"{\"n\": 1, \"name\": \"erlang_python\", \"tags\": [\"port\", \"go\", \"python\"]}">>}),
    show("py:call(operator, add, [2^100, 1])", fun() -> py:call(operator, add, [1 bsl 100, 1]) end,
         {ok, (1 bsl 100) + 1}),
    latency("sequential py:call(operator, add, [1, 2])", fun() -> py:call(operator, add, [1, 2]) end),

    io:format("~n"),
    section("eval with locals"),
    show("py:eval(<<\"x * y + 1\">>, #{x => 6, y => 7})",
         fun() -> py:eval(<<"x * y + 1">>, #{x => 6, y => 7}) end, {ok, 43}),
    show("py:eval(<<\"sorted(d.items())\">>, #{d => #{b => 2, a => 1}})",
         fun() -> py:eval(<<"sorted(d.items())">>, #{d => #{b => 2, a => 1}}) end,
         {ok, [{<<"a">>, 1}, {<<"b">>, 2}]}),

    io:format("~n"),
    section("contexts: exec + eval, each with its own globals"),
    C1 = py:context(1),
    C2 = py:context(2),
    show("py:exec(Ctx1, <<\"x = 42\">>)", fun() -> py:exec(C1, <<"x = 42">>) end, ok),
    show("py:eval(Ctx1, <<\"x\">>)", fun() -> py:eval(C1, <<"x">>) end, {ok, 42}),
    show("py:eval(Ctx2, <<\"x\">>)", fun() -> py:eval(C2, <<"x">>) end,
         {error, {'NameError', <<"name 'x' is not defined">>}}),
    show("py:exec(Ctx1, <<\"def greet(n): ...\">>)",
         fun() -> py:exec(C1, <<"def greet(n):\n    return 'hello ' + n\n">>) end, ok),
    show("py:call(Ctx1, '__main__', greet, [<<\"world\">>])",
         fun() -> py:call(C1, '__main__', greet, [<<"world">>]) end, {ok, <<"hello world">>}),

    io:format("~n"),
    section("process-bound environments: each Erlang process has its own globals"),
    Self = self(),
    InOther = fun(F) -> spawn(fun() -> Self ! {other, F()} end), receive {other, R} -> R end end,
    show("another process: py:eval(Ctx1, <<\"x\">>)  (x is this process's)",
         fun() -> InOther(fun() -> py:eval(C1, <<"x">>) end) end,
         {error, {'NameError', <<"name 'x' is not defined">>}}),
    show("another process: py:exec(Ctx1, <<\"x = 'mine'\">>), then py:eval(Ctx1, <<\"x\">>)",
         fun() -> InOther(fun() -> ok = py:exec(C1, <<"x = 'mine'">>), py:eval(C1, <<"x">>) end) end,
         {ok, <<"mine">>}),
    show("this process: py:eval(Ctx1, <<\"x\">>)  (unchanged)", fun() -> py:eval(C1, <<"x">>) end, {ok, 42}),
    io:format("  to share between processes: the shared state, a SharedDict, or a module:~n"),
    ok = py:state_store(greeting, <<"hi">>),
    show("py:state_store(greeting, <<\"hi\">>); another process evals erlang.state_get('greeting')",
         fun() -> InOther(fun() -> py:eval(C1, <<"erlang.state_get('greeting')">>) end) end,
         {ok, <<"hi">>}),
    {ok, SD} = py:shared_dict_new(),
    ok = py:shared_dict_set(SD, <<"hits">>, 7),
    show("py:shared_dict_new(), set hits = 7; another process reads it on Ctx2",
         fun() -> InOther(fun() -> py:eval(C2, <<"erlang.SharedDict(sd)['hits']">>, #{sd => SD}) end) end,
         {ok, 7}),
    Dir = filename:join(filename:basedir(user_cache, "erlang_python_demo"), os:getpid()),
    ok = filelib:ensure_dir(filename:join(Dir, "x")),
    ok = file:write_file(filename:join(Dir, "demo_tasks.py"),
                         <<"import erlang\n"
                           "def burn(n):\n    s = 0\n    for i in range(n):\n        s += i * i\n    return s\n"
                           "def send_loop(pid, n):\n    for i in range(n):\n        erlang.send(pid, i)\n">>),
    show("py_import:add_path(Dir)  (demo_tasks.py there: every context, every process)",
         fun() -> py_import:add_path(Dir) end, ok),
    show("another process: py:call(Ctx2, demo_tasks, burn, [10])",
         fun() -> InOther(fun() -> py:call(C2, demo_tasks, burn, [10]) end) end, {ok, 285}),
    Dead = spawn(fun() -> ok end),
    timer:sleep(10),
    show("erlang.send to a process that exited: erlang.ProcessError",
         fun() -> element(1, element(2, py:eval(C1, <<"erlang.send(p, 1)">>, #{p => Dead}))) end,
         'ProcessError'),
    {ok, Lock} = py:call(C1, threading, 'Lock', [], #{return => ref}),
    show("py:call(Ctx1, threading, 'Lock', [], #{return => ref}), py:call_method(Ref, acquire, [])",
         fun() -> py:call_method(Lock, acquire, []) end, {ok, true}),

    io:format("~n"),
    section("py:parallel: CPU-bound Python on 1 context, then spread over 2"),
    Item = {demo_tasks, burn, [?LOOP]},
    {One, _} = timed(fun() ->
                             {ok, _} = py:call(C1, demo_tasks, burn, [?LOOP]),
                             {ok, _} = py:call(C1, demo_tasks, burn, [?LOOP])
                     end),
    {Two, {ok, Results}} = timed(fun() -> py:parallel([Item, Item]) end),
    true = lists:all(fun({ok, V}) -> is_integer(V); (_) -> false end, Results),
    io:format("  2 loops on 1 context        ~8.1f ms~n", [One / 1000]),
    io:format("  2 loops on 2 contexts       ~8.1f ms   speedup ~.2fx (~p)~n~n",
              [Two / 1000, One / Two, py:execution_mode()]),

    section("errors"),
    show("py:eval(<<\"1 / 0\">>)", fun() -> py:eval(<<"1 / 0">>) end,
         {error, {'ZeroDivisionError', <<"division by zero">>}}),
    show("py:call(no_such_module, f, [])", fun() -> py:call(no_such_module, f, []) end,
         {error, {'ModuleNotFoundError', <<"No module named 'no_such_module'">>}}),
    show("py:call(math, sqrt, not_a_list)", fun() -> py:call(math, sqrt, not_a_list) end,
         {error, {badarg, {args, not_a_list}}}),

    io:format("~n"),
    section("a timeout stops a runaway loop"),
    ok = py:exec(C1, <<"def spin():\n    while True:\n        pass\n">>),
    show("py_context:call(Ctx1, '__main__', spin, [], #{}, 500)",
         fun() -> py_context:call(C1, '__main__', spin, [], #{}, 500) end, {error, timeout}),
    show("then py:eval(Ctx1, <<\"'still serving'\">>)",
         fun() -> py:eval(C1, <<"'still serving'">>) end, {ok, <<"still serving">>}),

    io:format("~n"),
    section("callbacks: Python calls Erlang, which calls Python again"),
    ok = py:register_function(double, fun([X]) -> 2 * X end),
    show("py:eval(<<\"__import__('erlang').double(21)\">>)",
         fun() -> py:eval(<<"__import__('erlang').double(21)">>) end, {ok, 42}),
    ok = py:exec(C1, <<"import erlang\n"
                       "def level(n):\n"
                       "    return n if n >= 10 else erlang.next_level(n + 1)\n">>),
    ok = py:register_function(next_level, fun([N]) -> {ok, R} = py:call('__main__', level, [N]), R end),
    show("py:call(Ctx1, '__main__', level, [0])  (10 nested levels)",
         fun() -> py:call(C1, '__main__', level, [0]) end, {ok, 10}),
    latency("sequential py:eval with one erlang.double call",
            fun() -> py:eval(C1, <<"erlang.double(1)">>) end),

    section("under load, and against hostile Python"),
    show("200 processes each py:call(time, sleep, [0.005]) at once: served",
         fun() ->
                 Self = self(),
                 Pids = [spawn(fun() -> Self ! {burst, self(), py:call(time, sleep, [0.005])} end)
                         || _ <- lists:seq(1, 200)],
                 length([ok || P <- Pids, receive {burst, P, {ok, none}} -> true after 30000 -> false end])
         end, 200),
    io:format("      (at most ~b at once in Python, the others waited in arrival order)~n",
              [py_semaphore:max_concurrent()]),
    show("py_context:eval(Ctx1, <<\"time.sleep(10)\">>, #{}, 100)",
         fun() -> py_context:eval(C1, <<"__import__('time').sleep(10)">>, #{}, 100) end, {error, timeout}),
    show("then py:eval(Ctx1, <<\"'awake'\">>)  (the sleep was stopped)",
         fun() -> py:eval(C1, <<"'awake'">>) end, {ok, <<"awake">>}),
    show("py:exec(<<\"print('hello from Python')\">>)  (a notice in the log:)",
         fun() -> R = py:exec(<<"print('hello from Python')">>), timer:sleep(100), R end, ok),
    Atoms0 = erlang:system_info(atom_count),
    MakeAtoms = <<"[__import__('erlang').Atom('demo_atom_%d' % i) for i in range(50000)]">>,
    show("erlang.Atom('demo_atom_%d' % i) for 50000 new names: the error's class",
         fun() ->
                 case py:eval(MakeAtoms) of
                     {error, {Class, Msg}} -> io:format("      ~ts~n", [Msg]), Class;
                     Other -> Other
                 end
         end, 'AtomLimitError'),
    io:format("      (refused in Python before any reached the BEAM, whose atom count grew by ~b)~n",
              [erlang:system_info(atom_count) - Atoms0]),
    show("erlang.send(erlang.Atom('init'), ('stop', 'stop'))  (dropped, logged)",
         fun() -> py:exec(<<"import erlang\n"
                            "erlang.send(erlang.Atom('init'), (erlang.Atom('stop'), erlang.Atom('stop')))">>)
         end, ok),
    timer:sleep(100),
    Add = fun() -> {ok, 3} = py_context:call(C2, operator, add, [1, 2], #{}) end,
    latency("py_context:call(Ctx2, operator, add, [1, 2]), quiet", Add),
    show("Ctx1 sends 20000 messages while Ctx2 serves calls: received",
         fun() -> send_flood(C1, Add, 20000) end, 20000),
    ok = py:state_store(demo, 1),
    latency("py:state_fetch(demo)  (read from the BEAM's mirror)", fun() -> {ok, 1} = py:state_fetch(demo) end),
    {TCasts, _} = timed(fun() -> [ok = py:cast(erlang, state_incr, [<<"casts">>]) || _ <- lists:seq(1, 100)] end),
    show("100 py:cast(erlang, state_incr, [<<\"casts\">>]), then the count",
         fun() -> wait_count(casts, 100, 100) end, {ok, 100}),
    io:format("      (each cast returned in ~.1f µs on average)~n", [TCasts / 100]),

    section("streams and async: tokens as messages, an asyncio gather, a channel"),
    ok = py:exec(C1, <<"import time\n"
                       "def tokens(text):\n"
                       "    for word in text.split():\n"
                       "        time.sleep(0.02)  # an LLM client's pace\n"
                       "        yield word\n">>),
    {ok, StreamRef} = py:stream_start('__main__', tokens, [<<"streamed from a Python generator, one message per token">>]),
    io:format("  py:stream_start('__main__', tokens, [Text]), the tokens as they come:~n     "),
    Tokens = stream_tokens(StreamRef, []),
    show("  tokens received, then {py_stream, Ref, done}", fun() -> length(Tokens) end, 9),
    show("py:stream_eval(<<\"(x * x for x in range(5))\">>)",
         fun() -> py:stream_eval(<<"(x * x for x in range(5))">>) end, {ok, [0, 1, 4, 9, 16]}),
    ok = py:exec(C1, <<"import asyncio\n"
                       "async def fetch(i):\n"
                       "    await asyncio.sleep(0.2)  # an HTTP call's wait\n"
                       "    return i * 10\n"
                       "async def fetch_all(n):\n"
                       "    return await asyncio.gather(*(fetch(i) for i in range(n)))\n">>),
    show("py_event_loop:run(Ctx1, '__main__', fetch_all, [50])  (50 waits of 0.2 s at once)",
         fun() -> py_event_loop:run(C1, '__main__', fetch_all, [50]) end,
         {ok, [I * 10 || I <- lists:seq(0, 49)]}),
    ok = py:exec(C1, <<"async def slow():\n"
                       "    await asyncio.sleep(1)\n"
                       "    return 'slept'\n">>),
    Task = py_event_loop:create_task(C1, '__main__', slow, []),
    latency("py:eval(Ctx1, ...) while a task of Ctx1 sleeps", fun() -> {ok, 2} = py:eval(C1, <<"1 + 1">>) end),
    show("py_event_loop:await(Task, 5000)", fun() -> py_event_loop:await(Task, 5000) end, {ok, <<"slept">>}),
    show("py:async_gather([{asyncio, sleep, [0.1, I]} || I <- [1, 2, 3]])",
         fun() -> py:async_gather([{asyncio, sleep, [0.1, I]} || I <- [1, 2, 3]]) end, {ok, [1, 2, 3]}),
    {ok, Ch} = py_channel:new(),
    Summer = self(),
    _ = spawn_link(fun() ->
                           %% a process of its own: its environment has total()
                           ok = py:exec(C1, <<"from erlang import Channel\n"
                                              "def total(ch):\n"
                                              "    return sum(Channel(ch))  # until closed\n">>),
                           Summer ! {total, py:call(C1, '__main__', total, [Ch])}
                   end),
    [ok = py_channel:send(Ch, I) || I <- lists:seq(1, 100)],
    ok = py_channel:close(Ch),
    show("py_channel:send 1..100, close; Python sums what it receives",
         fun() -> receive {total, T} -> T after 10000 -> timeout end end, {ok, 5050}),

    section("crash isolation: the sidecar dies, the BEAM does not"),
    ok = py:subscribe_restarts(),
    #{level := Level} = logger:get_primary_config(),
    ok = logger:set_primary_config(level, critical), % no crash reports here
    show("py:exec(Ctx1, <<\"import os; os._exit(3)\">>)",
         fun() -> py:exec(C1, <<"import os; os._exit(3)">>) end,
         {error, {python_crashed, #{status => 3}}}),
    receive
        {py_restarted, #{down_ms := Down}} ->
            io:format("  {py_restarted, _}: contexts back ~b ms after the crash~n", [Down])
    after 30000 -> fail("no restart", [])
    end,
    ok = logger:set_primary_config(level, Level),
    show("py:eval(<<\"__import__('erlang').double(21)\">>)",
         fun() -> py:eval(<<"__import__('erlang').double(21)">>) end, {ok, 42}),
    show("py:eval(Ctx1, <<\"x\">>)  (what exec defined is gone)",
         fun() -> py:eval(py:context(1), <<"x">>) end,
         {error, {'NameError', <<"name 'x' is not defined">>}}),

    section("several sidecars: another pyport process beside the default one"),
    show("erlang_python:start_sidecar(other, #{num_contexts => 1})",
         fun() -> element(1, erlang_python:start_sidecar(other, #{num_contexts => 1})) end, ok),
    show("os.getpid() on the default pool and on {other, default}: 2 pids",
         fun() ->
                 Pids = [py:eval(P, <<"__import__('os').getpid()">>) || P <- [default, {other, default}]],
                 length(lists:usort(Pids))
         end, 2),
    ok = py:exec(py:context(1), <<"y = 'still here'">>),
    [OtherCtx] = py_context_router:contexts({other, default}),
    ok = logger:set_primary_config(level, critical),
    show("py:exec(OtherCtx, <<\"import os; os._exit(4)\">>)",
         fun() -> py:exec(OtherCtx, <<"import os; os._exit(4)">>) end,
         {error, {python_crashed, #{status => 4}}}),
    ok = logger:set_primary_config(level, Level),
    show("py:eval(Ctx1, <<\"y\">>)  (the default sidecar did not notice)",
         fun() -> py:eval(py:context(1), <<"y">>) end, {ok, <<"still here">>}),
    show("erlang_python:stop_sidecar(other)", fun() -> erlang_python:stop_sidecar(other) end, ok),

    ok = application:stop(erlang_python),
    _ = file:del_dir_r(Dir),
    io:format("~ndemo: ok~n").

check_exe([Path | _], _Root) ->
    filelib:is_regular(Path) orelse fail("~ts not found (run `make build` first)", [Path]);
check_exe([], Root) ->
    check_exe([filename:join([Root, "erlang", "priv", "pyport"])], Root).

%% The tokens of a py:stream_start stream, printed as they come.
stream_tokens(Ref, Acc) ->
    receive
        {py_stream, Ref, {data, Token}} ->
            io:format("~ts ", [Token]),
            stream_tokens(Ref, [Token | Acc]);
        {py_stream, Ref, done} ->
            io:format("~n"),
            lists:reverse(Acc);
        {py_stream, Ref, {error, E}} ->
            fail("stream: ~p", [E])
    after 10000 -> fail("stream: no token for 10 s", [])
    end.

section(Title) ->
    io:format("~ts~n", [Title]).

%% Run Fun, print its result and time; stop the demo when the result is not
%% the expected one.
show(What, Fun, Expected) ->
    {T, Result} = timed(Fun),
    Mark = case Result of
               Expected -> "";
               _ -> "   <-- expected " ++ lists:flatten(io_lib:format("~0tp", [Expected]))
           end,
    io:format("  ~ts ~8.1f ms~n      -> ~0tp~ts~n", [string:pad(What, 58), T / 1000, Result, Mark]),
    Result =:= Expected orelse fail("unexpected result for ~ts", [What]).

latency(What, Fun) ->
    _ = [Fun() || _ <- lists:seq(1, 500)],
    Times = lists:sort([element(1, timed(Fun)) || _ <- lists:seq(1, 2000)]),
    io:format("  ~ts ~8.1f µs median (n=2000)~n", [string:pad(What, 58), lists:nth(1000, Times)]).

%% Context Ctx sends N messages to a collector while Call runs in a loop
%% here; prints the calls' median latency and the sends' rate (send_pace),
%% and gives how many messages the collector got.
send_flood(Ctx, Call, N) ->
    Self = self(),
    Collector = spawn_link(fun() -> collect(Self, 0) end),
    T0 = erlang:monotonic_time(microsecond),
    _ = spawn_link(fun() ->
                           Self ! {flooded, py_context:call(Ctx, demo_tasks, send_loop, [Collector, N],
                                                            #{}, 60000)}
                   end),
    Times = lists:sort(serve_until_flooded(Call, [])),
    Ms = (erlang:monotonic_time(microsecond) - T0) / 1000,
    io:format("      (~b calls meanwhile, ~.1f µs median; the sends were paced to ~b/s while "
              "others were served: ~b/s)~n",
              [length(Times), lists:nth(length(Times) div 2 + 1, Times),
               py_config:get(default, send_pace), round(N / Ms * 1000)]),
    Collector ! count,
    receive {collected, Got} -> Got after 5000 -> fail("the collector did not answer", []) end.

serve_until_flooded(Call, Acc) ->
    receive
        {flooded, {ok, none}} -> Acc;
        {flooded, Other} -> fail("the send loop gave ~p", [Other])
    after 0 -> serve_until_flooded(Call, [element(1, timed(Call)) | Acc])
    end.

collect(Demo, N) ->
    receive
        count -> Demo ! {collected, N};
        I when is_integer(I) -> collect(Demo, N + 1)
    end.

%% The shared state's Key once it is N, or what it is after Tries x 10 ms.
wait_count(Key, N, Tries) ->
    case py:state_fetch(Key) of
        {ok, N} = Done -> Done;
        Other when Tries =< 0 -> Other;
        _ -> timer:sleep(10), wait_count(Key, N, Tries - 1)
    end.

%% {Microseconds, Result}
timed(Fun) ->
    T0 = erlang:monotonic_time(nanosecond),
    R = Fun(),
    {(erlang:monotonic_time(nanosecond) - T0) / 1000, R}.

fail(Fmt, Args) ->
    io:format(standard_error, "demo: FAIL: " ++ Fmt ++ "~n", Args),
    halt(1).
