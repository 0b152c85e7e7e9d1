package proto

import (
	"errors"

	"github.com/erlang-python/erlang_python/etf"
)

// TagAtomsLoad is the request {atoms_load, Id}, followed by
// term_to_binary({Spent, Created, Known}): what the BEAM has made for
// Python so far (docs/PROTOCOL.md, "Atoms"), sent by the port owner at
// start-up, before state_load.
const TagAtomsLoad etf.Atom = "atoms_load"

// AtomsLoad is an atoms_load's payload: Spent, how many new atoms the BEAM
// has made for Python (VM-wide, every sidecar's); Created, their names;
// Known, names of atoms that always exist (Python's built-in exception
// classes...), which cost nothing to make.
type AtomsLoad struct {
	Spent          int64
	Created, Known [][]byte
}

// DecodeAtomsLoad reads an atoms_load's payload.
func DecodeAtomsLoad(payload []byte) (AtomsLoad, error) {
	var a AtomsLoad
	t, err := etf.Decode(payload)
	if err != nil {
		return a, err
	}
	tup, ok := t.(etf.Tuple)
	if !ok || len(tup) != 3 {
		return a, errors.New("the payload is not {Spent, Created, Known}")
	}
	if a.Spent, ok = etf.ToInt64(tup[0]); !ok || a.Spent < 0 {
		return a, errors.New("Spent is not a non-negative integer")
	}
	if a.Created, ok = names(tup[1]); !ok {
		return a, errors.New("Created is not a list of binaries")
	}
	if a.Known, ok = names(tup[2]); !ok {
		return a, errors.New("Known is not a list of binaries")
	}
	return a, nil
}

func names(t etf.Term) ([][]byte, bool) {
	l, ok := t.(etf.List)
	if !ok {
		return nil, false
	}
	out := make([][]byte, len(l))
	for i, e := range l {
		b, ok := e.(etf.Binary)
		if !ok {
			return nil, false
		}
		out[i] = b
	}
	return out, true
}
