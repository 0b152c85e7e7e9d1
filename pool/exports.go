package pool

/*
#include <stddef.h>
#include <stdint.h>
*/
import "C"

import "runtime/cgo"

// The executor loop (exec.c) calls this on its thread, outside the hot
// path: a Go job (context set-up and tear-down).

//export pyxRunGo
func pyxRunGo(h C.uintptr_t) {
	handle := cgo.Handle(h)
	job := handle.Value().(func())
	handle.Delete()
	job()
}
