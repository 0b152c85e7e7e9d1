package bridge

import (
	"github.com/erlang-python/erlang_python/etf"
	"github.com/erlang-python/erlang_python/proto"
)

// Channels is a Pool that has the sidecar's channels (docs/channels.md):
// queues that the BEAM fills and Python empties. A Pool that is not one
// answers chan_open with {error, no_channels} and drops the rest.
type Channels interface {
	// ChanOpen opens channel id of the kind (proto.AtomChanTerm or
	// AtomChanBytes), bounded to max bytes. Its error's text is an atom
	// of chan_open's {error, Reason}: exists, too_many.
	ChanOpen(id int64, kind etf.Atom, max int64) error
	// ChanPush appends a copy of data to channel id; dropped when the
	// channel is closed or unknown. It never blocks on Python.
	ChanPush(id int64, data []byte)
	// ChanClose closes channel id; with drop, what it holds goes too.
	ChanClose(id int64, drop bool)
}

// channel handles the channels' requests; false for another request.
func (s *Server) channel(h *proto.Header, body []byte) bool {
	elems := h.Elems
	switch {
	case h.Tag == proto.TagChanSend && len(elems) == 2:
		if id, ok := etf.ToInt64(elems[1]); ok {
			if c, ok := s.pool.(Channels); ok {
				c.ChanPush(id, body)
			}
			return true
		}
		s.log.Printf("dropped a chan_send to %s", brief(elems[1]))
		return true
	case h.Tag == proto.TagChanClose && len(elems) == 3:
		id, ok := etf.ToInt64(elems[1])
		c, isC := s.pool.(Channels)
		if ok && isC {
			c.ChanClose(id, elems[2] == etf.Atom("true"))
		}
		return true
	case h.Tag == proto.TagChanOpen && len(elems) == 5:
		s.chanOpen(h.ID, elems[2], elems[3], elems[4])
		return true
	}
	return false
}

func (s *Server) chanOpen(reqID, ch, kind, max etf.Term) {
	id, ok := etf.ToInt64(ch)
	k, _ := kind.(etf.Atom)
	m, mok := etf.ToInt64(max)
	switch {
	case !ok || id <= 0:
		s.reply(reqID, proto.BadRequest("channel %s is not a positive integer", brief(ch)))
		return
	case k != proto.AtomChanTerm && k != proto.AtomChanBytes:
		s.reply(reqID, proto.BadRequest("channel kind %s is not term or bytes", brief(kind)))
		return
	case !mok || m <= 0:
		s.reply(reqID, proto.BadRequest("channel bound %s is not a positive integer", brief(max)))
		return
	}
	c, isC := s.pool.(Channels)
	if !isC {
		s.reply(reqID, proto.ChanResult("no_channels"))
		return
	}
	if err := c.ChanOpen(id, k, m); err != nil {
		s.reply(reqID, proto.ChanResult(err.Error()))
		return
	}
	s.reply(reqID, etf.OK)
}
