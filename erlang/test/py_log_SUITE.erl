%% Python's sys.stdout and sys.stderr, fd 1 and fd 2 of the sidecar, go to
%% the Erlang logger as '$log' packets (docs/PROTOCOL.md, "Log packets"),
%% with the context in the metadata py_context.
-module(py_log_SUITE).

-include_lib("common_test/include/ct.hrl").
-include("py_ct.hrl").

-export([all/0, init_per_suite/1, end_per_suite/1, init_per_testcase/2,
         end_per_testcase/2]).
-export([print_per_context/1, stderr_is_warning/1, partial_line_on_flush/1,
         long_partial_line/1, stream_api/1, thread_carries_context/1,
         shell_output/1, c_stderr/1]).
%% logger handler callback
-export([log/2]).

-define(WAIT, 30000). % a deadline for failing, not a timing check

all() ->
    [print_per_context, stderr_is_warning, partial_line_on_flush, long_partial_line,
     stream_api, thread_carries_context, shell_output, c_stderr].

init_per_suite(Config) ->
    py_ct:start([{num_contexts, 2}]),
    #{level := Level} = logger:get_primary_config(),
    ok = logger:set_primary_config(level, all), % info events pass
    [{primary_level, Level} | Config].

end_per_suite(Config) ->
    ok = logger:set_primary_config(level, ?config(primary_level, Config)),
    py_ct:stop().

