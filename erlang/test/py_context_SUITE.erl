%% API.md section 3: contexts and routing.
-module(py_context_SUITE).

-include_lib("common_test/include/ct.hrl").
-include("py_ct.hrl").

-export([all/0, init_per_suite/1, end_per_suite/1, init_per_testcase/2,
         end_per_testcase/2]).
-export([isolation/1, main_module_functions/1, get_context/1, bind_unbind/1,
         num_contexts/1, named_pool/1, register_pool/1, own_context/1,
         dead_context_replaced/1, parallel_order/1, parallel_spreads/1,
         start_stop_contexts/1]).

-define(N, 3).

all() ->
    [isolation, main_module_functions, get_context, bind_unbind, num_contexts,
     named_pool, register_pool, own_context, dead_context_replaced, parallel_order,
     parallel_spreads, start_stop_contexts].

init_per_suite(Config) ->
    py_ct:start([{num_contexts, ?N}, {max_concurrent, 100}]),
    Config.

end_per_suite(_Config) ->
    py_ct:stop().

init_per_testcase(_Case, Config) ->
    Config.

end_per_testcase(_Case, _Config) ->
    py_context_router:unbind_context(),
    ok.

%% exec x = 42 then eval x on the same context gives 42; on another, NameError.
isolation(_Config) ->
    C1 = py:context(1),
    C2 = py:context(2),
    ?expect(ok, py:exec(C1, <<"x = 42">>)),
    ?expect({ok, 42}, py:eval(C1, <<"x">>)),
    ?expect({error, {'NameError', _}}, py:eval(C2, <<"x">>)),
    ?expect(ok, py:exec(C2, <<"x = 'two'">>)),
    ?expect({ok, 42}, py:eval(C1, <<"x">>)),
    ?expect({ok, <<"two">>}, py:eval(C2, <<"x">>)),
    %% module attributes set in one context: shared modules in multi_executor,
    %% separate in subinterp; globals stay separate either way
    ?expect(ok, py:exec(C1, <<"import json\nlocal_only = json.dumps(1)">>)),
    ?expect({error, {'NameError', _}}, py:eval(C2, <<"local_only">>)),
    ?expect({error, {'NameError', _}}, py:eval(py:context(3), <<"x">>)).

