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
