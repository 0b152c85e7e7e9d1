%% Large terms through slots, shared-memory files beside the pipe (py_slot,
%% docs/PROTOCOL.md): results, the slot's life, limits and failures.
-module(py_slot_SUITE).

-include_lib("common_test/include/ct.hrl").
-include("py_ct.hrl").

-export([all/0, init_per_suite/1, end_per_suite/1, init_per_testcase/2]).
-export([large_terms_round_trip/1, slot_is_reused/1, slot_grows_and_alternates/1, large_result_of_small_request/1,
         timeout_gives_slot_up/1, oversized_slot_not_kept/1, dead_callers_slots_swept/1,
         spawned_callers_leave_no_slot/1, many_callers/1, slot_limit_falls_back_to_pipe/1,
         without_slots/1, sidecar_crash/1, dir_removed_when_beam_halts/1]).

all() ->
    [large_terms_round_trip, slot_is_reused, slot_grows_and_alternates, large_result_of_small_request,
     timeout_gives_slot_up, oversized_slot_not_kept, dead_callers_slots_swept,
     spawned_callers_leave_no_slot, many_callers, slot_limit_falls_back_to_pipe,
     without_slots, sidecar_crash, dir_removed_when_beam_halts].

init_per_suite(Config) ->
    case filelib:is_dir("/dev/shm") of
        true ->
            py_ct:start([{num_contexts, 2}, {max_concurrent, 100}]),
            Config;
        false ->
            {skip, "no /dev/shm"}
    end.

end_per_suite(_Config) ->
    py_ct:stop().

init_per_testcase(_Case, Config) ->
    py_slot:drop(),
    Config.

big(N) -> rand:bytes(N).

%% The files in the slot directory.
slots() ->
    [Dir] = filelib:wildcard("/dev/shm/erlang_python-" ++ os:getpid() ++ "-*"),
    {ok, Names} = file:list_dir(Dir),
    Names.

my_slot() ->
    Mine = pid_to_list(self()),
    [N || N <- slots(), lists:prefix(Mine, N)].

