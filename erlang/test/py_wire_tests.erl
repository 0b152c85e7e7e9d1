-module(py_wire_tests).

-include_lib("eunit/include/eunit.hrl").

%% A packet as the sidecar writes it: the id's term then the body's.
packet(Id, Body) ->
    <<(term_to_binary(Id))/binary, (term_to_binary(Body))/binary>>.

%% The header and payload a request packet carries.
split(IoData) ->
    Bin = iolist_to_binary(IoData),
    {Header, Used} = binary_to_term(Bin, [used]),
    {Header, binary_part(Bin, Used, byte_size(Bin) - Used)}.

%%--------------------------------------------------------------------
%% Version

protocol_version_test() ->
    ?assertEqual(4, py_wire:protocol_version()).

check_info_accepts_own_protocol_test() ->
    Info = #{mode => subinterp, version => <<"3.13">>, num_executors => 4,
             subinterp_supported => true, protocol => 4, slot_min => 65536},
    ?assertEqual(ok, py_wire:check_info(Info, "/x/pyport")).

check_info_other_protocol_test() ->
    ?assertEqual({error, {protocol_mismatch, #{sidecar => 99, library => 4,
                                               path => "/x/pyport"}}},
                 py_wire:check_info(#{protocol => 99, slot_min => 65536}, "/x/pyport")).

check_info_no_protocol_test() ->
    ?assertEqual({error, {protocol_mismatch, #{sidecar => none, library => 4,
                                               path => <<"/x/pyport">>}}},
                 py_wire:check_info(#{mode => subinterp}, <<"/x/pyport">>)).

check_info_needs_slot_min_test() ->
    [?assertMatch({error, {bad_info_reply, _}}, py_wire:check_info(Info, "p"))
     || Info <- [#{protocol => 4}, #{protocol => 4, slot_min => 0},
                 #{protocol => 4, slot_min => big}]].

format_error_names_both_versions_and_the_path_test() ->
    {error, R99} = py_wire:check_info(#{protocol => 99}, "/x/pyport"),
    Line = lists:flatten(io_lib:format("~ts", [py_wire:format_error(R99)])),
    [?assertNotEqual(nomatch, string:find(Line, S))
     || S <- ["protocol 99", "protocol 4", "/x/pyport"]],
    {error, RNone} = py_wire:check_info(#{}, "/x/pyport"),
    LineNone = lists:flatten(io_lib:format("~ts", [py_wire:format_error(RNone)])),
    [?assertNotEqual(nomatch, string:find(LineNone, S))
     || S <- ["no protocol version", "protocol 4", "/x/pyport"]].

%%--------------------------------------------------------------------
%% Requests

ids_test() ->
    A = make_ref(),
    ?assertEqual(A, py_wire:id(call, A)),
    ?assertEqual({nested, A}, py_wire:id(nested, A)),
    ?assertEqual({ctl, A}, py_wire:id(control, A)),
    ?assertEqual({cast, A}, py_wire:id(cast, A)).

op_headers_test() ->
    A = make_ref(),
    Slot = {slot, <<"/dev/shm/d/s">>, 70000},
    P = term_to_binary({<<"m">>, <<"f">>, [1], #{}}),
    Me = self(),
    ?assertEqual({{call, A, 7, none, none, Me}, P},
                 split(py_wire:packet(py_wire:op(call, 7, none, none), A, P))),
    ?assertEqual({{eval, A, 7, Slot, none, Me}, <<>>},
                 split(py_wire:packet(py_wire:op(eval, 7, Slot, none), A, <<>>))),
    ?assertEqual({{exec, {nested, A}, 7, none, 3, Me}, P},
                 split(py_wire:packet(py_wire:op(exec, 7, none, 3), {nested, A}, P))),
    ?assertEqual({{call, {nested, A}, 7, Slot, 3, Me}, <<>>},
                 split(py_wire:packet(py_wire:op(call, 7, Slot, 3), {nested, A}, <<>>))).

control_headers_test() ->
    Id = {ctl, make_ref()},
    H = fun(Request) -> {Header, <<>>} = split(py_wire:packet(Request, Id, <<>>)), Header end,
    ?assertEqual({create_context, Id, 5, auto}, H(py_wire:create_context(5, auto))),
    ?assertEqual({destroy_context, Id, 5}, H(py_wire:destroy_context(5))),
    ?assertEqual({info, Id}, H(py_wire:info())),
    ?assertEqual({state_fetch, Id, <<"k">>}, H(py_wire:state_fetch(<<"k">>))),
    ?assertEqual({state_remove, Id, <<"k">>}, H(py_wire:state_remove(<<"k">>))),
    ?assertEqual({state_keys, Id}, H(py_wire:state_keys())),
    ?assertEqual({state_clear, Id}, H(py_wire:state_clear())),
    ?assertEqual({state_incr, Id, <<"k">>, -2}, H(py_wire:state_incr(<<"k">>, -2))),
    ?assertEqual({state_load, Id}, H(py_wire:state_load())).

payload_follows_header_test() ->
    Id = {ctl, make_ref()},
    V = term_to_binary(#{a => 1}),
    ?assertEqual({{state_store, Id, <<"k">>}, V},
                 split(py_wire:packet(py_wire:state_store(<<"k">>), Id, V))),
    Snap = term_to_binary([{<<"k">>, 1}]),
    ?assertEqual({{state_load, Id}, Snap},
                 split(py_wire:packet(py_wire:state_load(), Id, [Snap]))).

cancel_test() ->
    A = make_ref(),
    ?assertEqual({cancel, A}, binary_to_term(py_wire:cancel(A))),
    ?assertEqual({cancel, {nested, A}}, binary_to_term(py_wire:cancel({nested, A}))).

cb_reply_test() ->
    ?assertEqual({{cb_reply, 4, 9}, term_to_binary({ok, [1, 2]})},
                 split(py_wire:cb_reply(4, 9, {ok, [1, 2]}))),
    ?assertEqual({{cb_reply, 4, 9}, term_to_binary({error, {error, badarg}})},
                 split(py_wire:cb_reply(4, 9, {error, {error, badarg}}))).

send_to_a_closed_port_test() ->
    Port = open_port({spawn, "true"}, [binary]),
    true = port_close(Port),
    ?assertEqual(false, py_wire:send(Port, <<"x">>)).

%%--------------------------------------------------------------------
%% Incoming packets

call_reply_test() ->
    A = make_ref(),
    Bin = packet(A, {ok, 42}),
    {call_reply, A, Body} = py_wire:decode(Bin),
    ?assertEqual(term_to_binary({ok, 42}), Body),
    ?assertEqual({ok, {ok, 42}}, py_wire:result(Body)).

reply_body_is_a_sub_binary_test() ->
    A = make_ref(),
    Big = binary:copy(<<"x">>, 100000),
    Bin = packet(A, {ok, Big}),
    {call_reply, A, Body} = py_wire:decode(Bin),
    %% no copy: the body shares the packet's bytes
    ?assertEqual(binary:referenced_byte_size(Bin), binary:referenced_byte_size(Body)).

control_and_nested_replies_test() ->
    A = make_ref(),
    ?assertEqual({reply, A, term_to_binary(ok)}, py_wire:decode(packet({ctl, A}, ok))),
    ?assertEqual({reply, A, term_to_binary({ok, 1})}, py_wire:decode(packet({nested, A}, {ok, 1}))).

cast_replies_test() ->
    A = make_ref(),
    ?assertEqual({cast_reply, A, term_to_binary({ok, 1})}, py_wire:decode(packet({cast, A}, {ok, 1}))),
    ?assertEqual({bad_packet, packet({cast, 1}, ok)}, py_wire:decode(packet({cast, 1}, ok))).

%% A cast's result is looked at, not decoded, when it is ok, in each atom
%% encoding; an error is decoded.
cast_error_test() ->
    Big = binary:copy(<<1>>, 1 bsl 20),
    ?assertEqual(none, py_wire:cast_error(term_to_binary({ok, Big}))),
    ?assertEqual(none, py_wire:cast_error(term_to_binary(ok))),
    ?assertEqual(none, py_wire:cast_error(<<131, 104, 2, 118, 0, 2, "ok", 97, 1>>)),
    ?assertEqual(none, py_wire:cast_error(<<131, 104, 2, 100, 0, 2, "ok", 97, 1>>)),
    %% not decoded: the rest may even be no term
    ?assertEqual(none, py_wire:cast_error(<<131, 104, 2, 119, 2, "ok", 255>>)),
    ?assertEqual({error, {'ZeroDivisionError', <<"division by zero">>}},
                 py_wire:cast_error(term_to_binary({error, {'ZeroDivisionError', <<"division by zero">>}}))),
    ?assertEqual({error, {bad_reply, 3}}, py_wire:cast_error(<<1, 2, 3>>)),
    ?assertEqual(none, py_wire:cast_error(term_to_binary([1, 2]))).

result_in_slot_test() ->
    A = make_ref(),
    Bin = <<(term_to_binary(A))/binary, 0, 123456:64>>,
    {call_reply, A, Body} = py_wire:decode(Bin),
    ?assertEqual({slot, 123456}, py_wire:result(Body)),
    ?assertEqual(error, py_wire:result(<<"not a term">>)),
    ?assertEqual(error, py_wire:result(<<>>)).

log_test() ->
    Me = self(),
    Entries = [{info, 3, Me, <<"Traceback">>}, {warning, sidecar, undefined, <<"x">>}],
    Body = term_to_binary({[{info, 2}], Entries}),
    ?assertEqual({log, Body}, py_wire:decode(packet('$log', {[{info, 2}], Entries}))),
    ?assertEqual({ok, [{info, 2}], Entries}, py_wire:log_entries(Body)),
    %% entries that are no {Level, Ctx, Caller, Text} are left out, and
    %% counts that are no {Level, N}
    ?assertEqual({ok, [{debug, 1}], [{notice, 1, undefined, <<"ok">>}]},
                 py_wire:log_entries(term_to_binary(
                                       {[{debug, 1}, {loud, 2}, {info, 0}, x],
                                        [{info, 3}, {loud, 1, undefined, <<"x">>},
                                         {"info", 1, undefined, <<"x">>},
                                         {info, 1, undefined, "a string"},
                                         {notice, 1, undefined, <<"ok">>}]}))),
    [?assertEqual(error, py_wire:log_entries(B))
     || B <- [<<"junk">>, term_to_binary({info, 3, <<"x">>}), term_to_binary({1, []}),
              term_to_binary({[], not_a_list})]],
    ?assertEqual({log_ack, 2}, binary_to_term(py_wire:log_ack(2))),
    ?assertEqual({send_ack, 16}, binary_to_term(py_wire:send_ack(16))).

state_test() ->
    Ops = [{set, <<"k">>, 1}, {delete, <<"j">>}, clear],
    ?assertEqual({state, Ops}, py_wire:decode(packet('$state', Ops))).

exit_test() ->
    ?assertEqual({exit, {stuck, 3, 2000}}, py_wire:decode(packet('$exit', {stuck, 3, 2000}))).

send_test() ->
    Self = self(),
    ?assertEqual({send, Self, {hello, 1}}, py_wire:decode(packet('$send', {Self, {hello, 1}}))),
    ?assertEqual({send, some_name, x}, py_wire:decode(packet('$send', {some_name, x}))),
    ?assertEqual({sends, [{Self, 1}, {Self, 2}]}, py_wire:decode(packet('$send', [{Self, 1}, {Self, 2}]))),
    %% unreadable, but a '$send' still (its credit comes back)
    [?assertEqual({bad_send, B}, py_wire:decode(B))
     || B <- [packet('$send', {only_dest}), <<(term_to_binary('$send'))/binary>>]].

callback_test() ->
    Body = {4, 12, <<"add">>, [1, 2]},
    ?assertEqual({callback, 17, term_to_binary(Body)},
                 py_wire:decode(packet({'$cb', 17}, Body))).

bad_packets_test() ->
    Bad = [<<>>,
           <<"not a term">>,
           <<131>>,
           %% an id cut short
           binary:part(term_to_binary(make_ref()), 0, 5),
           %% ids that route nowhere
           packet(self(), ok),
           packet(42, ok),
           packet({ctl, not_a_ref}, ok),
           packet({other, make_ref()}, ok),
           packet('$unknown', ok),
           %% bodies that cannot be read or are not of their kind
           <<(term_to_binary('$state'))/binary, "junk">>,
           packet('$state', not_a_list),
           <<(term_to_binary('$exit'))/binary, 1, 2, 3>>],
    [?assertEqual({bad_packet, B}, py_wire:decode(B)) || B <- Bad],
    %% a '$send' that cannot be read is still one (its credit goes back)
    BadSends = [packet('$send', {only_dest}),
                packet('$send', {{some_name, 'other@host'}, x}), % only a pid or a name
                <<(term_to_binary('$send'))/binary>>],
    [?assertEqual({bad_send, B}, py_wire:decode(B)) || B <- BadSends].

%% The body after a reply's id is never decoded by decode/1, only by the
%% caller (result/1): a broken result still reaches its caller.
broken_result_goes_to_its_caller_test() ->
    A = make_ref(),
    Bin = <<(term_to_binary(A))/binary, "garbage">>,
    ?assertEqual({call_reply, A, <<"garbage">>}, py_wire:decode(Bin)),
    ?assertEqual(error, py_wire:result(<<"garbage">>)).
