%% Elixir ergonomics (issue 14, point 4), from Erlang code that calls as
%% Elixir does: keyword lists as Kwargs and Locals (`x: 41' is `[{x, 41}]'),
%% the `none_as' setting (None as `nil'), the hint of a registered
%% `Module:Function' that does not take the argument list; and, when
%% `elixir' is on PATH, the same through `elixir -e' with the built ebin.
-module(py_elixir_SUITE).

-include_lib("common_test/include/ct.hrl").
-include("py_ct.hrl").

-export([all/0, init_per_suite/1, end_per_suite/1, init_per_testcase/2, end_per_testcase/2]).
-export([keyword_kwargs/1, keyword_locals/1, keyword_errors/1, none_stays_none/1,
         none_as_nil/1, none_as_nil_per_sidecar/1, register_mf_hint/1, elixir_script/1]).
-export([upcase/1]).

all() ->
    [keyword_kwargs, keyword_locals, keyword_errors, none_stays_none, none_as_nil,
     none_as_nil_per_sidecar, register_mf_hint, elixir_script].

init_per_suite(Config) ->
    Config.

end_per_suite(_Config) ->
    py_ct:stop().

init_per_testcase(none_as_nil, Config) ->
    py_ct:start([{num_contexts, 2}, {none_as, nil}]),
    Config;
init_per_testcase(_Case, Config) ->
    py_ct:start([{num_contexts, 2}]),
    Config.

end_per_testcase(_Case, _Config) ->
    _ = [erlang_python:stop_sidecar(S) || S <- erlang_python:sidecars(), S =/= default],
    _ = py:unregister_function(up),
    _ = py:unregister_function(nosuch),
    py_ct:stop().

%%--------------------------------------------------------------------

%% `:py.call(:builtins, :int, ["ff"], base: 16)' and the other forms.
keyword_kwargs(_Config) ->
    ?equal({ok, 255}, py:call(builtins, int, [<<"ff">>], [{base, 16}])),
    ?equal({ok, 255}, py:call(builtins, int, [<<"ff">>], [{<<"base">>, 16}])),
    ?equal({ok, 3}, py:call(builtins, int, [<<"3">>], [])),
    %% the first of a repeated key wins, as Keyword.get/2
    ?equal({ok, 255}, py:call(builtins, int, [<<"ff">>], [{base, 16}, {base, 8}])),
    ?equal({ok, 255}, py:call(builtins, int, [<<"ff">>], [{base, 16}], 5000)),
    %% a context with Opts, a pool with Kwargs
    Ctx = py:context(1),
    ?equal({ok, 255}, py:call(Ctx, builtins, int, [<<"ff">>], #{kwargs => [{base, 16}]})),
    ?equal({ok, 255}, py:call(default, builtins, int, [<<"ff">>], [{base, 16}])),
    %% the context forms still work
    ?equal({ok, 2.0}, py:call(Ctx, math, sqrt, [4])),
    ?equal({ok, 2.0}, py:call(default, math, sqrt, [4])),
    %% cast, spawn_call, parallel
    ?equal(ok, py:cast(builtins, int, [<<"ff">>], [{base, 16}])),
    ?equal({ok, 255}, py:await(py:spawn_call(builtins, int, [<<"ff">>], [{base, 16}]), 5000)),
    ?equal({ok, 255}, py:await(py:spawn_call(default, builtins, int, [<<"ff">>], [{base, 16}]),
                               5000)),
    ?equal({ok, [{ok, 255}]}, py:parallel([{builtins, int, [<<"ff">>], [{base, 16}]}])),
    ?equal({ok, 255}, py_context:call(Ctx, builtins, int, [<<"ff">>], [{base, 16}])).

%% `:py.eval("x + 1", x: 41)' is eval(<<"x + 1">>, [{x, 41}]): Locals, not a
%% context (no context is a binary or a list).
keyword_locals(_Config) ->
    ?equal({ok, 42}, py:eval(<<"x + 1">>, [{x, 41}])),
    ?equal({ok, 42}, py:eval("x + 1", [{x, 41}])),
    ?equal({ok, 3}, py:eval(<<"x + y">>, [{x, 1}, {<<"y">>, 2}])),
    ?equal({ok, 2}, py:eval(<<"1 + 1">>, [])),
    ?equal({ok, 42}, py:eval(<<"x + 1">>, [{x, 41}], 5000)),
    ?equal({ok, 42}, py:eval(<<"x + 1">>, [{x, 41}], infinity)),
    %% the context forms still work
    Ctx = py:context(1),
    ?equal({ok, 4}, py:eval(Ctx, <<"2 + 2">>)),
    ?equal({ok, 4}, py:eval(default, <<"2 + 2">>)),
    ?equal({ok, 42}, py:eval(Ctx, <<"x + 1">>, [{x, 41}])),
    ?equal({ok, 42}, py:eval(Ctx, <<"x + 1">>, #{x => 41})),
    ?equal({ok, 42}, py_context:eval(Ctx, <<"x + 1">>, [{x, 41}])).

keyword_errors(_Config) ->
    Kw = <<"Kwargs must be a map or a keyword list">>,
    ?equal({error, {badarg, {kwargs, Kw}}}, py:call(math, sqrt, [16], [x])),
    ?equal({error, {badarg, {kwargs, Kw}}}, py:call(math, sqrt, [16], not_a_map)),
    ?equal({error, {badarg, {kwargs, Kw}}}, py:call(math, sqrt, [16], [{1, 2}])),
    ?equal({error, {badarg, {kwargs, Kw}}}, py:cast(math, sqrt, [16], 7)),
    ?equal({error, {badarg, {kwargs, Kw}}}, py:await(py:spawn_call(math, sqrt, [], 7), 1000)),
    ?equal({error, {badarg, {locals, <<"Locals must be a map or a keyword list">>}}},
           py:eval(<<"x">>, [{1, 2}], 1000)),
    ?equal({error, {badarg, {locals, <<"Locals must be a map or a keyword list">>}}},
           py:eval(py:context(1), <<"x">>, 5)),
    %% not a keyword list after code: the first is taken for a context, as before
    ?expect({error, {bad_context, _}}, py:eval(<<"x">>, <<"y">>)).

%% The default: None is `none', as the NIF.
none_stays_none(_Config) ->
    ?equal({ok, none}, py:eval(<<"None">>)),
    ?equal({ok, [none, #{<<"a">> => none}]}, py:eval(<<"[None, {'a': None}]">>)).

%% none_as => nil: None comes back as nil; nil, none and undefined still go
%% in as None; the library's own helpers still work.
none_as_nil(_Config) ->
    ?equal({ok, nil}, py:eval(<<"None">>)),
    ?equal({ok, [nil, {nil}, #{<<"a">> => nil}]}, py:eval(<<"[None, (None,), {'a': None}]">>)),
    ?equal({ok, true}, py:eval(<<"x is None and y is None and z is None">>,
                               [{x, nil}, {y, none}, {z, undefined}])),
    ?equal({ok, nil}, py:call(builtins, print, [<<>>])),
    %% a None key and an Atom('nil') key would be the same key
    ?expect({error, {'ValueError', _}}, py:eval(<<"{None: 1, erlang.Atom('nil'): 2}">>)),
    %% what the library runs through Python itself
    Ctx = py:context(1),
    ?expect({'$py_env', Ctx, _}, py:get_local_env(Ctx)),
    {ok, Ref} = py:call(Ctx, builtins, list, [[1, 2]], #{return => ref}),
    ?equal(ok, py:release(Ref)),
    ok = py:state_store(k, nil),
    ?equal({ok, true}, py:eval(<<"erlang.state_get('k') is None">>)).

%% A sidecar's own setting: the default one says none, the other nil.
none_as_nil_per_sidecar(_Config) ->
    {ok, _} = erlang_python:start_sidecar(elixir, #{num_contexts => 1, none_as => nil}),
    ?equal({ok, nil}, py:eval({elixir, default}, <<"None">>)),
    ?equal({ok, none}, py:eval(<<"None">>)),
    ?equal({error, {bad_config, none_as, null}},
           erlang_python:start_sidecar(other, #{none_as => null})).

%% register_function(Name, M, F): F gets the list of the Python arguments;
%% when it does not take it, Python's error says so.
register_mf_hint(_Config) ->
    Ctx = py:context(1),
    ok = py:exec(Ctx, <<"def erlang_error(name, *args):\n"
                        "    try:\n"
                        "        erlang.call(name, *args)\n"
                        "    except erlang.Error as e:\n"
                        "        return str(e)\n">>),
    ok = py:register_function(up, ?MODULE, upcase),
    {ok, Msg} = py:eval(Ctx, <<"erlang_error('up', 'abc')">>),
    ct:log("~ts", [Msg]),
    match(Msg, <<"function_clause">>),
    match(Msg, <<"py_elixir_SUITE:upcase/1 is called with the list of the Python arguments">>),
    match(Msg, <<"[<<\"abc\">>]">>),
    %% undef: the function is not there at arity 1
    ok = py:register_function(nosuch, lists, no_such_function),
    {ok, Msg2} = py:eval(Ctx, <<"erlang_error('nosuch', 1, 2)">>),
    ct:log("~ts", [Msg2]),
    match(Msg2, <<"undef">>),
    match(Msg2, <<"lists:no_such_function/1 is called with the list">>),
    %% a function_clause deeper down is left as it is
    ok = py:register_function(up, fun([S]) -> upcase(S) end),
    {ok, Msg3} = py:eval(Ctx, <<"erlang_error('up', 1)">>),
    match(Msg3, <<"function_clause">>),
    nomatch = binary:match(Msg3, <<"is called with the list">>),
    ?equal({ok, <<"ABC">>}, py:eval(Ctx, <<"erlang.call('up', 'abc')">>)).

%% The same as Elixir code: `elixir -e' with the built ebin, when elixir is
%% on PATH (scripts/setup.sh installs Debian's).
elixir_script(Config) ->
    case os:find_executable("elixir") of
        false ->
            {skip, "elixir is not on PATH"};
        Elixir ->
            py_ct:stop(),
            Ebin = filename:dirname(code:which(py)),
            Script = filename:join(?config(priv_dir, Config), "py_elixir_check.exs"),
            ok = file:write_file(Script, elixir_code()),
            Port = open_port({spawn_executable, Elixir},
                             [{args, ["-pa", Ebin, Script]}, exit_status, stderr_to_stdout,
                              binary]),
            {Status, Out} = collect(Port, <<>>),
            ct:log("~ts", [Out]),
            ?equal({0, match}, {Status, case binary:match(Out, <<"elixir check: ok">>) of
                                            nomatch -> nomatch;
                                            _ -> match
                                        end})
    end.

%%--------------------------------------------------------------------

%% Takes a binary only: given the argument list it raises function_clause.
upcase(S) when is_binary(S) ->
    string:uppercase(S).

match(Bin, Part) ->
    case binary:match(Bin, Part) of
        nomatch -> ct:fail("~p not in ~ts", [Part, Bin]);
        _ -> ok
    end.

collect(Port, Acc) ->
    receive
        {Port, {data, D}} -> collect(Port, <<Acc/binary, D/binary>>);
        {Port, {exit_status, S}} -> {S, Acc}
    after 120000 ->
        ct:fail("elixir did not finish: ~ts", [Acc])
    end.

elixir_code() ->
    <<"Application.put_env(:erlang_python, :none_as, :nil)
{:ok, _} = Application.ensure_all_started(:erlang_python)
{:ok, 42} = :py.eval(\"x + 1\", x: 41)
{:ok, 255} = :py.call(:builtins, :int, [\"ff\"], base: 16)
{:ok, nil} = :py.eval(\"None\")
{:ok, true} = :py.eval(\"x is None\", x: nil)
:ok = :py.register_function(:upcase, String, :upcase)
ctx = :py.context(1)
:ok = :py.exec(ctx, \"\"\"
def _try():
    try:
        erlang.call('upcase', 'abc')
    except erlang.Error as e:
        return str(e)
\"\"\")
{:ok, msg} = :py.eval(ctx, \"_try()\")
IO.puts(msg)
true = String.contains?(msg, \"String:upcase/1 is called with the list of the Python arguments\")
:ok = :py.register_function(:upcase, fn [s] -> String.upcase(s) end)
{:ok, \"ABC\"} = :py.eval(\"erlang.call('upcase', 'abc')\")
IO.puts(\"elixir check: ok\")
">>.
