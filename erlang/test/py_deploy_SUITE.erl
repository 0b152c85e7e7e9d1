%% Deployment (issue 14, docs/deployment.md): a release moved to another
%% path, with its Python moved too, finds that Python at run time; an
%% escript runs the sidecar out of its archive; what cannot be found is a
%% clear error at the application's start.
-module(py_deploy_SUITE).

-include_lib("common_test/include/ct.hrl").
-include_lib("kernel/include/file.hrl").
-include("py_ct.hrl").

-export([all/0, init_per_suite/1, end_per_suite/1, end_per_testcase/2]).
-export([release_moved/1, release_moved_env/1, venv/1, found_on_path/1, not_found/1,
         bad_python_errors/1, escript/1]).

all() ->
    [release_moved, release_moved_env, venv, found_on_path, not_found, bad_python_errors, escript].

init_per_suite(Config) ->
    _ = application:load(erlang_python),
    {ok, #{exe := Exe}} = py_port_exe:launch(undefined),
    Build = py_python:build(Exe),
    case Build of
        #{version := _, soname := _, libdir := _, executable := _} ->
            ct:log("pyport ~ts, built for ~p", [Exe, Build]),
            Dir = ?config(priv_dir, Config),
            Python = move_python(Build, filename:join(Dir, "moved-python")),
            [{pyport, Exe}, {build, Build}, {moved_python, Python} | Config];
        _ ->
            {skip, "pyport has no .python (built without scripts/build-pyport.sh)"}
    end.

end_per_suite(_Config) ->
    ok.

end_per_testcase(_Case, _Config) ->
    py_ct:stop().

%% A Python at another prefix: PREFIX/bin/python3.X, PREFIX/lib/libpython,
%% PREFIX/lib/python3.X (the standard library, lib-dynload in it), hard
%% links where the file system allows, else copies. The build's own
%% Python stays where it is, so the tests check that the moved one is what
%% the sidecar runs (sys.prefix, its mapped libpython).
move_python(#{version := V, soname := So, libdir := LibDir, executable := Exe}, To) ->
    Prefix = filename:dirname(filename:dirname(Exe)),
    Std = filename:join([Prefix, "lib", "python" ++ V]),
    ok = filelib:ensure_dir(filename:join([To, "lib", "x"])),
    ok = filelib:ensure_dir(filename:join([To, "bin", "x"])),
    Py = filename:join([To, "bin", "python" ++ V]),
    {ok, _} = file:copy(Exe, Py),
    ok = file:change_mode(Py, 8#755),
    {ok, _} = file:copy(filename:join(LibDir, So), filename:join([To, "lib", So])),
    cmd("cp -al '~ts' '~ts/lib/' 2>/dev/null || cp -a '~ts' '~ts/lib/'", [Std, To, Std, To]),
    true = filelib:is_regular(filename:join([To, "lib", "python" ++ V, "os.py"])),
    Py.

cmd(Fmt, Args) ->
    Out = os:cmd(lists:flatten(io_lib:format(Fmt, Args))),
    ct:log("~ts", [Out]),
    Out.

%% A release made with systools ($EPROOT/lib/erlang_python-Vsn, boot
%% script), moved with its Python; started in a peer node from the new path.
release_moved(Config) ->
    Python = ?config(moved_python, Config),
    {Peer, Rel} = moved_release(Config, "rel", [],
                                ["-erlang_python", "python", lists:flatten(io_lib:format("~p", [Python]))]),
    check_moved(Peer, Rel, Python),
    peer:stop(Peer).

%% The same, the interpreter named by ERLANG_PYTHON_PYTHON.
release_moved_env(Config) ->
    Python = ?config(moved_python, Config),
    {Peer, Rel} = moved_release(Config, "rel-env", [{"ERLANG_PYTHON_PYTHON", Python}], []),
    check_moved(Peer, Rel, Python),
    peer:stop(Peer).

check_moved(Peer, Rel, Python) ->
    Prefix = list_to_binary(filename:dirname(filename:dirname(Python))),
    %% the boot script started it
    ?expect({ok, []}, peer:call(Peer, application, ensure_all_started, [erlang_python], 60000)),
    ?expect({ok, 4.0}, peer:call(Peer, py, call, [math, sqrt, [16]])),
    %% the app is the moved release's, the Python the moved one
    PrivDir = peer:call(Peer, code, priv_dir, [erlang_python]),
    ?expect(true, lists:prefix(Rel, PrivDir)),
    {ok, {SysPrefix, OsFile, Maps}} =
        peer:call(Peer, py, eval,
                  [<<"(__import__('sys').prefix, __import__('os').__file__, "
                     "[l.split()[-1] for l in open('/proc/self/maps') if 'libpython' in l][:1])">>]),
    ?expect(Prefix, SysPrefix),
    ?expect(true, binary:longest_common_prefix([Prefix, OsFile]) =:= byte_size(Prefix)),
    [Lib] = Maps,
    ?expect(true, binary:longest_common_prefix([Prefix, Lib]) =:= byte_size(Prefix)),
    %% py:version() before... and with the application: the moved build's
    ?expect({ok, <<"3.", _/binary>>}, peer:call(Peer, py, version, [])).

moved_release(Config, Name, Env, Args) ->
    Dir = ?config(priv_dir, Config),
    Built = filename:join(Dir, Name ++ "-built"),
    Moved = filename:join(Dir, Name ++ "-moved"),
    {ok, Vsn} = application:get_key(erlang_python, vsn),
    App = filename:join([Built, "lib", "erlang_python-" ++ Vsn]),
    copy_app(App, ?config(pyport, Config)),
    RelDir = filename:join([Built, "releases", "1"]),
    ok = filelib:ensure_dir(filename:join(RelDir, "x")),
    Apps = [{A, element(2, {ok, _} = application:get_key(A, vsn))} || A <- [kernel, stdlib]],
    RelFile = filename:join(RelDir, "ep_deploy"),
    ok = file:write_file(RelFile ++ ".rel",
                         io_lib:format("~p.~n", [{release, {"ep_deploy", "1"},
                                                  {erts, erlang:system_info(version)},
                                                  Apps ++ [{erlang_python, Vsn}]}])),
    ?expect({ok, _, []}, systools:make_script(RelFile, [{path, [filename:join(App, "ebin")]},
                                               {outdir, RelDir}, {variables, [{"EPROOT", Built}]},
                                               silent, no_warn_sasl])),
    {ok, Script} = file:read_file(RelFile ++ ".script"),
    ?expect({_, _}, binary:match(Script, <<"\"$EPROOT/lib/erlang_python-">>)),
    ok = file:rename(Built, Moved),
    {ok, Peer, _Node} = peer:start_link(#{name => peer:random_name(Name), connection => standard_io,
                                         args => ["-boot", filename:join([Moved, "releases", "1", "ep_deploy"]),
                                                  "-boot_var", "EPROOT", Moved | Args],
                                         env => [{"ERLANG_PYTHON_PYPORT", false},
                                                 {"ERLANG_PYTHON_PYTHON", false} | Env]}),
    {Peer, Moved}.

%% lib/erlang_python-Vsn: ebin (beams, .app) and priv (pyport, pyport.python)
copy_app(App, Pyport) ->
    Ebin = filename:dirname(code:which(py)),
    ok = filelib:ensure_dir(filename:join([App, "ebin", "x"])),
    ok = filelib:ensure_dir(filename:join([App, "priv", "x"])),
    [{ok, _} = file:copy(F, filename:join([App, "ebin", filename:basename(F)]))
     || F <- filelib:wildcard(filename:join(Ebin, "*.{beam,app}"))],
    To = filename:join([App, "priv", "pyport"]),
    {ok, _} = file:copy(Pyport, To),
    ok = file:change_mode(To, 8#755),
    {ok, _} = file:copy(Pyport ++ ".python", To ++ ".python"),
    ok.

%% A venv of the moved Python: the sidecar runs in it (its site-packages)
%% with the moved base's libpython.
venv(Config) ->
    Python = ?config(moved_python, Config),
    Base = filename:dirname(filename:dirname(Python)),
    Venv = filename:join(?config(priv_dir, Config), "venv"),
    Out = cmd("'~ts' -m venv --without-pip '~ts' 2>&1 && echo venv-made", [Python, Venv]),
    case string:find(Out, "venv-made") of
        nomatch ->
            {skip, "no venv module in this Python (Debian: python3-venv)"};
        _ ->
            VenvPy = filename:join([Venv, "bin", filename:basename(Python)]),
            [Site] = filelib:wildcard(filename:join([Venv, "lib", "python*", "site-packages"])),
            ok = file:write_file(filename:join(Site, "ep_in_venv.py"), <<"WHERE = 'venv'\n">>),
            py_ct:start([{python, VenvPy}]),
            ?expect({ok, <<"venv">>}, py:eval(<<"__import__('ep_in_venv').WHERE">>)),
            {ok, {P, BP, [Lib]}} =
                py:eval(<<"(__import__('sys').prefix, __import__('sys').base_prefix, "
                          "[l.split()[-1] for l in open('/proc/self/maps') if 'libpython' in l][:1])">>),
            ?expect(true, P =:= list_to_binary(Venv)),
            ?expect(true, BP =:= list_to_binary(Base)),
            ?expect(true, lists:prefix(Base, binary_to_list(Lib)))
    end.

%% A pyport whose build's Python is gone (its .python names a missing one):
%% found as python3.X on PATH, the moved one.
found_on_path(Config) ->
    Exe = gone_build(Config, "gone"),
    Python = ?config(moved_python, Config),
    with_env([{"PATH", filename:dirname(Python)}, {"ERLANG_PYTHON_PYTHON", false},
              {"PYTHONHOME", false}],
             fun() ->
                     {ok, #{python := Found, args := Args, env := Env}} = py_python:find(undefined, Exe),
                     ?expect(Python, Found),
                     ?expect(["--python-executable", Python], Args),
                     {_, LibPath} = lists:keyfind("LD_LIBRARY_PATH", 1, Env),
                     ?expect(true, lists:prefix(filename:join(filename:dirname(filename:dirname(Python)), "lib"), LibPath)),
                     %% and the application runs it
                     py_ct:start([{python, Exe}]),
                     {ok, Prefix} = py:eval(<<"__import__('sys').prefix">>),
                     ?expect(Prefix, list_to_binary(filename:dirname(filename:dirname(Python))))
             end).

%% Nothing to be found: the start says what it looked for.
not_found(Config) ->
    Exe = gone_build(Config, "none"),
    Empty = filename:join(?config(priv_dir, Config), "empty-path"),
    ok = filelib:ensure_dir(filename:join(Empty, "x")),
    with_env([{"PATH", Empty}, {"ERLANG_PYTHON_PYTHON", false}, {"PYTHONHOME", false}],
             fun() ->
                     #{version := V} = ?config(build, Config),
                     {error, {erlang_python, {Reason, _}}} = py_ct:try_start([{python, Exe}]),
                     ct:log("~p~n~ts", [Reason, py_python:format_error(Reason)]),
                     {no_python, #{looked_for := Tried, version := V}} = Reason,
                     ?expect([built_in, {path, "python" ++ V}, {path, "python3"}],
                             [S || {S, _} <- Tried])
             end).

%% The build's pyport in a directory of its own, with a .python whose
%% interpreter and libdir are gone.
gone_build(Config, Name) ->
    Dir = filename:join(?config(priv_dir, Config), Name),
    ok = filelib:ensure_dir(filename:join(Dir, "x")),
    Exe = filename:join(Dir, "pyport"),
    {ok, _} = file:copy(?config(pyport, Config), Exe),
    ok = file:change_mode(Exe, 8#755),
    #{version := V, soname := So} = ?config(build, Config),
    ok = file:write_file(Exe ++ ".python",
                         io_lib:format("~p.~n~p.~n~p.~n~p.~n",
                                       [{version, V}, {soname, So}, {libdir, "/nonexistent/lib"},
                                        {executable, "/nonexistent/bin/python" ++ V}])),
    Exe.

%% A named interpreter that does not fit is an error, never passed over.
bad_python_errors(Config) ->
    #{version := V} = ?config(build, Config),
    Missing = "/nonexistent/bin/python" ++ V,
    ?expect({error, {erlang_python, {{no_python, #{python := Missing, from := python_setting,
                                                   reason := enoent}}, _}}},
            py_ct:try_start([{python, Missing}])),
    with_env([{"ERLANG_PYTHON_PYTHON", Missing}],
             fun() ->
                     ?expect({error, {erlang_python, {{no_python, #{from := {env, "ERLANG_PYTHON_PYTHON"}}}, _}}},
                             py_ct:try_start([]))
             end),
    with_env([{"PYTHONHOME", "/nonexistent"}],
             fun() ->
                     ?expect({error, {erlang_python, {{no_python, #{python := Missing,
                                                                    from := {env, "PYTHONHOME"}}}, _}}},
                             py_ct:try_start([]))
             end),
    %% another version than the build's
    %% (real interpreters: a pyenv shim of a version not chosen does not run)
    Pyenv = filename:join([os:getenv("HOME", "/root"), ".pyenv", "versions", "3.1*", "bin", "python3.1?"]),
    Other = hd([P || P <- ["/usr/bin/python3.11" | filelib:wildcard(Pyenv)],
                     filelib:is_regular(P), not lists:suffix(V, P)] ++ [none]),
    case Other of
        none ->
            ok;
        _ ->
            {error, {erlang_python, {{python_version, #{version := Found, wanted := V}}, _}}} =
                py_ct:try_start([{python, Other}]),
            ?expect(true, Found =/= V)
    end,
    %% and the sidecar started anyway by another path (start_sidecar) says the same
    py_ct:start([]),
    ?expect({error, _}, erlang_python:start_sidecar(bad_py, #{python => Missing})),
    ?expect({ok, 4.0}, py:call(math, sqrt, [16])).

with_env(Vars, Fun) ->
    Old = [{K, os:getenv(K)} || {K, _} <- Vars],
    [set_env(K, V) || {K, V} <- Vars],
    try Fun() after [set_env(K, V) || {K, V} <- Old] end.

set_env(K, false) -> os:unsetenv(K);
set_env(K, V) -> os:putenv(K, V).

%% An escript that bundles the application (ebin and priv in its archive)
%% runs the sidecar from the user cache; a second run reuses the copy.
escript(Config) ->
    Dir = ?config(priv_dir, Config),
    Src = filename:join(Dir, "ep_deploy_main.erl"),
    ok = file:write_file(Src, <<"-module(ep_deploy_main).\n-export([main/1]).\n"
                                "main(_) ->\n"
                                "    {ok, _} = application:ensure_all_started(erlang_python),\n"
                                "    io:format(\"result ~p~n\", [py:call(math, sqrt, [16])]),\n"
                                "    io:format(\"priv ~ts~n\", [code:priv_dir(erlang_python)]).\n">>),
    {ok, ep_deploy_main, Main} = compile:file(Src, [binary, report]),
    Ebin = filename:dirname(code:which(py)),
    Pyport = ?config(pyport, Config),
    {ok, Exe} = file:read_file(Pyport),
    {ok, Meta} = file:read_file(Pyport ++ ".python"),
    Files = [{"ep_deploy_main/ebin/ep_deploy_main.beam", Main},
             {"erlang_python/priv/pyport", Exe},
             {"erlang_python/priv/pyport.python", Meta}
             | [{"erlang_python/ebin/" ++ filename:basename(F), element(2, {ok, _} = file:read_file(F))}
                || F <- filelib:wildcard(filename:join(Ebin, "*.{beam,app}"))]],
    Escript = filename:join(Dir, "ep_deploy"),
    ok = escript:create(Escript, [shebang, {emu_args, "-escript main ep_deploy_main"},
                                  {archive, Files, []}]),
    ok = file:change_mode(Escript, 8#755),
    Cache = filename:join(Dir, "cache"),
    Run = fun() ->
                  cmd("env -u ERLANG_PYTHON_PYPORT -u ERLANG_PYTHON_PYTHON XDG_CACHE_HOME='~ts' '~ts' 2>&1",
                      [Cache, Escript])
          end,
    {T, Out} = timer:tc(Run),
    ct:log("first run: ~b ms", [T div 1000]),
    ?expect(true, string:find(Out, "result {ok,4.0}") =/= nomatch),
    ?expect(true, string:find(Out, "priv " ++ Escript) =/= nomatch),
    [Copy] = filelib:wildcard(filename:join([Cache, "erlang_python", "*", "pyport"])),
    {ok, #file_info{mode = Mode}} = file:read_file_info(Copy),
    ?expect(8#755, Mode band 8#777),
    {ok, #file_info{mode = DirMode}} = file:read_file_info(filename:join(Cache, "erlang_python")),
    ?expect(8#700, DirMode band 8#777),
    ?expect(true, filelib:is_regular(Copy ++ ".python")),
    {ok, #file_info{mtime = MTime}} = file:read_file_info(Copy),
    Out2 = Run(),
    ?expect(true, string:find(Out2, "result {ok,4.0}") =/= nomatch),
    ?expect({ok, #file_info{mtime = MTime}}, file:read_file_info(Copy)),
    ?expect([Copy], filelib:wildcard(filename:join([Cache, "erlang_python", "*", "pyport"]))).
