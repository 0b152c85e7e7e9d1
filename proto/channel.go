package proto

import (
	"github.com/erlang-python/erlang_python/etf"
)

// The channels' requests (docs/PROTOCOL.md, "Channels"):
//
//	{chan_open, {ctl, Alias}, Ch, Kind, Max}   answered ok or {error, Reason}
//	{chan_send, Ch} + the message's bytes       no reply
//	{chan_close, Ch, Drop}                      no reply
//
// Ch is the channel's number (a positive integer the BEAM chose), Kind
// `term` or `bytes`, Max its bound in bytes, Drop true when what it holds
// goes too. The sidecar acknowledges what Python took with a '$chan'
// packet, [{Ch, Count, Bytes}], written in C (pool/channel.c).
const (
	TagChanOpen  etf.Atom = "chan_open"
	TagChanSend  etf.Atom = "chan_send"
	TagChanClose etf.Atom = "chan_close"
)

// Channel kinds as the BEAM names them.
const (
	AtomChanTerm  etf.Atom = "term"
	AtomChanBytes etf.Atom = "bytes"
)

// ChanResult is chan_open's {error, Reason} for Reason, an atom.
func ChanResult(reason string) etf.Term {
	return etf.ErrorTuple(etf.Atom(reason))
}
