%% @doc Channels of raw bytes (API.md section 8, docs/channels.md): as
%% {@link py_channel}, but each message is a binary that Python receives as
%% `bytes' (`erlang.ByteChannel(Ch)': `receive_bytes()', `try_receive_bytes()',
%% `await async_receive_bytes()', iteration), with no term encoding.
%%
%% Both ways: Python's `ByteChannel.send_bytes(Data)' sends
%% `{py_byte_channel, Ch, Data}' to the process that made the channel
%% (`erlang.send'), which takes it with {@link recv/2} or {@link
%% try_receive/1}.
-module(py_byte_channel).

-export([new/0, new/1, send/2, recv/1, recv/2, try_receive/1, close/1, info/1]).

-export_type([channel/0]).

-type channel() :: py_channels:handle().

-define(DEFAULT_MAX, 64 * 1024 * 1024).

%% @doc A byte channel bounded to 64 MiB queued.
-spec new() -> {ok, channel()} | {error, term()}.
new() ->
    new(#{}).

%% @doc A byte channel with options `#{max_size => Bytes, sidecar => Name}'.
-spec new(map()) -> {ok, channel()} | {error, term()}.
new(Opts) ->
    case py_channels:opts(Opts, ?DEFAULT_MAX) of
        {ok, Max, Sidecar} -> py_channels:new(?MODULE, bytes, Sidecar, Max);
        {error, _} = Error -> Error
    end.

%% @doc Send `Bytes' to Python: `ok | busy | {error, closed}' as {@link
%% py_channel:send/2}; `{error, {badarg, _}}' for what is no iodata.
-spec send(channel(), iodata()) -> ok | busy | {error, closed | {badarg, string()}}.
send(Ch, Bytes) when is_binary(Bytes); is_list(Bytes) ->
    try py_channels:send(Ch, Bytes)
    catch error:badarg -> {error, {badarg, "Bytes must be iodata"}}
    end;
send(_Ch, _Bytes) ->
    {error, {badarg, "Bytes must be iodata"}}.

%% @doc The next bytes Python sent with `send_bytes', waiting up to 5 s;
%% in the channel's creator only.
-spec recv(channel()) -> {ok, binary()} | {error, timeout}.
recv(Ch) ->
    recv(Ch, 5000).

%% @doc {@link recv/1} waiting up to `Timeout' ms.
-spec recv(channel(), timeout()) -> {ok, binary()} | {error, timeout}.
recv(Ch, Timeout) ->
    Id = py_channels:id(Ch),
    receive
        {py_byte_channel, Id, Bytes} when is_binary(Bytes) -> {ok, Bytes}
    after Timeout ->
        {error, timeout}
    end.

%% @doc The next bytes from Python if some came, else `empty'.
-spec try_receive(channel()) -> {ok, binary()} | empty.
try_receive(Ch) ->
    case recv(Ch, 0) of
        {ok, _} = Ok -> Ok;
        {error, timeout} -> empty
    end.

%% @doc Close the byte channel (see {@link py_channel:close/1}).
-spec close(channel()) -> ok.
close(Ch) ->
    py_channels:close(Ch).

%% @doc See {@link py_channels:info/1}.
-spec info(channel()) -> map().
info(Ch) ->
    py_channels:info(Ch).
