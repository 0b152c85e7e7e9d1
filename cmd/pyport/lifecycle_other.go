//go:build !linux

package main

import "syscall"

// setParentDeathSignal: only Linux has PR_SET_PDEATHSIG; elsewhere pyport
// notices its parent's death by its stdin's end only.
func setParentDeathSignal(sig syscall.Signal) error { return nil }

// groupMembers: without /proc the group's members are not found, so
// they are not killed; the port owner kills the group (docs/PROTOCOL.md).
func groupMembers(pgid int) []int { return nil }
