%% API.md section 5: type conversion, both ways.
-module(py_types_SUITE).

-include_lib("common_test/include/ct.hrl").
-include("py_ct.hrl").

-export([all/0, init_per_suite/1, end_per_suite/1]).
-export([integers/1, floats/1, special_floats/1, strings/1, bytes/1, booleans/1,
         none/1, atoms/1, lists/1, tuples/1, maps/1, pids_and_refs/1, erlang_atom/1,
         kwargs_keys/1, unconvertible/1, nested/1]).

all() ->
    [integers, floats, special_floats, strings, bytes, booleans, none, atoms, lists,
     tuples, maps, pids_and_refs, erlang_atom, kwargs_keys, unconvertible, nested].

init_per_suite(Config) ->
    py_ct:start([{num_contexts, 2}]),
    Config.

end_per_suite(_Config) ->
    py_ct:stop().

%% Python's type name for an Erlang value, and the value back.
type_of(V) ->
    case py:eval(<<"type(v).__name__">>, #{v => V}) of
        {ok, Name} -> Name;
        Other -> ct:fail("type(~p): ~p", [V, Other])
    end.

back(V) ->
    py:eval(<<"v">>, #{v => V}).

roundtrip(V) ->
    ?expect({ok, V}, back(V)).

integers(_Config) ->
    Ints = [0, 1, -1, 255, 256, -256, 1 bsl 31, -(1 bsl 31), 1 bsl 63, 1 bsl 64,
            -(1 bsl 64), 1 bsl 3000, -(1 bsl 3000)],
    [begin ?expect(<<"int">>, type_of(I)), roundtrip(I) end || I <- Ints],
    ?expect({ok, 1267650600228229401496703205376}, py:eval(<<"2 ** 100">>)),
    ?expect({ok, -5}, py:eval(<<"-5">>)).

floats(_Config) ->
    [begin ?expect(<<"float">>, type_of(F)), roundtrip(F) end
     || F <- [0.0, 1.5, -2.25, 3.141592653589793, 1.0e308, 5.0e-324, 1.0e-10]],
    ?expect({ok, 0.5}, py:eval(<<"1 / 2">>)),
    ?expect({ok, 1.0e300}, py:eval(<<"1e300">>)).

special_floats(_Config) ->
    ?expect({ok, nan}, py:eval(<<"float('nan')">>)),
    ?expect({ok, infinity}, py:eval(<<"float('inf')">>)),
    ?expect({ok, neg_infinity}, py:eval(<<"float('-inf')">>)),
    ?expect({ok, [nan, infinity, neg_infinity]},
            py:eval(<<"[float('nan'), float('inf'), -float('inf')]">>)),
    ?expect({ok, infinity}, py:eval(<<"1e308 * 10">>)).

strings(_Config) ->
    ?expect(<<"str">>, type_of(<<"hello">>)),
    ?expect(<<"str">>, type_of(<<>>)),
    roundtrip(<<"hello">>),
    roundtrip(<<>>),
    roundtrip(<<"héllo wörld 日本語 🐍"/utf8>>),
    ?expect({ok, 5}, py:call(builtins, len, [<<"héllo"/utf8>>])),
    ?expect({ok, <<"HÉLLO"/utf8>>}, py:eval(<<"s.upper()">>, #{s => <<"héllo"/utf8>>})),
    ?expect({ok, <<"🐍"/utf8>>}, py:eval(<<"chr(0x1F40D)">>)),
    %% a string of Erlang (a list of integers) is a list
    ?expect(<<"list">>, type_of("abc")).

bytes(_Config) ->
    ?expect(<<"bytes">>, type_of({bytes, <<"abc">>})),
    ?expect(<<"bytes">>, type_of({bytes, <<>>})),
    ?expect(<<"bytes">>, type_of(<<255, 0, 1>>)),
    ?expect({ok, <<"abc">>}, back({bytes, <<"abc">>})),
    ?expect({ok, <<"abc">>}, py:eval(<<"b'abc'">>)),
    ?expect({ok, <<255, 0>>}, py:eval(<<"bytes([255, 0])">>)),
    Big = rand:bytes(1 bsl 20),
    ?expect({ok, Big}, back({bytes, Big})),
    ?expect({ok, 1048576}, py:call(builtins, len, [{bytes, Big}])).

booleans(_Config) ->
    ?expect(<<"bool">>, type_of(true)),
    ?expect(<<"bool">>, type_of(false)),
    roundtrip(true),
    roundtrip(false),
    ?expect({ok, true}, py:eval(<<"1 < 2">>)),
    ?expect({ok, false}, py:eval(<<"not True">>)).

none(_Config) ->
    [?expect(<<"NoneType">>, type_of(A)) || A <- [none, nil, undefined]],
    [?expect({ok, none}, back(A)) || A <- [none, nil, undefined]],
    ?expect({ok, none}, py:eval(<<"None">>)),
    ?expect({ok, true}, py:eval(<<"v is None">>, #{v => undefined})).

atoms(_Config) ->
    ?expect(<<"str">>, type_of(hello)),
    ?expect({ok, <<"hello">>}, back(hello)),
    ?expect({ok, <<"café"/utf8>>}, back('café')).

lists(_Config) ->
    ?expect(<<"list">>, type_of([])),
    ?expect(<<"list">>, type_of([1, 2, 3])),
    roundtrip([]),
    roundtrip([1, 2.5, <<"three">>, [4, [5]], true]),
    roundtrip(lists:seq(1, 10000)),
    ?expect({ok, [1, 2, 3]}, py:eval(<<"list(range(1, 4))">>)),
    ?expect({ok, 6}, py:call(builtins, sum, [[1, 2, 3]])).

tuples(_Config) ->
    ?expect(<<"tuple">>, type_of({})),
    ?expect(<<"tuple">>, type_of({1, 2})),
    roundtrip({}),
    roundtrip({1}),
    roundtrip({1, <<"a">>, {2, [3]}}),
    ?expect({ok, {1, 2}}, py:eval(<<"(1, 2)">>)),
    ?expect({ok, {1, 2, 3}}, py:call(builtins, tuple, [[1, 2, 3]])).

maps(_Config) ->
    ?expect(<<"dict">>, type_of(#{})),
    ?expect(<<"dict">>, type_of(#{a => 1})),
    ?expect({ok, #{}}, back(#{})),
    %% atom keys become str, so they come back as binaries
    ?equal({ok, #{<<"a">> => 1, <<"b">> => [2]}}, back(#{a => 1, b => [2]})),
    ?expect({ok, [<<"str">>]}, py:eval(<<"[type(k).__name__ for k in d]">>, #{d => #{a => 1}})),
    ?equal({ok, #{1 => <<"one">>, {1, 2} => <<"pair">>}},
            back(#{1 => <<"one">>, {1, 2} => <<"pair">>})),
    ?equal({ok, #{<<"x">> => #{<<"y">> => 1}}}, py:eval(<<"{'x': {'y': 1}}">>)),
    ?equal({ok, #{<<"k">> => 1}}, py:call(builtins, dict, [], #{k => 1})).

pids_and_refs(_Config) ->
    Self = self(),
    Ref = make_ref(),
    Other = spawn(fun() -> ok end),
    ?expect({ok, Self}, back(Self)),
    ?expect({ok, Ref}, back(Ref)),
    ?expect({ok, Other}, back(Other)),
    ?expect({ok, {Self, Ref}}, back({Self, Ref})),
    ?expect({ok, <<"Pid">>}, {ok, type_of(Self)}),
    ?expect({ok, <<"Ref">>}, {ok, type_of(Ref)}),
    ?expect({ok, true}, py:eval(<<"p == q">>, #{p => Self, q => Self})),
    ?expect({ok, false}, py:eval(<<"p == q">>, #{p => Self, q => Other})),
    ?expect({ok, 1}, py:eval(<<"len({p, q})">>, #{p => Self, q => Self})),
    %% values: copies are equal, hash alike, pickle, and go back as the same term
    ?expect({ok, [true, true, true, true, true]},
            py:eval(<<"(lambda copy, pickle, p, r: [copy.copy(p) == p, copy.deepcopy(r) == r,"
                      " hash(copy.deepcopy(p)) == hash(p), pickle.loads(pickle.dumps(r)) == r,"
                      " {p: 1}[copy.deepcopy(p)] == 1])(__import__('copy'), __import__('pickle'), p, r)">>,
                    #{p => Self, r => Ref})),
    ?expect({ok, {Self, Ref}},
            py:eval(<<"__import__('copy').deepcopy((p, r))">>, #{p => Self, r => Ref})).

erlang_atom(_Config) ->
    ?expect({ok, hello}, py:eval(<<"__import__('erlang').Atom('hello')">>)),
    ?expect({ok, [ok, {error, x}]},
            py:eval(<<"(lambda A: [A('ok'), (A('error'), A('x'))])(__import__('erlang').Atom)">>)).

kwargs_keys(_Config) ->
    ?equal({ok, #{<<"a">> => 1, <<"b">> => 2}},
            py:call(builtins, dict, [], #{a => 1, <<"b">> => 2})),
    ?expect({error, {badarg, {kwargs, _}}}, py:call(builtins, dict, [], #{1 => 2})).

unconvertible(_Config) ->
    {error, {'TypeError', Msg}} = py:eval(<<"{1, 2}">>),
    binary:match(Msg, <<"set">>) =/= nomatch orelse
        ct:fail("TypeError does not name the type 'set': ~ts", [Msg]),
    {error, {'TypeError', Msg2}} = py:eval(<<"object()">>),
    binary:match(Msg2, <<"object">>) =/= nomatch orelse
        ct:fail("TypeError does not name the type 'object': ~ts", [Msg2]),
    {error, {'TypeError', Msg3}} = py:eval(<<"[1, {'k': frozenset()}]">>),
    binary:match(Msg3, <<"frozenset">>) =/= nomatch orelse
        ct:fail("TypeError does not name the type 'frozenset': ~ts", [Msg3]),
    ?expect({error, {'TypeError', _}}, py:eval(<<"lambda: 1">>)),
    ?expect({error, {'TypeError', _}}, py:call(builtins, iter, [[1]])),
    %% the sidecar goes on
    ?expect({ok, 2}, py:eval(<<"1 + 1">>)).

nested(_Config) ->
    T = #{<<"list">> => [1, {2, <<"three">>}, #{<<"k">> => [true, false, none]}],
          <<"big">> => 1 bsl 200, <<"f">> => 0.25},
    roundtrip(T),
    ?expect({ok, T}, py:eval(<<"{'list': [1, (2, 'three'), {'k': [True, False, None]}], "
                                "'big': 2 ** 200, 'f': 0.25}">>)).