%% py:call(Ctx, '__main__', F, Args) finds what exec defined.
main_module_functions(_Config) ->
    C1 = py:context(1),
    ?expect(ok, py:exec(C1, <<"def greet(name, punct='!'):\n"
                              "    return 'hello ' + name + punct\n">>)),
    ?expect({ok, <<"hello bob!">>}, py:call(C1, '__main__', greet, [<<"bob">>])),
    ?expect({ok, <<"hello bob?">>},
            py:call(C1, '__main__', greet, [<<"bob">>], #{kwargs => #{punct => <<"?">>}})),
    ?expect({ok, <<"hello al!">>}, py_context:call(C1, <<"__main__">>, <<"greet">>, [<<"al">>], #{})),
    case py:call(py:context(2), '__main__', greet, [<<"bob">>]) of
        {error, {E, _}} when E =:= 'AttributeError'; E =:= 'NameError' -> ok;
        Other -> ct:fail("greet is defined on another context: ~p", [Other])
    end.

get_context(_Config) ->
    Pids = py_context_router:contexts(),
    ?N = length(Pids),
    Ctx = py_context_router:get_context(),
    true = lists:member(Ctx, Pids) orelse ct:fail("get_context() ~p not in ~p", [Ctx, Pids]),
    ?expect(Ctx, py:context()),
    [?expect(P, py_context_router:get_context(I))
     || {I, P} <- lists:zip(lists:seq(1, ?N), Pids)],
    [?expect(P, py:context(I)) || {I, P} <- lists:zip(lists:seq(1, ?N), Pids)],
    ?expect({error, {bad_context, 0}}, py:context(0)),
    ?expect({error, {bad_context, 4}}, py:context(?N + 1)),
    %% the scheduler decides: every scheduler maps to a context of the pool
    Seen = lists:usort(
             [begin
                  Self = self(),
                  spawn_opt(fun() -> Self ! {ctx, py:context()} end, [{scheduler, S}]),
                  receive {ctx, C} -> C after 5000 -> ct:fail("no answer") end
              end || S <- lists:seq(1, erlang:system_info(schedulers))]),
    [] = Seen -- Pids.

bind_unbind(_Config) ->
    C2 = py:context(2),
    ?expect(ok, py_context_router:bind_context(C2)),
    ?expect(C2, py_context_router:get_context()),
    ?expect(C2, py:context()),
    ?expect(ok, py:exec(<<"bound_here = 1">>)),
    ?expect({ok, 1}, py:eval(C2, <<"bound_here">>)),
    ?expect({ok, 1}, py:eval(<<"bound_here">>)),
    ?expect({ok, 2}, py:call(builtins, len, [[a, b]])),
    [?expect({error, {'NameError', _}}, py:eval(py:context(I), <<"bound_here">>)) || I <- [1, 3]],
    ?expect(ok, py_context_router:unbind_context()),
    ?expect(ok, py_context_router:unbind_context()),
    ?expect({error, {bad_context, _}}, py_context_router:bind_context(self())),
    %% binding is per process: another one, on scheduler 1, gets context 1
    Self = self(),
    ok = py_context_router:bind_context(C2),
    _ = spawn_opt(fun() -> Self ! {other, py_context_router:get_context()} end, [{scheduler, 1}]),
    C1 = py:context(1),
    receive {other, Other} -> ?expect(C1, Other)
    after 5000 -> ct:fail("no answer from the other process")
    end,
    py_context_router:unbind_context().

num_contexts(_Config) ->
    ?expect(?N, py_context_router:num_contexts()),
    ?expect(true, py:contexts_started()).

named_pool(_Config) ->
    {ok, Pids} = py_context_router:start_pool(io, 2, worker),
    2 = length(Pids),
    ?expect({ok, Pids}, py_context_router:start_pool(io, 2, worker)),
    ?expect({ok, Pids}, py_context_router:pool_contexts(io)),
    ?expect({error, {already_started, io}}, py_context_router:start_pool(io, 3, worker)),
    ?expect({ok, 2.0}, py:call(io, math, sqrt, [4])),
    ?expect({ok, 10}, py:call(io, builtins, int, [<<"a">>], #{base => 16})),
    ?expect({ok, 3}, py:eval(io, <<"1 + 2">>)),
    [?expect({ok, worker}, py_context:mode(P)) || P <- Pids],
    %% the pool's contexts have their own globals too
    [P1, P2] = Pids,
    ?expect(ok, py:exec(P1, <<"in_io = 1">>)),
    ?expect({error, {'NameError', _}}, py:eval(P2, <<"in_io">>)),
    ?expect({error, {'NameError', _}}, py:eval(py:context(1), <<"in_io">>)),
    ?expect(ok, py_context_router:stop_pool(io)),
    ?expect({error, {unknown_pool, io}}, py:call(io, math, sqrt, [4])),
    ?expect({error, {unknown_pool, io}}, py_context_router:stop_pool(io)),
    ?expect({error, {badarg, _}}, py_context_router:start_pool(io, 0, worker)),
    ?expect({error, {badarg, _}}, py_context_router:start_pool(io, 1, nope)),
    [false = is_process_alive(P) || P <- Pids].

register_pool(_Config) ->
    {ok, IoPids} = py_context_router:start_pool(io, 2, worker),
    Who = fun(Ctx, Name) ->
                  ok = py:exec(Ctx, [<<"def whoami():\n    return '">>, Name, <<"'\n">>])
          end,
    [Who(P, <<"io">>) || P <- IoPids],
    [Who(P, <<"default">>) || P <- py_context_router:contexts()],
    ?expect({ok, <<"default">>}, py:call('__main__', whoami, [])),
    %% a whole module
    ?expect(ok, py:register_pool(io, '__main__')),
    ?expect({ok, <<"io">>}, py:call('__main__', whoami, [])),
    ?expect({ok, <<"io">>}, py:call(<<"__main__">>, <<"whoami">>, [], #{})),
    ?expect(ok, py:unregister_pool('__main__')),
    ?expect({ok, <<"default">>}, py:call('__main__', whoami, [])),
    %% one function
    ?expect(ok, py:register_pool(io, {'__main__', whoami})),
    ?expect({ok, <<"io">>}, py:call('__main__', whoami, [])),
    ?expect({ok, <<"io">>}, py:await(py:spawn_call('__main__', whoami, []), 5000)),
    ?expect({ok, 2.0}, py:call(math, sqrt, [4])),
    ?expect(ok, py:unregister_pool({<<"__main__">>, <<"whoami">>})),
    ?expect({ok, <<"default">>}, py:call('__main__', whoami, [])),
    %% the function registration wins over the module's
    ?expect(ok, py:register_pool(nowhere, '__main__')),
    ?expect({error, {unknown_pool, nowhere}}, py:call('__main__', whoami, [])),
    ?expect(ok, py:register_pool(io, {'__main__', whoami})),
    ?expect({ok, <<"io">>}, py:call('__main__', whoami, [])),
    ?expect(ok, py:unregister_pool('__main__')),
    ?expect(ok, py:unregister_pool({'__main__', whoami})),
    ?expect({ok, <<"default">>}, py:call('__main__', whoami, [])),
    ?expect({error, {badarg, _}}, py:register_pool(io, 42)),
    ?expect({error, {badarg, _}}, py:register_pool(<<"io">>, math)),
    ok = py_context_router:stop_pool(io).

%% A context of one's own: start_link, calls, stop.
own_context(_Config) ->
    process_flag(trap_exit, true),
    {ok, Ctx} = py_context:start_link(mine, auto),
    ?expect(ok, py_context:exec(Ctx, <<"mine = 'yes'">>)),
    ?expect({ok, <<"yes">>}, py_context:eval(Ctx, <<"mine">>, #{})),
    ?expect({ok, <<"yes">>}, py:eval(Ctx, <<"mine">>)),
    ?expect({ok, 2.0}, py_context:call(Ctx, math, sqrt, [4], #{})),
    ?expect({error, {'NameError', _}}, py:eval(py:context(1), <<"mine">>)),
    {ok, W} = py_context:start_link(mine_w, worker),
    ?expect({ok, 3}, py:eval(W, <<"1 + 2">>)),
    ok = py_context:stop(W),
    ok = py_context:stop(Ctx),
    ?expect({error, {bad_context, Ctx}}, py:eval(Ctx, <<"mine">>)),
    ?expect({error, {bad_context, Ctx}}, py_context_router:bind_context(Ctx)),
    ?expect({error, {badarg, _}}, py_context:start_link(bad, nope)).

%% A pool context that dies is replaced; the pool keeps its size.
dead_context_replaced(_Config) ->
    Old = py:context(2),
    exit(Old, kill),
    py_ct:wait_until(fun() -> is_pid(py:context(2)) andalso py:context(2) =/= Old end, 5000,
                     "context 2 to be replaced"),
    ?expect(?N, py_context_router:num_contexts()),
    ?expect({ok, 2}, py:eval(py:context(2), <<"1 + 1">>)),
    ?expect({error, {bad_context, Old}}, py:eval(Old, <<"1 + 1">>)).

%% Correctness and order of py:parallel (its speed is for the benchmark).
parallel_order(_Config) ->
    ok = py:exec(<<"import time">>),
    %% later items finish first: results still in input order
    Items = [{time, sleep, [0.01 * (10 - I)]} || I <- lists:seq(1, 9)] ++
            [{operator, add, [I, 1]} || I <- lists:seq(1, 30)],
    {ok, Results} = py:parallel(Items),
    ?expect(39, length(Results)),
    Expected = lists:duplicate(9, {ok, none}) ++ [{ok, I + 1} || I <- lists:seq(1, 30)],
    Results =:= Expected orelse ct:fail("parallel results out of order: ~p", [Results]).

%% The items run on different contexts, in parallel.
parallel_spreads(_Config) ->
    %% py:parallel runs each item in a process of its own: in __main__,
    %% which their environments start from
    [ok = py_ct:main_exec(py:context(I), [<<"ctx_name = ">>, integer_to_binary(I),
                                          <<"\ndef name():\n    return ctx_name\n">>])
     || I <- lists:seq(1, ?N)],
    {ok, Names} = py:parallel([{'__main__', name, []} || _ <- lists:seq(1, 2 * ?N)]),
    Expected = [{ok, (I rem ?N) + 1} || I <- lists:seq(0, 2 * ?N - 1)],
    Names =:= Expected orelse ct:fail("items not spread in order: ~p", [Names]),
    %% sleeps overlap
    {T, {ok, Slept}} = py_ct:timed(fun() -> py:parallel([{time, sleep, [0.3]} || _ <- lists:seq(1, ?N)]) end),
    ?expect(true, lists:all(fun(R) -> R =:= {ok, none} end, Slept)),
    ct:log("~b parallel sleeps of 0.3 s: ~.1f ms", [?N, T]),
    true = T < 250 * ?N orelse ct:fail("parallel sleeps did not overlap: ~.1f ms", [T]).

start_stop_contexts(_Config) ->
    Before = py_context_router:contexts(),
    ?expect({ok, Before}, py:start_contexts()),
    ?expect(ok, py:stop_contexts()),
    ?expect(false, py:contexts_started()),
    ?expect(0, py_context_router:num_contexts()),
    ?expect({error, _}, py:call(math, sqrt, [4])),
    ?expect({error, _}, py:context()),
    [false = is_process_alive(P) || P <- Before],
    {ok, Pids} = py:start_contexts(#{contexts => 2}),
    2 = length(Pids),
    ?expect(true, py:contexts_started()),
    ?expect(2, py_context_router:num_contexts()),
    ?expect({ok, 2.0}, py:call(math, sqrt, [4])),
    ?expect(ok, py_context_router:stop()),
    {ok, Pids2} = py_context_router:start(),
    ?N = length(Pids2),
    ?expect({ok, 2.0}, py:call(math, sqrt, [4])).
