%% API.md section 4: execution modes and worker contexts.
-module(py_mode_SUITE).

-include_lib("common_test/include/ct.hrl").
-include("py_ct.hrl").

-export([all/0, init_per_suite/1, end_per_suite/1]).
-export([execution_mode/1, subinterp_supported/1, num_executors/1, subinterp_contexts/1,
         worker_pool_imports/1, worker_contexts_share_modules/1,
         single_phase_refused_in_subinterp/1, single_phase_in_worker/1,
         num_executors_env/1]).

all() ->
    [execution_mode, subinterp_supported, num_executors, subinterp_contexts,
     worker_pool_imports, worker_contexts_share_modules,
     single_phase_refused_in_subinterp, single_phase_in_worker, num_executors_env].

init_per_suite(Config) ->
    py_ct:start([{num_contexts, 2}]),
    {ok, V} = py:version(),
    ct:log("Python ~s, mode ~p", [V, py:execution_mode()]),
    [{py_version, py_ct:py_version()} | Config].

end_per_suite(_Config) ->
    py_ct:stop().

free_threaded() ->
    {ok, V} = py:version(),
    binary:match(V, <<"free-threading">>) =/= nomatch.

execution_mode(Config) ->
    Mode = py:execution_mode(),
    case {?config(py_version, Config), free_threaded()} of
        {_, true} -> ?expect(free_threaded, Mode);
        {{3, Minor}, false} when Minor >= 12 -> ?expect(subinterp, Mode);
        {_, false} -> ?expect(multi_executor, Mode)
    end.

subinterp_supported(Config) ->
    Supported = py:subinterp_supported(),
    true = is_boolean(Supported) orelse ct:fail("not a boolean: ~p", [Supported]),
    case ?config(py_version, Config) of
        {3, Minor} when Minor >= 12 -> ?expect(true, Supported);
        _ -> ?expect(false, Supported)
    end.

num_executors(_Config) ->
    N = py:num_executors(),
    true = (is_integer(N) andalso N >= 0) orelse ct:fail("num_executors: ~p", [N]),
    case py:execution_mode() of
        multi_executor -> ?expect(4, N);
        _ -> ok
    end.

%% An explicit subinterp context: works where supported, a clear error elsewhere.
subinterp_contexts(_Config) ->
    process_flag(trap_exit, true),
    case py:subinterp_supported() of
        true ->
            {ok, Ctx} = py_context:start_link(sub, subinterp),
            ?expect({ok, 2}, py:eval(Ctx, <<"1 + 1">>)),
            ok = py_context:stop(Ctx);
        false ->
            ?expect({error, {create_context, _}}, py_context:start_link(sub, subinterp))
    end.

%% A worker pool runs in the main interpreter, whatever the mode.
worker_pool_imports(_Config) ->
    {ok, [W]} = py_context_router:start_pool(workers, 1, worker),
    ?expect(ok, py:exec(W, <<"import json, decimal, datetime">>)),
    ?expect({ok, <<"[1, 2]">>}, py:call(workers, json, dumps, [[1, 2]])),
    ?expect({ok, <<"1.5">>}, py:eval(workers, <<"str(decimal.Decimal('1.5'))">>)),
    ?expect({ok, true}, py:eval(W, <<"__import__('threading').current_thread() is not None">>)),
    ok = py_context_router:stop_pool(workers).

%% Worker contexts share the main interpreter's modules but not their globals.
worker_contexts_share_modules(_Config) ->
    {ok, [W1, W2]} = py_context_router:start_pool(workers, 2, worker),
    ?expect(ok, py:exec(W1, <<"import json\njson.marker_from_w1 = 7\nmine = 1">>)),
    ?expect({ok, 7}, py:eval(W2, <<"__import__('json').marker_from_w1">>)),
    ?expect({error, {'NameError', _}}, py:eval(W2, <<"mine">>)),
    case py:execution_mode() of
        subinterp ->
            %% sub-interpreters import modules for themselves
            ?expect({error, {'AttributeError', _}},
                    py:eval(py:context(1), <<"__import__('json').marker_from_w1">>));
        _ ->
            ok
    end,
    ok = py_context_router:stop_pool(workers).

%% An extension that refuses sub-interpreters: a clear ImportError that points
%% to worker pools.
single_phase_refused_in_subinterp(_Config) ->
    case py:execution_mode() of
        subinterp ->
            Ctx = py:context(1),
            case py_ct:has_module(Ctx, <<"_testsinglephase">>) of
                true ->
                    case py:exec(Ctx, <<"import _testsinglephase">>) of
                        {error, {'ImportError', Msg}} ->
                            ct:log("ImportError: ~ts", [Msg]),
                            binary:match(Msg, <<"worker">>) =/= nomatch orelse
                                ct:fail("the ImportError does not mention worker pools: ~ts", [Msg]);
                        Other ->
                            ct:fail("importing _testsinglephase in a sub-interpreter: ~p", [Other])
                    end,
                    ?expect({ok, 2}, py:eval(Ctx, <<"1 + 1">>));
                false ->
                    {skip, "_testsinglephase is not available in this Python"}
            end;
        Mode ->
            {skip, lists:flatten(io_lib:format("no sub-interpreters in mode ~p", [Mode]))}
    end.

single_phase_in_worker(_Config) ->
    {ok, [W]} = py_context_router:start_pool(workers, 1, worker),
    try py_ct:has_module(W, <<"_testsinglephase">>) of
        true ->
            ?expect(ok, py:exec(W, <<"import _testsinglephase">>));
        false ->
            {skip, "_testsinglephase is not available in this Python"}
    after
        ok = py_context_router:stop_pool(workers)
    end.

%% num_executors from the application env reaches the sidecar.
num_executors_env(_Config) ->
    py_ct:start([{num_contexts, 2}, {num_executors, 3}]),
    try py:execution_mode() of
        multi_executor -> ?expect(3, py:num_executors());
        _ -> ok
    after
        py_ct:start([{num_contexts, 2}])
    end.
