%% @doc Imports and paths of every context (API.md section 11, as the NIF
%% erlang_python 2.x): a registry of modules to import and of directories
%% for `sys.path', applied at once to every running context (every pool,
%% every sidecar) and to each context started later, after a sidecar
%% restart too.
%%
%% ```
%% ok = py_import:add_path("/opt/app/py"),      % sys.path, everywhere
%% ok = py_import:ensure_imported(json),          % imported, everywhere
%% true = py_import:is_imported(json),
%% [{<<"json">>, all}] = py_import:all_imports(),
%% [<<"/opt/app/py">>] = py_import:all_paths().
%% '''
%% The registry is VM-wide, kept by {@link py_context_setup} (which runs it
%% in each new context: paths, then imports, then the preload code of
%% {@link py_preload}); it survives sidecar restarts and is forgotten when
%% the application stops.
%%
%% A path goes first in `sys.path' (the one added last is first), once. An
%% import that fails in a running context (`ModuleNotFoundError', a
%% single-phase extension refused by a sub-interpreter: use a worker pool)
%% is not registered, and its error is returned: `{error, {'ExcName',
%% Msg}}'. {@link clear_imports/0} and {@link clear_paths/0} empty the
%% registry for contexts started later; running contexts keep what they
%% imported and their `sys.path'.
%%
%% Errors: `{error, {badarg, {module, M}}}' (not an atom, binary or string,
%% or `__main__'), `{error, {badarg, {function, F}}}', `{error, {badarg,
%% {path, P}}}', `{error, {badarg, {paths, L}}}'.
-module(py_import).

-export([ensure_imported/1, ensure_imported/2, is_imported/1, is_imported/2, all_imports/0,
         clear_imports/0, add_path/1, add_paths/1, all_paths/0, clear_paths/0]).

%% @doc Import module `Module' in every context, now and later.
-spec ensure_imported(atom() | binary() | string()) -> ok | {error, term()}.
ensure_imported(Module) ->
    register_import(module(Module), {ok, all}).

%% @doc Import module `Module' in every context, now and later, and check
%% that it has `Function' (an AttributeError otherwise).
-spec ensure_imported(atom() | binary() | string(), atom() | binary() | string()) ->
          ok | {error, term()}.
ensure_imported(Module, Function) ->
    register_import(module(Module), py_payload:key(function, Function)).

%% @doc Whether `Module' is registered (by {@link ensure_imported/1}).
-spec is_imported(atom() | binary() | string()) -> boolean().
is_imported(Module) ->
    is_imported_as(module(Module), {ok, all}).

%% @doc Whether `{Module, Function}' is registered (by
%% {@link ensure_imported/2}).
-spec is_imported(atom() | binary() | string(), atom() | binary() | string()) -> boolean().
is_imported(Module, Function) ->
    is_imported_as(module(Module), py_payload:key(function, Function)).

%% @doc The registered imports, in order: `{Module, all}' for
%% {@link ensure_imported/1}, `{Module, Function}' for
%% {@link ensure_imported/2}, binaries.
-spec all_imports() -> [py_context_setup:import()].
all_imports() ->
    py_context_setup:imports().

%% @doc Empty the import registry (running contexts keep their modules).
-spec clear_imports() -> ok.
clear_imports() ->
    _ = py_context_setup:update(imports, fun(_) -> [] end),
    ok.

%% @doc Put directory `Dir' first in `sys.path' in every context, now and
%% later.
-spec add_path(file:filename_all()) -> ok | {error, term()}.
add_path(Dir) ->
    case path(Dir) of
        {ok, D} -> add([D]);
        error -> {error, {badarg, {path, Dir}}}
    end.

%% @doc {@link add_path/1} for each of `Dirs', in order (the last ends
%% first in `sys.path').
-spec add_paths([file:filename_all()]) -> ok | {error, term()}.
add_paths(Dirs) when is_list(Dirs) ->
    Checked = [{Dir, path(Dir)} || Dir <- Dirs],
    case [Dir || {Dir, error} <- Checked] of
        [] -> add([D || {_, {ok, D}} <- Checked]);
        [Bad | _] -> {error, {badarg, {path, Bad}}}
    end;
add_paths(Dirs) ->
    {error, {badarg, {paths, Dirs}}}.

%% @doc The registered directories, binaries, in the order added.
-spec all_paths() -> [binary()].
all_paths() ->
    py_context_setup:paths().

%% @doc Empty the path registry (running contexts keep their `sys.path').
-spec clear_paths() -> ok.
clear_paths() ->
    _ = py_context_setup:update(paths, fun(_) -> [] end),
    ok.

%%--------------------------------------------------------------------

register_import({ok, M}, {ok, F}) ->
    Import = {M, F},
    Known = lists:member(Import, py_context_setup:imports()),
    _ = py_context_setup:update(imports, fun(Is) -> add_new(Is, [Import]) end),
    case each_context(fun(Sidecar, Ctx) ->
                              py_context_setup:apply_imports(Sidecar, Ctx, [Import])
                      end) of
        ok ->
            ok;
        {error, _} = Error when Known ->
            Error;
        {error, _} = Error ->
            _ = py_context_setup:update(imports, fun(Is) -> lists:delete(Import, Is) end),
            Error
    end;
register_import({error, _} = Error, _) ->
    Error;
register_import(_, {error, _} = Error) ->
    Error.

is_imported_as({ok, M}, {ok, F}) ->
    lists:member({M, F}, py_context_setup:imports());
is_imported_as(_, _) ->
    false.

add(Dirs) ->
    _ = py_context_setup:update(paths, fun(Ps) -> add_new(Ps, Dirs) end),
    each_context(fun(Sidecar, Ctx) -> py_context_setup:apply_paths(Sidecar, Ctx, Dirs) end).

%% Old, then each of New not in it yet, in order.
add_new(Old, New) ->
    lists:foldl(fun(X, Acc) ->
                        case lists:member(X, Acc) of
                            true -> Acc;
                            false -> Acc ++ [X]
                        end
                end, Old, New).

%% Fun in every running context, one after the other; a context gone
%% meanwhile (or its sidecar) is skipped: the next one of its pool runs the
%% registry when it starts.
each_context(Fun) ->
    lists:foldl(fun({_Pid, Sidecar, Ctx}, ok) ->
                        case Fun(Sidecar, Ctx) of
                            {error, {unknown_context, _}} -> ok;
                            {error, {python_crashed, _}} -> ok;
                            {error, not_started} -> ok;
                            Other -> Other
                        end;
                   (_, Error) ->
                        Error
                end, ok, py_context:all()).

module(Module) ->
    case py_payload:key(module, Module) of
        {ok, <<"__main__">>} -> {error, {badarg, {module, Module}}};
        {ok, <<>>} -> {error, {badarg, {module, Module}}};
        Other -> Other
    end.

path(Dir) when is_binary(Dir) ->
    {ok, Dir};
path(Dir) when is_list(Dir) ->
    try unicode:characters_to_binary(Dir) of
        D when is_binary(D) -> {ok, D};
        _ -> error
    catch
        error:badarg -> error
    end;
path(Dir) when is_atom(Dir) ->
    {ok, atom_to_binary(Dir, utf8)};
path(_) ->
    error.
