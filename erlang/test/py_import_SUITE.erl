%% API.md section 11, imports, paths and preload (the NIF 2.x shapes):
%% applied to every running context and to each context started later,
%% after a kill -9 of the sidecar too. Real BEAM -> port -> Python.
-module(py_import_SUITE).

-include_lib("common_test/include/ct.hrl").
-include("py_ct.hrl").

-export([all/0, init_per_suite/1, end_per_suite/1, init_per_testcase/2, end_per_testcase/2]).
-export([import_examples/1, import_every_context/1, import_errors/1, add_path_every_context/1,
         path_examples/1, preload_examples/1, preload_new_contexts_only/1, order/1,
         after_kill/1, preload_error/1, forgotten_on_stop/1]).

-define(ENV, [{num_contexts, 2}, {max_restarts, 20}]).

all() ->
    [import_examples, import_every_context, import_errors, add_path_every_context, path_examples,
     preload_examples, preload_new_contexts_only, order, after_kill, preload_error,
     forgotten_on_stop].

init_per_suite(Config) ->
    py_ct:start(?ENV),
    Config.

end_per_suite(_Config) ->
    clean(),
    py_ct:stop().

init_per_testcase(Case, Config) ->
    clean(),
    %% a directory of its own, with a module of its own, per case
    Dir = filename:join(?config(priv_dir, Config), atom_to_list(Case)),
    ok = filelib:ensure_path(Dir),
    Mod = "pyimp_" ++ atom_to_list(Case),
    ok = file:write_file(filename:join(Dir, Mod ++ ".py"), <<"VALUE = 'from ", (list_to_binary(Mod))/binary, "'\n">>),
    [{dir, list_to_binary(Dir)}, {mod, list_to_binary(Mod)} | Config].

end_per_testcase(_Case, _Config) ->
    _ = py_context_router:stop_pool(later),
    clean().

clean() ->
    ok = py_import:clear_imports(),
    ok = py_import:clear_paths(),
    ok = py_preload:clear_code().

%% The NIF docs' import registry examples.
import_examples(_Config) ->
    ok = py_import:ensure_imported(json),
    ok = py_import:ensure_imported(json),                  % idempotent
    ok = py_import:ensure_imported(math, sqrt),
    true = py_import:is_imported(json),
    true = py_import:is_imported(math, sqrt),
    false = py_import:is_imported(unknown_module),
    false = py_import:is_imported(math),
    ?equal([{<<"json">>, all}, {<<"math">>, <<"sqrt">>}], py_import:all_imports()),
    ok = py_import:clear_imports(),
    ?equal([], py_import:all_imports()),
    false = py_import:is_imported(json).

