package etf

import "sync"

// Atoms repeat: the same few dozen names tag every request. Interning
// them saves two allocations per atom decoded: the string, and the
// interface value that boxes it (the table holds atoms already boxed). The table is bounded, since
// a peer could send atoms without end; past the bound atoms are simply
// allocated.
const maxInterned = 4096

var atoms = struct {
	sync.RWMutex
	m map[string]Term
}{m: make(map[string]Term)}

// internAtom returns the atom named by b (UTF-8), boxed as a Term.
func internAtom(b []byte) Term {
	atoms.RLock()
	t, ok := atoms.m[string(b)] // no allocation for the lookup
	atoms.RUnlock()
	if ok {
		return t
	}
	a := Atom(b)
	t = a
	atoms.Lock()
	if len(atoms.m) < maxInterned {
		atoms.m[string(a)] = t
	}
	atoms.Unlock()
	return t
}
