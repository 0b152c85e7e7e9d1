%% @doc The erlang_python application: checks the environment (see
%% {@link py_config}) and starts {@link erlang_python_sup}, which returns
%% once the default sidecar serves calls.
-module(erlang_python_app).

-behaviour(application).

-export([start/2, stop/1]).

%% @private
-spec start(application:start_type(), term()) -> {ok, pid()} | {error, term()}.
start(_StartType, _StartArgs) ->
    case py_config:validate() of
        ok -> erlang_python_sup:start_link();
        {error, _} = Error -> Error
    end.

%% @private
-spec stop(term()) -> ok.
stop(_State) ->
    %% py_import's paths and imports, py_preload's code
    ok = py_context_setup:forget(),
    %% every sidecar's pool specs, routes and options, the default's too
    py_sidecars_sup:forget_all().
