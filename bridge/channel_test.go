package bridge

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/erlang-python/erlang_python/etf"
	"github.com/erlang-python/erlang_python/proto"
)

// chanPool is a fake pool with channels: it records what it was asked.
type chanPool struct {
	*fakePool
	opened []string
	pushed map[int64][]string
	closed []string
}

func (p *chanPool) ChanOpen(id int64, kind etf.Atom, max int64) error {
	if id == 99 {
		return errors.New("too_many")
	}
	p.opened = append(p.opened, string(kind))
	return nil
}

func (p *chanPool) ChanPush(id int64, data []byte) {
	p.pushed[id] = append(p.pushed[id], string(data))
}

func (p *chanPool) ChanClose(id int64, drop bool) {
	p.closed = append(p.closed, map[bool]string{true: "drop", false: "keep"}[drop])
}

func TestChannels(t *testing.T) {
	f := newFixture(t, nil, 0)
	cp := &chanPool{fakePool: f.pool, pushed: map[int64][]string{}}
	f.srv.pool = cp
	f.send(etf.Tuple{proto.TagChanOpen, ctlID, 7, proto.AtomChanTerm, 1024})
	f.expectReply(ctlID, etf.OK)
	f.send(etf.Tuple{proto.TagChanOpen, ctlID, 99, proto.AtomChanBytes, 1024})
	f.expectReply(ctlID, etf.ErrorTuple(etf.Atom("too_many")))
	f.send(etf.Tuple{proto.TagChanOpen, ctlID, 8, etf.Atom("other"), 1024})
	f.expectBadRequest(ctlID, "kind")
	f.send(etf.Tuple{proto.TagChanOpen, ctlID, 0, proto.AtomChanTerm, 1024})
	f.expectBadRequest(ctlID, "positive")
	f.send(etf.Tuple{proto.TagChanOpen, ctlID, 8, proto.AtomChanTerm, 0})
	f.expectBadRequest(ctlID, "bound")
	// a message's bytes come as they are, with no reply
	f.handle(append(encodeAll(t, etf.Tuple{proto.TagChanSend, 7}), "raw bytes"...))
	f.send(etf.Tuple{proto.TagChanSend, 7}, etf.Atom("term"))
	f.send(etf.Tuple{proto.TagChanClose, 7, false})
	f.send(etf.Tuple{proto.TagChanClose, 7, true})
	f.none()
	require.Equal(t, []string{"term"}, cp.opened)
	require.Len(t, cp.pushed[7], 2)
	require.Equal(t, "raw bytes", cp.pushed[7][0])
	require.Equal(t, []string{"keep", "drop"}, cp.closed)
	// a pool without channels
	f.srv.pool = f.pool
	f.send(etf.Tuple{proto.TagChanOpen, ctlID, 7, proto.AtomChanTerm, 1024})
	f.expectReply(ctlID, etf.ErrorTuple(etf.Atom("no_channels")))
	f.send(etf.Tuple{proto.TagChanSend, 7}, etf.Atom("dropped"))
	f.none()
}
