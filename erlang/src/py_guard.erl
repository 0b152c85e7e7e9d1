%% @doc Which processes Python may reach with `erlang.send' and
%% `erlang.whereis' (API.md section 5: no Python code may stop the BEAM).
%%
%% A message to `init' (`{stop, stop}'), to `application_controller' or to
%% another process of the runtime system can stop the VM, so Python may not
%% send to them: to the names that the `kernel' and `stdlib' applications
%% and the runtime register (`init', `erl_prim_loader', `code_server',
%% `logger'...), nor to the processes registered under them. Such a send is
%% dropped (with a warning) or, with `erlang.send(..., check=True)', raises
%% in Python; `erlang.whereis' gives None for these names.
%%
%% The set is made once per VM, at the first use, and kept in
%% `persistent_term' (a map of names and pids): a check is one map lookup.
%% A pid of such a process that Erlang code hands to Python is refused too.
%% Pids come from Erlang: an `erlang.Pid' made in Python from bytes is not
%% supported, and only the processes above are refused for it.
-module(py_guard).

-export([ensure/0, may_send/1, denied_names/0]).

-define(KEY, {?MODULE, denied}).

%% Registered by the runtime or by kernel outside kernel.app's list.
-define(RUNTIME, [init, erl_prim_loader, erts_code_purger, erl_signal_server, user,
                  standard_error, standard_error_sup, kernel_safe_sup, logger_proxy,
                  socket_registry, global_group_check, application_controller]).

%% @doc Make the set now (`py_callback' does at the application's start),
%% so that no call from Python pays for it.
-spec ensure() -> ok.
ensure() ->
    _ = denied(),
    ok.

%% @doc Whether Python may send to `Dest', a pid or a registered name.
-spec may_send(term()) -> boolean().
may_send(Dest) when is_pid(Dest); is_atom(Dest) ->
    not maps:is_key(Dest, denied());
may_send(_Dest) ->
    false.

%% @doc The registered names Python may not send to nor look up.
-spec denied_names() -> [atom()].
denied_names() ->
    lists:usort(?RUNTIME ++ app_names(kernel) ++ app_names(stdlib)).

denied() ->
    case persistent_term:get(?KEY, undefined) of
        undefined ->
            Names = denied_names(),
            Denied = maps:from_list([{N, true} || N <- Names] ++
                                    [{P, true} || N <- Names, P <- [whereis(N)], is_pid(P)]),
            persistent_term:put(?KEY, Denied),
            Denied;
        Denied ->
            Denied
    end.

app_names(App) ->
    _ = application:load(App),
    case application:get_key(App, registered) of
        {ok, Names} -> Names;
        undefined -> []
    end.
