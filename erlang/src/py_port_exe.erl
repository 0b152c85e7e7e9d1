%% @doc Locating and opening the Go sidecar executable, `priv/pyport'.
%%
%% The port speaks `{packet, 4}' frames of External Term Format. Its stderr is left
%% alone (never `stderr_to_stdout'): stray output on stdout would corrupt the framing.
-module(py_port_exe).

-export([path/0, open/1]).

-define(EXE, "pyport").

%% @doc Absolute path of `priv/pyport' of the erlang_python application.
-spec path() -> file:filename().
path() ->
    filename:absname(filename:join(priv_dir(), ?EXE)).

%% @doc Open the sidecar with extra command-line arguments. The calling process
%% becomes the port owner and receives `{Port, {data, Bin}}' and
%% `{Port, {exit_status, N}}'.
-spec open([string() | binary()]) -> port().
open(Args) when is_list(Args) ->
    open_port({spawn_executable, path()},
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
