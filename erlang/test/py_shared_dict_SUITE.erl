%% API.md section 7, SharedDict (the NIF 2.x shapes): a dict in the shared
%% state, seen by every context and Erlang, freed when its owner exits.
%% Real BEAM -> port -> Python.
-module(py_shared_dict_SUITE).

-include_lib("common_test/include/ct.hrl").
-include("py_ct.hrl").

-export([all/0, init_per_suite/1, end_per_suite/1, end_per_testcase/2]).
-export([api_examples/1, python_examples/1, two_contexts/1, owner_exit/1, destroyed/1,
         not_in_state_keys/1, bad_args/1, survives_kill/1]).

all() ->
    [api_examples, python_examples, two_contexts, owner_exit, destroyed, not_in_state_keys,
     bad_args, survives_kill].

init_per_suite(Config) ->
    py_ct:start([{num_contexts, 2}]),
    Config.

end_per_suite(_Config) ->
    py_ct:stop().

end_per_testcase(survives_kill, _Config) ->
    py_ct:start([{num_contexts, 2}]);
end_per_testcase(_Case, _Config) ->
    ok.

%% The NIF docs' Erlang quick start, as written.
api_examples(_Config) ->
    {ok, SD} = py:shared_dict_new(),
    ok = py:shared_dict_set(SD, <<"config">>, #{host => <<"localhost">>, port => 8080}),
    %% the NIF docs show #{<<"host">> => ...}: the NIF pickles through
    %% Python; here a value stored by Erlang reads back as stored, as in
    %% py:state_fetch, and Python sees it converted
    ?equal(#{host => <<"localhost">>, port => 8080}, py:shared_dict_get(SD, <<"config">>)),
    ?equal({ok, #{<<"host">> => <<"localhost">>, <<"port">> => 8080}},
           py:eval(<<"erlang.SharedDict(sd)['config']">>, #{sd => SD})),
    ?equal(default_value, py:shared_dict_get(SD, <<"missing">>, default_value)),
    ?equal(undefined, py:shared_dict_get(SD, <<"missing">>)),
    ?equal([<<"config">>], py:shared_dict_keys(SD)),
    ok = py:shared_dict_del(SD, <<"config">>),
    ok = py:shared_dict_del(SD, <<"config">>),              % a missing key: no error
    ?equal([], py:shared_dict_keys(SD)),
    %% atom and string keys are their UTF-8
    ok = py:shared_dict_set(SD, k, 1),
    ?equal(1, py:shared_dict_get(SD, "k")),
    ok = py:shared_dict_destroy(SD).

%% The NIF docs' Python side: the handle as an argument, dict-like access.
python_examples(_Config) ->
    {ok, SD} = py:shared_dict_new(),
    ok = py:shared_dict_set(SD, <<"config">>, #{host => <<"localhost">>, port => 8080}),
    Code = <<"def process_with_config(sd_handle):\n"
             "    from erlang import SharedDict\n"
             "    sd = SharedDict(sd_handle)\n"
             "    config = sd['config']\n"
             "    host = config.get('host') or config.get(b'host')\n"
             "    sd['result'] = {'status': 'ok', 'count': 42}\n"
             "    found = 'config' in sd and 'nope' not in sd\n"
             "    keys = sorted(sd.keys())\n"
             "    n = len(sd)\n"
             "    sd['gone'] = 1\n"
             "    del sd['gone']\n"
             "    try:\n"
             "        del sd['gone']\n"
             "        missing = 'no KeyError'\n"
             "    except KeyError:\n"
             "        missing = 'KeyError'\n"
             "    return host, found, keys, n, sd.get('nope', 7), missing, dict(sd.items())['result']\n">>,
    Ctx = py:context(1),
    ok = py:exec(Ctx, Code),
    ?equal({ok, {<<"localhost">>, true, [<<"config">>, <<"result">>], 2, 7, <<"KeyError">>,
                 #{<<"status">> => <<"ok">>, <<"count">> => 42}}},
           py:call(Ctx, '__main__', process_with_config, [SD])),
    ?equal(#{<<"status">> => <<"ok">>, <<"count">> => 42}, py:shared_dict_get(SD, <<"result">>)),
    ?expect({error, {'KeyError', _}}, py:eval(Ctx, <<"erlang.SharedDict(sd)['nope']">>, #{sd => SD})),
    ok = py:shared_dict_destroy(SD).

%% One dict, two contexts (two sub-interpreters where supported) and Erlang.
two_contexts(_Config) ->
    {ok, SD} = py:shared_dict_new(),
    C1 = py:context(1),
    C2 = py:context(2),
    ?equal({ok, none}, py:eval(C1, <<"erlang.SharedDict(sd).__setitem__('from1', [1, 2])">>, #{sd => SD})),
    ?equal({ok, [1, 2]}, py:eval(C2, <<"erlang.SharedDict(sd)['from1']">>, #{sd => SD})),
    ?equal({ok, none}, py:eval(C2, <<"erlang.SharedDict(sd).__setitem__('from2', 'x')">>, #{sd => SD})),
    ?equal({ok, [<<"from1">>, <<"from2">>]}, py:eval(C1, <<"erlang.SharedDict(sd).keys()">>, #{sd => SD})),
    ?equal(<<"x">>, py:shared_dict_get(SD, from2)),
    ?equal([<<"from1">>, <<"from2">>], py:shared_dict_keys(SD)),
    ok = py:shared_dict_destroy(SD).

%% The owner's exit destroys the dict: Erlang and Python see it gone, and
%% its keys leave the store.
owner_exit(_Config) ->
    Self = self(),
    Owner = spawn(fun() ->
                          {ok, SD} = py:shared_dict_new(),
                          ok = py:shared_dict_set(SD, a, 1),
                          Self ! {sd, SD},
                          receive stop -> ok end
                  end),
    SD = receive {sd, H} -> H after 10000 -> ct:fail(no_dict) end,
    ?equal(1, py:shared_dict_get(SD, a)),
    ?equal({ok, 1}, py:eval(py:context(2), <<"erlang.SharedDict(sd)['a']">>, #{sd => SD})),
    Owner ! stop,
    py_ct:wait_until(fun() -> py:shared_dict_get(SD, a) =:= {error, {destroyed, SD}} end,
                     5000, "the dict to be destroyed"),
    py_ct:wait_until(fun() -> sd_keys() =:= [] end, 5000, "its keys to leave the store"),
    ?expect({error, {'RuntimeError', _}}, py:eval(py:context(1), <<"erlang.SharedDict(sd)['a']">>, #{sd => SD})),
    ok.

%% Every operation on a destroyed dict is a clear error, in Erlang and in
%% Python; destroying twice is no error.
destroyed(_Config) ->
    {ok, SD} = py:shared_dict_new(),
    ok = py:shared_dict_set(SD, a, 1),
    ok = py:shared_dict_destroy(SD),
    ok = py:shared_dict_destroy(SD),
    ?equal({error, {destroyed, SD}}, py:shared_dict_get(SD, a)),
    ?equal({error, {destroyed, SD}}, py:shared_dict_get(SD, a, 0)),
    ?equal({error, {destroyed, SD}}, py:shared_dict_set(SD, a, 2)),
    ?equal({error, {destroyed, SD}}, py:shared_dict_del(SD, a)),
    ?equal({error, {destroyed, SD}}, py:shared_dict_keys(SD)),
    ?equal([], sd_keys()),
    [?expect({error, {'RuntimeError', <<"SharedDict ", _/binary>>}},
             py:eval(py:context(1), <<"(lambda d: ", Op/binary, ")(erlang.SharedDict(sd))">>, #{sd => SD}))
     || Op <- [<<"d['a']">>, <<"d.__setitem__('a', 1)">>, <<"d.__delitem__('a')">>, <<"d.keys()">>,
               <<"'a' in d">>, <<"len(d)">>, <<"d.get('a')">>]],
    ok.

%% py:state_keys() and Python's state_keys() list none of a dict's keys.
not_in_state_keys(_Config) ->
    ok = py:state_clear(),
    ok = py:state_store(plain, 1),
    {ok, SD} = py:shared_dict_new(),
    ok = py:shared_dict_set(SD, a, 1),
    ?equal([<<"plain">>], py:state_keys()),
    ?equal({ok, [<<"plain">>]}, py:eval(py:context(1), <<"sorted(erlang.state_keys())">>)),
    ?equal({ok, [<<"plain">>]}, py:eval(py:context(2), <<"__import__('erlang').state_keys()">>)),
    ok = py:shared_dict_destroy(SD),
    ok = py:state_remove(plain).

bad_args(_Config) ->
    ?equal({error, {badarg, {shared_dict, nope}}}, py:shared_dict_get(nope, a)),
    ?equal({error, {badarg, {shared_dict, {x}}}}, py:shared_dict_set({x}, a, 1)),
    ?equal({error, {badarg, {shared_dict, 1}}}, py:shared_dict_keys(1)),
    ?equal({error, {badarg, {shared_dict, 1}}}, py:shared_dict_destroy(1)),
    {ok, SD} = py:shared_dict_new(),
    ?equal({error, {badarg, {key, 42}}}, py:shared_dict_set(SD, 42, 1)),
    ?equal({error, {badarg, {key, {k}}}}, py:shared_dict_get(SD, {k})),
    ?expect({error, {'TypeError', _}}, py:exec(py:context(1), <<"erlang.SharedDict(5)">>)),
    ?expect({error, {'TypeError', _}},
            py:eval(py:context(1), <<"erlang.SharedDict(sd).__setitem__(1, 2)">>, #{sd => SD})),
    ok = py:shared_dict_destroy(SD).

%% A dict's entries come back after a kill -9 of the sidecar, and its owner
%% is still watched.
survives_kill(_Config) ->
    Self = self(),
    Owner = spawn(fun() ->
                          {ok, SD} = py:shared_dict_new(),
                          Self ! {sd, SD},
                          receive stop -> ok end
                  end),
    SD = receive {sd, H} -> H after 10000 -> ct:fail(no_dict) end,
    ?equal({ok, none}, py:eval(py:context(1), <<"erlang.SharedDict(sd).__setitem__('k', 'v')">>, #{sd => SD})),
    Port = py_ct:kill_sidecar(),
    py_ct:wait_restarted(Port),
    ?equal(<<"v">>, py:shared_dict_get(SD, k)),
    ?equal({ok, <<"v">>}, py:eval(py:context(2), <<"erlang.SharedDict(sd)['k']">>, #{sd => SD})),
    Owner ! stop,
    py_ct:wait_until(fun() -> py:shared_dict_keys(SD) =:= {error, {destroyed, SD}} end,
                     5000, "the dict to be destroyed"),
    ?expect({error, {'RuntimeError', _}}, py:eval(py:context(2), <<"erlang.SharedDict(sd)['k']">>, #{sd => SD})).

%% The SharedDict keys in the default sidecar's mirror.
sd_keys() ->
    [K || {<<0, _/binary>> = K, _} <- ets:tab2list(py_state_mirror)].
