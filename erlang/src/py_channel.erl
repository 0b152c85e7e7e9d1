%% @doc Channels of Erlang terms, from Erlang to Python (API.md section 8,
%% docs/channels.md). `{ok, Ch} = py_channel:new()', `py_channel:send(Ch,
%% Term)' (`ok | busy'), `py_channel:close(Ch)'; Python takes the handle as
%% an argument and receives with `erlang.Channel(Ch)': `receive()',
%% `try_receive()', `await async_receive()', iteration until closed
%% (`erlang.ChannelClosed').
%%
%% A channel lives in the sidecar, is owned by the process that made it (it
%% is closed, what it holds dropped, when that process exits) and is closed
%% when the sidecar restarts: sends then answer `{error, closed}'.
-module(py_channel).

-export([new/0, new/1, send/2, close/1, info/1]).

-export_type([channel/0, opts/0]).

-type channel() :: py_channels:handle().
-type opts() :: #{max_size => pos_integer(), sidecar => atom()}.
%% `max_size': the bytes (of `term_to_binary') queued at most, default
%% 64 MiB; `sidecar': default `default'.

-define(DEFAULT_MAX, 64 * 1024 * 1024).

%% @doc A channel with the default bound (64 MiB queued).
-spec new() -> {ok, channel()} | {error, term()}.
new() ->
    new(#{}).

%% @doc A channel with options (see {@link opts()}); `{error, {badarg,
%% What}}' for a bad one.
-spec new(opts()) -> {ok, channel()} | {error, term()}.
new(Opts) ->
    case py_channels:opts(Opts, ?DEFAULT_MAX) of
        {ok, Max, Sidecar} -> py_channels:new(?MODULE, term, Sidecar, Max);
        {error, _} = Error -> Error
    end.

%% @doc Send `Term' to Python: `ok', `busy' when the channel is full (its
%% queued bytes and this message's would pass `max_size'; nothing is sent),
%% `{error, closed}' once the channel is closed.
-spec send(channel(), term()) -> ok | busy | {error, closed}.
send(Ch, Term) ->
    py_channels:send(Ch, term_to_binary(Term)).

%% @doc Close the channel: Python takes what it holds, then gets
%% `erlang.ChannelClosed'.
-spec close(channel()) -> ok.
close(Ch) ->
    py_channels:close(Ch).

%% @doc `#{size, count, max_size, closed}' (see {@link py_channels:info/1}).
-spec info(channel()) -> map().
info(Ch) ->
    py_channels:info(Ch).
