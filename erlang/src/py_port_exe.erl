%% @doc Locating and opening the Go sidecar executable, `priv/pyport'.
%%
%% The port speaks `{packet, 4}' frames of External Term Format. Its stderr is left
%% alone (never `stderr_to_stdout'): stray output on stdout would corrupt the framing.
-module(py_port_exe).

-export([path/0, path/1, launch/1, open/1, open/2, build_info/0, build_info/1]).

-export_type([launch/0]).

%% How to run a sidecar: the file, and what {@link py_python} adds for its Python.
-type launch() :: #{exe := file:filename(), env := [{string(), string() | false}],
                    args := [string()], python := built_in | file:filename()}.

-define(EXE, "pyport").
-define(INFO_KEY(Exe, Args), {?MODULE, build_info, Exe, Args}).
-define(INFO_TIMEOUT, 10000).

%% @doc Absolute path of the sidecar to run. A sidecar is built for one Python
%% (`scripts/build-pyport.sh OUT' with `PYTHON_CONFIG' set builds one for
%% another); the first of these wins:
%% <ul>
%% <li>the application environment `python', when it is the path of such a
%%     build (a `python' that names an interpreter, see {@link py_python},
%%     does not count here);</li>
%% <li>the OS environment variable `ERLANG_PYTHON_PYPORT' (the tests use it to
%%     run the suites on Python 3.11);</li>
%% <li>`priv/pyport' of the erlang_python application, built by `rebar3 compile'.</li>
%% </ul>
%% The path may lie inside an escript's archive: {@link launch/1} takes it
%% out ({@link py_port_cache}).
-spec path() -> file:filename().
path() ->
    path(application:get_env(erlang_python, python, undefined)).

%% @doc {@link path/0} with `Python' in place of the application environment
%% `python' (`undefined': none), e.g. a sidecar's own `python' option.
-spec path(file:filename_all() | undefined) -> file:filename().
path(Python) ->
    Pyport = case Python of
                 undefined -> undefined;
                 _ -> case py_python:is_interpreter(Python) of
                          true -> undefined;
                          false -> Python
                      end
             end,
    case {Pyport, os:getenv("ERLANG_PYTHON_PYPORT")} of
        {Path, _} when is_list(Path); is_binary(Path) ->
            filename:absname(Path);
        {_, Path} when is_list(Path), Path =/= "" ->
            filename:absname(Path);
        _ ->
            filename:absname(filename:join(priv_dir(), ?EXE))
    end.

%% @doc How to run the sidecar of {@link path/1} for the `python' setting
%% `Python' (`undefined': unset): the file (taken out of an escript's
%% archive when it lies there, {@link py_port_cache}), and the environment
%% and arguments that make it find its Python ({@link py_python:find/2}),
%% or why it cannot run: `{no_pyport, Path, Reason}', `{pyport_extract,
%% File, Reason}' or one of {@link py_python}'s errors.
-spec launch(file:filename_all() | undefined) -> {ok, launch()} | {error, term()}.
launch(Python) ->
    launch(path(Python), Python).

