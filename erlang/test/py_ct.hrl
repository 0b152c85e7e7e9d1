%% Assertions shared by the common_test suites.

%% Expr must match Pattern; the failure shows both and what came instead.
-define(expect(Pattern, Expr),
        (fun() ->
                 case (Expr) of
                     Pattern -> ok;
                     __Got -> ct:fail("~s~n  expected: ~s~n  got: ~p", [??Expr, ??Pattern, __Got])
                 end
         end)()).

-define(equal(Expected, Expr), py_ct:equal(Expected, Expr, ??Expr)).
