%% @doc Locating and opening the Go sidecar executable, `priv/pyport'.
%%
%% The port speaks `{packet, 4}' frames of External Term Format. Its stderr is left
%% alone (never `stderr_to_stdout'): stray output on stdout would corrupt the framing.
-module(py_port_exe).

-export([path/0, path/1, open/1, open/2]).

-define(EXE, "pyport").

%% @doc Absolute path of the sidecar to run. A sidecar is built for one Python
%% (`scripts/build-pyport.sh OUT' with `PYTHON_CONFIG' set builds one for
%% another); the first of these wins:
%% <ul>
%% <li>the application environment `python': the path of such a build;</li>
%% <li>the OS environment variable `ERLANG_PYTHON_PYPORT' (the tests use it to
%%     run the suites on Python 3.11);</li>
%% <li>`priv/pyport' of the erlang_python application, built by `rebar3 compile'.</li>
%% </ul>
-spec path() -> file:filename().
path() ->
    path(application:get_env(erlang_python, python, undefined)).

%% @doc {@link path/0} with `Python' in place of the application environment
%% `python' (`undefined': none), e.g. a sidecar's own `python' option.
-spec path(file:filename_all() | undefined) -> file:filename().
path(Python) ->
    case {Python, os:getenv("ERLANG_PYTHON_PYPORT")} of
        {Path, _} when is_list(Path); is_binary(Path) ->
            filename:absname(Path);
        {_, Path} when is_list(Path), Path =/= "" ->
            filename:absname(Path);
        _ ->
            filename:absname(filename:join(priv_dir(), ?EXE))
    end.

%% @doc Open the sidecar with extra command-line arguments. The calling process
%% becomes the port owner and receives `{Port, {data, Bin}}' and
%% `{Port, {exit_status, N}}'.
-spec open([string() | binary()]) -> port().
open(Args) when is_list(Args) ->
    open(path(), Args).

%% @doc Open the sidecar at `Exe' (see {@link path/1}) with extra arguments.
-spec open(file:filename_all(), [string() | binary()]) -> port().
open(Exe, Args) when is_list(Args) ->
    open_port({spawn_executable, Exe},
              [{packet, 4}, binary, exit_status, {args, Args}]).

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