launch(Path, Python) ->
    case py_port_cache:ensure(Path) of
        {ok, Exe} ->
            case py_python:find(Python, Exe) of
                {ok, Launch} -> {ok, Launch#{exe => Exe}};
                {error, _} = Error -> Error
            end;
        {error, _} = Error ->
            Error
    end.

%% @doc Open the sidecar with extra command-line arguments. The calling process
%% becomes the port owner and receives `{Port, {data, Bin}}' and
%% `{Port, {exit_status, N}}'.
-spec open([string() | binary()]) -> port().
open(Args) when is_list(Args) ->
    open(path(), Args).

%% @doc Open the sidecar of a {@link launch/1}, or the one at `Exe' (see
%% {@link path/1}) as {@link launch/1} finds its Python for the application
%% environment's `python' (as it is, when none is found), with extra
%% arguments.
-spec open(launch() | file:filename_all(), [string() | binary()]) -> port().
open(#{exe := Exe, env := Env, args := Extra}, Args) when is_list(Args) ->
    open_port({spawn_executable, Exe},
              [{packet, 4}, binary, exit_status, {env, Env}, {args, Extra ++ Args}]);
open(Exe, Args) when is_list(Args) ->
    case launch(unicode:characters_to_list(Exe), python_setting()) of
        {ok, Launch} -> open(Launch, Args);
        {error, _} -> open(#{exe => Exe, env => [], args => [], python => built_in}, Args)
    end.

python_setting() ->
    application:get_env(erlang_python, python, undefined).

%% @doc What the sidecar of {@link path/0} would say in its `info' (mode,
%% version, num_executors, subinterp_supported, protocol, slot_min), known
%% without an application or a sidecar running: `pyport --info' answers
%% from its build, without starting Python. The answer is kept in
%% `persistent_term' for the executable (and `num_executors' of the
%% application environment, passed on), so it is asked once; nothing is
%% left running.
-spec build_info() -> {ok, py_sidecar:info()} | {error, term()}.
build_info() ->
    Args = case application:get_env(erlang_python, num_executors) of
               {ok, N} when is_integer(N), N > 0 -> ["--num-executors", integer_to_list(N)];
               _ -> []
           end,
    case launch(python_setting()) of
        {ok, Launch} -> build_info(Launch, Args);
        {error, _} = Error -> Error
    end.

%% @doc {@link build_info/0} of the sidecar at `Exe'.
-spec build_info(file:filename_all()) -> {ok, py_sidecar:info()} | {error, term()}.
build_info(Exe) ->
    case launch(unicode:characters_to_list(Exe), undefined) of
        {ok, Launch} -> build_info(Launch, []);
        {error, _} = Error -> Error
    end.

build_info(#{exe := Exe} = Launch, Args) ->
    case persistent_term:get(?INFO_KEY(Exe, Args), undefined) of
        undefined ->
            case ask_info(Launch, Args) of
                {ok, Info} = Found ->
                    persistent_term:put(?INFO_KEY(Exe, Args), Info),
                    Found;
                {error, _} = Error ->
                    Error
            end;
        Info ->
            {ok, Info}
    end.

%% Run `Exe --info': one frame, `{ok, Info}', then exit status 0.
ask_info(#{exe := Exe} = Launch, Args) ->
    try open(Launch, ["--info" | Args]) of
        Port ->
            Result = collect_info(Port, Exe, none),
            %% the port's link, for a caller that traps exits
            receive {'EXIT', Port, _} -> ok after 0 -> ok end,
            Result
    catch
        error:Reason -> {error, {no_pyport, Exe, Reason}}
    end.

collect_info(Port, Exe, Reply) ->
    receive
        {Port, {data, Bin}} ->
            collect_info(Port, Exe, info_reply(Bin, Exe));
        {Port, {exit_status, 0}} when Reply =/= none ->
            Reply;
        {Port, {exit_status, N}} ->
            %% e.g. a pyport older than --info, which refuses the flag
            {error, {info_exit, Exe, N}}
    after ?INFO_TIMEOUT ->
        catch port_close(Port),
        {error, {info_timeout, Exe}}
    end.

info_reply(Bin, Exe) ->
    try py_atoms:decode(Bin) of
        {ok, Info} when is_map(Info) ->
            case py_wire:check_info(Info, Exe) of
                ok -> {ok, Info};
                {error, _} = Error -> Error
            end;
        Other ->
            {error, {bad_info_reply, Other}}
    catch
        error:_ -> {error, {bad_info_reply, Bin}}
    end.

-spec priv_dir() -> file:filename().
priv_dir() ->
    case code:priv_dir(erlang_python) of
        Dir when is_list(Dir) ->
            Dir;
        {error, bad_name} ->
            %% Not in an application directory on the code path (e.g. loaded with
            %% -pa from a bare ebin): priv is the sibling of this module's ebin.
            case code:which(?MODULE) of
                Beam when is_list(Beam) ->
                    filename:join(filename:dirname(filename:dirname(Beam)), "priv");
                Other ->
                    erlang:error({no_priv_dir, erlang_python, Other})
            end
    end.
