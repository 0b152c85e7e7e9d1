%% Every example in docs/*.md runs (issue 14): each ```erlang block is parsed
%% and evaluated with erl_eval, with a fresh binding, in a process of its own, on
%% the real application, started afresh for it (default settings); each ```elixir
%% block runs in an `elixir' of its own with this build's code path. A block whose
%% first line is `%% not run' (`# not run' in Elixir) is only parsed.
%% A failure names the file and the line of the block.
-module(py_docs_SUITE).

-include_lib("common_test/include/ct.hrl").

-export([all/0, init_per_suite/1, end_per_suite/1]).
-export([other_docs/1, getting_started/1, api_reference/1, migration_from_nif/1,
         elixir/1, operations/1, elixir_blocks/1]).

%% The docs with examples, a case each.
-define(DOCS, [{getting_started, "getting-started.md"},
               {api_reference, "api-reference.md"},
               {migration_from_nif, "migration-from-nif.md"},
               {elixir, "elixir.md"},
               {operations, "operations.md"}]).

%% How long one block may take.
-define(BLOCK_TIMEOUT, 60000).

all() ->
    [getting_started, api_reference, migration_from_nif, elixir, operations, other_docs,
     elixir_blocks].

init_per_suite(Config) ->
    [{docs_dir, docs_dir()} | Config].

end_per_suite(_Config) ->
    py_ct:stop().

%% docs/ of the repository: the application's src is a link to erlang/src in
%% _build (rebar3), so the OS resolves src/../../docs to the repository's docs.
docs_dir() ->
    Dir = filename:join([code:lib_dir(erlang_python), "src", "..", "..", "docs"]),
    case filelib:is_dir(Dir) of
        true -> Dir;
        false -> ct:fail("docs/ not found at ~s", [Dir])
    end.

%% The blocks of every other docs/*.md (deployment.md...).
other_docs(Config) ->
    Dir = ?config(docs_dir, Config),
    Known = [F || {_, F} <- ?DOCS],
    Others = [F || F <- filelib:wildcard(filename:join(Dir, "*.md")),
                   not lists:member(filename:basename(F), Known)],
    Failed = [F || F <- Others, run_path(F) =/= ok],
    ct:comment("~b other files", [length(Others)]),
    case Failed of
        [] -> ok;
        _ -> ct:fail("examples failed in ~p", [[filename:basename(F) || F <- Failed]])
    end.

getting_started(Config) -> run_file(Config, getting_started).
api_reference(Config) -> run_file(Config, api_reference).
migration_from_nif(Config) -> run_file(Config, migration_from_nif).
elixir(Config) -> run_file(Config, elixir).
operations(Config) -> run_file(Config, operations).

run_file(Config, Case) ->
    case run_path(filename:join(?config(docs_dir, Config), proplists:get_value(Case, ?DOCS))) of
        ok -> ok;
        {error, Text} -> ct:fail(Text)
    end.

run_path(File) ->
    Blocks = blocks(File, "erlang"),
    Failures = [{Line, Why} || {Line, Text} <- Blocks, {error, Why} <- [run_block(Line, Text)]],
    case Failures of
        [] -> ct:comment("~b blocks", [length(Blocks)]);
        _ ->
            [ct:pal("~s:~b: ~0P", [filename:basename(File), L, W, 25]) || {L, W} <- Failures],
            {error, lists:flatten(io_lib:format("~b of ~b blocks of ~s failed: lines ~w",
                                  [length(Failures), length(Blocks), filename:basename(File),
                                   [L || {L, _} <- Failures]]))}
    end.

%% The fenced blocks of Lang in File: [{LineOfFirstCodeLine, Text}].
blocks(File, Lang) ->
    {ok, Bin} = file:read_file(File),
    Lines = string:split(unicode:characters_to_list(Bin), "\n", all),
    blocks(Lines, 1, "```" ++ Lang, []).

blocks([], _, _, Acc) ->
    lists:reverse(Acc);
blocks([Line | Rest], N, Fence, Acc) ->
    case string:trim(Line, trailing) of
        Fence ->
            {Body, After} = lists:splitwith(fun(L) -> string:trim(L) =/= "```" end, Rest),
            blocks(tl_or_empty(After), N + length(Body) + 2, Fence,
                   [{N + 1, lists:flatten(lists:join("\n", Body))} | Acc]);
        _ ->
            blocks(Rest, N + 1, Fence, Acc)
    end.

tl_or_empty([]) -> [];
tl_or_empty([_ | T]) -> T.

not_run(Text, Comment) ->
    lists:prefix(Comment ++ " not run", string:trim(Text, leading)).

%% Parse the block; unless it is marked, evaluate it on a fresh application.
run_block(Line, Text) ->
    case parse(Line, Text) of
        {error, _} = Error -> Error;
        {ok, Forms} ->
            case not_run(Text, "%%") of
                true -> ok;
                false ->
                    ok = py_ct:try_start([]),
                    eval_in_process(Forms)
            end
    end.

%% One or more expression sequences, each ended by a dot.
parse(Line, Text) ->
    case erl_scan:string(Text, {Line, 1}) of
        {ok, Tokens, _} -> parse_forms(Tokens, []);
        {error, Info, _} -> {error, {scan, Info}}
    end.

parse_forms([], Acc) ->
    {ok, lists:reverse(Acc)};
parse_forms(Tokens, Acc) ->
    case lists:splitwith(fun(T) -> element(1, T) =/= dot end, Tokens) of
        {_, []} -> {error, {parse, "a block must end with a dot"}};
        {Form, [Dot | Rest]} ->
            case erl_parse:parse_exprs(Form ++ [Dot]) of
                {ok, Exprs} -> parse_forms(Rest, [Exprs | Acc]);
                {error, Info} -> {error, {parse, Info}}
            end
    end.

eval_in_process(Forms) ->
    {Pid, MRef} =
        spawn_monitor(fun() ->
                              lists:foldl(fun(Exprs, B) ->
                                                  {value, _, B1} = erl_eval:exprs(Exprs, B),
                                                  B1
                                          end, erl_eval:new_bindings(), Forms),
                              exit(done)
                      end),
    receive
        {'DOWN', MRef, process, Pid, done} -> ok;
        {'DOWN', MRef, process, Pid, Why} -> {error, Why}
    after ?BLOCK_TIMEOUT ->
            exit(Pid, kill),
            {error, timeout}
    end.

%% The ```elixir blocks of elixir.md, each a script run by `elixir' with this
%% build's ebin in its code path, after starting the application.
elixir_blocks(Config) ->
    case os:find_executable("elixir") of
        false ->
            {skip, "no elixir on PATH (scripts/setup.sh installs Debian's elixir)"};
        Elixir ->
            py_ct:stop(),
            File = filename:join(?config(docs_dir, Config), "elixir.md"),
            Blocks = [B || {_, Text} = B <- blocks(File, "elixir"), not not_run(Text, "#")],
            Ebin = filename:dirname(code:which(py)),
            Failures = [{Line, Out} || {Line, Text} <- Blocks,
                                       {error, Out} <- [run_elixir(Elixir, Ebin, Text)]],
            ct:comment("~b blocks", [length(Blocks)]),
            case Failures of
                [] -> ok;
                _ ->
                    [ct:pal("elixir.md:~b:~n~s", [L, O]) || {L, O} <- Failures],
                    ct:fail("elixir blocks of elixir.md failed: lines ~w",
                            [[L || {L, _} <- Failures]])
            end
    end.

run_elixir(Elixir, Ebin, Text) ->
    Script = filename:join(string:trim(os:cmd("mktemp -d")), "block.exs"),
    ok = file:write_file(Script, ["{:ok, _} = Application.ensure_all_started(:erlang_python)\n",
                                  Text, "\n"]),
    Port = open_port({spawn_executable, Elixir},
                     [{args, ["-pa", Ebin, Script]}, exit_status, stderr_to_stdout, binary]),
    Result = collect(Port, []),
    _ = file:del_dir_r(filename:dirname(Script)),
    Result.

collect(Port, Acc) ->
    receive
        {Port, {data, D}} -> collect(Port, [Acc, D]);
        {Port, {exit_status, 0}} -> ok;
        {Port, {exit_status, N}} -> {error, io_lib:format("exit ~b:~n~s", [N, Acc])}
    after ?BLOCK_TIMEOUT ->
            port_close(Port),
            {error, io_lib:format("timeout:~n~s", [Acc])}
    end.
