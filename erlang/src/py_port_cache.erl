%% @doc The sidecar of an escript: taken out of the archive to run it.
%%
%% `open_port' cannot run a file inside an escript's archive (`enotdir'),
%% where `code:priv_dir(erlang_python)' lies when an escript bundles the
%% application. {@link ensure/1} then copies `priv/pyport' (and its
%% `pyport.python', see {@link py_python}) to a private per-user cache,
%% `filename:basedir(user_cache, "erlang_python")/HASH/pyport' (on Linux
%% `$XDG_CACHE_HOME/erlang_python' or `~/.cache/erlang_python'; the
%% directory mode 0700, the file 0755), HASH being the MD5 of the binary, so
%% each build gets its own copy, written once (a temporary file renamed into
%% place: a reader sees the whole file or none). `ERLANG_PYTHON_PYPORT'
%% names a sidecar to run instead (docs/deployment.md).
-module(py_port_cache).

-export([ensure/1, dir/0]).

-include_lib("kernel/include/file.hrl").

-define(META, ".python").

%% @doc A runnable file for the sidecar at `Path': `Path' itself when it is a
%% file, else its copy in the cache ({@link dir/0}) taken out of the
%% archive that holds it. `{error, {no_pyport, Path, enoent}}' when neither
%% holds it; `{error, {pyport_extract, Target, Reason}}' when it cannot be
%% written.
-spec ensure(file:filename()) -> {ok, file:filename()} | {error, term()}.
ensure(Path) ->
    case filelib:is_regular(Path) of
        true ->
            {ok, Path};
        false ->
            case erl_prim_loader:get_file(Path) of
                {ok, Bin, _} -> extract(Path, Bin);
                error -> {error, {no_pyport, Path, enoent}}
            end
    end.

%% @doc The cache directory of extracted sidecars.
-spec dir() -> file:filename().
dir() ->
    filename:basedir(user_cache, "erlang_python").

extract(Path, Bin) ->
    Hash = string:lowercase(binary:encode_hex(erlang:md5(Bin))),
    Dir = filename:join(dir(), binary_to_list(Hash)),
    Target = filename:join(Dir, filename:basename(Path)),
    case is_copy(Target, byte_size(Bin)) of
        true ->
            {ok, Target};
        false ->
            Meta = case erl_prim_loader:get_file(Path ++ ?META) of
                       {ok, M, _} -> [{Target ++ ?META, M, 8#644}];
                       error -> []
                   end,
            %% the binary last: once it is there, so is its .python
            case make_dirs(Dir) of
                ok -> write_all(Meta ++ [{Target, Bin, 8#755}], Target);
                {error, Reason} -> {error, {pyport_extract, Target, Reason}}
            end
    end.

is_copy(Target, Size) ->
    case file:read_file_info(Target) of
        {ok, #file_info{type = regular, size = Size, mode = Mode}} -> Mode band 8#111 =/= 0;
        _ -> false
    end.

%% the cache and its directory, private to the user
make_dirs(Dir) ->
    case filelib:ensure_dir(filename:join(Dir, "x")) of
        ok ->
            _ = file:change_mode(filename:dirname(Dir), 8#700),
            file:change_mode(Dir, 8#700);
        {error, _} = Error ->
            Error
    end.

write_all([], Target) ->
    {ok, Target};
write_all([{File, Bin, Mode} | Rest], Target) ->
    Tmp = File ++ ".tmp." ++ os:getpid() ++ "." ++ integer_to_list(erlang:unique_integer([positive])),
    Result = case file:write_file(Tmp, Bin) of
                 ok ->
                     case file:change_mode(Tmp, Mode) of
                         ok -> file:rename(Tmp, File);
                         {error, _} = E -> E
                     end;
                 {error, _} = E ->
                     E
             end,
    case Result of
        ok ->
            write_all(Rest, Target);
        {error, Reason} ->
            _ = file:delete(Tmp),
            {error, {pyport_extract, File, Reason}}
    end.
