package main

import (
	"bytes"
	"os"
	"strconv"
	"syscall"
)

// prSetPdeathsig is PR_SET_PDEATHSIG from <linux/prctl.h>.
const prSetPdeathsig = 1

// setParentDeathSignal asks the kernel for sig when the parent dies.
func setParentDeathSignal(sig syscall.Signal) error {
	if _, _, e := syscall.RawSyscall(syscall.SYS_PRCTL, prSetPdeathsig, uintptr(sig), 0); e != 0 {
		return e
	}
	return nil
}

// groupMembers lists the live processes, other than pgid itself, whose
// process group is pgid.
func groupMembers(pgid int) []int {
	dir, err := os.Open("/proc")
	if err != nil {
		return nil
	}
	names, _ := dir.Readdirnames(-1)
	dir.Close()
	var pids []int
	for _, name := range names {
		pid, err := strconv.Atoi(name)
		if err != nil || pid == pgid {
			continue
		}
		stat, err := os.ReadFile("/proc/" + name + "/stat")
		if err != nil {
			continue // gone
		}
		// pid (comm) state ppid pgrp ...; comm may hold spaces and ')'.
		i := bytes.LastIndexByte(stat, ')')
		if i < 0 {
			continue
		}
		f := bytes.Fields(stat[i+1:])
		if len(f) < 3 || f[0][0] == 'Z' || f[0][0] == 'X' {
			continue // dead: a zombie waits for its parent
		}
		if g, err := strconv.Atoi(string(f[2])); err == nil && g == pgid {
			pids = append(pids, pid)
		}
	}
	return pids
}
