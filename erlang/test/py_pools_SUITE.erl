%% API.md sections 1 to 4, the NIF 2.x drop-in: call options on a context,
%% pools by name and their registrations, bindings in a pool, introspection
%% before the application starts, py_context:new/1 and the owngil mode.
-module(py_pools_SUITE).

-include_lib("common_test/include/ct.hrl").
-include("py_ct.hrl").

-export([all/0, init_per_suite/1, end_per_suite/1, init_per_testcase/2,
         end_per_testcase/2]).
-export([call_opts/1, pools_by_name/1, bind_in_pool/1, info_before_start/1,
         owngil/1, owngil_refused/1]).

all() ->
    %% answers before the application starts (API.md section 1)
    Owngil = case py:subinterp_supported() of
                 true -> owngil;
                 false -> owngil_refused
             end,
    [call_opts, pools_by_name, bind_in_pool, info_before_start, Owngil].

init_per_suite(Config) ->
    py_ct:start([{num_contexts, 2}]),
    Config.

end_per_suite(_Config) ->
    py_ct:stop().

init_per_testcase(_Case, Config) ->
    Config.

end_per_testcase(_Case, _Config) ->
    _ = py_context_router:unbind_context(),
    _ = py_context_router:unbind_context(io),
    [_ = py_context_router:unregister_pool(Key)
     || Key <- [requests, json, {json, dumps}, {'__main__', where}]],
    _ = py_context_router:stop_pool(io),
    ok.

