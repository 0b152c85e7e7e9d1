%% The doc chunks (EEP-48) that rebar3's post-compile hook makes
%% (scripts/doc-chunks.escript): what erl's h(py, call) and iex's h :py.call show.
-module(py_docs_tests).
-include_lib("eunit/include/eunit.hrl").

%% Modules whose every exported function (but behaviour callbacks) must have a doc.
-define(PUBLIC, [py, py_context_router, py_context, py_semaphore, py_state,
                 py_import, py_preload, erlang_python]).

chunk_found_test() ->
    ?assertMatch({ok, {docs_v1, _, erlang, <<"application/erlang+html">>, _, _, _}},
                 code:get_doc(py)).

call_3_documented_test() ->
    {ok, Docs} = code:get_doc(py),
    ?assertMatch(#{<<"en">> := [_ | _]}, doc_of(Docs, call, 3)),
    %% what h(py, call) prints: the spec and the text
    Text = unicode:characters_to_list(render(call, 3, Docs)),
    ?assertNotEqual(nomatch, string:find(Text, "-spec call(")),
    ?assertNotEqual(nomatch, string:find(Text, "Module.Function(*Args)")).

module_documented_test() ->
    {ok, {docs_v1, _, _, _, #{<<"en">> := [_ | _]}, _, _}} = code:get_doc(py).

every_export_documented_test_() ->
    [{atom_to_list(M), fun() -> ?assertEqual([], undocumented(M)) end} || M <- ?PUBLIC].

undocumented(M) ->
    {ok, Docs} = code:get_doc(M),
    Callbacks = lists:append([B:behaviour_info(callbacks)
                              || {behaviour, Bs} <- M:module_info(attributes), B <- Bs]),
    [{F, A} || {F, A} <- M:module_info(exports), F =/= module_info,
               not lists:member({F, A}, Callbacks),   % the behaviour documents them
               not documented(doc_of(Docs, F, A))].

documented(#{<<"en">> := [_ | _]}) -> true;
documented(_) -> false.

doc_of({docs_v1, _, _, _, _, _, Entries}, F, A) ->
    case [Doc || {{function, F1, A1}, _, _, Doc, _} <- Entries, F1 =:= F, A1 =:= A] of
        [Doc] -> Doc;
        [] -> missing
    end.

%% shell_docs asks its group leader for the encoding: eunit's does not answer.
render(F, A, Docs) ->
    Self = self(),
    Pid = spawn(fun() ->
                        group_leader(whereis(user), self()),
                        Self ! {self(), shell_docs:render(py, F, A, Docs)}
                end),
    receive {Pid, Text} -> Text after 5000 -> error(render_timeout) end.
