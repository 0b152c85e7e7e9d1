%% @doc Slots: large request payloads and results go through a file in shared
%% memory (`/dev/shm') instead of the port's pipe (docs/PROTOCOL.md).
%%
%% A pipe carries about 0.5 GiB/s on these machines; writing into a file whose
%% pages are already there, and reading it back, is several times faster. So
%% each process that sends a payload of {@link min_size/0} bytes or more gets
%% a slot: a file of its own in the sidecar's slot directory, kept open (raw
%% files belong to the process that opened them) in its process dictionary and
%% reused, so that its pages stay allocated. The sidecar maps the file to read
%% the request, and writes a large result back into it.
%%
%% A slot is given up (closed and deleted) when a call times out or the sidecar
%% dies, since the sidecar may still use it, and after a call that made it
%% larger than {@link max_kept/0} bytes, so that no process keeps much shared
%% memory. At most {@link max_slots/0} slots exist at once; beyond, payloads
%% go through the pipe. The slots of dead processes are deleted by
%% {@link sweep/0}, which `py_sidecar' runs periodically and a process that
%% finds no free slot runs too; the directory goes with the sidecar.
%%
%% Each sidecar has its own directory (under `{py_slot, Sidecar, dir}'); the
%% functions without a sidecar argument are for the default one. A process
%% has one slot at a time: a call to another sidecar replaces it.
-module(py_slot).

-export([open_dir/0, close_dir/0, sweep/0, min_size/0, max_kept/0, max_slots/0, count/0]).
-export([put/1, read/1, done/1, drop/0]).
-export([open_dir/1, close_dir/1, sweep/1, count/1, put/2, min_size/1]).

-compile({no_auto_import, [put/2]}).

-define(DEFAULT, default).
-define(DIR_KEY(Sidecar), {?MODULE, Sidecar, dir}).
-define(SLOT, '$py_slot').
-define(MAX_KEPT, 16777216).      % 16 MiB
-define(MAX_SLOTS, 32).
-define(ROOT, "/dev/shm").

-record(slot, {dir :: binary(), count :: atomics:atomics_ref(), path :: binary(), fd :: file:fd(),
               size = 0 :: non_neg_integer()}).

%% @doc Payloads of this many bytes or more go through a slot, and results
%% that large come back in it: the sidecar's `slot_min', from its `info' at
%% start-up; `infinity' when no sidecar runs.
-spec min_size() -> pos_integer() | infinity.
min_size() ->
    min_size(?DEFAULT).

%% @doc {@link min_size/0} of sidecar `Sidecar'.
-spec min_size(atom()) -> pos_integer() | infinity.
min_size(Sidecar) ->
    py_instance:slot_min(Sidecar).

%% @doc A slot larger than this after a call is given up.
-spec max_kept() -> pos_integer().
max_kept() -> ?MAX_KEPT.

%% @doc At most this many slots exist at once.
-spec max_slots() -> pos_integer().
max_slots() -> ?MAX_SLOTS.

%% @doc How many slots exist.
-spec count() -> non_neg_integer().
count() ->
    count(?DEFAULT).

%% @doc How many slots exist in sidecar `Sidecar''s directory.
-spec count(atom()) -> non_neg_integer().
count(Sidecar) ->
    case persistent_term:get(?DIR_KEY(Sidecar), undefined) of
        {_Dir, Count} -> atomics:get(Count, 1);
        undefined -> 0
    end.

%% @doc Create a fresh slot directory (mode 0700) for a new sidecar; without
%% a writable `/dev/shm' there are no slots and everything goes through the
%% pipe.
-spec open_dir() -> {ok, binary()} | {error, term()}.
open_dir() ->
    open_dir(?DEFAULT).

%% @doc {@link open_dir/0} for a new OS process of sidecar `Sidecar'.
-spec open_dir(atom()) -> {ok, binary()} | {error, term()}.
open_dir(Sidecar) ->
    close_dir(Sidecar),
    remove_stale(),
    Dir = iolist_to_binary(io_lib:format("~s/erlang_python-~s-~b",
                                         [?ROOT, os:getpid(), erlang:unique_integer([positive])])),
    case file:make_dir(Dir) of
        ok ->
            case file:change_mode(Dir, 8#700) of
                ok ->
                    persistent_term:put(?DIR_KEY(Sidecar), {Dir, atomics:new(1, [{signed, true}])}),
                    {ok, Dir};
                {error, _} = Error ->
                    _ = file:del_dir(Dir),
                    Error
            end;
        {error, _} = Error ->
            Error
    end.

%% The directories of BEAMs that are gone and could not clean up (killed along
%% with their sidecar). Only where /proc tells which processes exist.
remove_stale() ->
    case filelib:is_dir("/proc/self") of
        true ->
            Own = os:getpid(),
            _ = [file:del_dir_r(Dir)
             || Dir <- filelib:wildcard(?ROOT ++ "/erlang_python-*-*"),
                [_, OsPid | _] <- [string:split(filename:basename(Dir), "-", all)],
                OsPid =/= Own, not filelib:is_dir("/proc/" ++ OsPid)],
            ok;
        false ->
            ok
    end.

%% @doc Delete the slot directory and every slot in it.
-spec close_dir() -> ok.
close_dir() ->
    close_dir(?DEFAULT).

%% @doc Delete sidecar `Sidecar''s slot directory.
-spec close_dir(atom()) -> ok.
close_dir(Sidecar) ->
    case persistent_term:get(?DIR_KEY(Sidecar), undefined) of
        undefined ->
            ok;
        {Dir, _Count} ->
            _ = persistent_term:erase(?DIR_KEY(Sidecar)),
            _ = file:del_dir_r(Dir),
            ok
    end.

%% @doc Delete the slots of processes that are gone. Slot files are named
%% after their process, `<0.123.0>.N'.
-spec sweep() -> non_neg_integer().
sweep() ->
    sweep(?DEFAULT).

%% @doc {@link sweep/0} in sidecar `Sidecar''s directory.
-spec sweep(atom()) -> non_neg_integer().
sweep(Sidecar) ->
    case persistent_term:get(?DIR_KEY(Sidecar), undefined) of
        undefined ->
            0;
        {Dir, Count} ->
            Names = case file:list_dir(Dir) of
                        {ok, L} -> L;
                        {error, _} -> []
                    end,
            %% whoever deletes a file counts it out, so a drop racing the
            %% sweep never counts twice
            Swept = length([ok || Name <- Names, not owner_alive(Name),
                                  file:delete(filename:join(Dir, Name)) =:= ok]),
            atomics:sub(Count, 1, Swept),
            Swept
    end.

owner_alive(Name) ->
    case string:split(Name, ">") of
        [Pid, _] ->
            try is_process_alive(list_to_pid(Pid ++ ">"))
            catch error:badarg -> false
            end;
        _ ->
            false
    end.

%% @doc Write a payload into the caller's slot: `{ok, Path}', or `none' when
%% there is no slot to be had (then the payload goes through the pipe).
-spec put(iodata()) -> {ok, binary()} | none.
put(Data) ->
    put(?DEFAULT, Data).

%% @doc {@link put/1} for a request to sidecar `Sidecar'.
-spec put(atom(), iodata()) -> {ok, binary()} | none.
put(Sidecar, Data) ->
    case slot(Sidecar) of
        #slot{fd = Fd, path = Path, size = Size} = S ->
            case file:pwrite(Fd, 0, Data) of
                ok ->
                    erlang:put(?SLOT, S#slot{size = max(Size, iolist_size(Data))}),
                    {ok, Path};
                {error, _} ->
                    drop(),
                    none
            end;
        none ->
            none
    end.

%% @doc Read a result of `Len' bytes that the sidecar wrote into the slot.
-spec read(non_neg_integer()) -> {ok, binary()} | {error, term()}.
read(Len) ->
    case erlang:get(?SLOT) of
        #slot{fd = Fd, size = Size} = S ->
            erlang:put(?SLOT, S#slot{size = max(Size, Len)}),
            case file:pread(Fd, 0, Len) of
                {ok, Bin} when byte_size(Bin) =:= Len -> {ok, Bin};
                {ok, Bin} -> {error, {short_slot, byte_size(Bin), Len}};
                eof -> {error, {short_slot, 0, Len}};
                {error, _} = Error -> Error
            end;
        undefined ->
            {error, no_slot}
    end.

%% @doc The call that used the slot is over: keep the slot unless it grew
%% too large (or `Ok' is false: the sidecar may still use it).
-spec done(boolean()) -> ok.
done(true) ->
    case erlang:get(?SLOT) of
        #slot{size = Size} when Size > ?MAX_KEPT -> drop();
        _ -> ok
    end;
done(false) ->
    drop().

%% @doc Give the caller's slot up: close and delete it.
-spec drop() -> ok.
drop() ->
    case erlang:erase(?SLOT) of
        #slot{fd = Fd, path = Path, count = Count} ->
            _ = file:close(Fd),
            case file:delete(Path) of
                ok -> atomics:sub(Count, 1, 1);
                {error, _} -> ok % swept, or its directory is gone
            end;
        undefined ->
            ok
    end.

%% The caller's slot in the current directory, made if need be.
slot(Sidecar) ->
    Current = persistent_term:get(?DIR_KEY(Sidecar), undefined),
    case {erlang:get(?SLOT), Current} of
        {#slot{dir = Dir} = S, {Dir, _}} ->
            S;
        {Old, _} ->
            Old =:= undefined orelse drop(), % a slot of a sidecar now gone, or of another
            new_slot(Sidecar, Current, true)
    end.

new_slot(_Sidecar, undefined, _) ->
    none;
new_slot(Sidecar, {Dir, Count} = Current, SweepIfFull) ->
    case atomics:add_get(Count, 1, 1) =< ?MAX_SLOTS of
        true ->
            Path = iolist_to_binary([Dir, $/, pid_to_list(self()), $.,
                                     integer_to_list(erlang:unique_integer([positive]))]),
            case file:open(Path, [raw, binary, read, write]) of
                {ok, Fd} ->
                    S = #slot{dir = Dir, count = Count, path = Path, fd = Fd},
                    erlang:put(?SLOT, S),
                    S;
                {error, _} ->
                    atomics:sub(Count, 1, 1),
                    none
            end;
        false ->
            atomics:sub(Count, 1, 1),
            case SweepIfFull andalso sweep(Sidecar) > 0 of
                true -> new_slot(Sidecar, Current, false);
                false -> none
            end
    end.