%% A registered import is in sys.modules of every running context, of a
%% pool started later, and of each context's own interpreter.
import_every_context(_Config) ->
    Mod = <<"colorsys">>,
    Loaded = <<"__import__('sys').modules.get(m) is not None">>,
    ok = py_import:ensure_imported(Mod),
    [?equal({ok, true}, py:eval(C, Loaded, #{m => Mod})) || C <- py_context_router:contexts()],
    {ok, Later} = py_context_router:start_pool(later, 2, auto),
    [?equal({ok, true}, py:eval(C, Loaded, #{m => Mod})) || C <- Later].

%% A module that is not there is an error and is not registered; so is a
%% function the module lacks; __main__ and bad names are refused.
import_errors(_Config) ->
    ?expect({error, {'ModuleNotFoundError', _}}, py_import:ensure_imported(no_such_module_xyz)),
    false = py_import:is_imported(no_such_module_xyz),
    ?expect({error, {'AttributeError', _}}, py_import:ensure_imported(math, no_such_function)),
    false = py_import:is_imported(math, no_such_function),
    ?equal({error, {badarg, {module, '__main__'}}}, py_import:ensure_imported('__main__')),
    ?equal({error, {badarg, {module, 42}}}, py_import:ensure_imported(42)),
    ?equal({error, {badarg, {function, {f}}}}, py_import:ensure_imported(math, {f})),
    ?equal({error, {badarg, {path, 42}}}, py_import:add_path(42)),
    ?equal({error, {badarg, {path, 7}}}, py_import:add_paths(["/tmp", 7])),
    ?equal({error, {badarg, {paths, x}}}, py_import:add_paths(x)),
    ?equal([], py_import:all_imports()),
    ?equal([], py_import:all_paths()).

%% add_path makes a module of a temporary directory importable in every
%% running context and in contexts started later; then registering its
%% import works everywhere.
add_path_every_context(Config) ->
    Dir = ?config(dir, Config),
    Mod = ?config(mod, Config),
    Expected = <<"from ", Mod/binary>>,
    Value = <<"__import__(m).VALUE">>,
    [?expect({error, {'ModuleNotFoundError', _}}, py:eval(C, Value, #{m => Mod}))
     || C <- py_context_router:contexts()],
    ok = py_import:add_path(Dir),
    [?equal({ok, Expected}, py:eval(C, Value, #{m => Mod})) || C <- py_context_router:contexts()],
    ok = py_import:ensure_imported(Mod),
    {ok, Later} = py_context_router:start_pool(later, 2, auto),
    [?equal({ok, true}, py:eval(C, <<"__import__('sys').modules.get(m) is not None">>, #{m => Mod}))
     || C <- Later],
    [?equal({ok, Dir}, py:eval(C, <<"__import__('sys').path[0]">>)) || C <- Later].

%% all_paths in the order added; each path goes first in sys.path, once.
path_examples(Config) ->
    Dir = ?config(dir, Config),
    ok = py_import:add_path("/nonexistent/a"),
    ok = py_import:add_paths([<<"/nonexistent/b">>, Dir]),
    ok = py_import:add_path(Dir),
    ?equal([<<"/nonexistent/a">>, <<"/nonexistent/b">>, Dir], py_import:all_paths()),
    Head = <<"__import__('sys').path[:3]">>,
    Count = <<"__import__('sys').path.count(d)">>,
    [begin
         ?equal({ok, [Dir, <<"/nonexistent/b">>, <<"/nonexistent/a">>]}, py:eval(C, Head)),
         ?equal({ok, 1}, py:eval(C, Count, #{d => Dir}))
     end || C <- py_context_router:contexts()],
    {ok, [New]} = py_context_router:start_pool(later, 1, auto),
    ?equal({ok, [Dir, <<"/nonexistent/b">>, <<"/nonexistent/a">>]}, py:eval(New, Head)),
    ok = py_import:clear_paths(),
    ?equal([], py_import:all_paths()).

%% The NIF docs' preload example (a worker context started after
%% set_code) and the API.
preload_examples(_Config) ->
    false = py_preload:has_preload(),
    undefined = py_preload:get_code(),
    Code = <<"\nimport json\nimport os\n\ndef shared_helper(x):\n    return x * 2\n\n"
             "CONFIG = {'debug': True, 'version': '1.0'}\n">>,
    ok = py_preload:set_code(Code),
    true = py_preload:has_preload(),
    ?equal(Code, py_preload:get_code()),
    {ok, [Ctx]} = py_context_router:start_pool(later, 1, worker),
    ?equal({ok, <<"{\"a\": 1}">>}, py:eval(Ctx, <<"json.dumps({'a': 1})">>)),
    ?equal({ok, 10}, py:eval(Ctx, <<"shared_helper(5)">>)),
    ?equal({ok, true}, py:eval(Ctx, <<"CONFIG['debug']">>)),
    ?equal({ok, true}, py:eval(Ctx, <<"__name__ == '__main__'">>)),
    ok = py_preload:set_code(["PRE", <<" = 1\n">>]),       % iolist
    ?equal(<<"PRE = 1\n">>, py_preload:get_code()),
    ?expect({error, {badarg, {code, _}}}, py_preload:set_code(42)),
    ok = py_preload:clear_code(),
    false = py_preload:has_preload(),
    undefined = py_preload:get_code().

%% Only contexts started after set_code run it, in sub-interpreter and
%% worker contexts alike; running ones are left alone.
preload_new_contexts_only(_Config) ->
    ok = py_preload:set_code(<<"PRELOADED = 41 + 1\n">>),
    [?expect({error, {'NameError', _}}, py:eval(C, <<"PRELOADED">>))
     || C <- py_context_router:contexts()],
    {ok, Later} = py_context_router:start_pool(later, 2, auto),
    [?equal({ok, 42}, py:eval(C, <<"PRELOADED">>)) || C <- Later],
    ok = py_context_router:stop_pool(later),
    {ok, Workers} = py_context_router:start_pool(later, 2, worker),
    [?equal({ok, 42}, py:eval(C, <<"PRELOADED">>)) || C <- Workers].

%% Paths, then imports, then preload: the preload code uses the module the
%% registered path holds, and the registered import is there.
order(Config) ->
    ok = py_import:add_path(?config(dir, Config)),
    ok = py_import:ensure_imported(?config(mod, Config)),
    %% the preload code imports nothing: what it sees, the import made
    ok = py_preload:set_code(<<"import sys\nSEEN = [k for k in sys.modules if k.startswith('pyimp_order')]\n">>),
    {ok, [Ctx]} = py_context_router:start_pool(later, 1, auto),
    ?equal({ok, [?config(mod, Config)]}, py:eval(Ctx, <<"SEEN">>)).

%% After a kill -9 of the sidecar, every context (the default pool's, a
%% named pool's) runs the paths, imports and preload code again.
after_kill(Config) ->
    Mod = ?config(mod, Config),
    ok = py_import:add_path(?config(dir, Config)),
    ok = py_import:ensure_imported(Mod),
    ok = py_preload:set_code(<<"import ", Mod/binary, "\nAFTER = ", Mod/binary, ".VALUE\n">>),
    {ok, _} = py_context_router:start_pool(later, 1, auto),
    Port = py_ct:kill_sidecar(),
    py_ct:wait_restarted(Port),
    py_ct:wait_until(fun() -> is_one(py_context_router:pool_contexts(later)) end,
                     30000, "the named pool to come back"),
    {ok, Later} = py_context_router:pool_contexts(later),
    Expected = <<"from ", Mod/binary>>,
    [?equal({ok, Expected}, py:eval(C, <<"AFTER">>)) || C <- py_context_router:contexts() ++ Later],
    ok.

%% Preload code that raises is logged; the context starts all the same.
preload_error(_Config) ->
    ok = py_preload:set_code(<<"X = 1\nraise ValueError('bad preload')\n">>),
    {ok, [Ctx]} = py_context_router:start_pool(later, 1, auto),
    ?equal({ok, 1}, py:eval(Ctx, <<"X">>)),
    ?equal({ok, 2}, py:eval(Ctx, <<"1 + 1">>)).

%% The registry is forgotten when the application stops.
forgotten_on_stop(Config) ->
    ok = py_import:add_path(?config(dir, Config)),
    ok = py_import:ensure_imported(json),
    ok = py_preload:set_code(<<"Y = 1\n">>),
    py_ct:start(?ENV),
    ?equal([], py_import:all_paths()),
    ?equal([], py_import:all_imports()),
    false = py_preload:has_preload(),
    ?expect({error, {'NameError', _}}, py:eval(py:context(1), <<"Y">>)).

is_one({ok, [_]}) -> true;
is_one(_) -> false.
