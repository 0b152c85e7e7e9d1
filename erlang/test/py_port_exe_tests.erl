-module(py_port_exe_tests).

-include_lib("eunit/include/eunit.hrl").
-include_lib("kernel/include/file.hrl").

path_is_absolute_test() ->
    Path = py_port_exe:path(),
    ?assertEqual(Path, filename:absname(Path)),
    ?assertEqual("pyport", filename:basename(Path)).

path_is_an_executable_file_test() ->
    {ok, #file_info{type = Type, mode = Mode}} = file:read_file_info(py_port_exe:path()),
    ?assertEqual(regular, Type),
    ?assertNotEqual(0, Mode band 8#111).

open_echo_test() ->
    Port = py_port_exe:open(["--echo"]),
    try
        true = port_command(Port, term_to_binary({ping, self()})),
        Self = self(),
        receive
            {Port, {data, Data}} -> ?assertEqual({ping, Self}, binary_to_term(Data))
        after 5000 ->
            ?assert(false)
        end
    after
        port_close(Port)
    end.

%% pyport --info answers from the build, without an application; the answer
%% is kept, so a second ask runs nothing.
build_info_test() ->
    {ok, #{mode := Mode, version := Version, subinterp_supported := Supported,
           slot_min := SlotMin}} = Info = py_port_exe:build_info(),
    ?assert(lists:member(Mode, [subinterp, multi_executor, free_threaded])),
    ?assertEqual(Mode =:= subinterp, Supported),
    ?assert(is_binary(Version) andalso byte_size(Version) > 0),
    ?assert(is_integer(SlotMin) andalso SlotMin > 0),
    ?assertEqual(Info, py_port_exe:build_info()),
    receive Msg -> ?assertEqual(no_message, Msg) after 0 -> ok end.

%% a missing executable, or one that exits without an answer, is an error
build_info_errors_test() ->
    ?assertMatch({error, {no_pyport, "/nonexistent/pyport", _}},
                 py_port_exe:build_info("/nonexistent/pyport")),
    ?assertMatch({error, {info_exit, "/bin/false", _}}, py_port_exe:build_info("/bin/false")).
