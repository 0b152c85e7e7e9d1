%% @doc Buffers (API.md section 8, docs/channels.md): bytes that Erlang
%% writes and Python reads as a file, `erlang.PyBuffer(Buf)' (`read',
%% `readline', `readlines', iteration by line, `seek', `tell'), whose reads
%% wait until enough bytes came or the buffer is closed. A byte channel
%% underneath: owned by its creator, closed with the sidecar.
-module(py_buffer).

-export([new/0, new/1, write/2, close/1]).

-export_type([buffer/0]).

-type buffer() :: py_channels:handle().

-define(DEFAULT_MAX, 64 * 1024 * 1024).

%% @doc A buffer for data of unknown length (64 MiB waiting at most).
-spec new() -> {ok, buffer()} | {error, term()}.
new() ->
    new(?DEFAULT_MAX).

%% @doc A buffer for `Size' bytes: it holds up to the larger of `Size' and
%% 64 MiB not yet read.
-spec new(pos_integer()) -> {ok, buffer()} | {error, term()}.
new(Size) when is_integer(Size), Size > 0 ->
    py_channels:new(?MODULE, bytes, default, max(Size, ?DEFAULT_MAX));
new(_Size) ->
    {error, {badarg, "Size must be a positive integer"}}.

%% @doc Append `Data': `ok', `busy' when what Python has not read yet and
%% `Data' pass the buffer's bound (nothing is written), `{error, closed}'
%% after {@link close/1}.
-spec write(buffer(), iodata()) -> ok | busy | {error, closed | {badarg, string()}}.
write(Buf, Data) when is_binary(Data); is_list(Data) ->
    try py_channels:send(Buf, Data)
    catch error:badarg -> {error, {badarg, "Data must be iodata"}}
    end;
write(_Buf, _Data) ->
    {error, {badarg, "Data must be iodata"}}.

%% @doc The end of the data: Python's reads return what is left, then `b""'.
-spec close(buffer()) -> ok.
close(Buf) ->
    py_channels:close(Buf).
