-module(py_python_tests).

-include_lib("eunit/include/eunit.hrl").

is_interpreter_test() ->
    ?assert(py_python:is_interpreter("/opt/py/bin/python3.13")),
    ?assert(py_python:is_interpreter(<<"python3">>)),
    ?assertNot(py_python:is_interpreter("/opt/pyport-py311")),
    ?assertNot(py_python:is_interpreter("/usr/lib/python3.13/pyport")).

%% a pyport without its .python: nothing known, it runs as built
build_missing_test() ->
    ?assertEqual(#{}, py_python:build("/nonexistent/pyport")),
    ?assertMatch({ok, #{python := built_in, env := [], args := []}},
                 py_python:find(undefined, "/nonexistent/pyport")).

%% the build's own .python (scripts/build-pyport.sh) names what it was built for
build_of_priv_pyport_test() ->
    {ok, #{exe := Exe}} = py_port_exe:launch(undefined),
    ?assertMatch(#{version := "3." ++ _, soname := "libpython3." ++ _, libdir := _, executable := _},
                 py_python:build(Exe)).

format_error_test() ->
    Tried = {no_python, #{version => "3.13", looked_for => [{built_in, "/gone/bin/python3.13"},
                                                            {{path, "python3.13"}, "python3.13"}]}},
    Text = py_python:format_error(Tried),
    ?assertNotEqual(nomatch, string:find(Text, "/gone/bin/python3.13")),
    ?assertNotEqual(nomatch, string:find(Text, "ERLANG_PYTHON_PYTHON")),
    Version = {python_version, #{python => "/usr/bin/python3.11", from => python_setting,
                                 version => "3.11", wanted => "3.13"}},
    ?assertNotEqual(nomatch, string:find(py_python:format_error(Version), "built for 3.13")),
    NoLib = {no_libpython, #{python => "/p/bin/python3.13", from => {env, "PYTHONHOME"},
                             soname => "libpython3.13.so.1.0", looked_in => ["/p/lib"]}},
    ?assertNotEqual(nomatch, string:find(py_python:format_error(NoLib), "PYTHONHOME")).
