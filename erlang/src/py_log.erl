%% @doc The sidecar's log lines, given to the logger (docs/PROTOCOL.md, "Log
%% packets"): Python's `print' and `sys.stderr', tracebacks, the output of C
%% code and subprocesses on fd 1 and fd 2, and pyport's own messages.
%%
%% There is one per sidecar (see {@link py_sidecar_sup}). The port owner
%% forwards each `'$log'' packet here undecoded ({@link forward/3}), so a
%% flood of lines costs it one message per packet of many lines. This
%% process decodes a packet, logs its lines and then acknowledges it to the
%% sidecar (`{log_ack, 1}'), which sends at most two packets before an
%% acknowledgement and drops, and counts, what goes beyond one more batch:
%% so the lines in the BEAM, in this mailbox or the owner's, stay bounded
%% whatever Python writes, and a logger that is slow (its handlers in sync
%% mode) slows the lines, never the replies; a packet that took 200 µs or
%% more to log is acknowledged nine times as long after it, and acks go
%% at most one in 5 ms while packets come faster, so a flood takes
%% about a tenth of a scheduler at most. The count of lines dropped is
%% logged, at warning, when output resumes (at most one such line a
%% second); lines of a level the logger does not let through are not
%% counted (the sidecar counts drops by level).
%%
%% Events have no domain, so OTP's default handler shows them: `print'
%% (stdout, fd 1) at notice, stderr (and fd 2) at warning, the traceback of
%% a call that returned `{error, _}' to its caller at info (the caller has
%% the error), one that nobody receives (a cast) at error, pyport's
%% messages at their own level. Metadata: `py_context' (the context's
%% number, `sidecar' for pyport's own lines, `undefined' for a Python thread
%% of no context), `pid' (the process whose request wrote the line, when
%% known), `py_sidecar' (for a sidecar other than `default'), and
%% `py_dropped' on the line that reports dropped lines.
-module(py_log).

-behaviour(gen_server).

-export([start_link/1, forward/3]).
-export([init/1, handle_call/3, handle_cast/2, handle_info/2]).

-define(DEFAULT, default).
%% A packet whose lines took this long to log (µs) is acknowledged nine
%% times as long after.
-define(PACE_US, 200).
%% Acks go at most one in this many µs (while packets come faster, on a
%% flood): each costs wake-ups of this process, the port owner and the
%% sidecar's reader, which on a small machine is CPU the other contexts
%% need.
-define(MIN_GAP_US, 5000).
%% An ack waits this long at most.
-define(MAX_DELAY_MS, 1000).

%% @doc Start sidecar `Sidecar''s log process.
-spec start_link(atom()) -> {ok, pid()} | {error, term()}.
start_link(Sidecar) ->
    gen_server:start_link({local, py_instance:name(?MODULE, Sidecar)}, ?MODULE, Sidecar, []).