%% py:call(CtxPid, M, F, Args, Opts): Opts is #{kwargs, timeout}; anything
%% else is a badarg naming Opts. Pools keep call/5 with Kwargs.
call_opts(_Config) ->
    Ctx = py:context(1),
    ?expect({ok, 2.0}, py:call(Ctx, math, sqrt, [4])),
    ?expect({ok, 255}, py:call(Ctx, builtins, int, [<<"ff">>], #{kwargs => #{base => 16}})),
    ?expect({ok, 255}, py:call(Ctx, builtins, int, [<<"ff">>],
                               #{kwargs => #{base => 16}, timeout => 5000})),
    ?expect({ok, 2.0}, py:call(Ctx, math, sqrt, [4], #{timeout => 5000})),
    ?expect({ok, 2.0}, py:call(Ctx, math, sqrt, [4], #{})),
    {T, R} = py_ct:timed(fun() -> py:call(Ctx, time, sleep, [5], #{timeout => 200}) end),
    ?expect({error, timeout}, R),
    true = T < 2000 orelse ct:fail("timeout of 200 ms took ~.1f ms", [T]),
    ?expect({error, {badarg, {opts, {unknown_keys, [base], _}}}},
            py:call(Ctx, builtins, int, [<<"ff">>], #{base => 16})),
    ?expect({error, {badarg, {opts, not_a_map}}}, py:call(Ctx, math, sqrt, [4], 5000)),
    ?expect({error, {badarg, {timeout, soon}}}, py:call(Ctx, math, sqrt, [4], #{timeout => soon})),
    ?expect({error, {badarg, {kwargs, _}}}, py:call(Ctx, math, sqrt, [4], #{kwargs => [x]})),
    %% pools by name: the fifth argument stays Kwargs
    ?expect({ok, 10}, py:call(default, builtins, int, [<<"a">>], #{base => 16})),
    %% the context still serves
    ?expect({ok, 3}, py:eval(Ctx, <<"1 + 2">>)).

%% start_pool/2, pool_started, num_contexts/contexts/get_context of a pool,
%% register_pool/2,3, lookup_pool, list_pool_registrations, unregister_pool,
%% and calls that registrations route (pools.md of the NIF 2.x).
pools_by_name(_Config) ->
    ?expect(false, py_context_router:pool_started(io)),
    ?expect({error, {unknown_pool, io}}, py_context_router:get_context(io)),
    ?expect(0, py_context_router:num_contexts(io)),
    {ok, [P1, P2] = Pids} = py_context_router:start_pool(io, 2),
    ?expect({ok, auto}, py_context:mode(P1)),
    ?expect(true, py_context_router:pool_started(io)),
    ?expect(2, py_context_router:num_contexts(io)),
    ?equal(Pids, py_context_router:contexts(io)),
    Ctx = py_context_router:get_context(io),
    true = lists:member(Ctx, Pids) orelse ct:fail("get_context(io) = ~p", [Ctx]),
    %% started again: the same contexts
    ?equal({ok, Pids}, py_context_router:start_pool(io, 2)),
    %% module registrations
    ?expect(default, py_context_router:lookup_pool(requests, get)),
    ?expect(ok, py:register_pool(io, requests)),
    ?expect(io, py_context_router:lookup_pool(requests, get)),
    ?expect(io, py_context_router:lookup_pool(<<"requests">>, <<"post">>)),
    ?expect(default, py_context_router:lookup_pool(math, sqrt)),
    ?expect(true, lists:member({{requests, '_'}, io},
                               py_context_router:list_pool_registrations())),
    ?expect(ok, py:unregister_pool(requests)),
    ?expect(default, py_context_router:lookup_pool(requests, get)),
    %% a function's registration wins over its module's
    ?expect(ok, py_context_router:register_pool(io, json)),
    ?expect(ok, py_context_router:register_pool(default, json, dumps)),
    ?expect(io, py_context_router:lookup_pool(json, loads)),
    ?expect(default, py_context_router:lookup_pool(json, dumps)),
    ?expect([{{json, '_'}, io}, {{json, dumps}, default}],
            [R || {{json, _}, _} = R <- py_context_router:list_pool_registrations()]),
    ?expect({ok, [1]}, py:call(json, loads, [<<"[1]">>])),
    ?expect({ok, <<"[1]">>}, py:call(json, dumps, [[1]])),
    ?expect(ok, py_context_router:unregister_pool(json, dumps)),
    ?expect(io, py_context_router:lookup_pool(json, dumps)),
    ?expect({error, {badarg, {module, _}}}, py_context_router:lookup_pool(42, get)),
    %% calls are routed to the pool: each context says which it is
    mark_all(),
    ?expect({ok, <<"default">>}, py:call('__main__', where, [])),
    ?expect(ok, py:register_pool(io, {'__main__', where})),
    ?expect(io, py_context_router:lookup_pool('__main__', where)),
    [?expect({ok, <<"io", _/binary>>}, py:call('__main__', where, [])) || _ <- lists:seq(1, 4)],
    ?expect({ok, <<"io", _/binary>>}, py:call(io, '__main__', where, [])),
    ?expect({ok, <<"default">>}, py:call(default, '__main__', where, [])),
    ?expect(ok, py:unregister_pool({'__main__', where})),
    ?expect({ok, <<"default">>}, py:call('__main__', where, [])),
    ?expect(ok, py_context_router:stop_pool(io)),
    ?expect(false, py_context_router:pool_started(io)),
    ?expect(false, is_process_alive(P2)).

%% bind_context(Pool, Pid): the caller's calls that go to Pool go to Pid, and
%% get_context(Pool) is Pid, until unbind_context(Pool).
bind_in_pool(_Config) ->
    {ok, [_P1, P2]} = py_context_router:start_pool(io, 2),
    mark_all(),
    ok = py:register_pool(io, {'__main__', where}),
    ?expect(ok, py_context_router:bind_context(io, P2)),
    ?equal(P2, py_context_router:get_context(io)),
    %% calls without a context that go to io, and calls on io, go to P2
    [?expect({ok, <<"io2">>}, py:call('__main__', where, [])) || _ <- lists:seq(1, 4)],
    [?expect({ok, <<"io2">>}, py:call(io, '__main__', where, [])) || _ <- lists:seq(1, 4)],
    ?expect({ok, <<"io2">>}, py:eval(io, <<"where()">>)),
    %% others stay where they were: the default pool
    ?expect({ok, <<"default">>}, py:eval(<<"where()">>)),
    %% another process has no binding
    Self = self(),
    _ = spawn_link(fun() -> Self ! {other, py_context_router:get_context(io)} end),
    receive {other, Other} -> true = is_pid(Other) end,
    %% binding in the default pool is bind_context/1
    C2 = py:context(2),
    ?expect(ok, py_context_router:bind_context(default, C2)),
    ?equal(C2, py_context_router:get_context()),
    ?equal(C2, py_context_router:get_context(default)),
    ?expect(ok, py_context_router:unbind_context(default)),
    ?expect(ok, py_context_router:unbind_context(io)),
    Ctx = py_context_router:get_context(io),
    true = is_pid(Ctx),
    ?expect({error, {bad_context, _}}, py_context_router:bind_context(io, self())),
    ?expect({error, {badarg, {pool, "io"}}}, py_context_router:bind_context("io", P2)),
    ?expect({error, {unknown_pool, nopool}}, py_context_router:get_context(nopool)).

%% subinterp_supported, execution_mode and version answer with the
%% application stopped, start nothing, and agree with the running sidecar.
info_before_start(_Config) ->
    py_ct:stop(),
    false = lists:keymember(erlang_python, 1, application:which_applications()),
    Mode = py:execution_mode(),
    Supported = py:subinterp_supported(),
    {ok, Version} = py:version(),
    true = lists:member(Mode, [subinterp, multi_executor, free_threaded])
        orelse ct:fail("execution_mode() = ~p", [Mode]),
    ?equal(Mode =:= subinterp, Supported),
    true = is_binary(Version) andalso byte_size(Version) > 0,
    %% nothing started: no application, no sidecar
    false = lists:keymember(erlang_python, 1, application:which_applications()),
    undefined = whereis(py_sidecar),
    undefined = whereis(py_pool),
    py_ct:start([{num_contexts, 2}]),
    ?equal(Mode, py:execution_mode()),
    ?equal(Supported, py:subinterp_supported()),
    ?equal({ok, Version}, py:version()).

%% owngil (Python 3.12+): an own-GIL sub-interpreter, from py_context:new/1,
%% start_link/2 and start_pool/3.
owngil(_Config) ->
    {ok, C} = py_context:new(#{mode => owngil}),
    ?expect({ok, owngil}, py_context:mode(C)),
    ?expect({ok, 4.0}, py_context:call(C, math, sqrt, [16], #{})),
    ?expect(ok, py:exec(C, <<"x = 42">>)),
    ?expect({ok, 42}, py:eval(C, <<"x">>)),
    ?expect({error, {'NameError', _}}, py:eval(py:context(1), <<"x">>)),
    {ok, C2} = py_context:start_link(owngil_two, owngil),
    ?expect({error, {'NameError', _}}, py:eval(C2, <<"x">>)),
    {ok, [P1, P2]} = py_context_router:start_pool(io, 2, owngil),
    ?expect({ok, owngil}, py_context:mode(P1)),
    ?expect({ok, 2.0}, py:call(P2, math, sqrt, [4])),
    ?expect({ok, 2.0}, py:call(io, math, sqrt, [4])),
    new_modes(),
    ok = py_context:stop(C),
    ok = py_context:stop(C2).

%% owngil on Python 3.11 (multi_executor): refused, clearly, everywhere.
owngil_refused(_Config) ->
    {error, {owngil_unsupported, Why}} = py_context:new(#{mode => owngil}),
    true = binary:match(Why, <<"3.12">>) =/= nomatch orelse ct:fail("reason: ~s", [Why]),
    ?expect({error, {owngil_unsupported, _}}, py_context:start_link(owngil_two, owngil)),
    ?expect({error, {owngil_unsupported, _}}, py_context_router:start_pool(io, 2, owngil)),
    ?expect(false, py_context_router:pool_started(io)),
    new_modes(),
    ?expect({ok, 3}, py:eval(<<"1 + 2">>)).

%%--------------------------------------------------------------------

%% py_context:new/1 with the other modes, and its bad arguments.
new_modes() ->
    {ok, A} = py_context:new(#{}),
    ?expect({ok, auto}, py_context:mode(A)),
    {ok, W} = py_context:new(#{mode => worker}),
    ?expect({ok, 2.0}, py_context:call(W, math, sqrt, [4], #{})),
    ?expect({error, {badarg, {mode, bogus}}}, py_context:new(#{mode => bogus})),
    ?expect({error, {badarg, {opts, {unknown_keys, [size], _}}}}, py_context:new(#{size => 1})),
    ?expect({error, {badarg, {opts, not_a_map}}}, py_context:new(owngil)),
    ok = py_context:stop(A),
    ok = py_context:stop(W).

%% In every context of the default pool and of io (when it runs), for this
%% process: where() names the pool and, in io, the index.
mark_all() ->
    [ok = py:exec(C, <<"def where():\n    return 'default'\n">>)
     || C <- py_context_router:contexts()],
    [ok = py:exec(C, iolist_to_binary(["def where():\n    return 'io", integer_to_list(I), "'\n"]))
     || {I, C} <- lists:enumerate(py_context_router:contexts(io))],
    ok.
