// Package pyetf converts the External Term Format to Python objects and
// back, in C (pyetf.h: pyx_from_etf, pyx_to_etf), with the GIL held and
// without entering Go. Erlang terms that Python has no type for become
// instances of the classes in py/terms.py (erlang.Pid, erlang.Ref,
// erlang.Opaque, erlang.Atom), which package pool installs in the
// `erlang` module of every interpreter.
package pyetf

/*
#cgo CFLAGS: -I${SRCDIR}/../port
*/
import "C"

import (
	_ "embed" // TermsPy

	_ "github.com/erlang-python/erlang_python/port" // its C: buf.h, etfw.h
)

// TermsPy is the Python source of the term classes: run in a namespace,
// it defines Pid, Ref, Opaque and Atom there.
//
//go:embed py/terms.py
var TermsPy string
