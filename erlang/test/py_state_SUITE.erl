%% API.md section 7, shared state: one store of key -> term, owned by the
%% sidecar, seen by every context's Python and by Erlang. Real BEAM -> port
%% -> Python.
-module(py_state_SUITE).

-include_lib("common_test/include/ct.hrl").
-include("py_ct.hrl").

-export([all/0, init_per_suite/1, end_per_suite/1, init_per_testcase/2, end_per_testcase/2]).
-export([api_examples/1, python_to_erlang/1, erlang_to_python/1, key_forms/1,
         shared_by_contexts/1, keys_remove_clear/1, incr_decr/1, incr_errors/1, atomic_incr/1,
         python_threads/1, large_values/1, bad_inputs/1, not_started/1,
         survives_os_exit/1, survives_kill/1, incr_during_kill/1,
         ryw_python_set/1, ryw_store/1, ryw_incr/1, keys_sorted/1, fetch_during_restart/1]).

-define(CRASH_CASES, [survives_os_exit, survives_kill, incr_during_kill, fetch_during_restart]).

all() ->
    [api_examples, python_to_erlang, erlang_to_python, key_forms, shared_by_contexts,
     keys_remove_clear, incr_decr, incr_errors, atomic_incr, python_threads, large_values,
     bad_inputs, not_started, ryw_python_set, ryw_store, ryw_incr, keys_sorted | ?CRASH_CASES].

init_per_suite(Config) ->
    py_ct:start([{num_contexts, 4}]),
    Config.

end_per_suite(_Config) ->
    py_ct:stop().

init_per_testcase(_Case, Config) ->
    ok = py:state_clear(),
    Config.

