%% Object references (API.md section 12): a Python object kept in its
%% context, used from Erlang by handle, released with its holder process
%% or py:release/1, and a clear error after a sidecar restart.
-module(py_ref_SUITE).

-include_lib("common_test/include/ct.hrl").
-include("py_ct.hrl").

-export([all/0, init_per_suite/1, end_per_suite/1]).
-export([make_and_use/1, object_without_term/1, other_process_uses_it/1,
         released_with_holder/1, release/1, bad_input/1, stale_after_restart/1]).

all() ->
    [make_and_use, object_without_term, other_process_uses_it, released_with_holder, release,
     bad_input, stale_after_restart].

init_per_suite(Config) ->
    py_ct:start([{num_contexts, 2}]),
    Config.

end_per_suite(_Config) ->
    py_ct:stop().

make_and_use(_Config) ->
    Ctx = py:context(1),
    {ok, Ref} = py:call(Ctx, builtins, list, [[3, 1, 2]], #{return => ref}),
    ?expect(true, py:is_ref(Ref)),
    ?expect(false, py:is_ref({ok, Ref})),
    ?expect({ok, none}, py:call_method(Ref, append, [0])),
    ?expect({ok, none}, py:call_method(Ref, sort, [])),
    ?expect({ok, [0, 1, 2, 3]}, py:to_term(Ref)),
    ?expect({ok, 4}, py:call_method(Ref, '__len__', [])),
    {ok, D} = py:call(Ctx, collections, 'OrderedDict', [], #{return => ref, kwargs => #{a => 1}}),
    ?expect({ok, #{<<"a">> := 1}}, py:to_term(D)),
    {ok, C} = py:call(Ctx, fractions, 'Fraction', [3, 4], #{return => ref}),
    ?expect({ok, 3}, py:getattr(C, numerator)),
    ?expect({ok, 4}, py:getattr(C, <<"denominator">>)),
    ?expect({error, {'AttributeError', _}}, py:getattr(C, no_such_attribute)),
    ?expect({error, {'AttributeError', _}}, py:call_method(C, no_such_method, [])).

%% An object that has no term: only the reference can carry it.
object_without_term(_Config) ->
    Ctx = py:context(2),
    ?expect({error, {'TypeError', _}}, py:call(Ctx, threading, 'Lock', [])),
    {ok, L} = py:call(Ctx, threading, 'Lock', [], #{return => ref}),
    ?expect({ok, true}, py:call_method(L, acquire, [])),
    ?expect({ok, true}, py:call_method(L, locked, [])),
    ?expect({ok, none}, py:call_method(L, release, [])),
    ?expect({error, {'TypeError', _}}, py:to_term(L)).

%% Any process may use a handle while its holder lives.
other_process_uses_it(_Config) ->
    {ok, Ref} = py:call(py:context(1), builtins, list, [[]], #{return => ref}),
    Self = self(),
    spawn(fun() -> Self ! {appended, py:call_method(Ref, append, [42])} end),
    ?expect({appended, {ok, none}}, receive {appended, _} = M -> M after 5000 -> timeout end),
    ?expect({ok, [42]}, py:to_term(Ref)).

%% The object goes when the process that made it exits.
released_with_holder(_Config) ->
    Self = self(),
    Holder = spawn(fun() ->
                           {ok, R} = py:call(py:context(1), builtins, list, [[1]], #{return => ref}),
                           Self ! {ref, R},
                           receive stop -> ok end
                   end),
    Ref = receive {ref, R} -> R after 5000 -> ct:fail(no_ref) end,
    ?expect({ok, [1]}, py:to_term(Ref)),
    Holder ! stop,
    py_ct:wait_until(fun() -> element(1, py:to_term(Ref)) =:= error end, 5000, "the object to go"),
    ?expect({error, {'KeyError', _}}, py:call_method(Ref, append, [2])).

release(_Config) ->
    {ok, Ref} = py:call(py:context(2), builtins, dict, [], #{return => ref}),
    ?expect(ok, py:release(Ref)),
    ?expect({error, {'KeyError', _}}, py:to_term(Ref)),
    ?expect({error, {'KeyError', _}}, py:release(Ref)).

bad_input(_Config) ->
    ?expect({error, {badarg, {opts, {return, value2, _}}}},
            py:call(py:context(1), builtins, list, [], #{return => value2})),
    ?expect({error, {badarg, {ref, not_a_ref}}}, py:to_term(not_a_ref)),
    ?expect({error, {badarg, {ref, _}}}, py:call_method({'$py_ref', x}, append, [1])),
    ?expect({ok, [1]}, py:call(py:context(1), builtins, list, [[1]], #{return => value})).

%% After a sidecar restart the object is gone: a clear error, not a crash.
stale_after_restart(_Config) ->
    {ok, Ref} = py:call(py:context(1), builtins, list, [[1]], #{return => ref}),
    Port = py_ct:kill_sidecar(),
    py_ct:wait_restarted(Port),
    ?expect({error, {stale_ref, _}}, py:to_term(Ref)),
    ?expect({error, {stale_ref, _}}, py:call_method(Ref, append, [1])),
    {ok, Ref2} = py:call(py:context(1), builtins, list, [[2]], #{return => ref}),
    ?expect({ok, [2]}, py:to_term(Ref2)).
