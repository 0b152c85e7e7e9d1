%% The protocol version of the handshake (docs/PROTOCOL.md, `info'): a
%% sidecar that speaks another protocol, or none, is refused with an error
%% that names both versions and its path, and the application does not start.
-module(py_protocol_SUITE).

-include_lib("common_test/include/ct.hrl").
-include("py_ct.hrl").

-export([all/0, end_per_testcase/2]).
-export([real_pyport_accepted/1, other_protocol_refused/1, no_protocol_refused/1,
         bad_state_ops_logged/1]).
-export([log/2]).

all() ->
    [real_pyport_accepted, other_protocol_refused, no_protocol_refused, bad_state_ops_logged].

end_per_testcase(_Case, _Config) ->
    _ = logger:remove_handler(?MODULE),
    py_ct:stop().

%% The pyport built from this tree speaks this library's protocol and says
%% from which size results come in the slot.
real_pyport_accepted(_Config) ->
    py_ct:start([{num_contexts, 1}]),
    {ok, Info} = py_sidecar:info(),
    ct:log("info: ~p", [Info]),
    ?equal(4, py_wire:protocol_version()),
    ?equal(py_wire:protocol_version(), maps:get(protocol, Info, none)),
    SlotMin = maps:get(slot_min, Info, none),
    ?expect(N when is_integer(N) andalso N > 0, SlotMin),
    ?equal(SlotMin, py_slot:min_size()),
    ?expect({ok, 2}, py:eval(<<"1 + 1">>)).

other_protocol_refused(Config) ->
    refused(Config, "pyport99", #{protocol => 99}, 99, "protocol 99").

%% A sidecar older than version 1 says no protocol at all.
no_protocol_refused(Config) ->
    refused(Config, "pyport_none", #{}, none, "no protocol version").

%% A '$state' packet whose ops the mirror cannot apply is logged as such (the
%% mirror may now differ), not as an unreadable packet; the owner goes on.
bad_state_ops_logged(_Config) ->
    py_ct:start([{num_contexts, 1}]),
    ok = logger:add_handler(?MODULE, ?MODULE, #{config => #{pid => self()}}),
    Owner = whereis(py_sidecar),
    Port = py_sidecar:port(),
    Owner ! {Port, {data, <<(term_to_binary('$state'))/binary,
                            (term_to_binary([{set, <<"k">>, 1}, bogus]))/binary>>}},
    Line = receive_log_line("mirror", 5000),
    ct:log("log line: ~ts", [Line]),
    ?equal(nomatch, binary:match(Line, <<"unreadable">>)),
    %% the ops before the bad one were applied
    ?equal([{<<"k">>, 1}], py_state:snapshot()),
    Owner ! {Port, {data, <<"junk">>}},
    ?expect(<<"erlang_python: dropped an unreadable reply", _/binary>>,
            receive_log_line("unreadable", 5000)),
    ?equal(Owner, whereis(py_sidecar)),
    ?expect({ok, 2}, py:eval(<<"1 + 1">>)).

%%--------------------------------------------------------------------

refused(Config, Name, Extra, Sidecar, Says) ->
    Dir = filename:join(?config(priv_dir, Config), Name),
    Exe = filename:join(Dir, "pyport"),
    Starts = filename:join(Dir, "starts"),
    fake_pyport(Exe, Starts, Extra),
    ok = logger:add_handler(?MODULE, ?MODULE, #{config => #{pid => self()}}),
    {error, Reason} = py_ct:try_start([{python, Exe}]),
    ct:log("refused: ~p", [Reason]),
    %% the reason, wherever the supervision tree puts it
    ?equal([#{sidecar => Sidecar, library => 4, path => Exe}],
           find_mismatch(Reason)),
    ?equal(false, lists:keymember(erlang_python, 1, application:which_applications())),
    ?equal({error, not_started}, py:eval(<<"1">>)),
    %% started once: no restart loop hides the error
    {ok, Lines} = file:read_file(Starts),
    ?equal(1, length(binary:split(Lines, <<"\n">>, [global, trim_all]))),
    %% the log line names both versions and the path
    Line = receive_log_line("protocol", 5000),
    ct:log("log line: ~ts", [Line]),
    [?expect({_, _}, binary:match(Line, unicode:characters_to_binary(S)))
     || S <- [Says, "protocol 4", Exe]].

%% An executable escript that answers `info' as a pyport would, with Extra
%% in the map, and counts its starts in the file Starts.
fake_pyport(Exe, Starts, Extra) ->
    Info = maps:merge(#{mode => subinterp, version => <<"3.13.0 (fake)">>,
                        num_executors => 4, subinterp_supported => true}, Extra),
    Script = io_lib:format(
               "#!/usr/bin/env escript~n"
               "%%! -noinput~n"
               "main(_) ->~n"
               "    ok = file:write_file(~p, <<\"start\\n\">>, [append]),~n"
               "    Port = open_port({fd, 0, 1}, [{packet, 4}, binary, eof]),~n"
               "    loop(Port).~n"
               "loop(Port) ->~n"
               "    receive~n"
               "        {Port, {data, Bin}} ->~n"
               "            {Header, _} = binary_to_term(Bin, [used]),~n"
               "            Id = element(2, Header),~n"
               "            Reply = case element(1, Header) of~n"
               "                        info -> {ok, ~p};~n"
               "                        _ -> ok~n"
               "                    end,~n"
               "            port_command(Port, [term_to_binary(Id), term_to_binary(Reply)]),~n"
               "            loop(Port);~n"
               "        {Port, eof} ->~n"
               "            halt(0)~n"
               "    end.~n", [Starts, Info]),
    ok = filelib:ensure_dir(Exe),
    ok = file:write_file(Exe, Script),
    ok = file:change_mode(Exe, 8#755).

find_mismatch({protocol_mismatch, Map}) when is_map(Map) ->
    [Map];
find_mismatch(T) when is_tuple(T) ->
    find_mismatch(tuple_to_list(T));
find_mismatch(L) when is_list(L) ->
    lists:append([find_mismatch(E) || E <- L]);
find_mismatch(_) ->
    [].

receive_log_line(Word, Timeout) ->
    receive
        {?MODULE, Line} ->
            case binary:match(Line, list_to_binary(Word)) of
                nomatch -> receive_log_line(Word, Timeout);
                _ -> Line
            end
    after Timeout ->
        ct:fail("no log line with ~p", [Word])
    end.

%% A logger handler that sends each line to the test process.
log(#{msg := Msg, meta := Meta}, #{config := #{pid := Pid}}) ->
    Text = case Msg of
               {string, S} -> S;
               {report, R} -> io_lib:format("~p", [R]);
               {Format, Args} -> io_lib:format(Format, Args)
           end,
    _ = Meta,
    Pid ! {?MODULE, unicode:characters_to_binary(Text)},
    ok.
