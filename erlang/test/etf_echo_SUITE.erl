%% Round trips through `pyport --echo': every term the BEAM sends must come back,
%% re-encoded by the Go codec, as an equal term (`=:='); bad input must get an
%% `{etf_error, Message}' reply without killing the port.
-module(etf_echo_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").

-export([all/0, groups/0, init_per_testcase/2, end_per_testcase/2]).
-export([integers/1, floats/1, negative_zero/1, atoms/1, empty_containers/1,
         tuples/1, bit_binaries/1, lists_and_strings/1, maps/1,
         pids_refs_ports/1, funs/1, big_binary/1, compressed/1,
         nested/1, garbage_gets_etf_error/1, pipelined_requests/1,
         eof_exits_zero/1, port_close_ends_process/1]).

-define(TIMEOUT, 10000).

all() ->
    [{group, roundtrip}, garbage_gets_etf_error, pipelined_requests,
     eof_exits_zero, port_close_ends_process].

groups() ->
    [{roundtrip, [],
      [integers, floats, negative_zero, atoms, empty_containers, tuples,
       bit_binaries, lists_and_strings, maps, pids_refs_ports, funs,
       big_binary, compressed, nested]}].

init_per_testcase(_Case, Config) ->
    Port = py_port_exe:open(["--echo"]),
    [{port, Port} | Config].

end_per_testcase(_Case, Config) ->
    Port = ?config(port, Config),
    catch port_close(Port),
    ok.

%%--------------------------------------------------------------------
%% Round trips

integers(Config) ->
    check_all(Config,
              [0, 1, -1, 255, 256, -256, 2147483647, -2147483648,
               1 bsl 27, -(1 bsl 27), (1 bsl 27) - 1, -(1 bsl 27) - 1,
               1 bsl 31, -(1 bsl 31) - 1, 1 bsl 32, 1 bsl 63, (1 bsl 64) - 1,
               1 bsl 64, -(1 bsl 64), -(1 bsl 100), 1 bsl 2039, 1 bsl 2040,
               1 bsl 3000, -(1 bsl 3000)]).

floats(Config) ->
    check_all(Config,
              [0.0, 1.0, -1.0, 3.14, 1.0e308, -1.0e308, 5.0e-324,
               2.2250738585072014e-308, 1.7976931348623157e308, 0.1]).

%% -0.0 =:= 0.0 on OTP 25, so compare the bits too. The value is built at run time
%% because the compiler may fold a literal -0.0 into 0.0.
negative_zero(Config) ->
    <<NegZero/float>> = id(<<1:1, 0:63>>),
    ?assertEqual(<<1:1, 0:63>>, <<NegZero/float>>),
    Reply = roundtrip(?config(port, Config), NegZero),
    ?assert(is_float(Reply)),
    ?assertEqual(<<1:1, 0:63>>, <<Reply/float>>).

atoms(Config) ->
    check_all(Config,
              [a, true, false, undefined, '', 'hello world', 'café', 'Ünïcödé',
               'λ', '日本語', '🐍', list_to_atom(lists:duplicate(255, $a)),
               list_to_atom(lists:duplicate(255, 16#3bb)),
               list_to_atom(lists:duplicate(255, 16#1f40d))]).

empty_containers(Config) ->
    check_all(Config, [<<>>, [], #{}, {}, "", {[], <<>>, #{}, {}}]).

tuples(Config) ->
    check_all(Config,
              [{a}, {1, 2}, list_to_tuple(lists:seq(1, 255)),
               list_to_tuple(lists:seq(1, 256)),
               list_to_tuple(lists:duplicate(70000, x))]).

bit_binaries(Config) ->
    check_all(Config,
              [<<1:3>>, <<1:1>>, <<255, 7:5>>, <<0:7>>,
               <<(binary:copy(<<"ab">>, 1000))/binary, 5:4>>,
               {<<1:3>>, [<<2:2>>]}]).

lists_and_strings(Config) ->
    check_all(Config,
              ["abc", [1 | 2], [a, b | <<"tail">>], [[] | []], [1, [2, [3]]],
               lists:seq(0, 255), lists:duplicate(65535, $x),
               lists:duplicate(65536, $x), [256, 1000, -1], "caf" ++ [233],
               [1.5, a, <<"b">>, {c}], lists:seq(1, 100000)]).

maps(Config) ->
    Small = #{a => 1, <<"b">> => [2], 3 => {c}},
    Large = maps:from_list([{K, integer_to_binary(K)} || K <- lists:seq(1, 100)]),
    check_all(Config,
              [Small, Large,
               #{{a, 1} => #{#{k => v} => [1, 2]}, <<"b">> => 1.5,
                 #{} => #{[] => {}}, [1 | 2] => self()},
               #{nested => #{deeper => #{deepest => Large}}},
               maps:from_list([{{K, K}, #{K => K}} || K <- lists:seq(1, 40)])]).

pids_refs_ports(Config) ->
    Port = ?config(port, Config),
    Pid = spawn(fun() -> ok end),
    check_all(Config,
              [self(), Pid, list_to_pid("<0.1.2>"), make_ref(), make_ref(),
               Port, {self(), make_ref(), Port}, #{self() => make_ref()}]).

funs(Config) ->
    Y = 42,
    Bin = <<"captured">>,
    check_all(Config,
              [fun(X) -> X + 1 end, fun(X) -> X + Y end,
               fun() -> {Bin, self()} end, fun lists:map/2,
               fun erlang:self/0, fun ?MODULE:all/0, [fun lists:map/2, #{f => fun(Z) -> Z end}]]).

big_binary(Config) ->
    MiB = rand:bytes(1 bsl 20),
    check_all(Config,
              [MiB, {data, MiB}, binary:part(MiB, 1, 1000),
               binary:copy(<<0>>, 1 bsl 20)]).

%% term_to_binary(T, [compressed]) payloads: the port must inflate them.
compressed(Config) ->
    Port = ?config(port, Config),
    Terms = [lists:seq(1, 10000), binary:copy(<<"abc">>, 100000),
             #{list => lists:duplicate(5000, {a, b}), bin => binary:copy(<<0>>, 1 bsl 20)},
             lists:duplicate(1000, 'café'), small, 1, <<>>, {self(), make_ref()}],
    lists:foreach(
      fun(T) ->
              lists:foreach(
                fun(Opts) ->
                        Payload = term_to_binary(T, Opts),
                        check_reply(T, roundtrip_raw(Port, Payload))
                end,
                [[compressed], [{compressed, 1}], [{compressed, 9}], [{minor_version, 1}]])
      end,
      Terms).

nested(Config) ->
    Deep = lists:foldl(fun(I, Acc) -> {I, [Acc], #{k => Acc}} end, leaf, lists:seq(1, 20)),
    check_all(Config, [Deep, [[[[[[[[[[]]]]]]]]]], {{{{{{{{}}}}}}}}]).

%%--------------------------------------------------------------------
%% Robustness

garbage_gets_etf_error(Config) ->
    Port = ?config(port, Config),
    Garbage = [<<>>, <<131>>, <<1, 2, 3>>, <<131, 109, 255, 255, 255, 255>>,
               <<131, 108, 255, 255, 255, 255>>, <<131, 104, 3, 97, 1>>,
               <<131, 200>>, <<131, 80, 0, 0, 0, 10, 1, 2, 3>>,
               <<131, 80, 255, 255, 255, 255, 120, 156>>,
               <<131, 110, 255, 0>>, <<131, 111, 255, 255, 255, 255, 0>>,
               binary:copy(<<255>>, 1000)],
    lists:foreach(
      fun(Bad) ->
              case binary_to_term(roundtrip_raw(Port, Bad)) of
                  {etf_error, Msg} when is_binary(Msg) ->
                      ct:log("~w -> ~ts", [Bad, Msg]);
                  Other ->
                      ct:fail({expected_etf_error, Bad, Other})
              end,
              %% ... and the port still serves good requests.
              ?assertEqual({still, alive}, roundtrip(Port, {still, alive}))
      end,
      Garbage).

%% Several requests in flight at once come back complete and in order.
pipelined_requests(Config) ->
    Port = ?config(port, Config),
    N = 1000,
    [port_command(Port, term_to_binary({I, lists:seq(1, I rem 50)})) || I <- lists:seq(1, N)],
    lists:foreach(
      fun(I) -> ?assertEqual({I, lists:seq(1, I rem 50)}, binary_to_term(recv(Port))) end,
      lists:seq(1, N)).

%% On EOF of stdin the program exits with status 0. port_close/1 does not report
%% the exit status, so stdin is a file holding one request: the reply arrives, then
%% EOF, then {exit_status, 0}.
eof_exits_zero(Config) ->
    Term = {hello, [1, 2, 3], #{<<"k">> => 'café'}},
    Payload = term_to_binary(Term),
    File = filename:join(?config(priv_dir, Config), "request.bin"),
    ok = file:write_file(File, [<<(byte_size(Payload)):32>>, Payload]),
    Port = open_port({spawn_executable, "/bin/sh"},
                     [{packet, 4}, binary, exit_status,
                      {args, ["-c", "exec \"$0\" --echo < \"$1\"", py_port_exe:path(), File]}]),
    ?assertEqual(Term, binary_to_term(recv(Port))),
    receive
        {Port, {exit_status, Status}} -> ?assertEqual(0, Status)
    after ?TIMEOUT ->
        ct:fail(no_exit_status)
    end.

%% After port_close/1 (stdin EOF) the OS process goes away.
port_close_ends_process(Config) ->
    Port = ?config(port, Config),
    ?assertEqual(ping, roundtrip(Port, ping)),
    {os_pid, OsPid} = erlang:port_info(Port, os_pid),
    Proc = "/proc/" ++ integer_to_list(OsPid),
    ?assert(filelib:is_dir(Proc)),
    true = port_close(Port),
    wait_until(fun() -> not filelib:is_dir(Proc) end, ?TIMEOUT).

%%--------------------------------------------------------------------
%% Helpers

check_all(Config, Terms) ->
    Port = ?config(port, Config),
    lists:foreach(fun(T) -> check_reply(T, roundtrip_raw(Port, term_to_binary(T))) end, Terms).

check_reply(Term, Reply) ->
    case binary_to_term(Reply) of
        Term -> ok;
        Other -> ct:fail({mismatch, Term, Other})
    end.

roundtrip(Port, Term) ->
    binary_to_term(roundtrip_raw(Port, term_to_binary(Term))).

roundtrip_raw(Port, Payload) ->
    true = port_command(Port, Payload),
    recv(Port).

recv(Port) ->
    receive
        {Port, {data, Data}} -> Data;
        {Port, {exit_status, Status}} -> ct:fail({port_exited, Status})
    after ?TIMEOUT ->
        ct:fail(timeout)
    end.

id(X) -> X.

wait_until(Fun, Timeout) when Timeout =< 0 ->
    ?assert(Fun());
wait_until(Fun, Timeout) ->
    case Fun() of
        true -> ok;
        false ->
            timer:sleep(20),
            wait_until(Fun, Timeout - 20)
    end.
