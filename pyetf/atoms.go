package pyetf

/*
#include "atoms.h"
*/
import "C"

import (
	"errors"
	"unsafe"
)

// The sidecar's count of the new atoms Python makes (atoms.h): erlang.Atom
// raises erlang.AtomLimitError for a new name once it is spent. The BEAM's
// own count (erlang/src/py_atoms.erl) is the guarantee; this one makes the
// error come at the source.

// SetMaxAtoms sets the cap, --max-atoms.
func SetMaxAtoms(max int64) { C.pyx_atoms_set_max(C.longlong(max)) }

// MaxAtoms is the cap.
func MaxAtoms() int64 { return int64(C.pyx_atoms_max()) }

// AtomsSpent is how many new atoms count against the cap: what the BEAM had
// made when it last said (LoadAtoms), plus the names Python made since.
func AtomsSpent() int64 { return int64(C.pyx_atoms_spent()) }

// LoadAtoms starts the count at spent, what the BEAM has made for Python,
// and adds the names of lists, which cost nothing from then on.
func LoadAtoms(spent int64, lists ...[][]byte) error {
	for _, names := range lists {
		for _, n := range names {
			if C.pyx_atoms_known(cstr(n), C.size_t(len(n))) < 0 {
				return errors.New("pyetf: out of memory for the atom names")
			}
		}
	}
	C.pyx_atoms_set_spent(C.longlong(spent))
	return nil
}

// AdmitAtom is what erlang.Atom(name) asks: true when the name is known or
// new within the budget (counted then), false once the budget is spent.
func AdmitAtom(name []byte) bool {
	return C.pyx_atoms_admit(cstr(name), C.size_t(len(name))) == 1
}

// SetAtomAsks sets how many distinct names past the budget erlang.Atom may
// ask the BEAM about at once, and how many more each second (atoms.h;
// default 1000 and 100).
func SetAtomAsks(n, perSecond int64) { C.pyx_atoms_set_asks(C.longlong(n), C.longlong(perSecond)) }

// AskAtom is erlang.Atom's question past the budget, with the BEAM's answer
// given by exists: whether the name was asked (an ask taken), as
// pyx_atoms_ask_begin, then recorded.
func AskAtom(name []byte, exists bool) (asked bool) {
	switch C.pyx_atoms_ask_begin(cstr(name), C.size_t(len(name))) {
	case 2:
		e := C.int(0)
		if exists {
			e = 1
		}
		C.pyx_atoms_ask_end(cstr(name), C.size_t(len(name)), e)
		return true
	}
	return false
}

var empty = [1]byte{}

func cstr(b []byte) *C.char {
	if len(b) == 0 {
		return (*C.char)(unsafe.Pointer(&empty[0]))
	}
	return (*C.char)(unsafe.Pointer(&b[0]))
}
