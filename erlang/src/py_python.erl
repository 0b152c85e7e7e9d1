%% @doc Which Python a sidecar runs, found at run time (docs/deployment.md).
%%
%% `pyport' is linked against one Python version (`libpython3.X.so'); the
%% build leaves what it was built for beside it, in `pyport.python'
%% (`scripts/build-pyport.sh'). Where that Python sits may differ at run
%% time (a release or an escript taken to another machine), so the port
%% owner looks for it, the first of these that is set winning:
%% <ol>
%% <li>the `python' setting (application environment or sidecar option) when
%%     it names an interpreter, i.e. a file whose name starts with `python'
%%     (`"/opt/py/bin/python3.13"'); another path there is a `pyport' to run
%%     ({@link py_port_exe:path/1});</li>
%% <li>the OS environment variable `ERLANG_PYTHON_PYTHON' (an interpreter);</li>
%% <li>`PYTHONHOME': the interpreter `$PYTHONHOME/bin/python3.X';</li>
%% <li>the interpreter of the build, when it and its libpython are still
%%     there: the sidecar runs as built, nothing is passed;</li>
%% <li>`python3.X', then `python3', on `PATH'.</li>
%% </ol>
%% One of the first three that does not fit is an error: it is not passed
%% over. A found interpreter is asked once (`python -S -c', kept for the
%% VM's life) for its version (it must be the build's), its `sys.prefix' and
%% its `sysconfig' `LIBDIR'; libpython is looked for in `PREFIX/lib',
%% `BASE/lib' (`sys.base_prefix': a venv's base installation),
%% `BASE/lib/MULTIARCH' (Debian), then `LIBDIR' (the interpreter's build
%% directory, right where it was not moved). A venv's interpreter runs the
%% venv: Python reads its `pyvenv.cfg'. The sidecar then starts with
%% that directory first in `LD_LIBRARY_PATH' (ahead of the build's RUNPATH;
%% pyport gives Python the previous value back) and
%% `--python-executable', from which Python finds its standard library.
%%
%% Errors, which the application's start returns as they are:
%% <ul>
%% <li>`{no_python, #{looked_for := [...], version := V}}': nothing found;
%%     each entry is `{Source, Interpreter}';</li>
%% <li>`{no_python, #{python := P, from := Source, reason := R}}': the
%%     named interpreter does not run (`enoent', `{exit_status, N}'...);</li>
%% <li>`{python_version, #{python := P, from := Source, version := Found,
%%     wanted := V}}': another version than the build's;</li>
%% <li>`{no_libpython, #{python := P, from := Source, soname := S,
%%     looked_in := Dirs}}': no shared libpython beside it (a static
%%     build).</li>
%% </ul>
-module(py_python).

-export([find/2, build/1, is_interpreter/1, format_error/1]).

-export_type([launch/0, build/0]).

-type launch() :: #{env := [{string(), string() | false}],
                    args := [string()],
                    python := built_in | file:filename()}.
-type build() :: #{version => string(), soname => string(), libdir => string(),
                   executable => string()}.
-type source() :: python_setting | {env, string()} | built_in | {path, string()}.

-define(KEY(Python, Build, Env), {?MODULE, Python, Build, Env}).
-define(PROBE_TIMEOUT, 10000).
%% One line each: major.minor, sys.prefix, sys.base_prefix (a venv's
%% base), LIBDIR, MULTIARCH, INSTSONAME.
-define(PROBE,
        "import sys, sysconfig; v = sysconfig.get_config_var; "
        "print('%d.%d' % sys.version_info[:2], sys.prefix, sys.base_prefix, v('LIBDIR') or '', "
        "v('MULTIARCH') or '', v('INSTSONAME') or '', sep='\\n')").

%% @doc How to start the sidecar `Exe' so that it finds its Python, given
%% the `python' setting (`undefined' when unset): the environment and the
%% arguments to add, or why no Python fits (see the module doc).
-spec find(file:filename_all() | undefined, file:filename()) ->
          {ok, launch()} | {error, term()}.
find(Setting, Exe) ->
    Build = build(Exe),
    case explicit(Setting, Build) of
        {Source, Python} ->
            probe(Source, Python, Build);
        none ->
            implicit(Build)
    end.

