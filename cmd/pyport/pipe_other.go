//go:build !linux

package main

// growPipe is a no-op where F_SETPIPE_SZ does not exist.
func growPipe(fd uintptr, size int) {}
