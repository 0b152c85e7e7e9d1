-module(py_payload_tests).

-include_lib("eunit/include/eunit.hrl").

call_test() ->
    ?assertEqual({ok, {<<"math">>, <<"sqrt">>, [16], #{}}},
                 py_payload:call(math, sqrt, [16], #{})),
    ?assertEqual({ok, {<<"m">>, <<"f">>, [], #{a => 1, <<"b">> => 2}}},
                 py_payload:call(<<"m">>, <<"f">>, [], #{a => 1, <<"b">> => 2})),
    ?assertEqual({ok, {<<"caf", 195, 169>>, <<"f">>, [], #{}}},
                 py_payload:call('café', f, [], #{})).

call_badarg_test() ->
    ?assertEqual({error, {badarg, {module, "math"}}}, py_payload:call("math", sqrt, [], #{})),
    ?assertEqual({error, {badarg, {function, 1}}}, py_payload:call(math, 1, [], #{})),
    ?assertEqual({error, {badarg, {args, not_a_list}}}, py_payload:call(m, f, {1}, #{})),
    ?assertEqual({error, {badarg, {args, improper_list}}}, py_payload:call(m, f, [1 | 2], #{})),
    ?assertEqual({error, {badarg, {kwargs, <<"Kwargs must be a map or a keyword list">>}}},
                 py_payload:call(m, f, [], [x])),
    ?assertEqual({error, {badarg, {kwargs, <<"Kwargs must be a map or a keyword list">>}}},
                 py_payload:call(m, f, [], 7)),
    ?assertEqual({error, {badarg, {kwargs, keys_must_be_atoms_or_binaries}}},
                 py_payload:call(m, f, [], #{"k" => 1})),
    %% the first bad argument is reported
    ?assertEqual({error, {badarg, {module, 1}}}, py_payload:call(1, 2, x, y)).

eval_test() ->
    ?assertEqual({ok, {<<"1 + x">>, #{x => 1}}}, py_payload:eval(<<"1 + x">>, #{x => 1})),
    ?assertEqual({ok, {<<"1 + x">>, #{}}}, py_payload:eval("1 + x", #{})),
    ?assertEqual({ok, {<<"ab">>, #{}}}, py_payload:eval([<<"a">>, "b"], #{})),
    ?assertEqual({ok, {<<"'", 195, 169, "'">>, #{}}}, py_payload:eval([$', 233, $'], #{})).

keywords_test() ->
    ?assertEqual({ok, {<<"m">>, <<"f">>, [], #{base => 16}}},
                 py_payload:call(m, f, [], [{base, 16}])),
    ?assertEqual({ok, {<<"m">>, <<"f">>, [], #{}}}, py_payload:call(m, f, [], [])),
    %% the first of a repeated key wins, as Keyword.get/2
    ?assertEqual({ok, {<<"x">>, #{x => 1, <<"y">> => 2}}},
                 py_payload:eval(<<"x">>, [{x, 1}, {<<"y">>, 2}, {x, 3}])),
    ?assert(py_payload:is_keywords([])),
    ?assert(py_payload:is_keywords([{a, 1}, {<<"b">>, 2}])),
    ?assertNot(py_payload:is_keywords("abc")),
    ?assertNot(py_payload:is_keywords([{a, 1} | b])).

eval_badarg_test() ->
    ?assertEqual({error, {badarg, {code, not_utf8}}}, py_payload:eval(<<255>>, #{})),
    ?assertEqual({error, {badarg, {code, not_chardata}}}, py_payload:eval(code, #{})),
    ?assertEqual({error, {badarg, {code, not_chardata}}}, py_payload:eval([foo], #{})),
    ?assertEqual({error, {badarg, {code, not_utf8}}}, py_payload:eval([-1], #{})),
    ?assertEqual({error, {badarg, {locals, <<"Locals must be a map or a keyword list">>}}},
                 py_payload:eval(<<"x">>, [{1, 1}])),
    ?assertEqual({error, {badarg, {locals, keys_must_be_atoms_or_binaries}}},
                 py_payload:eval(<<"x">>, #{1 => 1})).

exec_test() ->
    ?assertEqual({ok, {<<"x = 1">>}}, py_payload:exec(<<"x = 1">>)),
    ?assertEqual({ok, {<<"x = 1">>}}, py_payload:exec("x = 1")),
    ?assertEqual({error, {badarg, {code, not_utf8}}}, py_payload:exec(<<"x = '", 200, "'">>)),
    ?assertEqual({error, {badarg, {code, not_chardata}}}, py_payload:exec(42)).

name_test() ->
    ?assertEqual({ok, <<"m">>}, py_payload:name(module, m)),
    ?assertEqual({ok, <<"m">>}, py_payload:name(module, <<"m">>)),
    ?assertEqual({error, {badarg, {function, "f"}}}, py_payload:name(function, "f")).

key_test() ->
    ?assertEqual({ok, <<"k">>}, py_payload:key(key, k)),
    ?assertEqual({ok, <<"k">>}, py_payload:key(key, <<"k">>)),
    ?assertEqual({ok, <<"k">>}, py_payload:key(key, "k")),
    ?assertEqual({ok, <<"caf", 195, 169>>}, py_payload:key(key, "caf" ++ [233])),
    ?assertEqual({ok, <<"caf", 195, 169>>}, py_payload:key(name, 'café')),
    ?assertEqual({error, {badarg, {key, 1}}}, py_payload:key(key, 1)),
    ?assertEqual({error, {badarg, {name, [-1]}}}, py_payload:key(name, [-1])),
    %% a list that is chardata but not valid Unicode
    ?assertEqual({error, {badarg, {key, [16#D800]}}}, py_payload:key(key, [16#D800])).

timeout_test() ->
    ?assertEqual({ok, infinity}, py_payload:timeout(infinity)),
    ?assertEqual({ok, 0}, py_payload:timeout(0)),
    ?assertEqual({ok, 5000}, py_payload:timeout(5000)),
    [?assertEqual({error, {badarg, {timeout, T}}}, py_payload:timeout(T))
     || T <- [-1, 1.5, soon, "5000"]].