%% @doc What the sidecar `Exe' was built for, from `Exe.python' (written by
%% `scripts/build-pyport.sh'); empty for a sidecar without one.
-spec build(file:filename()) -> build().
build(Exe) ->
    case file:consult(Exe ++ ".python") of
        {ok, Terms} ->
            maps:from_list([{K, V} || {K, V} <- Terms,
                                      lists:member(K, [version, soname, libdir, executable]),
                                      is_list(V), V =/= ""]);
        {error, _} ->
            #{}
    end.

%% @doc Whether a `python' setting names an interpreter (a file name that
%% starts with `python') rather than a `pyport'.
-spec is_interpreter(file:filename_all()) -> boolean().
is_interpreter(Path) ->
    case filename:basename(unicode:characters_to_list(Path)) of
        "python" ++ _ -> true;
        _ -> false
    end.

%% @doc A line of text for one of this module's errors.
-spec format_error(term()) -> string().
format_error({no_python, #{looked_for := Tried} = M}) ->
    lists:flatten(
      io_lib:format("no Python ~ts found for the sidecar; looked for ~ts. Set the python "
                    "setting or ERLANG_PYTHON_PYTHON to its interpreter (docs/deployment.md)",
                    [maps:get(version, M, "?"),
                     lists:join(", ", [io_lib:format("~ts (~ts)", [P, source(S)])
                                       || {S, P} <- Tried])]));
format_error({no_python, #{python := P, from := S, reason := R}}) ->
    lists:flatten(io_lib:format("the Python ~ts (~ts) does not run: ~0p", [P, source(S), R]));
format_error({python_version, #{python := P, from := S, version := V, wanted := W}}) ->
    lists:flatten(io_lib:format("the Python ~ts (~ts) is ~ts; the sidecar was built for ~ts",
                                [P, source(S), V, W]));
format_error({no_libpython, #{python := P, from := S, soname := So, looked_in := Dirs}}) ->
    lists:flatten(io_lib:format("no ~ts beside the Python ~ts (~ts); looked in ~ts",
                                [So, P, source(S), lists:join(", ", Dirs)]));
format_error(Other) ->
    lists:flatten(io_lib:format("~0p", [Other])).

source(python_setting) -> "the python setting";
source({env, Var}) -> Var;
source(built_in) -> "the build's";
source({path, Name}) -> "PATH, " ++ Name.

%% The first of the setting, ERLANG_PYTHON_PYTHON and PYTHONHOME that is set.
-spec explicit(file:filename_all() | undefined, build()) -> {source(), string()} | none.
explicit(Setting, Build) ->
    case Setting =/= undefined andalso is_interpreter(Setting) of
        true ->
            {python_setting, unicode:characters_to_list(Setting)};
        false ->
            case {getenv("ERLANG_PYTHON_PYTHON"), getenv("PYTHONHOME")} of
                {false, false} -> none;
                {false, Home} -> {{env, "PYTHONHOME"}, filename:join([Home, "bin", versioned(Build)])};
                {Python, _} -> {{env, "ERLANG_PYTHON_PYTHON"}, Python}
            end
    end.

versioned(#{version := V}) -> "python" ++ V;
versioned(_) -> "python3".

getenv(Var) ->
    case os:getenv(Var) of
        false -> false;
        "" -> false;
        Value -> Value
    end.

%% Nothing named: the build's interpreter if it is still in place, else PATH.
implicit(Build) ->
    case Build of
        #{executable := Exe, libdir := Dir, soname := So} ->
            case filelib:is_regular(Exe) andalso filelib:is_regular(filename:join(Dir, So)) of
                true -> {ok, #{env => [], args => [], python => built_in}};
                false -> on_path(Build, [{built_in, Exe}])
            end;
        #{} when map_size(Build) =:= 0 ->
            %% a pyport without its .python: as it was built
            {ok, #{env => [], args => [], python => built_in}};
        _ ->
            on_path(Build, [])
    end.

on_path(Build, Tried) ->
    Name = versioned(Build),
    try_path([Name | ["python3" || Name =/= "python3"]], Build, Tried).

try_path([], Build, Tried) ->
    {error, {no_python, maps:merge(maps:with([version, soname], Build),
                                   #{looked_for => lists:reverse(Tried)})}};
try_path([Name | Rest], Build, Tried) ->
    case os:find_executable(Name) of
        false ->
            try_path(Rest, Build, [{{path, Name}, Name} | Tried]);
        Python ->
            case probe({path, Name}, Python, Build) of
                {ok, _} = Found -> Found;
                {error, _} -> try_path(Rest, Build, [{{path, Name}, Python} | Tried])
            end
    end.

%% Ask the interpreter, once for the VM's life (the answer depends on the
%% interpreter, the build and LD_LIBRARY_PATH).
probe(Source, Python0, Build) ->
    Python = filename:absname(Python0),
    Old = os:getenv("LD_LIBRARY_PATH", ""),
    Key = ?KEY(Python, Build, Old),
    case persistent_term:get(Key, undefined) of
        undefined ->
            case ask(Source, Python, Build, Old) of
                {ok, Launch} = Found ->
                    persistent_term:put(Key, Launch),
                    Found;
                {error, _} = Error ->
                    Error
            end;
        Launch ->
            {ok, Launch}
    end.

ask(Source, Python, Build, Old) ->
    Fail = fun(Why) -> {error, {no_python, #{python => Python, from => Source, reason => Why}}} end,
    case filelib:is_regular(Python) of
        false ->
            Fail(enoent);
        true ->
            %% a moved interpreter may itself need its libpython: PREFIX/lib first
            %% (and the one of a symlink's target: a venv's bin/python3.X)
            Near = lists:join(":", dedup([filename:join(filename:dirname(filename:dirname(P)), "lib")
                                          || P <- [Python | link_target(Python)]])),
            case run(Python, [{"LD_LIBRARY_PATH", join_path(lists:flatten(Near), Old)}]) of
                {ok, Out} ->
                    case string:split(string:trim(Out, trailing), "\n", all) of
                        [Version, Prefix, Base, LibDir, Multiarch, SoName] ->
                            found(Source, Python, Build, Old,
                                  #{version => Version, prefix => Prefix, base => Base,
                                    libdir => LibDir,
                                    multiarch => Multiarch, soname => SoName});
                        _ ->
                            Fail({bad_output, Out})
                    end;
                {error, Why} ->
                    Fail(Why)
            end
    end.

found(Source, Python, Build, Old, #{version := Version} = Info) ->
    case Build of
        #{version := Wanted} when Wanted =/= Version ->
            {error, {python_version, #{python => Python, from => Source,
                                       version => Version, wanted => Wanted}}};
        _ ->
            SoName = maps:get(soname, Build, maps:get(soname, Info)),
            #{prefix := Prefix, base := Base, libdir := LibDir, multiarch := Multiarch} = Info,
            Dirs = dedup([filename:join(P, "lib") || P <- [Prefix, Base]]
                         ++ [filename:join([Base, "lib", Multiarch]) || Multiarch =/= ""]
                         ++ [LibDir || LibDir =/= ""]),
            case [D || D <- Dirs, SoName =/= "", filelib:is_regular(filename:join(D, SoName))] of
                [Dir | _] ->
                    {ok, #{env => [{"LD_LIBRARY_PATH", join_path(Dir, Old)},
                                   %% "-": none (open_port unsets an empty one)
                                   {"ERLANG_PYTHON_SAVED_LD_LIBRARY_PATH", saved(Old)}],
                           args => ["--python-executable", Python],
                           python => Python}};
                [] ->
                    {error, {no_libpython, #{python => Python, from => Source,
                                             soname => SoName, looked_in => Dirs}}}
            end
    end.

link_target(Path) ->
    case file:read_link_all(Path) of
        {ok, Target} -> [filename:absname(Target, filename:dirname(Path))];
        {error, _} -> []
    end.

saved("") -> "-";
saved(Old) -> Old.

dedup([]) -> [];
dedup([X | Rest]) -> [X | dedup([Y || Y <- Rest, Y =/= X])].

join_path(Dir, "") -> Dir;
join_path(Dir, Old) -> Dir ++ ":" ++ Old.

%% Run `Python -S -c PROBE': its stdout, or why not.
run(Python, Env) ->
    try open_port({spawn_executable, Python},
                  [{args, ["-S", "-c", ?PROBE]}, {env, Env}, exit_status, binary,
                   use_stdio, hide]) of
        Port -> collect(Port, [])
    catch
        error:Reason -> {error, Reason}
    end.

collect(Port, Acc) ->
    receive
        {Port, {data, Bin}} ->
            collect(Port, [Acc, Bin]);
        {Port, {exit_status, 0}} ->
            flush_exit(Port),
            {ok, unicode:characters_to_list(iolist_to_binary(Acc))};
        {Port, {exit_status, N}} ->
            flush_exit(Port),
            {error, {exit_status, N}}
    after ?PROBE_TIMEOUT ->
        catch port_close(Port),
        flush_exit(Port),
        {error, timeout}
    end.

%% the port's link, for a caller that traps exits
flush_exit(Port) ->
    receive {'EXIT', Port, _} -> ok after 0 -> ok end.
