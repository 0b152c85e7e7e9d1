%% @doc The erlang_python application.
-module(erlang_python_app).

-behaviour(application).

-export([start/2, stop/1]).

-spec start(application:start_type(), term()) -> {ok, pid()} | {error, term()}.
start(_StartType, _StartArgs) ->
    erlang_python_sup:start_link().

-spec stop(term()) -> ok.
stop(_State) ->
    ok.
