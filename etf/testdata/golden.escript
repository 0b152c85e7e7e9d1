#!/usr/bin/env escript
%% Golden vectors for the Go codec, straight from the BEAM.
%%
%% Prints "C Name Variant Hex" for every term of the corpus in every
%% encoding the BEAM writes, then "END". Then reads "E Name Hex" lines
%% (the Go codec's encoding of what it decoded) and answers "R Name ok" if
%% binary_to_term gives a term =:= the original, "R Name bad ..." if not,
%% until "STOP".
-mode(compile).

main(_) ->
    Corpus = corpus(),
    Old = old_tags(),
    [emit(Name, T) || {Name, T} <- Corpus],
    OldTerms = [{Name, emit_old(Name, Bin)} || {Name, Bin} <- Old],
    io:put_chars("END\n"),
    check(maps:from_list(Corpus ++ OldTerms)).

emit(Name, T) ->
    Variants = [{plain, []}, {compressed, [compressed]},
                {minor0, [{minor_version, 0}]}, {minor2, [{minor_version, 2}]}],
    [line(Name, V, term_to_binary(T, Opts)) || {V, Opts} <- Variants].

%% A hand-assembled old or rare encoding: the BEAM itself must accept it,
%% and its modern encoding goes along so Go can compare the two.
emit_old(Name, Bin) ->
    T = binary_to_term(Bin),
    line(Name, old, Bin),
    line(Name, plain, term_to_binary(T)),
    T.

line(Name, Variant, Bin) ->
    io:format("C ~s ~s ~s~n", [Name, Variant, binary:encode_hex(Bin)]).

check(Terms) ->
    case io:get_line("") of
        eof -> ok;
        "STOP\n" -> ok;
        Line ->
            ["E", Name, Hex] = string:lexemes(string:trim(Line), " "),
            Expected = maps:get(list_to_binary(Name), Terms),
            Verdict = try binary_to_term(binary:decode_hex(list_to_binary(Hex))) of
                          Got when Got =:= Expected -> "ok";
                          Got -> io_lib:format("bad got ~0p", [Got])
                      catch C:R -> io_lib:format("bad ~p:~p", [C, R])
                      end,
            io:format("R ~s ~s~n", [Name, Verdict]),
            check(Terms)
    end.

corpus() ->
    Port = hd(erlang:ports()),
    [{<<"zero">>, 0}, {<<"minus_one">>, -1}, {<<"byte">>, 255}, {<<"b256">>, 256},
     {<<"two27">>, 1 bsl 27}, {<<"two31">>, 1 bsl 31}, {<<"neg_two31">>, -(1 bsl 31)},
     {<<"neg_two31m1">>, -(1 bsl 31) - 1},
     {<<"max_int64">>, (1 bsl 63) - 1}, {<<"two63">>, 1 bsl 63}, {<<"min_int64">>, -(1 bsl 63)},
     {<<"two64">>, 1 bsl 64}, {<<"neg_two100">>, -(1 bsl 100)},
     {<<"huge">>, 1 bsl 3000}, {<<"neg_huge">>, -(1 bsl 3000) + 7},
     {<<"neg_zero">>, -0.0}, {<<"f1e308">>, 1.0e308}, {<<"pi">>, 3.141592653589793},
     {<<"denormal">>, 5.0e-324}, {<<"float_one">>, 1.0}, {<<"neg_float">>, -2.5e-10},
     {<<"a_ok">>, ok}, {<<"a_true">>, true}, {<<"a_empty">>, ''}, {<<"a_latin">>, 'café'},
     {<<"a_unicode">>, 'ünï😀'}, {<<"a_long">>, list_to_atom(lists:duplicate(255, $x))},
     {<<"a_long_unicode">>, list_to_atom(lists:duplicate(255, 16#1F600))},
     {<<"bin_empty">>, <<>>}, {<<"bin_hello">>, <<"hello">>}, {<<"bin_not_utf8">>, <<255, 0, 1>>},
     {<<"bin_1m">>, binary:copy(<<"ab">>, 1 bsl 19)},
     {<<"bits3">>, <<1:3>>}, {<<"bits9">>, <<255, 1:1>>},
     {<<"sub_binary">>, binary:part(<<"0123456789">>, 2, 5)},
     {<<"nil">>, []}, {<<"string">>, "abc"}, {<<"list_unicode">>, [256, 1000]},
     {<<"list_mixed">>, [1, a, <<"b">>, 2.0, {}]}, {<<"improper">>, [1 | 2]},
     {<<"improper2">>, [a, b | c]}, {<<"improper_bin_tail">>, [a | <<"t">>]},
     {<<"long_string">>, lists:duplicate(70000, $a)}, {<<"nested_lists">>, [[[[]]]]},
     {<<"tuple_empty">>, {}}, {<<"tuple2">>, {a, 1}},
     {<<"tuple256">>, list_to_tuple(lists:seq(1, 256))},
     {<<"map_empty">>, #{}}, {<<"map_small">>, #{a => 1, <<"b">> => [2]}},
     {<<"map_nested">>, #{k => #{k2 => #{k3 => [1, 2]}}}},
     {<<"map_term_keys">>, #{{1, 2} => x, #{a => 1} => y, [1] => z, 1.5 => f}},
     {<<"map_large">>, maps:from_list([{I, integer_to_binary(I)} || I <- lists:seq(1, 100)])},
     {<<"pid">>, self()}, {<<"pid_made">>, c:pid(0, 1234, 5)},
     {<<"ref">>, make_ref()}, {<<"alias">>, erlang:alias()}, {<<"port">>, Port},
     {<<"fun_local">>, fun(X) -> X + 1 end}, {<<"fun_closure">>, closure(Port)},
     {<<"export">>, fun lists:map/2},
     {<<"envelope">>, {make_ref(), call, 1, json, <<"dumps">>, [#{a => [1, 2, 3]}], #{indent => 2}}}].

closure(Env) -> fun() -> Env end.

old_tags() ->
    Node = <<100, 13:16, "nonode@nohost">>,                        % ATOM_EXT
    [{<<"old_small_atom">>, <<131, 115, 4, "caf", 16#e9>>},         % SMALL_ATOM_EXT, Latin-1
     {<<"old_atom_latin1">>, <<131, 100, 3:16, 16#e9, 16#e8, $x>>},  % ATOM_EXT, Latin-1
     {<<"old_pid">>, <<131, 103, Node/binary, 77:32, 3:32, 0>>},    % PID_EXT
     {<<"old_port">>, <<131, 102, Node/binary, 9:32, 0>>},           % PORT_EXT
     {<<"new_port">>, <<131, 89, Node/binary, 9:32, 0:32>>},         % NEW_PORT_EXT
     {<<"old_ref">>, <<131, 101, Node/binary, 5:32, 0>>},            % REFERENCE_EXT
     {<<"new_ref">>, <<131, 114, 3:16, Node/binary, 0, 1:32, 2:32, 3:32>>}, % NEW_REFERENCE_EXT
     {<<"big_small_value">>, <<131, 110, 2, 1, 5, 0>>},              % SMALL_BIG_EXT for -5
     {<<"large_big">>, <<131, 111, 3:32, 0, 1, 2, 3>>},               % LARGE_BIG_EXT, small value
     {<<"string_ext">>, <<131, 107, 3:16, 1, 2, 3>>},                 % STRING_EXT
     {<<"list_string_tail">>, <<131, 108, 1:32, 97, 7, 107, 2:16, 8, 9>>}, % [7 | "\b\t"]
     {<<"v4_port">>, <<131, 120, Node/binary, 9:64, 0:32>>}]. % V4_PORT_EXT (OTP 25 takes 32-bit ids only)
