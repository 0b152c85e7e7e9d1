%% @doc Locating and opening the Go sidecar executable, `priv/pyport'.
%%
%% The port speaks `{packet, 4}' frames of External Term Format. Its stderr is left
%% alone (never `stderr_to_stdout'): stray output on stdout would corrupt the framing.
-module(py_port_exe).

-export([path/0, path/1, open/1, open/2, build_info/0, build_info/1]).

-define(EXE, "pyport").
-define(INFO_KEY(Exe, Args), {?MODULE, build_info, Exe, Args}).
-define(INFO_TIMEOUT, 10000).

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
    build_info(path(), Args).

%% @doc {@link build_info/0} of the sidecar at `Exe'.
-spec build_info(file:filename_all()) -> {ok, py_sidecar:info()} | {error, term()}.
build_info(Exe) ->
    build_info(Exe, []).

build_info(Exe, Args) ->
    case persistent_term:get(?INFO_KEY(Exe, Args), undefined) of
        undefined ->
            case ask_info(Exe, Args) of
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
ask_info(Exe, Args) ->
    try open(Exe, ["--info" | Args]) of
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
