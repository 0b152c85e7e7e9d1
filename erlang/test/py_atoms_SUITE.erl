%% Bounded atoms (issue #12 point 2, API.md section 5): whatever Python
%% does, it makes at most max_atoms new atoms in the VM, across sidecar and
%% application restarts. Python attempts 2M new atoms in every shape a term
%% can carry one (lists of erlang.Atom, dict keys, erlang.send messages,
%% state_set values, exception class names made with type(), callback
%% arguments, pids of made-up nodes), through erlang.Atom and around it
%% (str.__new__(erlang.Atom, ...), which the sidecar does not count: the
%% BEAM's gate, py_atoms, is the guarantee); the BEAM's atom count grows by
%% at most the cap.
%%
%% The count is VM-wide and never goes down, so the cases run in order and
%% the suite's cap is what was spent when it starts plus ?CAP.
-module(py_atoms_SUITE).

-include_lib("common_test/include/ct.hrl").
-include("py_ct.hrl").

-export([all/0, groups/0, init_per_suite/1, end_per_suite/1]).
-export([within_the_cap/1, two_million_attempts/1, past_the_cap_every_shape/1,
         existing_atoms_always_decode/1, cap_holds_across_a_sidecar_kill/1,
         cap_holds_across_an_application_restart/1]).

-define(CAP, 2000).
-define(MOD, <<"atoms_hostile">>).

all() ->
    [{group, in_order}].

groups() ->
    [{in_order, [sequence],
      [within_the_cap, two_million_attempts, past_the_cap_every_shape,
       existing_atoms_always_decode, cap_holds_across_a_sidecar_kill,
       cap_holds_across_an_application_restart]}].

init_per_suite(Config) ->
    Dir = filename:join(?config(priv_dir, Config), "pypath"),
    ok = filelib:ensure_path(Dir),
    ok = file:write_file(filename:join(Dir, "atoms_hostile.py"), python_module()),
    Spent0 = py_atoms:spent(),
    Env = [{num_contexts, 2}, {python_path, [Dir]}, {max_restarts, 20},
           {max_atoms, Spent0 + ?CAP}, {call_timeout, 60000}],
    py_ct:start(Env),
    ok = py:register_function(echo, fun(Args) -> Args end),
    %% warm up every path once with existing atoms, so that code loading
    %% adds no atoms to the counts below
    {ok, _} = call(make, [<<"ok">>, 0, 0]),
    Count0 = erlang:system_info(atom_count),
    persistent_term:put(py_atoms_SUITE_loaded, [M || {M, _} <- code:all_loaded()]),
    ct:log("before: ~b atoms in the VM, ~b made for Python, cap ~b", [Count0, Spent0, Spent0 + ?CAP]),
    [{env, Env}, {spent0, Spent0}, {count0, Count0} | Config].

end_per_suite(Config) ->
    Count0 = ?config(count0, Config),
    ct:log("after: the VM's atoms up by ~b, ~b made for Python (cap ~b)",
           [erlang:system_info(atom_count) - Count0, py_atoms:spent() - ?config(spent0, Config),
            ?CAP]),
    _ = py:unregister_function(echo),
    py_ct:stop().

%%--------------------------------------------------------------------

%% New atoms within the cap are atoms in Erlang, and count once.
within_the_cap(Config) ->
    {ok, {Made, 0}} = call(make, [<<"in_cap_">>, 0, 10]),
    ?equal([<<"in_cap_", (integer_to_binary(I))/binary>> || I <- lists:seq(0, 9)],
           [atom_to_binary(A) || A <- Made]),
    %% again: no new atoms, nothing counted
    Spent = py_atoms:spent(),
    {ok, {Made, 0}} = call(make, [<<"in_cap_">>, 0, 10]),
    ?equal(Spent, py_atoms:spent()),
    check_bound(Config).

%% 2M attempted new atoms: the BEAM lives, its atom count grows by at most
%% the cap, erlang.Atom raises the named exception past it, replies around
%% it are {error, {atom_limit, _}}.
two_million_attempts(Config) ->
    %% 1.5M through erlang.Atom, 100k a call
    Refused = lists:sum([begin
                             {ok, {_Made, R}} = call(make, [<<"h_">>, I * 100000, 100000]),
                             R
                         end || I <- lists:seq(0, 14)]),
    ct:log("erlang.Atom refused ~b of 1500000", [Refused]),
    true = Refused >= 1500000 - ?CAP,
    check_bound(Config),
    %% its message names the setting
    {ok, Msg} = call(limit_message, [<<"one_more_name">>]),
    ct:log("AtomLimitError: ~ts", [Msg]),
    true = binary:match(Msg, <<"max_atoms">>) =/= nomatch,
    {error, {'AtomLimitError', _}} = call(make_one, [<<"one_more_name">>]),
    %% 500k around erlang.Atom, in lists of 50k: the BEAM refuses each reply
    [{error, {atom_limit, #{max_atoms := _, new := 50000}}} =
         call(bypass, [<<"b_">>, I * 50000, 50000]) || I <- lists:seq(0, 9)],
    check_bound(Config),
    %% the BEAM is alive and serves
    {ok, 42} = py:eval(<<"6 * 7">>).

%% Past the cap, in every other shape: dict keys, erlang.send, state_set,
%% exception class names, callback arguments, pids of made-up nodes; each
%% through erlang.Atom (refused in Python) and around it (refused by the
%% BEAM). Existing atoms still go through.
past_the_cap_every_shape(Config) ->
    %% dict keys
    {error, {'AtomLimitError', _}} = call(dict_keys, [<<"dk_">>, 0, 1000, false]),
    {error, {atom_limit, _}} = call(dict_keys, [<<"dk_">>, 0, 1000, true]),
    {ok, #{ok := 0, error := 1}} = py:eval(<<"{__import__('erlang').Atom('ok'): 0, "
                                             "__import__('erlang').Atom('error'): 1}">>),
    %% erlang.send: not sent (logged), the sidecar goes on
    Self = self(),
    {error, {'AtomLimitError', _}} = call(send, [Self, <<"snd_">>, 0, 1000, false]),
    [{ok, none} = call(send, [Self, <<"snd_">>, I * 1000, 1000, true]) || I <- lists:seq(0, 49)],
    {ok, none} = call(send, [Self, <<"ok">>, 0, 0, false]), % a message of existing atoms
    receive {<<"sent">>, []} -> ok after 10000 -> ct:fail("no message of existing atoms") end,
    receive {<<"sent">>, [_ | _]} = Bad -> ct:fail("a message past the cap came: ~p", [Bad])
    after 0 -> ok
    end,
    %% state_set: refused in Python; around it, the mirror drops the value
    %% (logged) and the BEAM makes no atom
    {error, {'AtomLimitError', _}} = call(state, [<<"st_key">>, <<"st_">>, 0, 1000, false]),
    [{ok, none} = call(state, [<<"st_key", (integer_to_binary(I))/binary>>, <<"st_">>,
                               I * 1000, 1000, true]) || I <- lists:seq(0, 49)],
    %% the store has it (with atoms the BEAM refuses), the mirror not
    case py:state_fetch(<<"st_key0">>) of
        {error, {atom_limit, _}} -> ok;
        {error, not_found} -> ok
    end,
    ok = py:state_store(<<"st_ok">>, [ok, true]),
    {ok, [ok, true]} = py:state_fetch(<<"st_ok">>),
    %% exception classes made with type(): named by their nearest built-in base
    [{error, {'KeyError', <<"'boom'">>}} = call(exc, [<<"Exc_">>, I, <<"KeyError">>])
     || I <- lists:seq(0, 999)],
    {error, {'ValueError', _}} = call(exc, [<<"Exc_v">>, 1, <<"ValueError">>]),
    %% callback arguments: the erlang.call raises, with atom_limit
    {ok, Reason} = call(callback, [<<"cb_">>, 0, 1000]),
    ct:log("callback past the cap: ~p", [Reason]),
    true = binary:match(Reason, <<"atom_limit">>) =/= nomatch,
    {ok, [<<"ok">>, 1]} = call(callback_ok, []),
    %% pids of made-up nodes (the node is an atom)
    {error, {atom_limit, _}} = call(fake_pids, [<<"node_">>, 0, 1000]),
    check_bound(Config),
    {ok, 42} = py:eval(<<"6 * 7">>).

%% ok, true, and any atom the BEAM has, decode whatever was spent.
existing_atoms_always_decode(_Config) ->
    {ok, [ok, true, false, error, undefined]} =
        py:eval(<<"[__import__('erlang').Atom(n) for n in ('ok', 'true', 'false', 'error', "
                  "'undefined')]">>),
    %% an atom the BEAM has but no one told the sidecar of: erlang.Atom
    %% asks the BEAM ($atom_exists) past the budget, and makes it
    %% (the loops above took every ask there was: they come back, 100 a second)
    py_ct:wait_until(fun() -> call(make_one, [<<"lists">>]) =:= {ok, lists} end, 20000,
                     "erlang.Atom('lists') past the budget"),
    {ok, [code, lists]} = py:eval(<<"[__import__('erlang').Atom(n) for n in ('code', 'lists')]">>),
    %% and the BEAM decodes it whatever made it
    {ok, [lists, erlang, Made]} =
        call(bypass_names, [[<<"lists">>, <<"erlang">>, <<"in_cap_3">>]]),
    <<"in_cap_3">> = atom_to_binary(Made),
    %% names made before are free in Python
    {ok, {[Made0], 0}} = call(make, [<<"in_cap_">>, 0, 1]),
    <<"in_cap_0">> = atom_to_binary(Made0).

%% kill -9 of the sidecar: the new one knows what was made (atoms_load),
%% so old names are free again and new ones still refused.
cap_holds_across_a_sidecar_kill(Config) ->
    Spent = py_atoms:spent(),
    ok = py:subscribe_restarts(),
    py_ct:kill_sidecar(),
    receive {py_restarted, _} -> ok after 20000 -> ct:fail("no restart") end,
    py_ct:wait_until(fun() -> py:eval(<<"1">>) =:= {ok, 1} end, 20000, "the new sidecar"),
    %% re-making the old names works, in Python and in the BEAM
    {ok, {Made, 0}} = call(make, [<<"in_cap_">>, 0, 10]),
    10 = length(Made),
    {ok, {Old, 0}} = call(make, [<<"h_">>, 0, 100]),
    true = length(Old) =:= 100 orelse ct:fail("old names refused after the restart: ~p", [Old]),
    %% new ones do not
    {ok, {[], 100000}} = call(make, [<<"after_kill_">>, 0, 100000]),
    {error, {atom_limit, _}} = call(bypass, [<<"after_kill_">>, 0, 100000]),
    ?equal(Spent, py_atoms:spent()),
    check_bound(Config).

%% The application's stop and start: the count is outside it.
cap_holds_across_an_application_restart(Config) ->
    Spent = py_atoms:spent(),
    py_ct:start(?config(env, Config)),
    ok = py:register_function(echo, fun(Args) -> Args end),
    ?equal(Spent, py_atoms:spent()),
    {ok, {[], 100000}} = call(make, [<<"after_app_">>, 0, 100000]),
    {error, {atom_limit, _}} = call(bypass, [<<"after_app_">>, 0, 100000]),
    {ok, {[_, _, _], 0}} = call(make, [<<"in_cap_">>, 0, 3]),
    check_bound(Config).

%%--------------------------------------------------------------------

call(F, Args) ->
    py:call(?MOD, atom_to_binary(F), Args).

%% The bound itself: the VM's atoms grew by at most the cap since the
%% suite began, and so did the count of those made for Python. Modules that
%% common_test or rebar3 loaded meanwhile (a hook's helpers) bring atoms of
%% their own: at most their atom chunks' length, left out.
check_bound(Config) ->
    Loaded = [M || {M, _} <- code:all_loaded()] -- persistent_term:get(py_atoms_SUITE_loaded),
    Theirs = lists:sum([module_atoms(M) || M <- Loaded]),
    Up = erlang:system_info(atom_count) - ?config(count0, Config) - Theirs,
    Made = py_atoms:spent() - ?config(spent0, Config),
    ct:log("atoms up by ~b (~b more in modules loaded since: ~p), ~b made for Python",
           [Up, Theirs, Loaded, Made]),
    true = Made =< ?CAP orelse ct:fail("~b atoms made for Python, cap ~b", [Made, ?CAP]),
    true = Up =< ?CAP orelse ct:fail("the VM's atoms up by ~b, cap ~b", [Up, ?CAP]).

module_atoms(M) ->
    case code:get_object_code(M) of
        {M, Beam, _File} ->
            case beam_lib:chunks(Beam, [atoms]) of
                {ok, {M, [{atoms, Atoms}]}} -> length(Atoms);
                _ -> 0
            end;
        error -> 0
    end.


python_module() ->
    <<"import erlang\n"
      "\n"
      "def make(prefix, start, n):\n"
      "    made, refused = [], 0\n"
      "    for i in range(start, start + n):\n"
      "        try:\n"
      "            made.append(erlang.Atom(f'{prefix}{i}'))\n"
      "        except erlang.AtomLimitError:\n"
      "            refused += 1\n"
      "    return (made, refused)\n"
      "\n"
      "def make_one(name):\n"
      "    return erlang.Atom(name)\n"
      "\n"
      "def limit_message(name):\n"
      "    try:\n"
      "        erlang.Atom(name)\n"
      "    except erlang.AtomLimitError as e:\n"
      "        assert isinstance(e, ValueError)\n"
      "        return str(e)\n"
      "\n"
      "def atom(name, bypass):\n"
      "    return str.__new__(erlang.Atom, name) if bypass else erlang.Atom(name)\n"
      "\n"
      "def bypass(prefix, start, n):\n"
      "    return [atom(f'{prefix}{i}', True) for i in range(start, start + n)]\n"
      "\n"
      "def bypass_names(names):\n"
      "    return [atom(n, True) for n in names]\n"
      "\n"
      "def dict_keys(prefix, start, n, bypass):\n"
      "    return {atom(f'{prefix}{i}', bypass): i for i in range(start, start + n)}\n"
      "\n"
      "def send(pid, prefix, start, n, bypass):\n"
      "    erlang.send(pid, (b'sent', [atom(f'{prefix}{i}', bypass) for i in range(start, start + n)]))\n"
      "\n"
      "def state(key, prefix, start, n, bypass):\n"
      "    erlang.state_set(key, [atom(f'{prefix}{i}', bypass) for i in range(start, start + n)])\n"
      "\n"
      "def exc(prefix, i, base):\n"
      "    import builtins\n"
      "    raise type(f'{prefix}{i}', (getattr(builtins, base),), {})('boom')\n"
      "\n"
      "def callback(prefix, start, n):\n"
      "    try:\n"
      "        erlang.call('echo', [atom(f'{prefix}{i}', True) for i in range(start, start + n)])\n"
      "    except erlang.Error as e:\n"
      "        return repr(e.reason)\n"
      "    return 'no error'\n"
      "\n"
      "def callback_ok():\n"
      "    return erlang.call('echo', erlang.Atom('ok'), 1)\n"
      "\n"
      "def fake_pids(prefix, start, n):\n"
      "    pids = []\n"
      "    for i in range(start, start + n):\n"
      "        node = f'{prefix}{i}@nohost'.encode()\n"
      "        pids.append(erlang.Pid(bytes([88, 119, len(node)]) + node + bytes(12)))\n"
      "    return pids\n">>.
