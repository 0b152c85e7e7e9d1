package bridge

import (
	"github.com/erlang-python/erlang_python/etf"
	"github.com/erlang-python/erlang_python/proto"
)

// AtomLoader is a Pool that keeps the sidecar's own count of the new atoms
// Python makes (erlang.Atom), so that it raises past the BEAM's cap
// (docs/PROTOCOL.md, "Atoms"). A Pool that is not one answers atoms_load
// with ok all the same: the BEAM's count is the guarantee.
type AtomLoader interface {
	// LoadAtoms starts the count from what the BEAM made so far.
	LoadAtoms(a proto.AtomsLoad) error
}

// atomsLoad answers {atoms_load, Id} and its payload.
func (s *Server) atomsLoad(id etf.Term, payload []byte) {
	a, err := proto.DecodeAtomsLoad(payload)
	if err != nil {
		s.reply(id, proto.BadRequest("atoms_load: %v", err))
		return
	}
	if l, ok := s.pool.(AtomLoader); ok {
		if err := l.LoadAtoms(a); err != nil {
			s.reply(id, etf.ErrorTuple(etf.Binary(err.Error())))
			return
		}
	}
	s.reply(id, etf.OK)
}
