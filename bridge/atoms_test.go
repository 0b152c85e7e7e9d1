package bridge

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/erlang-python/erlang_python/etf"
	"github.com/erlang-python/erlang_python/proto"
)

// loaderPool is a fake pool that keeps what atoms_load gave it.
type loaderPool struct {
	*fakePool
	got []proto.AtomsLoad
}

func (p *loaderPool) LoadAtoms(a proto.AtomsLoad) error {
	p.got = append(p.got, a)
	return nil
}

func TestAtomsLoad(t *testing.T) {
	f := newFixture(t, nil, 0)
	lp := &loaderPool{fakePool: f.pool}
	f.srv.pool = lp
	f.send(etf.Tuple{proto.TagAtomsLoad, ctlID},
		etf.Tuple{3, etf.List{etf.Binary("a1"), etf.Binary("a2")}, etf.List{etf.Binary("ValueError")}})
	f.expectReply(ctlID, etf.OK)
	require.Equal(t, []proto.AtomsLoad{{Spent: 3,
		Created: [][]byte{[]byte("a1"), []byte("a2")}, Known: [][]byte{[]byte("ValueError")}}}, lp.got)
	// empty lists
	f.send(etf.Tuple{proto.TagAtomsLoad, ctlID}, etf.Tuple{0, etf.List{}, etf.List{}})
	f.expectReply(ctlID, etf.OK)
	require.Len(t, lp.got, 2)
	// a pool that keeps no count answers ok too
	f.srv.pool = f.pool
	f.send(etf.Tuple{proto.TagAtomsLoad, ctlID}, etf.Tuple{0, etf.List{}, etf.List{}})
	f.expectReply(ctlID, etf.OK)
}

func TestAtomsLoadBadPayload(t *testing.T) {
	f := newFixture(t, nil, 0)
	for _, p := range []etf.Term{
		etf.Atom("x"),
		etf.Tuple{-1, etf.List{}, etf.List{}},
		etf.Tuple{1, etf.List{etf.Atom("notbin")}, etf.List{}},
		etf.Tuple{1, etf.List{}},
	} {
		f.send(etf.Tuple{proto.TagAtomsLoad, ctlID}, p)
		f.expectBadRequest(ctlID, "atoms_load")
	}
	f.send(etf.Tuple{proto.TagAtomsLoad, ctlID}) // no payload
	f.expectBadRequest(ctlID, "atoms_load")
}