%% After every case, the mirror (py_state's table) holds what the store
%% holds. A crash case restarts the application, so that the restarts it
%% caused do not count towards the supervisor's limit for the next one.
end_per_testcase(Case, _Config) ->
    Result = mirror_matches(),
    lists:member(Case, ?CRASH_CASES) andalso py_ct:start([{num_contexts, 4}]),
    Result.

%% py:state_fetch and py:state_keys read the mirror: the store is asked
%% with its own requests.
mirror_matches() ->
    Store = [{K, element(2, {ok, _} = store_fetch(K))} || K <- lists:sort(store_keys())],
    Mirror = lists:sort(ets:tab2list(py_state_mirror)),
    case Mirror =:= Store of
        true -> ok;
        false -> {fail, {mirror_differs, #{mirror => Mirror, store => Store}}}
    end.

store_fetch(K) ->
    py_request:control(py_wire:state_fetch(K), 5000).

store_keys() ->
    py_request:control(py_wire:state_keys(), 5000).

%% Python statements in context 1, with the state functions imported.
py_exec(Code) ->
    py_exec(py:context(1), Code).

py_exec(Ctx, Code) ->
    ok = py:exec(Ctx, [<<"from erlang import state_set, state_get, state_delete, state_keys, "
                         "state_incr, state_decr\n">>, Code]).

py_eval(Code) ->
    py:eval(py:context(1), Code).

%% Every example of API.md section 7.
api_examples(_Config) ->
    ?expect(ok, py:state_store(config, #{debug => true})),
    ?expect({ok, #{debug := true}}, py:state_fetch(config)),
    ?expect({error, not_found}, py:state_fetch(missing)),
    ?expect(1, py:state_incr(hits)),
    ?expect(11, py:state_incr(hits, 10)),
    ?expect(10, py:state_decr(hits)),
    ?expect(7, py:state_decr(hits, 3)),
    ?expect([<<"config">>, <<"hits">>], py:state_keys()),
    ?expect(ok, py:state_remove(config)),
    ?expect({error, not_found}, py:state_fetch(config)),
    ?expect(ok, py:state_clear()),
    ?expect([], py:state_keys()),
    %% Python: from erlang import state_set, state_get, state_delete,
    %% state_keys, state_incr, state_decr
    py_exec(<<"state_set('greeting', 'hello')\n"
              "assert state_get('greeting') == 'hello'\n"
              "assert state_incr('n') == 1\n"
              "assert state_incr('n', 5) == 6\n"
              "assert state_decr('n') == 5\n"
              "assert state_decr('n', 2) == 3\n"
              "assert sorted(state_keys()) == ['greeting', 'n']\n"
              "state_delete('greeting')\n"
              "try:\n"
              "    state_get('greeting')\n"
              "    raise AssertionError('no KeyError')\n"
              "except KeyError:\n"
              "    pass\n">>),
    ?expect({ok, 3}, py:state_fetch(n)),
    ?expect({error, not_found}, py:state_fetch(greeting)),
    ?expect({ok, true}, py_eval(<<"__import__('erlang').state_get('n') == 3">>)).

%% A value Python stores reads in Erlang as the term it converts to.
python_to_erlang(_Config) ->
    py_exec(<<"import erlang\n"
              "state_set('str', 'héllo')\n"
              "state_set('bytes', b'\\x00\\x01')\n"
              "state_set('dict', {'a': [1, 2.5, None], 'b': (True, False)})\n"
              "state_set('int', 42)\n"
              "state_set('neg', -7)\n"
              "state_set('big', 2 ** 100)\n"
              "state_set('float', 1.5)\n"
              "state_set('atom', erlang.Atom('ok'))\n"
              "state_set('empty', [])\n"/utf8>>),
    ?expect({ok, <<"héllo"/utf8>>}, py:state_fetch(str)),
    ?expect({ok, <<0, 1>>}, py:state_fetch(bytes)),
    ?expect({ok, #{<<"a">> := [1, 2.5, none], <<"b">> := {true, false}}}, py:state_fetch(dict)),
    ?expect({ok, 42}, py:state_fetch(int)),
    ?expect({ok, -7}, py:state_fetch(neg)),
    Big = 1 bsl 100,
    ?expect({ok, Big}, py:state_fetch(big)),
    ?expect({ok, 1.5}, py:state_fetch(float)),
    ?expect({ok, ok}, py:state_fetch(atom)),
    ?expect({ok, []}, py:state_fetch(empty)),
    %% a value Python cannot convert is a TypeError, and stores nothing
    ?expect({error, {'TypeError', _}}, py_eval(<<"__import__('erlang').state_set('set', {1, 2})">>)),
    ?expect({error, not_found}, py:state_fetch(set)).

%% A term Erlang stores reads in Python as it would as an argument.
erlang_to_python(_Config) ->
    Self = self(),
    Ref = make_ref(),
    ok = py:state_store(bin, <<"text">>),
    ok = py:state_store(map, #{a => [1, 2], <<"b">> => {x, 1.5}}),
    ok = py:state_store(int, 1 bsl 40),
    ok = py:state_store(atom, hello),
    ok = py:state_store(pid, Self),
    ok = py:state_store(ref, Ref),
    ok = py:state_store(list, "abc"),
    ?expect({ok, true}, py_eval(<<"__import__('erlang').state_get('bin') == 'text'">>)),
    ?expect({ok, true}, py_eval(<<"__import__('erlang').state_get('map') == {'a': [1, 2], 'b': ('x', 1.5)}">>)),
    ?expect({ok, true}, py_eval(<<"__import__('erlang').state_get('int') == 2 ** 40">>)),
    ?expect({ok, true}, py_eval(<<"__import__('erlang').state_get('atom') == 'hello'">>)), % an atom is a str
    ?expect({ok, true}, py_eval(<<"isinstance(__import__('erlang').state_get('pid'), __import__('erlang').Pid)">>)),
    %% and back: a pid or ref that went through Python is the same term
    py_exec(<<"state_set('pid2', state_get('pid'))\nstate_set('ref2', state_get('ref'))\n"
              "state_set('map2', state_get('map'))\n">>),
    ?expect({ok, Self}, py:state_fetch(pid2)),
    ?expect({ok, Ref}, py:state_fetch(ref2)),
    %% (atoms became str in Python, so binaries now)
    ?expect({ok, #{<<"a">> := [1, 2], <<"b">> := {<<"x">>, 1.5}}}, py:state_fetch(map2)),
    ?expect({ok, Self}, py:state_fetch(pid)),
    ?expect({ok, [97, 98, 99]}, py:state_fetch(list)).

%% Atom, binary and string keys are one UTF-8 binary key, which Python's str
%% (and bytes) keys meet.
key_forms(_Config) ->
    ok = py:state_store(k, 1),
    ?expect({ok, 1}, py:state_fetch(<<"k">>)),
    ?expect({ok, 1}, py:state_fetch("k")),
    ok = py:state_store("ключ", cyrillic),
    ?expect({ok, cyrillic}, py:state_fetch(<<"ключ"/utf8>>)),
    ?expect({ok, true}, py_eval(<<"__import__('erlang').state_get('ключ') == 'cyrillic'"/utf8>>)),
    ?expect({ok, true}, py_eval(<<"__import__('erlang').state_get(b'k') == 1">>)),
    ?expect({ok, true}, py_eval(<<"__import__('erlang').state_get(__import__('erlang').Atom('k')) == 1">>)),
    py_exec(<<"state_set('from_python', 2)\n">>),
    ?expect({ok, 2}, py:state_fetch(from_python)),
    ?expect([<<"from_python">>, <<"k">>, <<"ключ"/utf8>>], py:state_keys()),
    ?expect({ok, true}, py_eval(<<"sorted(__import__('erlang').state_keys()) == ['from_python', 'k', 'ключ']"/utf8>>)).

%% What one context stores, every other one sees.
shared_by_contexts(_Config) ->
    [C1, C2, C3, C4] = [py:context(N) || N <- [1, 2, 3, 4]],
    py_exec(C1, <<"state_set('shared', {'from': 1})\n">>),
    [?expect({ok, true}, py:eval(C, <<"__import__('erlang').state_get('shared') == {'from': 1}">>))
     || C <- [C2, C3, C4]],
    py_exec(C4, <<"state_delete('shared')\n">>),
    ?expect({ok, false}, py:eval(C2, <<"'shared' in __import__('erlang').state_keys()">>)).

keys_remove_clear(_Config) ->
    ?expect([], py:state_keys()),
    [ok = py:state_store(integer_to_binary(I), I) || I <- lists:seq(1, 100)],
    ?expect(100, length(py:state_keys())),
    ?expect({ok, 100}, py_eval(<<"len(__import__('erlang').state_keys())">>)),
    ?expect(ok, py:state_remove(<<"1">>)),
    ?expect(ok, py:state_remove(<<"1">>)), % a missing key is no error
    py_exec(<<"state_delete('2')\nstate_delete('no such key')\n">>),
    ?expect(98, length(py:state_keys())),
    ?expect({error, not_found}, py:state_fetch(<<"2">>)),
    ?expect({ok, 3}, py:state_fetch(<<"3">>)),
    ?expect(ok, py:state_clear()),
    ?expect([], py:state_keys()),
    ?expect({ok, []}, py_eval(<<"__import__('erlang').state_keys()">>)).

%% incr and decr from both sides, on one counter.
incr_decr(_Config) ->
    ?expect(5, py:state_incr(c, 5)),
    ?expect({ok, 6}, py_eval(<<"__import__('erlang').state_incr('c')">>)),
    ?expect({ok, 16}, py_eval(<<"__import__('erlang').state_incr('c', 10)">>)),
    ?expect({ok, 15}, py_eval(<<"__import__('erlang').state_decr('c')">>)),
    ?expect({ok, 5}, py_eval(<<"__import__('erlang').state_decr('c', 10)">>)),
    ?expect(4, py:state_decr(c)),
    ?expect(-6, py:state_decr(c, 10)),
    ?expect(-5, py:state_incr(c)),
    ?expect({ok, -5}, py:state_fetch(c)),
    %% a missing key counts as 0, on both sides
    ?expect(-1, py:state_decr(fresh_e)),
    ?expect({ok, -3}, py_eval(<<"__import__('erlang').state_decr('fresh_p', 3)">>)),
    %% an integer stored either way counts up
    ok = py:state_store(stored, 1 bsl 40),
    ?expect({ok, 1099511627777}, py_eval(<<"__import__('erlang').state_incr('stored')">>)),
    py_exec(<<"state_set('pystored', -300)\n">>),
    ?expect(-299, py:state_incr(pystored)),
    %% negative increments
    ?expect(-301, py:state_incr(pystored, -2)),
    ?expect(-298, py:state_decr(pystored, -3)).

incr_errors(_Config) ->
    ok = py:state_store(text, <<"7">>),
    ?expect({error, {not_integer, <<"text">>}}, py:state_incr(text)),
    ?expect({error, {not_integer, <<"text">>}}, py:state_decr(text, 2)),
    ?expect({error, {'TypeError', _}}, py_eval(<<"__import__('erlang').state_incr('text')">>)),
    ok = py:state_store(float, 1.0),
    ?expect({error, {not_integer, <<"float">>}}, py:state_incr(float)),
    ?expect({error, {'TypeError', _}}, py_eval(<<"__import__('erlang').state_decr('float')">>)),
    %% the value is left alone
    ?expect({ok, <<"7">>}, py:state_fetch(text)),
    %% past 64 bits
    Max = (1 bsl 63) - 1,
    ok = py:state_store(max, Max),
    ?expect({error, {overflow, <<"max">>}}, py:state_incr(max)),
    ?expect({error, {'OverflowError', _}}, py_eval(<<"__import__('erlang').state_incr('max')">>)),
    ?expect({ok, Max}, py:state_fetch(max)),
    ok = py:state_store(huge, 1 bsl 64),
    ?expect({error, {overflow, <<"huge">>}}, py:state_incr(huge)),
    ?expect({error, {'OverflowError', _}}, py_eval(<<"__import__('erlang').state_incr('n', 2 ** 64)">>)),
    ?expect({error, {'TypeError', _}}, py_eval(<<"__import__('erlang').state_incr('n', 'x')">>)),
    ?expect({error, {'TypeError', _}}, py_eval(<<"__import__('erlang').state_incr('n', 1.5)">>)),
    ?expect({error, not_found}, py:state_fetch(n)).

%% 4 contexts incr in Python while Erlang incrs too: no update is lost.
atomic_incr(_Config) ->
    Self = self(),
    PyWorkers = [spawn_link(fun() ->
                                    Ctx = py:context(N),
                                    [py_exec(Ctx, <<"for _ in range(10):\n    state_incr('atomic')\n">>)
                                     || _ <- lists:seq(1, 100)],
                                    Self ! {done, self()}
                            end) || N <- [1, 2, 3, 4]],
    ErlWorker = spawn_link(fun() ->
                                   [true = is_integer(py:state_incr(atomic)) || _ <- lists:seq(1, 1000)],
                                   Self ! {done, self()}
                           end),
    [receive {done, P} -> ok after 120000 -> ct:fail("worker ~p did not finish", [P]) end
     || P <- [ErlWorker | PyWorkers]],
    ?expect({ok, 5000}, py:state_fetch(atomic)),
    %% and the same with decr: back to 0
    DecWorkers = [spawn_link(fun() ->
                                     py_exec(py:context(N), <<"for _ in range(1000):\n    state_decr('atomic')\n">>),
                                     Self ! {done, self()}
                             end) || N <- [1, 2, 3, 4]]
        ++ [spawn_link(fun() ->
                               [true = is_integer(py:state_decr(atomic)) || _ <- lists:seq(1, 1000)],
                               Self ! {done, self()}
                       end)],
    [receive {done, P} -> ok after 120000 -> ct:fail("worker ~p did not finish", [P]) end
     || P <- DecWorkers],
    ?expect({ok, 0}, py:state_fetch(atomic)).

%% Python threads other than the context's own use the store too.
python_threads(_Config) ->
    py_exec(<<"import threading, erlang\n"
              "def work(i):\n"
              "    for _ in range(100):\n"
              "        state_incr('threads')\n"
              "    state_set(f'thread{i}', (erlang.Atom('done'), i))\n"
              "ts = [threading.Thread(target=work, args=(i,)) for i in range(4)]\n"
              "for t in ts: t.start()\n"
              "for t in ts: t.join()\n">>),
    ?expect({ok, 400}, py:state_fetch(threads)),
    ?expect({ok, {done, 3}}, py:state_fetch(thread3)).

%% 1 MB values both ways.
large_values(_Config) ->
    Big = rand:bytes(1 bsl 20),
    ok = py:state_store(big, Big),
    ?expect({ok, Big}, py:state_fetch(big)),
    ?expect({ok, 1048576}, py_eval(<<"len(__import__('erlang').state_get('big'))">>)),
    py_exec(<<"state_set('big2', state_get('big')[::-1])\n">>),
    Reversed = list_to_binary(lists:reverse(binary_to_list(Big))),
    ?expect({ok, Reversed}, py:state_fetch(big2)),
    py_exec(<<"state_set('list', list(range(100000)))\n">>),
    Seq = lists:seq(0, 99999),
    ?expect({ok, Seq}, py:state_fetch(list)),
    %% replaced and removed: the store frees them (no assertion on memory)
    ok = py:state_store(big, small),
    ?expect({ok, small}, py:state_fetch(big)),
    ok = py:state_clear().

bad_inputs(_Config) ->
    ?expect({error, {badarg, _}}, py:state_store({a, tuple}, 1)),
    ?expect({error, {badarg, _}}, py:state_fetch(42)),
    ?expect({error, {badarg, _}}, py:state_remove([foo])),
    ?expect({error, {badarg, _}}, py:state_fetch([16#110000])),
    ?expect({error, {badarg, _}}, py:state_incr({k})),
    ?expect({error, {badarg, _}}, py:state_incr(k, 1.5)),
    ?expect({error, {badarg, _}}, py:state_incr(k, one)),
    ?expect({error, {badarg, _}}, py:state_incr(k, 1 bsl 63)),
    ?expect({error, {badarg, _}}, py:state_decr(k, -(1 bsl 63))),
    ?expect({error, {badarg, _}}, py:state_decr(k, <<"1">>)),
    ?expect(-9223372036854775807, py:state_decr(k, (1 bsl 63) - 1)),
    ?expect({error, not_found}, py:state_fetch(nothing)),
    %% Python: keys must be str or bytes
    ?expect({error, {'TypeError', _}}, py_eval(<<"__import__('erlang').state_get(1)">>)),
    ?expect({error, {'TypeError', _}}, py_eval(<<"__import__('erlang').state_set(None, 1)">>)),
    ?expect({error, {'TypeError', _}}, py_eval(<<"__import__('erlang').state_set('k')">>)),
    ?expect({error, {'TypeError', _}}, py_eval(<<"__import__('erlang').state_incr()">>)),
    ?expect({error, {'KeyError', _}}, py_eval(<<"__import__('erlang').state_get('nothing')">>)),
    %% everything still works
    ?expect(ok, py:state_store(k, 1)),
    ?expect({ok, 1}, py:state_fetch(k)).

%% Without the application: an error, not a crash.
not_started(_Config) ->
    py_ct:stop(),
    try
        ?expect({error, not_started}, py:state_store(k, 1)),
        ?expect({error, not_started}, py:state_fetch(k)),
        ?expect({error, not_started}, py:state_remove(k)),
        ?expect({error, not_started}, py:state_keys()),
        ?expect({error, not_started}, py:state_clear()),
        ?expect({error, not_started}, py:state_incr(k)),
        ?expect({error, not_started}, py:state_decr(k, 2)),
        ?expect({error, {badarg, _}}, py:state_fetch({k}))
    after
        py_ct:start([{num_contexts, 4}])
    end.

%%--------------------------------------------------------------------
%% The store outlives the sidecar (py_state mirrors it, py_sidecar replays it)

%% Mutations of every kind, from Erlang and from Python.
fill(Tag) ->
    K = fun(Name) -> <<Tag/binary, "_", Name/binary>> end,
    ok = py:state_store(K(<<"junk">>), 1),
    ok = py:state_clear(),
    ok = py:state_store(K(<<"erl_map">>), #{a => [1, 2.5], b => {x, <<"y">>}}),
    ok = py:state_store(K(<<"erl_gone">>), gone),
    ok = py:state_remove(K(<<"erl_gone">>)),
    ?expect(5, py:state_incr(K(<<"erl_n">>), 5)),
    ?expect(3, py:state_decr(K(<<"erl_n">>), 2)),
    ok = py:state_store(K(<<"erl_big">>), 1 bsl 70),
    ok = py:state_store(K(<<"erl_int">>), -(1 bsl 40)),
    ?expect(-(1 bsl 40) + 1, py:state_incr(K(<<"erl_int">>), 1)),
    py_exec(<<"p = '", Tag/binary, "_'\n"
              "state_set(p + 'py_tuple', (1, 'x', None))\n"
              "for _ in range(10): state_incr(p + 'py_n')\n"
              "state_decr(p + 'py_n', 3)\n"
              "state_set(p + 'py_gone', 1)\n"
              "state_delete(p + 'py_gone')\n"
              "state_set(p + 'py_float', 2.5)\n"
              "state_set(p + 'py_big', -2 ** 63)\n"
              "state_set(p + 'py_replaced', 'old')\n"
              "state_set(p + 'py_replaced', [1, 2])\n">>),
    lists:sort([K(N) || N <- [<<"erl_map">>, <<"erl_n">>, <<"erl_big">>, <<"erl_int">>, <<"py_tuple">>,
                              <<"py_n">>, <<"py_float">>, <<"py_big">>, <<"py_replaced">>]]).

check_filled(Tag, Keys) ->
    K = fun(Name) -> <<Tag/binary, "_", Name/binary>> end,
    ?expect({ok, #{a := [1, 2.5], b := {x, <<"y">>}}}, py:state_fetch(K(<<"erl_map">>))),
    ?expect({ok, 3}, py:state_fetch(K(<<"erl_n">>))),
    Big = 1 bsl 70,
    ?expect({ok, Big}, py:state_fetch(K(<<"erl_big">>))),
    Int = -(1 bsl 40) + 1,
    ?expect({ok, Int}, py:state_fetch(K(<<"erl_int">>))),
    ?expect({ok, {1, <<"x">>, none}}, py:state_fetch(K(<<"py_tuple">>))),
    ?expect({ok, 7}, py:state_fetch(K(<<"py_n">>))),
    ?expect({ok, 2.5}, py:state_fetch(K(<<"py_float">>))),
    Min = -(1 bsl 63),
    ?expect({ok, Min}, py:state_fetch(K(<<"py_big">>))),
    ?expect({ok, [1, 2]}, py:state_fetch(K(<<"py_replaced">>))),
    ?expect({error, not_found}, py:state_fetch(K(<<"erl_gone">>))),
    ?expect({error, not_found}, py:state_fetch(K(<<"py_gone">>))),
    ?expect({error, not_found}, py:state_fetch(K(<<"junk">>))),
    ?expect(Keys, [Key || Key <- py:state_keys(), binary:longest_common_prefix([Key, Tag]) =:= byte_size(Tag)]),
    %% Python sees it too, and incr goes on from there, on both sides
    ?expect({ok, 8}, py_eval(<<"__import__('erlang').state_incr('", Tag/binary, "_py_n')">>)),
    ?expect({ok, true}, py_eval(<<"__import__('erlang').state_get('", Tag/binary, "_erl_map') == "
                                  "{'a': [1, 2.5], 'b': ('x', 'y')}">>)),
    ?expect(4, py:state_incr(K(<<"erl_n">>), 1)).

%% os._exit in Python: the store comes back, twice (the new sidecar
%% mirrors too).
survives_os_exit(_Config) ->
    Keys = fill(<<"exit1">>),
    Old = py_sidecar:port(),
    ?expect({error, _}, py:exec(py:context(1), <<"import os; os._exit(3)">>)),
    py_ct:wait_restarted(Old),
    check_filled(<<"exit1">>, Keys),
    ok = mirror_matches(),
    Keys2 = fill(<<"exit2">>), % clears the first set
    Old2 = py_sidecar:port(),
    ?expect({error, _}, py:exec(py:context(2), <<"import os; os._exit(3)">>)),
    py_ct:wait_restarted(Old2),
    check_filled(<<"exit2">>, Keys2),
    ?expect([], [K || K <- py:state_keys(), binary:longest_common_prefix([K, <<"exit1">>]) =:= 5]).

%% kill -9 of pyport: what it wrote to the pipe is read before its exit.
survives_kill(_Config) ->
    Keys = fill(<<"kill">>),
    Old = py_ct:kill_sidecar(),
    py_ct:wait_restarted(Old),
    check_filled(<<"kill">>, Keys),
    %% mutations made on the new sidecar survive the next kill
    py_exec(<<"state_set('after', 'second life')\n">>),
    ok = py:state_store(after_erl, 2),
    Old2 = py_ct:kill_sidecar(),
    py_ct:wait_restarted(Old2),
    ?expect({ok, <<"second life">>}, py:state_fetch('after')),
    ?expect({ok, 2}, py:state_fetch(after_erl)),
    ?expect({ok, 8}, py:state_fetch(<<"kill_py_n">>)).

%% Processes incr from Python while the sidecar is killed: the counter
%% that comes back counts every increment whose call returned ok, and at
%% most those that were in flight at the kill more (their callers got
%% python_crashed; one per process at most).
incr_during_kill(_Config) ->
    N = 8,
    Self = self(),
    Code = <<"__import__('erlang').state_incr('conc')">>,
    Workers = [spawn_link(fun() -> incr_loop(Self, py:context(I rem 4 + 1), Code, #{}) end)
               || I <- lists:seq(1, N)],
    %% every worker has done some before the kill
    [receive {warm, W} -> ok after 60000 -> ct:fail("worker ~p not warm", [W]) end || W <- Workers],
    Old = py_ct:kill_sidecar(),
    py_ct:wait_restarted(Old),
    [W ! stop || W <- Workers],
    Counts = [receive {done, W, C} -> C after 60000 -> ct:fail("worker ~p did not stop", [W]) end
              || W <- Workers],
    Sum = fun(What) -> lists:sum([maps:get(What, C, 0) || C <- Counts]) end,
    {Oks, InFlight} = {Sum(ok), Sum(python_crashed)},
    {ok, Value} = py:state_fetch(conc),
    ct:pal("~b increments returned ok, ~b python_crashed, the counter is ~b; per worker: ~p",
           [Oks, InFlight, Value, Counts]),
    ?expect(true, InFlight =< N),
    case Value >= Oks andalso Value =< Oks + InFlight of
        true -> ok;
        false -> ct:fail("counter ~b, ~b increments returned ok, ~b in flight", [Value, Oks, InFlight])
    end.

%% Counts its results by kind (ok, python_crashed, or the error's tag)
%% until told to stop; retries when overloaded (the call was not made).
incr_loop(Parent, Ctx, Code, Counts) ->
    maps:get(ok, Counts, 0) =:= 20 andalso (Parent ! {warm, self()}),
    receive
        stop -> Parent ! {done, self(), Counts}
    after 0 ->
        Kind = case py:exec(Ctx, Code) of
                   ok -> ok;
                   %% not sent: the sidecar was gone already
                   {error, {python_crashed, #{reason := restarting}}} -> not_sent;
                   {error, {python_crashed, _}} -> python_crashed;
                   {error, {overloaded, _, _}} -> overloaded;
                   {error, {Tag, _}} -> Tag;
                   {error, Tag} -> Tag
               end,
        Kind =:= ok orelse timer:sleep(1),
        incr_loop(Parent, Ctx, Code, maps:update_with(Kind, fun(C) -> C + 1 end, 1, Counts))
    end.

%%--------------------------------------------------------------------
%% Read-your-writes: py:state_fetch and py:state_keys read the mirror
%% (an ETS table), and see whatever a reply or a return made visible.

%% A value Python set (deleted, incremented) before a reply is in the
%% mirror once the reply came, whichever context, with no wait.
ryw_python_set(_Config) ->
    [begin
         Ctx = py:context(I rem 4 + 1),
         py_exec(Ctx, [<<"state_set('ryw', ">>, integer_to_binary(I), <<")\n">>]),
         ?equal({ok, I}, py:state_fetch(ryw)),
         ?equal({ok, I}, py:call(Ctx, erlang, state_get, [<<"ryw">>])),
         {ok, _} = py:call(Ctx, erlang, state_set, [<<"ryw2">>, [I, <<"x">>]]),
         ?equal({ok, [I, <<"x">>]}, py:state_fetch(ryw2)),
         {ok, N} = py:call(Ctx, erlang, state_incr, [<<"ryw_n">>, 3]),
         ?equal({ok, N}, py:state_fetch(ryw_n)),
         {ok, _} = py:call(Ctx, erlang, state_delete, [<<"ryw2">>]),
         ?equal({error, not_found}, py:state_fetch(ryw2))
     end || I <- lists:seq(1, 200)],
    ?equal({ok, 600}, py:state_fetch(ryw_n)),
    %% a value set by a Python thread before the call returned
    py_exec(<<"import threading\n"
              "t = threading.Thread(target=lambda: state_set('ryw_thread', 'from a thread'))\n"
              "t.start()\n"
              "t.join()\n">>),
    ?equal({ok, <<"from a thread">>}, py:state_fetch(ryw_thread)).

%% A value stored from Erlang is in the mirror once state_store returned
%% (and gone once state_remove or state_clear returned).
ryw_store(_Config) ->
    [begin
         ok = py:state_store(k, {I, <<"v">>}),
         ?equal({ok, {I, <<"v">>}}, py:state_fetch(k)),
         ?equal({ok, {I, <<"v">>}}, py:state_fetch(<<"k">>)),
         ?equal({ok, {I, <<"v">>}}, py:state_fetch("k")),
         ok = py:state_remove(k),
         ?equal({error, not_found}, py:state_fetch(k))
     end || I <- lists:seq(1, 200)],
    ok = py:state_store(a, 1),
    ok = py:state_store(b, 2),
    ?equal([<<"a">>, <<"b">>], py:state_keys()),
    ok = py:state_clear(),
    ?equal([], py:state_keys()),
    ?equal({error, not_found}, py:state_fetch(a)),
    %% and Python sees it
    ok = py:state_store(from_erl, #{x => 1}),
    ?equal({ok, true}, py_eval(<<"__import__('erlang').state_get('from_erl') == {'x': 1}">>)).

%% incr and decr from Erlang: the value returned is the one fetched.
ryw_incr(_Config) ->
    [begin
         N = py:state_incr(c, I),
         ?equal({ok, N}, py:state_fetch(c)),
         M = py:state_decr(c),
         ?equal({ok, M}, py:state_fetch(c))
     end || I <- lists:seq(1, 200)],
    Expected = lists:sum(lists:seq(1, 200)) - 200,
    ?equal({ok, Expected}, py:state_fetch(c)),
    %% concurrent increments from Erlang processes and Python: every one
    %% that returned is in the mirror
    Self = self(),
    Pids = [spawn_link(fun() ->
                               [py:state_incr(conc_ryw) || _ <- lists:seq(1, 50)],
                               Self ! {done, self()}
                       end) || _ <- lists:seq(1, 4)],
    {ok, _} = py:eval(py:context(2), <<"[__import__('erlang').state_incr('conc_ryw') for _ in range(100)]">>),
    [receive {done, P} -> ok after 30000 -> ct:fail("incr worker hung") end || P <- Pids],
    ?equal({ok, 300}, py:state_fetch(conc_ryw)).

%% state_keys: every key, binaries, sorted, whoever set them.
keys_sorted(_Config) ->
    py_exec(<<"for k in ['zeta', 'alpha', 'mid', 'Beta', '\\u00e9t\\u00e9']: state_set(k, 1)\n">>),
    ok = py:state_store(<<"0first">>, 1),
    ok = py:state_store(omega, 1),
    Expected = lists:sort([<<"zeta">>, <<"alpha">>, <<"mid">>, <<"Beta">>,
                           unicode:characters_to_binary([16#e9, $t, 16#e9]), <<"0first">>, <<"omega">>]),
    ?equal(Expected, py:state_keys()),
    ?equal(Expected, lists:sort(store_keys())).

%% While the sidecar restarts, reads answer at once from the mirror: what
%% the new sidecar starts with.
fetch_during_restart(_Config) ->
    ok = py:state_store(kept, <<"across">>),
    py_exec(<<"state_set('kept_py', 7)\n">>),
    Old = py_ct:kill_sidecar(),
    py_ct:wait_until(fun() -> py_lifecycle:state() =:= restarting end, 10000, "the restart"),
    Fetched = {py:state_fetch(kept), py:state_fetch(kept_py), py:state_keys()},
    Still = py_lifecycle:state(),
    ?equal({{ok, <<"across">>}, {ok, 7}, [<<"kept">>, <<"kept_py">>]}, Fetched),
    %% read while the sidecar was down (it cannot be back within so few
    %% steps: its start has a backoff and a handshake)
    ct:pal("the lifecycle after the reads: ~p", [Still]),
    py_ct:wait_restarted(Old),
    ?equal({ok, <<"across">>}, store_fetch(<<"kept">>)),
    ?equal({ok, 7}, store_fetch(<<"kept_py">>)).
