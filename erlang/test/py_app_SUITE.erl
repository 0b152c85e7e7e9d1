%% API.md section 1: the application and its environment.
-module(py_app_SUITE).

-include_lib("common_test/include/ct.hrl").
-include("py_ct.hrl").

-export([all/0, end_per_testcase/2]).
-export([starts_with_defaults/1, num_contexts_env/1, python_path_env/1,
         call_timeout_env/1, bad_config/1, restart/1]).

all() ->
    [starts_with_defaults, num_contexts_env, python_path_env, call_timeout_env,
     bad_config, restart].

end_per_testcase(_Case, _Config) ->
    py_ct:stop().

starts_with_defaults(_Config) ->
    py_ct:start([]),
    ?expect(true, py:contexts_started()),
    ?expect(true, erlang:system_info(schedulers) =:= py_context_router:num_contexts()),
    ?expect({ok, 4.0}, py:call(math, sqrt, [16])),
    {ok, Version} = py:version(),
    ct:log("Python ~s", [Version]),
    ?expect(<<"3.", _/binary>>, Version).

num_contexts_env(_Config) ->
    py_ct:start([{num_contexts, 3}]),
    ?expect(3, py_context_router:num_contexts()),
    ?expect(3, length(lists:usort(py_context_router:contexts()))).

python_path_env(Config) ->
    Dir1 = filename:join(?config(priv_dir, Config), "pp1"),
    Dir2 = filename:join(?config(priv_dir, Config), "pp2"),
    ok = filelib:ensure_dir(filename:join(Dir1, "x")),
    ok = filelib:ensure_dir(filename:join(Dir2, "x")),
    ok = file:write_file(filename:join(Dir1, "ep_mod_one.py"), <<"def hello(n):\n    return 'one ' + n\n">>),
    ok = file:write_file(filename:join(Dir2, "ep_mod_two.py"), <<"VALUE = 2\n">>),
    py_ct:start([{num_contexts, 2}, {python_path, [Dir1, list_to_binary(Dir2)]}]),
    [?expect({ok, <<"one x">>}, py:call(P, ep_mod_one, hello, [<<"x">>]))
     || P <- py_context_router:contexts()],
    ?expect({ok, 2}, py:eval(<<"__import__('ep_mod_two').VALUE">>)),
    {ok, [W]} = py_context_router:start_pool(w, 1, worker),
    ?expect({ok, <<"one y">>}, py:call(W, ep_mod_one, hello, [<<"y">>])).

call_timeout_env(_Config) ->
    py_ct:start([{num_contexts, 1}, {call_timeout, 300}]),
    {T, R} = py_ct:timed(fun() -> py:eval(<<"sum(1 for _ in iter(int, 1))">>) end),
    ?expect({error, timeout}, R),
    true = T < 2000 orelse ct:fail("call_timeout 300 took ~.1f ms", [T]),
    ?expect({ok, 2}, py:eval(<<"1 + 1">>)).

bad_config(_Config) ->
    py_ct:stop(),
    Bad = [{num_contexts, 0}, {max_concurrent, -1}, {num_executors, x},
           {python_path, "not/a/list/of/dirs"}, {call_timeout, soon}, {sandbox, maybe}],
    lists:foreach(
      fun({K, V}) ->
              ok = application:set_env(erlang_python, K, V),
              case application:ensure_all_started(erlang_python) of
                  {error, {erlang_python, {{bad_config, K, V}, _}}} -> ok;
                  {error, Reason} ->
                      ct:log("~p = ~p: ~p", [K, V, Reason]),
                      nomatch =/= string:find(io_lib:format("~p", [Reason]), "bad_config")
                          orelse ct:fail("~p = ~p: unclear error ~p", [K, V, Reason]);
                  {ok, _} ->
                      ct:fail("started with ~p = ~p", [K, V])
              end,
              application:unset_env(erlang_python, K)
      end, Bad).

restart(_Config) ->
    py_ct:start([{num_contexts, 2}]),
    ?expect(ok, py:exec(py:context(1), <<"kept = 1">>)),
    py_ct:stop(),
    ?expect({error, not_started}, py:eval(<<"1">>)),
    py_ct:start([{num_contexts, 2}]),
    %% a new sidecar: the old globals are gone
    ?expect({error, {'NameError', _}}, py:eval(py:context(1), <<"kept">>)),
    ?expect({ok, 1}, py:eval(<<"1">>)).
