%% API.md section 6, the `erlang' module's NIF 2.x names: hasattr and
%% AttributeError for registered functions only, and the exception
%% classes, through the port into real Python (the schedule markers:
%% py_schedule_SUITE).
-module(py_erlmod_SUITE).

-include_lib("common_test/include/ct.hrl").
-include("py_ct.hrl").

-export([all/0, init_per_suite/1, end_per_suite/1]).
-export([hasattr_registered/1, from_import/1, attribute_error/1, underscore_names/1,
         exception_classes/1]).

all() ->
    [hasattr_registered, from_import, attribute_error, underscore_names, exception_classes].

init_per_suite(Config) ->
    py_ct:start([{num_contexts, 2}]),
    ok = py:register_function(erlmod_add, fun([A, B]) -> A + B end),
    Config.

end_per_suite(_Config) ->
    _ = py:unregister_function(erlmod_add),
    py_ct:stop().

%% hasattr is true for a registered name only, and sees registrations and
%% unregistrations made later.
hasattr_registered(_Config) ->
    Ctx = py:context(1),
    ?equal({ok, true}, py:eval(Ctx, <<"hasattr(erlang, 'erlmod_add')">>)),
    ?equal({ok, false}, py:eval(Ctx, <<"hasattr(erlang, 'erlmod_later')">>)),
    ok = py:register_function(erlmod_later, fun([X]) -> X * 3 end),
    ?equal({ok, true}, py:eval(Ctx, <<"hasattr(erlang, 'erlmod_later')">>)),
    ?equal({ok, 6}, py:eval(Ctx, <<"erlang.erlmod_later(2)">>)),
    ok = py:unregister_function(erlmod_later),
    ?equal({ok, false}, py:eval(Ctx, <<"hasattr(erlang, 'erlmod_later')">>)),
    %% the module's own names, and dunder names the import machinery probes
    ?equal({ok, true}, py:eval(Ctx, <<"hasattr(erlang, 'call') and hasattr(erlang, 'schedule_py')">>)),
    ?equal({ok, false}, py:eval(Ctx, <<"hasattr(erlang, '__path__')">>)),
    %% from a Python thread of the context too
    ok = py:exec(Ctx, <<"import threading\n"
                        "def has_in_thread(name):\n"
                        "    box = []\n"
                        "    t = threading.Thread(target=lambda: box.append(hasattr(erlang, name)))\n"
                        "    t.start()\n"
                        "    t.join()\n"
                        "    return box[0]\n">>),
    ?equal({ok, true}, py:call(Ctx, '__main__', has_in_thread, [<<"erlmod_add">>])),
    ?equal({ok, false}, py:call(Ctx, '__main__', has_in_thread, [<<"erlmod_nothing">>])).

%% `from erlang import name' for a registered name; ImportError otherwise.
from_import(_Config) ->
    Ctx = py:context(2),
    ok = py:exec(Ctx, <<"from erlang import erlmod_add\n"
                        "def use_add(a, b):\n"
                        "    return erlmod_add(a, b)\n">>),
    ?equal({ok, 7}, py:call(Ctx, '__main__', use_add, [3, 4])),
    ?expect({error, {'ImportError', _}}, py:exec(Ctx, <<"from erlang import erlmod_missing">>)).

%% An unregistered attribute: AttributeError, naming the attribute; the
%% callback through erlang.call still says not_registered.
attribute_error(_Config) ->
    {error, {'AttributeError', Msg}} = py:eval(<<"erlang.erlmod_missing">>),
    match = re:run(Msg, <<"^module 'erlang' has no attribute 'erlmod_missing'">>, [{capture, none}]),
    match = re:run(Msg, <<"py:register_function">>, [{capture, none}]),
    ?expect({error, {'AttributeError', _}}, py:eval(<<"erlang.erlmod_missing(1)">>)),
    ?expect({ok, {<<"error">>, {<<"not_registered">>, <<"erlmod_missing">>}}},
            py_try_call(<<"erlmod_missing">>)).

py_try_call(Name) ->
    Ctx = py:context(1),
    ok = py:exec(Ctx, <<"def try_call(name):\n"
                        "    try:\n"
                        "        return erlang.call(name)\n"
                        "    except erlang.Error as e:\n"
                        "        return (e.class_, e.reason)\n">>),
    py:call(Ctx, '__main__', try_call, [Name]).

%% Names that start with _ are never asked of the BEAM: hasattr is false
%% for them even when registered; erlang.call reaches them.
underscore_names(_Config) ->
    ok = py:register_function('_erlmod_private', fun([]) -> secret end),
    try
        ?equal({ok, false}, py:eval(<<"hasattr(erlang, '_erlmod_private')">>)),
        ?equal({ok, <<"secret">>}, py:eval(<<"erlang.call('_erlmod_private')">>))
    after
        ok = py:unregister_function('_erlmod_private')
    end.

%% The exception classes and their bases, as in the NIF 2.x.
exception_classes(_Config) ->
    Ctx = py:context(1),
    ?equal({ok, true}, py:eval(Ctx, <<"issubclass(erlang.Error, Exception)">>)),
    ?equal({ok, true}, py:eval(Ctx, <<"issubclass(erlang.ProcessError, Exception)">>)),
    ?equal({ok, true}, py:eval(Ctx, <<"issubclass(erlang.SuspensionRequired, BaseException)">>)),
    ?equal({ok, false}, py:eval(Ctx, <<"issubclass(erlang.SuspensionRequired, Exception)">>)),
    ?equal({ok, true}, py:eval(Ctx, <<"issubclass(erlang.AtomLimitError, Exception)">>)),
    ?equal({ok, true}, py:eval(Ctx, <<"isinstance(erlang.ScheduleMarker, type)">>)),
    ?equal({ok, {<<"error">>, <<"why">>}},
           py:eval(Ctx, <<"(lambda e: (e.class_, e.reason))(erlang.Error('error', 'why'))">>)),
    %% an Erlang exception in a callback is an erlang.Error
    ok = py:register_function(erlmod_boom, fun([]) -> error(boom) end),
    try
        ok = py:exec(Ctx, <<"def catch_boom():\n"
                            "    try:\n"
                            "        erlang.erlmod_boom()\n"
                            "    except erlang.Error as e:\n"
                            "        return (type(e).__name__, e.class_, e.reason)\n">>),
        ?equal({ok, {<<"Error">>, <<"error">>, <<"boom">>}}, py:call(Ctx, '__main__', catch_boom, []))
    after
        ok = py:unregister_function(erlmod_boom)
    end.
