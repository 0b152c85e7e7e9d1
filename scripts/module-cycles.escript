#!/usr/bin/env escript
%% -*- erlang -*-
%% Fails when modules of the Erlang application call each other in a circle
%% (a strongly connected component of the module call graph, from xref).
%%
%%   escript scripts/module-cycles.escript erlang/_build/default/lib/erlang_python/ebin
main([Ebin]) ->
    {ok, _} = xref:start(?MODULE),
    ok = xref:set_default(?MODULE, [{warnings, false}, {verbose, false}]),
    {ok, _} = xref:add_directory(?MODULE, Ebin),
    {ok, Calls} = xref:q(?MODULE, "strict(ME || AM)"),
    G = digraph:new(),
    _ = [begin
             digraph:add_vertex(G, A),
             digraph:add_vertex(G, B),
             digraph:add_edge(G, A, B)
         end || {A, B} <- Calls],
    case [C || C <- digraph_utils:strong_components(G), length(C) > 1] of
        [] ->
            io:format("module cycles: none (~b calls between modules)~n", [length(Calls)]);
        Circles ->
            _ = [io:format("module cycle: ~p~n  calls: ~p~n",
                           [lists:sort(C), [{A, B} || {A, B} <- Calls, lists:member(A, C),
                                                      lists:member(B, C)]])
                 || C <- Circles],
            halt(1)
    end;
main(_) ->
    io:format(standard_error, "usage: module-cycles.escript EBIN_DIR~n", []),
    halt(2).