%% A handler that forwards the sidecar's log events to the test process.
init_per_testcase(_Case, Config) ->
    ok = logger:add_handler(py_log_test, ?MODULE, #{level => all, config => #{pid => self()}}),
    Config.

end_per_testcase(_Case, _Config) ->
    _ = logger:remove_handler(py_log_test),
    ok.

log(#{level := Level, msg := {_Format, Args}, meta := #{py_context := Ctx} = Meta},
    #{config := #{pid := Pid}}) ->
    case Meta of
        #{py_dropped := N} -> Pid ! {py_dropped, N};
        _ -> Pid ! {py_log, Level, Ctx, lists:last(Args)}
    end,
    case Meta of
        #{pid := Caller} -> Pid ! {py_caller, Caller, lists:last(Args)};
        _ -> ok
    end;
log(_Event, _HandlerConfig) ->
    ok.

ctx(I) ->
    {ok, Id} = py_context:ctx_id(py:context(I)),
    Id.

%% Waits for a log event {Level, Ctx, Text}, skipping others.
expect_log(Level, Ctx, Text) ->
    receive
        {py_log, Level, Ctx, Text} -> ok
    after ?WAIT ->
        ct:fail("no log event ~p, ~p, ~p; got ~p",
                [Level, Ctx, Text, [M || {messages, Ms} <- [process_info(self(), messages)], M <- Ms]])
    end.

%% print() in context 1 and in context 2: notice, py_context => that
%% context, pid => the caller.
print_per_context(_Config) ->
    [begin
         ?expect(ok, py:exec(py:context(I), <<"print('hello')">>)),
         expect_log(notice, ctx(I), <<"hello">>),
         receive {py_caller, Caller, <<"hello">>} -> ?equal(self(), Caller)
         after ?WAIT -> ct:fail("no caller")
         end
     end || I <- [1, 2]],
    %% several lines of one print, then one more: all of them, in order
    ?expect(ok, py:exec(py:context(1), <<"print('a\\nb'); print('c', flush=True)">>)),
    ?equal(<<"a\nb\nc">>, collect(ctx(1), <<>>, <<"c">>)).

%% Texts of info events of Ctx, joined with newlines, until one ends in Last.
collect(Ctx, Acc, Last) ->
    receive
        {py_log, notice, Ctx, Text} ->
            All = case Acc of <<>> -> Text; _ -> <<Acc/binary, "\n", Text/binary>> end,
            case binary:longest_common_suffix([All, Last]) =:= byte_size(Last) of
                true -> All;
                false -> collect(Ctx, All, Last)
            end
    after ?WAIT -> ct:fail("lines so far: ~p", [Acc])
    end.

stderr_is_warning(_Config) ->
    ?expect(ok, py:exec(py:context(2), <<"import sys; print('oops', file=sys.stderr)">>)),
    expect_log(warning, ctx(2), <<"oops">>),
    %% an exception printed by Python itself (an unraisable one) too
    ?expect(ok, py:exec(py:context(1), <<"import sys; sys.stderr.write('err line\\n')">>)),
    expect_log(warning, ctx(1), <<"err line">>).

%% A partial line waits for flush(); a stderr line written after it, on
%% the same thread, comes after anything sent before it.
partial_line_on_flush(_Config) ->
    C = py:context(1),
    ?expect(ok, py:exec(C, <<"import sys; sys.stdout.write('part')">>)),
    ?expect(ok, py:exec(C, <<"print('sync', file=sys.stderr)">>)),
    expect_log(warning, ctx(1), <<"sync">>),
    receive {py_log, notice, _, <<"part">>} = Early -> ct:fail("sent before flush: ~p", [Early])
    after 0 -> ok
    end,
    ?expect(ok, py:exec(C, <<"sys.stdout.flush()">>)),
    expect_log(notice, ctx(1), <<"part">>),
    %% print(..., end='', flush=True)
    ?expect(ok, py:exec(C, <<"print('no newline', end='', flush=True)">>)),
    expect_log(notice, ctx(1), <<"no newline">>).

%% A partial line goes out once it reaches 8 KiB, without a flush.
long_partial_line(_Config) ->
    ?expect(ok, py:exec(py:context(2), <<"import sys; sys.stdout.write('y' * 9000)">>)),
    Y = binary:copy(<<"y">>, 9000),
    expect_log(notice, ctx(2), Y).

stream_api(_Config) ->
    C = py:context(1),
    ?expect(ok, py:exec(C, <<"import sys">>)),
    ?expect({ok, {4, false, <<"utf-8">>, true}},
            py:eval(C, <<"(sys.stdout.write('abc\\n'), sys.stdout.isatty(), sys.stdout.encoding,"
                         " sys.stderr.writable())">>, #{})),
    expect_log(notice, ctx(1), <<"abc">>),
    ?expect({error, {'UnsupportedOperation', _}}, py:exec(C, <<"sys.stdout.fileno()">>)),
    ?expect({error, {'TypeError', _}}, py:exec(C, <<"sys.stdout.write(b'bytes')">>)),
    %% non-ASCII and lone surrogates
    ?expect(ok, py:exec(C, <<"print('caf\\u00e9 \\ud800')">>)),
    expect_log(notice, ctx(1), <<"café \\ud800"/utf8>>).

%% A thread that Python started logs for its interpreter's home context:
%% context 2's own in a sub-interpreter; in the shared main interpreter
%% (multi_executor), the newest context.
thread_carries_context(_Config) ->
    ?expect(ok, py:exec(py:context(2),
                        <<"import threading\n"
                          "t = threading.Thread(target=lambda: print('from-thread'))\n"
                          "t.start(); t.join()\n">>)),
    receive
        {py_log, notice, Ctx, <<"from-thread">>} ->
            case py:execution_mode() of
                multi_executor -> ?expect(true, lists:member(Ctx, [ctx(1), ctx(2)]));
                _ -> ?equal(ctx(2), Ctx)
            end
    after ?WAIT -> ct:fail("no log event from the thread")
    end.

%% A subprocess's output (fd 1 inherited) from a worker context: a
%% sidecar line.
shell_output(_Config) ->
    {ok, [W]} = py_context_router:start_pool(logworker, 1, worker),
    try
        ?expect(ok, py:exec(W, <<"import os; assert os.system('echo from-shell') == 0">>)),
        expect_log(notice, sidecar, <<"from-shell">>),
        ?expect(ok, py:exec(W, <<"import os; os.system('echo to-stderr >&2')">>)),
        expect_log(warning, sidecar, <<"to-stderr">>)
    after
        py_context_router:stop_pool(logworker)
    end.

%% Writes to fd 1 and 2 from C (os.write goes straight to write(2)).
c_stderr(_Config) ->
    ?expect(ok, py:exec(py:context(1), <<"import os; os.write(2, b'c-stderr\\n'); os.write(1, b'c-out\\n')">>)),
    expect_log(warning, sidecar, <<"c-stderr">>),
    expect_log(notice, sidecar, <<"c-out">>).
