package pool

/*
#include <stddef.h>
#include <stdint.h>
*/
import "C"

import (
	"runtime/cgo"
	"unsafe"
)

// The executor loop (exec.c) calls these on its thread, outside the hot
// path: a Go job (context set-up and tear-down) and a traceback.

//export pyxRunGo
func pyxRunGo(h C.uintptr_t) {
	handle := cgo.Handle(h)
	job := handle.Value().(func())
	handle.Delete()
	job()
}

//export pyxTraceback
func pyxTraceback(h C.uintptr_t, text *C.char, n C.size_t) {
	c := cgo.Handle(h).Value().(*Context)
	if c.onTraceback != nil {
		c.onTraceback(unsafe.Slice((*byte)(unsafe.Pointer(text)), int(n)))
	}
}
