%% EUnit tests of py_atoms: the walker of the external term format on terms
%% of every shape, and decode/1 with and without new atoms. New atoms are
%% spelt from a fresh unique integer each run, so they do not exist before.
-module(py_atoms_tests).

-include_lib("eunit/include/eunit.hrl").

%% A name no atom has yet, and the term_to_binary of atom Name with that
%% name spliced in: term_to_binary cannot write an atom that does not exist.
fresh() ->
    iolist_to_binary(io_lib:format("py_atoms_tests_~b_~b",
                                   [erlang:unique_integer([positive]), rand:uniform(1 bsl 40)])).

%% term_to_binary(T) with every occurrence of the placeholder atom
%% 'PLACEHOLDER_ATOM_______________' replaced by the atom Name.
with_atom(T, Name) ->
    Enc = term_to_binary(T),
    Old = atom_to_binary('PLACEHOLDER_ATOM_______________'),
    OldEnc = <<119, (byte_size(Old)), Old/binary>>,
    binary:replace(Enc, [OldEnc, <<100, (byte_size(Old)):16, Old/binary>>],
                   <<119, (byte_size(Name)), Name/binary>>, [global]).

-define(P, 'PLACEHOLDER_ATOM_______________').

walker_shapes_test_() ->
    Pid = self(),
    Ref = make_ref(),
    [Port | _] = erlang:ports(),
    Fun = fun(X) -> {X, Pid} end,
    Shapes = [{?P, [?P]},
              {[1, ?P, 2.5, <<"bin">>], [?P]},
              {{a, {b, ?P}}, [a, b, ?P]},
              {#{?P => 1, k => ?P}, [k, ?P, ?P]},
              {[a | ?P], [a, ?P]},
              {"string", []},
              {1 bsl 100, []},
              {-(1 bsl 3000), []},
              {<<1:3>>, []},
              {list_to_tuple(lists:seq(1, 300)), []},
              {Pid, [node()]},
              {Ref, [node()]},
              {Port, [node()]},
              {fun lists:map/2, [lists, map]},
              {Fun, undefined}, % a local fun: its module, env...
              {{?P, [#{x => {?P}}]}, [?P, x, ?P]}],
    [?_test(check_shape(T, Expected)) || {T, Expected} <- Shapes].

check_shape(T, Expected) ->
    Names = py_atoms:atom_names(term_to_binary(T)),
    case Expected of
        undefined ->
            %% a fun: at least its module, and the node of the pid it holds
            ?assert(lists:member(<<"py_atoms_tests">>, Names)),
            ?assert(lists:member(atom_to_binary(node()), Names));
        _ ->
            ?assertEqual(lists:sort([atom_to_binary(A) || A <- Expected]), lists:sort(Names))
    end,
    %% compressed: the same names
    ?assertEqual(lists:sort(Names),
                 lists:sort(py_atoms:atom_names(term_to_binary(T, [{compressed, 9}])))).

latin1_atoms_test() ->
    %% ATOM_EXT and SMALL_ATOM_EXT are Latin-1: the names come back as UTF-8
    ?assertEqual([<<"caf", 195, 169>>], py_atoms:atom_names(<<131, 115, 4, "caf", 233>>)),
    ?assertEqual([<<"caf", 195, 169>>], py_atoms:atom_names(<<131, 100, 4:16, "caf", 233>>)),
    ?assertEqual([<<"ok">>], py_atoms:atom_names(<<131, 118, 2:16, "ok">>)).

deep_nesting_costs_no_stack_test() ->
    Deep = lists:foldl(fun(_, Acc) -> [Acc] end, ?P, lists:seq(1, 200000)),
    ?assertEqual([atom_to_binary(?P)], py_atoms:atom_names(term_to_binary(Deep))).

malformed_test_() ->
    [?_assertError(_, py_atoms:atom_names(B))
     || B <- [<<131>>, <<131, 255>>, <<131, 104, 2, 97, 1>>, <<131, 119, 5, "ab">>,
              <<131, 109, 0, 0, 0, 10, "short">>,
              <<131, 119, 2, 255, 255>>, % not UTF-8
              <<131, 100, 300:16, (binary:copy(<<"a">>, 300))/binary>>, % over 255
              <<131, 88, 97, 1>>, % a pid whose node is no atom
              <<131, 80, 0, 0, 0, 5, "notzlib">>]].

compressed_bomb_test() ->
    %% claims 10 bytes, inflates to 1 MB: refused when past the claim
    Z = zlib:compress(binary:copy(<<106>>, 1000000)),
    ?assertError(_, py_atoms:atom_names(<<131, 80, 10:32, Z/binary>>)).

list_elements_test() ->
    L = [{set, <<"k">>, 1}, {delete, <<"j">>}, clear],
    Es = py_atoms:list_elements(term_to_binary(L)),
    ?assertEqual(L, [binary_to_term(E) || E <- Es]),
    ?assertEqual([], py_atoms:list_elements(term_to_binary([]))).

existing_atoms_decode_test() ->
    [?assertEqual(T, py_atoms:decode(term_to_binary(T)))
     || T <- [ok, true, {ok, [1, 2]}, #{a => b}, self(), make_ref(), fun lists:map/2]].

non_term_is_badarg_test() ->
    ?assertError(badarg, py_atoms:decode(<<1, 2, 3>>)),
    ?assertError(badarg, py_atoms:decode(<<131, 255>>)).

new_atom_decodes_and_counts_test() ->
    Name = fresh(),
    Bin = with_atom({ok, [?P, #{?P => 1}]}, Name),
    ?assertEqual([Name], py_atoms:new_atoms(Bin)),
    Before = py_atoms:spent(),
    {ok, [Atom, Map]} = py_atoms:decode(Bin),
    ?assertEqual(Name, atom_to_binary(Atom)),
    ?assertEqual(#{Atom => 1}, Map),
    ?assertEqual(Before + 1, py_atoms:spent()),
    ?assert(lists:member(Name, py_atoms:created())),
    %% made once: decoding it again costs nothing
    ?assertEqual({ok, [Atom, Map]}, py_atoms:decode(Bin)),
    ?assertEqual(Before + 1, py_atoms:spent()).

new_atom_in_pid_node_test() ->
    Name = <<(fresh())/binary, "@host">>,
    Bin = <<131, 88, 119, (byte_size(Name)), Name/binary, 0:32, 0:32, 1:32>>,
    ?assertEqual([Name], py_atoms:new_atoms(Bin)),
    Before = py_atoms:spent(),
    Pid = py_atoms:decode(Bin),
    ?assert(is_pid(Pid)),
    ?assertEqual(Name, atom_to_binary(node(Pid))),
    ?assertEqual(Before + 1, py_atoms:spent()),
    ?assert(lists:member(Name, py_atoms:created())).

cap_test_() ->
    {setup,
     fun() ->
             Old = application:get_env(erlang_python, max_atoms),
             Old
     end,
     fun({ok, V}) -> application:set_env(erlang_python, max_atoms, V);
        (undefined) -> application:unset_env(erlang_python, max_atoms)
     end,
     fun(_) -> [?_test(cap())] end}.

cap() ->
    Spent = py_atoms:spent(),
    ok = application:set_env(erlang_python, max_atoms, Spent + 2),
    [A, B, C] = [fresh(), fresh(), fresh()],
    Count = erlang:system_info(atom_count),
    %% three new atoms, two allowed: none is made
    ?assertError({atom_limit, #{max_atoms := _, new := 3, spent := Spent}},
                 py_atoms:decode(term_to_binary_list([A, B, C]))),
    ?assertEqual(Count, erlang:system_info(atom_count)),
    ?assertEqual(Spent, py_atoms:spent()),
    %% two fit
    [_, _] = py_atoms:decode(term_to_binary_list([A, B])),
    ?assertEqual(Count + 2, erlang:system_info(atom_count)),
    ?assertEqual(Spent + 2, py_atoms:spent()),
    %% the third does not, and names already made still decode
    ?assertError({atom_limit, _}, py_atoms:decode(term_to_binary_list([C]))),
    [_, _, ok] = py_atoms:decode(term_to_binary_list([A, B, <<"ok">>])),
    ?assertEqual(Count + 2, erlang:system_info(atom_count)),
    %% the payload the sidecar gets at start-up
    {S, Created, Known} = binary_to_term(py_atoms:load_payload()),
    ?assertEqual(Spent + 2, S),
    ?assert(lists:member(A, Created) andalso lists:member(B, Created)),
    ?assert(lists:member(<<"ValueError">>, Known)).

%% term_to_binary of a list of atoms that may not exist, by hand.
term_to_binary_list(Names) ->
    iolist_to_binary([131, 108, <<(length(Names)):32>>,
                      [[119, byte_size(N), N] || N <- Names], 106]).

%% py_wire's packets past the cap (no new atom allowed while they run).
wire_test_() ->
    {setup,
     fun() ->
             Old = application:get_env(erlang_python, max_atoms),
             ok = application:set_env(erlang_python, max_atoms, py_atoms:spent()),
             Old
     end,
     fun({ok, V}) -> application:set_env(erlang_python, max_atoms, V);
        (undefined) -> application:unset_env(erlang_python, max_atoms)
     end,
     fun(_) -> [?_test(wire())] end}.

wire() ->
    Name = fresh(),
    {module, _} = code:ensure_loaded(py_wire), % its own atoms, before the count
    Count = erlang:system_info(atom_count),
    New = <<119, (byte_size(Name)), Name/binary>>,
    %% a result: {error, {atom_limit, _}} for its caller
    Ref = make_ref(),
    {call_reply, Ref, Body} = py_wire:decode(<<(term_to_binary(Ref))/binary, 131, New/binary>>),
    {ok, {error, {atom_limit, #{max_atoms := _, new := 1, names := [Name]}}}} =
        py_wire:result(Body),
    %% '$send': not sent
    Send = <<(term_to_binary('$send'))/binary, 131, 104, 2, (ops_elem(self()))/binary>>,
    {atom_limit, '$send', _} =
        py_wire:decode(<<Send/binary, New/binary>>),
    %% '$state': the op of that value is a delete, the others stay
    Ops = <<131, 108, 3:32,
            (ops_elem({set, <<"a">>, 1}))/binary,
            104, 3, (ops_elem(set))/binary, (ops_elem(<<"b">>))/binary, New/binary,
            (ops_elem(clear))/binary, 106>>,
    ?assertEqual({state_limited, [{set, <<"a">>, 1}, {delete, <<"b">>}, clear], [<<"b">>]},
                 py_wire:decode(<<(term_to_binary('$state'))/binary, Ops/binary>>)),
    %% '$log', '$exit': unreadable
    {bad_packet, _} = py_wire:decode(<<(term_to_binary('$exit'))/binary, 131, New/binary>>),
    ?assertEqual(Count, erlang:system_info(atom_count)),
    %% existing atoms as ever
    ?assertEqual({ok, {ok, true}}, py_wire:result(term_to_binary({ok, true}))).

%% A term's encoding without the version byte.
ops_elem(T) ->
    <<131, E/binary>> = term_to_binary(T),
    E.

%% A new external fun (fun M:F/A of no export) stays refused once its
%% atoms are made: the export table is never collected either.
new_export_is_refused_test() ->
    F = fresh(),
    Bin = <<131, 113, 100, 5:16, "lists", 119, (byte_size(F)), F/binary, 97, 3>>,
    ?assertError(badarg, py_atoms:decode(Bin)),
    %% an existing export decodes
    ?assertEqual(fun lists:map/2, py_atoms:decode(term_to_binary(fun lists:map/2))).

%% Bytes after the term are ignored, as binary_to_term ignores them.
trailing_bytes_test() ->
    Name = fresh(),
    [_] = py_atoms:new_atoms(<<131, 119, (byte_size(Name)), Name/binary, 1, 2, 3>>),
    ?assertEqual(1, py_atoms:decode(<<131, 97, 1, 5, 5>>)).
