#!/usr/bin/env escript
%% -*- erlang -*-
%% EEP-48 doc chunks of the erlang_python application, so that erl's `h(py, call)'
%% and iex's `h :py.call' show the edoc of each function.
%%
%% escript scripts/doc-chunks.escript [AppDir]
%%
%% AppDir is the rebar3 application (default: the current directory, which is erlang/
%% when rebar3's post-compile and post-edoc hooks run it). The chunks go to
%% AppDir/doc/chunks/Module.chunk, made again only when a source is newer than its chunk.
%% When REBAR_BUILD_DIR is set (the hooks), the built application in
%% $REBAR_BUILD_DIR/lib/erlang_python gets a `doc' link to AppDir/doc (rebar3 links src
%% and priv, not doc), which is where code:get_doc/1 looks: relative when the build is
%% inside AppDir, as rebar3's own links, so that moving the tree keeps it.
-mode(compile).

main(Args) ->
    AppDir = normalize(case Args of [D] -> D; [] -> "." end),
    Srcs = filelib:wildcard(filename:join([AppDir, "src", "*.erl"])),
    ChunkDir = filename:join([AppDir, "doc", "chunks"]),
    case lists:any(fun(Src) -> stale(Src, ChunkDir) end, Srcs) of
        true -> make_chunks(AppDir, ChunkDir);
        false -> ok
    end,
    link_build(AppDir).

stale(Src, ChunkDir) ->
    Chunk = filename:join(ChunkDir, filename:basename(Src, ".erl") ++ ".chunk"),
    filelib:last_modified(Chunk) < filelib:last_modified(Src).

make_chunks(AppDir, ChunkDir) ->
    Opts = [{doclet, edoc_doclet_chunks}, {layout, edoc_layout_chunks},
            {preprocess, true}, {includes, [filename:join(AppDir, "include")]},
            {dir, filename:join(AppDir, "doc")}],
    try edoc:application(erlang_python, AppDir, Opts) of
        ok -> io:format("doc chunks: ~s~n", [ChunkDir])
    catch
        Class:Reason ->
            io:format(standard_error, "doc chunks: edoc failed: ~p:~p~n", [Class, Reason]),
            halt(1)
    end.

link_build(AppDir) ->
    case os:getenv("REBAR_BUILD_DIR") of
        false -> ok;
        Build ->
            Built = filename:join([Build, "lib", "erlang_python"]),
            Doc = filename:join(Built, "doc"),
            Src = link_target(AppDir, normalize(Built)),
            case {filelib:is_dir(Built), file:read_link_info(Doc)} of
                {false, _} -> ok;
                {true, {ok, _}} -> ok;                  % a link or a copy already
                {true, {error, enoent}} ->
                    case file:make_symlink(Src, Doc) of
                        ok -> ok;
                        {error, Why} ->
                            io:format(standard_error, "doc chunks: cannot link ~s: ~p~n",
                                      [Doc, Why]),
                            halt(1)
                    end
            end
    end.

link_target(AppDir, Built) ->
    case lists:prefix(filename:split(AppDir), filename:split(Built)) of
        true ->
            Depth = length(filename:split(Built)) - length(filename:split(AppDir)),
            filename:join(lists:duplicate(Depth, "..") ++ ["doc"]);
        false ->
            filename:join(AppDir, "doc")
    end.

%% An absolute path without `.' components.
normalize(Path) ->
    filename:join([P || P <- filename:split(filename:absname(Path)), P =/= "."]).
