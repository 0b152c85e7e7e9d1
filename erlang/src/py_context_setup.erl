%% @doc What a new context runs before anything else, and the one place that
%% keeps it: the paths and imports of {@link py_import} and the preload code
%% of {@link py_preload} (API.md section 11).
%%
%% The configuration is VM-wide: one for every sidecar and every pool, kept
%% in `persistent_term' (written seldom, read at each context's start), so
%% it survives sidecar restarts; the application forgets it when it stops
%% ({@link forget/0}, from `erlang_python_app:stop/1').
%%
%% {@link run/2} is called by each context process (`py_context:init/1'),
%% once its row is in the context table and before its pid is returned to
%% anyone, so before any call can reach it: paths first (`sys.path'), then
%% imports, then the preload code, executed in the context's `__main__'.
%% A step that fails is logged (level `warning') and the context starts all
%% the same. {@link py_import} writes the configuration before it applies a
%% change to the running contexts, so a context that starts meanwhile gets
%% it one way or the other (both are idempotent).
-module(py_context_setup).

-export([run/2, paths/0, imports/0, preload/0, update/2, forget/0, apply_paths/3,
         apply_imports/3]).

-define(KEY(Item), {?MODULE, Item}).

-type import() :: {binary(), all | binary()}.
-export_type([import/0]).

%% @doc Run the configured paths, imports and preload code in the new
%% context `Ctx' of sidecar `Sidecar'. Nothing is sent when none is set.
-spec run(atom(), pos_integer()) -> ok.
run(Sidecar, Ctx) ->
    Steps = [{paths, paths(), fun apply_paths/3},
             {imports, imports(), fun apply_imports/3},
             {preload, preload(), fun apply_preload/3}],
    lists:foreach(
      fun({_What, Empty, _Fun}) when Empty =:= []; Empty =:= undefined ->
              ok;
         ({What, Value, Fun}) ->
              case Fun(Sidecar, Ctx, Value) of
                  ok ->
                      ok;
                  {error, Reason} ->
                      logger:warning("erlang_python: ~p of new context ~p~ts failed: ~p",
                                     [What, Ctx, py_instance:label(Sidecar), Reason])
              end
      end, Steps).

%% @doc The directories {@link py_import:add_path/1} registered, in order.
-spec paths() -> [binary()].
paths() ->
    persistent_term:get(?KEY(paths), []).

%% @doc The imports {@link py_import:ensure_imported/1} registered, in order.
-spec imports() -> [import()].
imports() ->
    persistent_term:get(?KEY(imports), []).

%% @doc The preload code, or `undefined'.
-spec preload() -> binary() | undefined.
preload() ->
    persistent_term:get(?KEY(preload), undefined).

%% @doc Replace item `Item' with `Fun(Old)', serialised with every other
%% update (a VM-wide lock), and return the new value.
-spec update(paths | imports | preload, fun((term()) -> term())) -> term().
update(Item, Fun) ->
    global:trans({?MODULE, self()},
                 fun() ->
                         Old = case Item of
                                   paths -> paths();
                                   imports -> imports();
                                   preload -> preload()
                               end,
                         New = Fun(Old),
                         New =:= Old orelse put_item(Item, New),
                         New
                 end, [node()]).

put_item(preload, undefined) ->
    persistent_term:erase(?KEY(preload));
put_item(Item, []) ->
    persistent_term:erase(?KEY(Item));
put_item(Item, Value) ->
    persistent_term:put(?KEY(Item), Value).

%% @doc Forget the whole configuration (the application stops).
-spec forget() -> ok.
forget() ->
    _ = [persistent_term:erase(?KEY(I)) || I <- [paths, imports, preload]],
    ok.

%% @doc Put `Paths' first in the context's `sys.path' (the last one first),
%% each once.
-spec apply_paths(atom(), pos_integer(), [binary()]) -> ok | {error, term()}.
apply_paths(Sidecar, Ctx, Paths) ->
    call(Sidecar, Ctx, <<"_add_paths">>, [Paths]).

%% @doc Import `Imports' in the context (and check that each function named
%% is there).
-spec apply_imports(atom(), pos_integer(), [import()]) -> ok | {error, term()}.
apply_imports(Sidecar, Ctx, Imports) ->
    call(Sidecar, Ctx, <<"_import">>, [[{M, function(F)} || {M, F} <- Imports]]).

function(all) -> none;
function(F) -> F.

%% In the context's own `__main__', from which every process-bound
%% environment starts, not in this process's environment.
apply_preload(Sidecar, Ctx, Code) ->
    call(Sidecar, Ctx, <<"_exec_main">>, [Code]).

%% The helpers are in the erlang module (pool/py/erlang.py).
call(Sidecar, Ctx, Function, Args) ->
    case request(Sidecar, call, Ctx, {<<"erlang">>, Function, Args, #{}}) of
        {ok, _} -> ok;
        {error, _} = Error -> Error
    end.

request(Sidecar, Op, Ctx, Payload) ->
    py_request:run(Sidecar, Op, Ctx, Payload, py_config:get(Sidecar, call_timeout)).
