%% @doc The erlang_python application: checks the environment (see
%% {@link py_config}), finds the sidecar and its Python ({@link py_python};
%% `{error, Reason}' says what it looked for) and starts {@link erlang_python_sup}, which returns
%% once the default sidecar serves calls.
-module(erlang_python_app).

-behaviour(application).

-export([start/2, stop/1]).

%% @private
-spec start(application:start_type(), term()) -> {ok, pid()} | {error, term()}.
start(_StartType, _StartArgs) ->
    case py_config:validate() of
        ok ->
            %% the sidecar and its Python found first, for an error that says
            %% what was looked for (py_python)
            case py_port_exe:launch(py_config:get(default, python)) of
                {ok, _} ->
                    erlang_python_sup:start_link();
                {error, Reason} = Error ->
                    logger:error("erlang_python: ~ts", [py_python:format_error(Reason)]),
                    Error
            end;
        {error, _} = Error ->
            Error
    end.

%% @private
-spec stop(term()) -> ok.
stop(_State) ->
    %% py_import's paths and imports, py_preload's code
    ok = py_context_setup:forget(),
    %% every sidecar's pool specs, routes and options, the default's too
    py_sidecars_sup:forget_all().
