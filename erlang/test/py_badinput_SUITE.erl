%% Bad input at the port: the sidecar, opened as a raw port (not through
%% py_sidecar), answers {error, {bad_request, Msg}} to a request whose id it
%% can read, drops a packet whose id it cannot with a '$log' warning, and
%% keeps serving; it never exits (docs/PROTOCOL.md).
-module(py_badinput_SUITE).

-include_lib("common_test/include/ct.hrl").
-include("py_ct.hrl").

-export([all/0, init_per_testcase/2, end_per_testcase/2]).
-export([crafted/1, fuzzed/1]).

-define(WAIT, 30000).     % a deadline for failing, not a timing check
-define(MAX_PACKET, 1 bsl 20). % above a term nested 100000 deep (600 kB)
-define(CTX, 1).
-define(SEED, {1789, 1848, 1871}).
-define(FUZZ_N, 3000).

all() ->
    [crafted, fuzzed].

init_per_testcase(_Case, Config) ->
    Port = py_port_exe:open(["--max-packet", integer_to_list(?MAX_PACKET)]),
    {ok, ok} = ask(Port, fun(Id) -> [{create_context, Id, ?CTX, auto}] end),
    [{port, Port} | Config].

end_per_testcase(_Case, Config) ->
    catch port_close(?config(port, Config)),
    ok.

%%--------------------------------------------------------------------
%% The port

ctl() -> {ctl, make_ref()}.

send(Port, Parts) ->
    true = port_command(Port, [if is_binary(P) -> P; true -> term_to_binary(P) end || P <- Parts]).

%% Sends the packet Fun(Id) and waits for the answer to Id.
ask(Port, Fun) ->
    Id = ctl(),
    send(Port, Fun(Id)),
    {ok, answer(Port, Id)}.

%% The result of the reply to Id; other packets are skipped (their replies
%% are not what this waits for). Fails if the port exits.
answer(Port, Id) ->
    receive
        {Port, {data, Bin}} ->
            %% a reply to a fuzzed request may carry an id that Go's
            %% decoder took and binary_to_term refuses (a mutated reference)
            case catch binary_to_term(Bin, [used]) of
                {Id, Used} -> binary_to_term(binary_part(Bin, Used, byte_size(Bin) - Used));
                {'$log', _} -> log_ack(Port), answer(Port, Id);
                _ -> answer(Port, Id)
            end;
        {Port, {exit_status, N}} ->
            ct:fail("the sidecar exited with status ~p", [N])
    after ?WAIT ->
        ct:fail("no answer to ~p", [Id])
    end.

%% '$log' packets are acknowledged, as py_log does, or the sidecar sends no
%% more of them.
log_ack(Port) ->
    true = port_command(Port, term_to_binary({log_ack, 1})).

%% Waits for a '$log' line {warning, sidecar, _, Text} (in a packet
%% {Dropped, [Entry]}); returns Text.
dropped(Port) ->
    receive
        {Port, {data, Bin}} ->
            case catch binary_to_term(Bin, [used]) of
                {'$log', Used} ->
                    log_ack(Port),
                    {_, Entries} = binary_to_term(binary_part(Bin, Used, byte_size(Bin) - Used)),
                    case [Text || {warning, sidecar, _, Text} <- Entries, is_binary(Text)] of
                        [Text | _] -> Text;
                        [] -> dropped(Port)
                    end;
                _ -> dropped(Port)
            end;
        {Port, {exit_status, N}} ->
            ct:fail("the sidecar exited with status ~p", [N])
    after ?WAIT ->
        ct:fail("no '$log' line for a dropped packet")
    end.

