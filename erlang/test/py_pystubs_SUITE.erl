%% The Python side of the `erlang' module as users see it (issue 14, point
%% 5): the type stubs shipped in priv compile and name every public name
%% of a running context's `erlang.__all__'; the module docstring lists the
%% API; help(erlang) shows no private helper.
-module(py_pystubs_SUITE).

-include_lib("common_test/include/ct.hrl").
-include("py_ct.hrl").

-export([all/0, init_per_suite/1, end_per_suite/1]).
-export([stub_is_shipped/1, stub_compiles/1, stub_has_every_public_name/1,
         docstring_lists_the_api/1, help_hides_private_helpers/1]).

all() ->
    [stub_is_shipped, stub_compiles, stub_has_every_public_name, docstring_lists_the_api,
     help_hides_private_helpers].

init_per_suite(Config) ->
    py_ct:start([{num_contexts, 1}]),
    [{stub, stub_path()} | Config].

end_per_suite(_Config) ->
    py_ct:stop().

stub_path() ->
    filename:join([code:priv_dir(erlang_python), "python", "erlang-stubs", "__init__.pyi"]).

%% A PEP 561 stub-only package in priv, the same text as pool/py/erlang.pyi.
stub_is_shipped(Config) ->
    Stub = ?config(stub, Config),
    {ok, Shipped} = file:read_file(Stub),
    Source = filename:join([code:lib_dir(erlang_python), "..", "..", "..", "..", "..",
                            "pool", "py", "erlang.pyi"]),
    case file:read_file(Source) of
        {ok, Shipped} -> ok;
        {ok, _} -> ct:fail("~s differs from ~s", [Stub, Source]);
        {error, _} -> {comment, "no source tree beside the build: checked the shipped stub only"}
    end.

%% `python -m py_compile' on the stub, in a context of the sidecar.
stub_compiles(Config) ->
    Stub = unicode:characters_to_binary(?config(stub, Config)),
    Tmp = unicode:characters_to_binary(filename:join(?config(priv_dir, Config), "stub.pyc")),
    ?expect({ok, _}, py:call(py_compile, compile, [Stub],
                             #{cfile => Tmp, doraise => true})).

%% Every name of erlang.__all__ (from a running context) is defined at the
%% top level of the stub.
stub_has_every_public_name(Config) ->
    Ctx = py:context(1),
    ok = py:exec(Ctx, <<"import ast\n"
                        "def stub_names(path):\n"
                        "    tree = ast.parse(open(path).read())\n"
                        "    names = set()\n"
                        "    for node in tree.body:\n"
                        "        if isinstance(node, (ast.ClassDef, ast.FunctionDef)):\n"
                        "            names.add(node.name)\n"
                        "        elif isinstance(node, ast.AnnAssign):\n"
                        "            names.add(node.target.id)\n"
                        "    return sorted(names)\n">>),
    {ok, All} = py:eval(Ctx, <<"sorted(erlang.__all__)">>),
    {ok, Names} = py:eval(Ctx, <<"stub_names(p)">>,
                          #{p => unicode:characters_to_binary(?config(stub, Config))}),
    true = length(All) > 20,
    ?equal([], All -- Names),
    %% and the stub has nothing the module lacks
    {ok, Dir} = py:eval(Ctx, <<"dir(erlang)">>),
    ?equal([], Names -- Dir).

docstring_lists_the_api(_Config) ->
    {ok, Doc} = py:eval(<<"erlang.__doc__">>),
    {ok, All} = py:eval(<<"erlang.__all__">>),
    ?equal([], [N || N <- All, binary:match(Doc, N) =:= nomatch]).

%% pydoc.render_doc(erlang) (what help(erlang) prints): no private helper
%% (`_call', `_ref_get', ...); `_Term' is only named as the base class of
%% Pid, Ref and Opaque.
help_hides_private_helpers(_Config) ->
    {ok, Text} = py:eval(<<"__import__('pydoc').render_doc(erlang, renderer=__import__('pydoc').plaintext)">>),
    {ok, Private} = py:eval(<<"[n for n in dir(erlang) if n.startswith('_') and not n.startswith('__')]">>),
    true = lists:member(<<"_ref_get">>, Private),
    true = lists:member(<<"_call">>, Private),
    Shown = [N || N <- Private -- [<<"_Term">>],
                  binary:match(Text, <<"    ", N/binary, "(">>) =/= nomatch
                      orelse binary:match(Text, <<" ", N/binary, " = ">>) =/= nomatch],
    ?equal([], Shown),
    nomatch = binary:match(Text, <<"_ref_get">>),
    nomatch = re:run(Text, <<"(^|[^A-Za-z0-9])_call">>), % async_call is public
    %% the public API is documented
    [match = case binary:match(Text, <<"    ", N/binary>>) of nomatch -> N; _ -> match end
     || N <- [<<"call">>, <<"send">>, <<"whereis">>, <<"state_get">>, <<"SharedDict">>]].