%% @doc The body of a `'$log'' packet that came on `Port', for sidecar
%% `Sidecar''s log process; acknowledged at once, its lines lost, when that
%% process is not running. Called by the port owner.
-spec forward(atom(), port(), binary()) -> ok.
forward(Sidecar, Port, Body) ->
    case whereis(py_instance:name(?MODULE, Sidecar)) of
        undefined ->
            _ = py_wire:send(Port, py_wire:log_ack(1)),
            ok;
        Pid ->
            Pid ! {py_log, Port, Body},
            ok
    end.

%%--------------------------------------------------------------------

%% @private
-spec init(atom()) -> {ok, map()}.
init(Sidecar) ->
    Meta = case Sidecar of
               ?DEFAULT -> #{};
               _ -> #{py_sidecar => Sidecar}
           end,
    {ok, #{sidecar => Sidecar, label => py_instance:label(Sidecar), meta => Meta,
           dropped => 0, timer => undefined,
           last_ack => erlang:monotonic_time(microsecond) - ?MIN_GAP_US}}.

%% @private
-spec handle_call(term(), gen_server:from(), map()) -> {reply, {error, unknown_call}, map()}.
handle_call(_Request, _From, State) ->
    {reply, {error, unknown_call}, State}.

%% @private
-spec handle_cast(term(), map()) -> {noreply, map()}.
handle_cast(_Msg, State) ->
    {noreply, State}.

%% @private
-spec handle_info(term(), map()) -> {noreply, map()}.
handle_info({py_log, Port, Body}, State0) ->
    T0 = erlang:monotonic_time(microsecond),
    State = try
                lines(Body, State0)
            catch
                %% a handler's failure is the logger's business; the ack must go
                _:_ -> State0
            end,
    %% At most about a tenth of a scheduler for a flood of lines: a
    %% packet that took long (formatting a line is the logger's caller's
    %% work, this process's) is acknowledged nine times as long after,
    %% and acks go at most one in 5 ms while packets come faster (lines
    %% the logger filters out still cost their decoding and wake-ups). The
    %% sidecar drops, and counts, what comes meanwhile: the other
    %% processes, and the other contexts' threads, get the CPU.
    T1 = erlang:monotonic_time(microsecond),
    Delay = case T1 - T0 of
                T when T >= ?PACE_US -> min(?MAX_DELAY_MS, max(1, 9 * T div 1000));
                _ ->
                    case T1 - maps:get(last_ack, State) of
                        Since when Since < ?MIN_GAP_US ->
                            max(1, (?MIN_GAP_US - max(0, Since)) div 1000);
                        _ -> 0
                    end
            end,
    case Delay of
        0 ->
            {noreply, ack(Port, State)};
        _ ->
            _ = erlang:send_after(Delay, self(), {ack, Port}),
            {noreply, State}
    end;
handle_info({ack, Port}, State) ->
    {noreply, ack(Port, State)};
handle_info(report_dropped, State) ->
    {noreply, report_dropped(State#{timer := undefined})};
handle_info(_Other, State) ->
    {noreply, State}.

ack(Port, State) ->
    _ = py_wire:send(Port, py_wire:log_ack(1)),
    State#{last_ack := erlang:monotonic_time(microsecond)}.

%% Lines dropped are reported, as one count, once a packet comes with none
%% dropped before it (the output resumed), or a second after the first of
%% them, so a flood makes one warning a second, not one a packet. Lines of
%% a level the logger would not let through anyway are no loss: the
%% sidecar counts them by level.
lines(Body, #{label := Label, meta := Meta, dropped := Before} = State) ->
    case py_wire:log_entries(Body) of
        {ok, Dropped, Entries} ->
            N = lists:sum([K || {Level, K} <- Dropped, logger:allow(Level, ?MODULE)]),
            State1 = case N of
                         0 -> report_dropped(State);
                         _ -> wait_report(State#{dropped := Before + N})
                     end,
            lists:foreach(fun(E) -> line(E, Label, Meta) end, Entries),
            State1;
        error ->
            logger:warning("erlang_python: dropped an unreadable log packet of the sidecar~ts "
                           "(~b bytes)", [Label, byte_size(Body)], Meta),
            State
    end.

wait_report(#{timer := undefined} = State) ->
    State#{timer := erlang:send_after(1000, self(), report_dropped)};
wait_report(State) ->
    State.

report_dropped(#{dropped := 0} = State) ->
    State;
report_dropped(#{dropped := N, label := Label, meta := Meta, timer := Timer} = State) ->
    _ = is_reference(Timer) andalso erlang:cancel_timer(Timer),
    logger:warning("erlang_python: ~b log lines of the sidecar~ts were dropped: more came than "
                   "the logger took", [N, Label], Meta#{py_context => sidecar, py_dropped => N}),
    State#{dropped := 0, timer := undefined}.

line({Level, Ctx, Caller, Text}, Label, Meta0) ->
    Meta = case is_pid(Caller) of
               true -> Meta0#{py_context => Ctx, pid => Caller};
               false -> Meta0#{py_context => Ctx}
           end,
    Sep = case binary:match(Text, <<"\n">>) of
              nomatch -> " ";
              _ -> "\n"
          end,
    case Ctx of
        sidecar -> logger:log(Level, "pyport~ts:~ts~ts", [Label, Sep, Text], Meta);
        undefined -> logger:log(Level, "Python~ts:~ts~ts", [Label, Sep, Text], Meta);
        _ -> logger:log(Level, "Python~ts, context ~p:~ts~ts", [Label, Ctx, Sep, Text], Meta)
    end.