%% The sidecar still answers control requests and runs Python.
alive(Port) ->
    ?expect({ok, {ok, #{mode := _, version := _}}}, ask(Port, fun(Id) -> [{info, Id}] end)),
    Ref = make_ref(),
    send(Port, [{exec, Ref, ?CTX}, {<<"x = 6 * 7">>}]),
    ?expect(ok, answer(Port, Ref)),
    Ref2 = make_ref(),
    send(Port, [{eval, Ref2, ?CTX}, {<<"x">>, #{}}]),
    ?expect({ok, 42}, answer(Port, Ref2)).

deep(0) -> [];
deep(N) -> [deep(N - 1)].

%%--------------------------------------------------------------------
%% Crafted packets

%% {Description, Packet parts (Id -> parts), Expect}: Expect is bad_request
%% (answered {error, {bad_request, _}}), {error, Name} (a Python error
%% Name, or a protocol error Name), ok, or dropped (no id: a '$log' line).
crafted_cases() ->
    Deep = deep(100000),
    Valid = fun(Id) -> term_to_binary({info, Id}) end,
    Zlib = term_to_binary({info, {ctl, make_ref()}, lists:duplicate(200, 7)}, [compressed]),
    BadZlib = <<(binary_part(Zlib, 0, 10))/binary, 0, 0, 0, 0, 0,
                (binary_part(Zlib, 15, byte_size(Zlib) - 15))/binary>>,
    [{"empty packet", fun(_) -> [<<>>] end, dropped},
     {"not a term", fun(_) -> [<<1, 2, 3>>] end, dropped},
     {"version byte only", fun(_) -> [<<131>>] end, dropped},
     {"truncated header", fun(Id) -> B = Valid(Id), [binary_part(B, 0, byte_size(B) - 3)] end,
      dropped},
     {"header not a tuple", fun(_) -> [hello] end, dropped},
     {"header of one element", fun(_) -> [{info}] end, dropped},
     {"id no reply address", fun(_) -> [{info, 42}] end, dropped},
     {"unknown request", fun(Id) -> [{frobnicate, Id}] end, bad_request},
     {"info with an extra element", fun(Id) -> [{info, Id, extra}] end, bad_request},
     {"call without a context", fun(Id) -> [{call, Id}] end, bad_request},
     {"create_context without a kind", fun(Id) -> [{create_context, Id, 5}] end, bad_request},
     {"create_context, context not an integer",
      fun(Id) -> [{create_context, Id, <<"x">>, auto}] end, bad_request},
     {"create_context, kind unknown", fun(Id) -> [{create_context, Id, 5, bogus}] end, bad_request},
     {"exec, context not an integer", fun(_) -> [{exec, make_ref(), <<"1">>}, {<<"1">>}] end,
      {error, unknown_context}},
     {"exec with a bad slot", fun(_) -> [{exec, make_ref(), ?CTX, bogus}, {<<"1">>}] end,
      bad_request},
     {"exec with a bad chain", fun(_) -> [{exec, make_ref(), ?CTX, none, -5}, {<<"1">>}] end,
      bad_request},
     {"exec with a ctl id", fun(Id) -> [{exec, Id, ?CTX}, {<<"1">>}] end, bad_request},
     {"state_fetch with an integer key", fun(Id) -> [{state_fetch, Id, 42}] end, bad_request},
     {"state_incr by no integer", fun(Id) -> [{state_incr, Id, <<"k">>, x}] end, bad_request},
     {"exec without a payload", fun(_) -> [{exec, make_ref(), ?CTX}] end, {error, 'ValueError'}},
     {"exec, payload not a tuple", fun(_) -> [{exec, make_ref(), ?CTX}, term_to_binary(<<"code">>)] end,
      {error, 'TypeError'}},
     {"exec, payload truncated",
      fun(_) -> B = term_to_binary({<<"x = 1">>}), [{exec, make_ref(), ?CTX}, binary_part(B, 0, 5)] end,
      {error, 'ValueError'}},
     {"call with wrong types", fun(_) -> [{call, make_ref(), ?CTX}, {1, 2, 3, 4}] end,
      {error, 'TypeError'}},
     {"over --max-packet, with a header",
      fun(_) -> [{exec, make_ref(), ?CTX}, {binary:copy(<<"#">>, ?MAX_PACKET)}] end, bad_request},
     {"over --max-packet, no header", fun(_) -> [binary:copy(<<0>>, ?MAX_PACKET + 1)] end, dropped},
     {"header nested 100000 deep after its id", fun(Id) -> [{exec, Id, Deep}] end, bad_request},
     {"header nested 100000 deep before its id", fun(Id) -> [{Deep, Id}] end, dropped},
     {"payload nested 100000 deep", fun(_) -> [{exec, make_ref(), ?CTX}, {Deep}] end,
      {error, 'RecursionError'}},
     {"payload nested 1001 deep", fun(_) -> [{eval, make_ref(), ?CTX}, {<<"1">>, #{a => deep(1001)}}] end,
      {error, 'RecursionError'}},
     {"compressed header", fun(Id) -> [term_to_binary({info, Id}, [compressed])] end, ok},
     {"bad compressed header", fun(_) -> [BadZlib] end, dropped},
     {"compressed header claiming 4 GiB", fun(_) -> [<<131, 80, 255, 255, 255, 255, 120, 156, 1, 2, 3>>] end,
      dropped},
     {"compressed payload",
      fun(_) ->
              <<131, 80, _/binary>> = C = term_to_binary({binary:copy(<<"#">>, 1000)}, [compressed]),
              [{exec, make_ref(), ?CTX}, C]
      end,
      {error, 'ValueError'}},
     {"header binary claiming 4 GiB", fun(_) -> [<<131, 104, 2, 119, 4, "info", 109, 255, 255, 255, 255, 1>>] end,
      dropped},
     {"header list claiming 4G elements", fun(Id) -> [<<131, 104, 3, 119, 4, "exec",
                                                          (binary_part(term_to_binary(Id), 1, byte_size(term_to_binary(Id)) - 1))/binary,
                                                          108, 255, 255, 255, 255, 106>>] end,
      bad_request},
     {"payload binary claiming 4 GiB",
      fun(_) -> [{exec, make_ref(), ?CTX}, <<131, 104, 1, 109, 255, 255, 255, 255, 1, 2, 3>>] end,
      {error, 'ValueError'}},
     {"payload map claiming 4G pairs",
      fun(_) -> [{eval, make_ref(), ?CTX}, <<131, 104, 2, 109, 0, 0, 0, 1, $1, 116, 255, 255, 255, 255>>] end,
      {error, 'ValueError'}},
     {"payload tuple claiming 4G elements",
      fun(_) -> [{exec, make_ref(), ?CTX}, <<131, 105, 255, 255, 255, 255, 97, 1>>] end,
      {error, 'ValueError'}}].

crafted(Config) ->
    Port = ?config(port, Config),
    alive(Port),
    [begin
         ct:log("case: ~s", [Name]),
         Id = ctl(),
         Parts = Fun(Id),
         send(Port, Parts),
         %% the id of a request made with a bare reference
         Target = case Parts of
                      [{_, Ref, _} | _] when is_reference(Ref) -> Ref;
                      [{_, Ref, _, _} | _] when is_reference(Ref) -> Ref;
                      [{_, Ref, _, _, _} | _] when is_reference(Ref) -> Ref;
                      _ -> Id
                  end,
         Got = case Expect of
                   dropped -> {dropped, dropped(Port)};
                   _ -> answer(Port, Target)
               end,
         ct:log("  -> ~tp", [Got]),
         case {Expect, Got} of
             {dropped, {dropped, _}} -> ok;
             {bad_request, {error, {bad_request, Msg}}} when is_binary(Msg) -> ok;
             {{error, E}, {error, {E, _}}} -> ok;
             {ok, {ok, _}} -> ok;
             _ -> ct:fail("~s: expected ~p, got ~tp", [Name, Expect, Got])
         end,
         alive(Port)
     end || {Name, Fun, Expect} <- crafted_cases()],
    ok.

%%--------------------------------------------------------------------
%% Fuzzed packets

%% Valid requests, as packets, to cut and mutate.
templates() ->
    [iolist_to_binary([term_to_binary({info, ctl()})]),
     iolist_to_binary([term_to_binary({exec, make_ref(), ?CTX}), term_to_binary({<<"y = 1 + 1">>})]),
     iolist_to_binary([term_to_binary({eval, make_ref(), ?CTX}),
                       term_to_binary({<<"[a, b]">>, #{a => {1, 2.5, <<"s">>}, b => [x, "str"]}})]),
     iolist_to_binary([term_to_binary({call, make_ref(), ?CTX, none}),
                       term_to_binary({<<"builtins">>, <<"len">>, [[1, 2, 3]], #{}})]),
     iolist_to_binary([term_to_binary({state_fetch, ctl(), <<"key">>})]),
     iolist_to_binary([term_to_binary({cancel, make_ref()})])].

fuzz_packet(Templates, Deep) ->
    T = lists:nth(rand:uniform(length(Templates)), Templates),
    case rand:uniform(6) of
        1 -> rand:bytes(rand:uniform(200) - 1);
        2 -> binary_part(T, 0, rand:uniform(byte_size(T)) - 1);
        3 -> mutate(T, rand:uniform(3));
        4 -> <<131, (rand:bytes(rand:uniform(50)))/binary>>;
        5 -> term_to_binary({exec, make_ref(), Deep});
        6 -> iolist_to_binary([term_to_binary({exec, make_ref(), ?CTX}), term_to_binary({Deep})])
    end.

mutate(B, 0) -> B;
mutate(B, N) ->
    P = rand:uniform(byte_size(B)) - 1,
    <<Pre:P/binary, _, Post/binary>> = B,
    mutate(<<Pre/binary, (rand:uniform(256) - 1), Post/binary>>, N - 1).

fuzzed(Config) ->
    Port = ?config(port, Config),
    ct:log("seed ~p, ~b packets", [?SEED, ?FUZZ_N]),
    _ = rand:seed(exsss, ?SEED),
    Templates = templates(),
    Deeps = [deep(1001), deep(100000)],
    lists:foreach(
      fun(I) ->
              Deep = lists:nth(rand:uniform(2), Deeps),
              send(Port, [fuzz_packet(Templates, Deep)]),
              I rem 100 =:= 0 andalso alive(Port)
      end, lists:seq(1, ?FUZZ_N)),
    alive(Port).
