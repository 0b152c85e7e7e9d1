package main

import "syscall"

// fSetPipeSz is F_SETPIPE_SZ from <fcntl.h>; package syscall lacks it.
const fSetPipeSz = 1031

// growPipe asks the kernel for a pipe buffer of size bytes on fd. A 1 MiB
// packet then crosses in one write instead of sixteen 64 KiB ones, each a
// wake-up of the reader. Not a pipe, or over /proc/sys/fs/pipe-max-size:
// the buffer stays as it was, which is only slower.
func growPipe(fd uintptr, size int) {
	if size > 0 {
		_, _, _ = syscall.Syscall(syscall.SYS_FCNTL, fd, fSetPipeSz, uintptr(size))
	}
}