large_terms_round_trip(_Config) ->
    Bin = big(1 bsl 20),
    ok = py:exec(<<"def ident(x):\n    return x\n">>),
    Ctx = py:context(1),
    ok = py:exec(Ctx, <<"def ident(x):\n    return x\n">>),
    ?expect({ok, Bin}, py:call(Ctx, '__main__', ident, [{bytes, Bin}])),
    ?expect([_], my_slot()),
    %% a large structured term, both ways
    Term = #{<<"list">> => lists:seq(1, 50000), <<"bin">> => big(100000), <<"nested">> => [{1, 2.5, <<"x">>}]},
    ?expect({ok, Term}, py:call(Ctx, '__main__', ident, [Term])),
    %% large arguments, small result
    ?expect({ok, 1048576}, py:call(Ctx, builtins, len, [{bytes, Bin}])),
    %% exec and eval too
    ?expect(ok, py:exec(Ctx, <<"blob = ", (list_to_binary(io_lib:format("~w", [lists:seq(1, 30000)])))/binary>>)),
    ?expect({ok, 30000}, py:eval(Ctx, <<"len(blob)">>)),
    ?expect({ok, 3}, py:eval(Ctx, <<"len(x[:1]) + 2">>, #{x => {bytes, big(200000)}})),
    %% errors come back as usual
    ?expect({error, {'TypeError', _}}, py:call(Ctx, math, sqrt, [{bytes, Bin}])).

slot_is_reused(_Config) ->
    Bin = big(300000),
    [?expect({ok, 300000}, py:call(builtins, len, [{bytes, Bin}])) || _ <- lists:seq(1, 5)],
    ?expect([_], my_slot()).

%% The sidecar maps a slot that comes back call after call: payloads that grow,
%% shrink, and slots that alternate on one context still read right.
slot_grows_and_alternates(_Config) ->
    Ctx = py:context(1),
    [begin
         Bin = big(N),
         ?expect({ok, Bin}, py:call(Ctx, builtins, bytes, [{bytes, Bin}]))
     end || N <- [100000, 100000, 300000, 200000, 1048576, 70000, 1048576]],
    %% results written into the mapped slot, then ones larger than its
    %% mapping (1 MiB by now), then small again
    B = big(100000),
    [begin
         Want = binary:copy(B, K),
         ?expect({ok, Want}, py:call(Ctx, operator, mul, [{bytes, B}, K]))
     end || K <- [1, 2, 15, 15, 3, 1]],
    Parent = self(),
    Pids = [spawn_link(fun() ->
                               R = [begin
                                        Bin = big(80000 + I * 5000 + J),
                                        py:call(Ctx, builtins, bytes, [{bytes, Bin}]) =:= {ok, Bin}
                                    end || J <- lists:seq(1, 10)],
                               Parent ! {done, self(), lists:all(fun(X) -> X end, R)}
                       end) || I <- lists:seq(1, 3)],
    [receive {done, P, Ok} -> ?expect(true, Ok) after 30000 -> ct:fail("a caller hung") end || P <- Pids].

%% A small request has no slot: its large result comes through the pipe.
large_result_of_small_request(_Config) ->
    ?expect({ok, <<_:2097152/binary>>}, py:eval(<<"b'x' * 2097152">>)),
    ?expect([], my_slot()).

%% After a timeout the sidecar may still read or write the slot: it is given
%% up, and the next large call gets a new one.
timeout_gives_slot_up(_Config) ->
    Bin = big(200000),
    Ctx = py:context(1),
    ok = py:exec(Ctx, <<"def slow(x):\n    import time\n    time.sleep(0.3)\n    return x\n">>),
    ?expect({error, timeout}, py_context:call(Ctx, '__main__', slow, [{bytes, Bin}], #{}, 50)),
    ?expect([], my_slot()),
    timer:sleep(400),
    ?expect({ok, Bin}, py:call(Ctx, '__main__', slow, [{bytes, Bin}], #{})),
    ?expect([_], my_slot()).

oversized_slot_not_kept(_Config) ->
    Big = py_slot:max_kept() + 1,
    ?expect({ok, Big}, py:call(builtins, len, [{bytes, big(Big)}])),
    ?expect([], my_slot()),
    ?expect({ok, 100000}, py:call(builtins, len, [{bytes, big(100000)}])),
    ?expect([_], my_slot()).

dead_callers_slots_swept(_Config) ->
    _ = py_slot:sweep(), % the slots of earlier test cases' processes
    Parent = self(),
    Pid = spawn(fun() ->
                        {ok, _} = py:call(builtins, len, [{bytes, big(100000)}]),
                        Parent ! called,
                        receive stop -> ok end
                end),
    receive called -> ok after 10000 -> ct:fail("no call") end,
    Name = pid_to_list(Pid),
    ?expect([_], [N || N <- slots(), lists:prefix(Name, N)]),
    exit(Pid, kill),
    py_ct:wait_until(fun() -> not is_process_alive(Pid) end, 1000, "the caller's death"),
    Before = py_slot:count(),
    ?expect(1, py_slot:sweep()),
    ?expect([], [N || N <- slots(), lists:prefix(Name, N)]),
    ?expect(true, py_slot:count() =:= Before - 1).

spawned_callers_leave_no_slot(_Config) ->
    Before = length(slots()),
    Bin = big(100000),
    ?expect({ok, [{ok, 100000}, {ok, 100000}, {ok, 100000}]},
            py:parallel([{builtins, len, [{bytes, Bin}]} || _ <- [1, 2, 3]])),
    Ref = py:spawn_call(builtins, len, [{bytes, Bin}]),
    ?expect({ok, 100000}, py:await(Ref, 10000)),
    py_ct:wait_until(fun() -> length(slots()) =:= Before end, 2000, "no slot left by spawned callers").

many_callers(_Config) ->
    Parent = self(),
    Pids = [spawn_link(fun() ->
                               Bin = big(70000 + I * 1000),
                               R = [py:call(builtins, bytes, [{bytes, Bin}]) || _ <- lists:seq(1, 5)],
                               Parent ! {done, self(), lists:all(fun(X) -> X =:= {ok, Bin} end, R)}
                       end) || I <- lists:seq(1, 20)],
    [receive {done, P, Ok} -> ?expect(true, Ok) after 30000 -> ct:fail("a caller hung") end || P <- Pids].

%% Beyond max_slots() callers with a slot, payloads go through the pipe.
slot_limit_falls_back_to_pipe(_Config) ->
    Parent = self(),
    N = py_slot:max_slots() + 4,
    Pids = [spawn_link(fun() ->
                               R = py:call(builtins, len, [{bytes, big(100000)}]),
                               Parent ! {called, self(), R},
                               receive stop -> ok end
                       end) || _ <- lists:seq(1, N)],
    [receive {called, P, R} -> ?expect({ok, 100000}, R) after 30000 -> ct:fail("a caller hung") end
     || P <- Pids],
    ?expect(true, py_slot:count() =< py_slot:max_slots()),
    [begin unlink(P), exit(P, kill) end || P <- Pids],
    py_ct:wait_until(fun() -> py_slot:sweep() >= 0 andalso py_slot:count() =:= 0 end, 2000,
                     "the slots swept").

%% Without a slot directory (no /dev/shm), everything goes through the pipe.
without_slots(_Config) ->
    Saved = persistent_term:get({py_slot, default, dir}),
    persistent_term:erase({py_slot, default, dir}),
    try
        Bin = big(500000),
        ?expect({ok, Bin}, py:call(builtins, bytes, [{bytes, Bin}]))
    after
        persistent_term:put({py_slot, default, dir}, Saved)
    end.

%% A sidecar that dies takes its slot directory along; the next sidecar has a
%% new one, and callers move to it.
sidecar_crash(_Config) ->
    Bin = big(200000),
    ?expect({ok, Bin}, py:call(builtins, bytes, [{bytes, Bin}])),
    [Old] = filelib:wildcard("/dev/shm/erlang_python-" ++ os:getpid() ++ "-*"),
    ?expect({error, {python_crashed, _}}, py:exec(<<"import os; os._exit(3)">>)),
    py_ct:wait_until(fun() ->
                             case catch py:call(builtins, bytes, [{bytes, Bin}]) of
                                 {ok, Bin} -> true;
                                 _ -> false
                             end
                     end, 20000, "the new sidecar"),
    ?expect(false, filelib:is_dir(Old)),
    ?expect([_], my_slot()).

%% A BEAM that halts never stops the application: the sidecar, seeing its
%% stdin end, removes the slot directory itself.
dir_removed_when_beam_halts(_Config) ->
    Ebin = filename:dirname(code:which(py_slot)),
    Eval = "{ok, _} = application:ensure_all_started(erlang_python), "
           "{ok, _} = py:call(builtins, len, [{bytes, <<0:800000>>}]), "
           "{Dir, _} = persistent_term:get({py_slot, default, dir}), "
           "io:format(\"~s~n\", [Dir]), halt().",
    Out = os:cmd(lists:flatten(io_lib:format("erl -noshell -pa ~s -eval '~s'", [Ebin, Eval]))),
    Dir = string:trim(lists:last(string:split(string:trim(Out), "\n", all))),
    true = lists:prefix("/dev/shm/erlang_python-", Dir) orelse ct:fail("no directory in ~p", [Out]),
    py_ct:wait_until(fun() -> not filelib:is_dir(Dir) end, 5000, "the directory removed").
