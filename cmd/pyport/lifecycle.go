package main

import (
	"fmt"
	"log"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/erlang-python/erlang_python/port"
	"github.com/erlang-python/erlang_python/proto"
)

// Exit statuses (docs/PROTOCOL.md, Exit and lifecycle).
const (
	exitEOF    = 0  // stdin ended: the BEAM closed the port
	exitFatal  = 1  // a start-up error
	exitStuck  = 70 // the stuck watchdog (EX_SOFTWARE)
	exitSignal = 128
)

// lifecycle is pyport's one way out: every exit (stdin EOF, SIGTERM,
// SIGHUP, SIGINT, the parent's death, the stuck watchdog, a start-up
// error) goes through exit.
type lifecycle struct {
	logger  *log.Logger
	slotDir string
	mu      sync.Mutex // held by the first exit for good: later ones wait
}

// startLifecycle runs before Python starts: it caps the address space
// (maxMemoryMB > 0), asks for SIGTERM when the parent dies, leaves at
// once if it is already gone, and makes pyport the leader of a process
// group of its own, which the processes Python starts inherit.
func startLifecycle(logger *log.Logger, slotDir string, maxMemoryMB int) *lifecycle {
	l := &lifecycle{logger: logger, slotDir: slotDir}
	if maxMemoryMB > 0 {
		limit := uint64(maxMemoryMB) << 20
		if err := syscall.Setrlimit(syscall.RLIMIT_AS, &syscall.Rlimit{Cur: limit, Max: limit}); err != nil {
			l.exit(exitFatal, fmt.Sprintf("--max-memory-mb %d: setrlimit: %v", maxMemoryMB, err))
		}
	}
	ppid := os.Getppid()
	if err := setParentDeathSignal(syscall.SIGTERM); err != nil {
		logger.Printf("prctl(PR_SET_PDEATHSIG): %v", err)
	}
	// The parent may have died before the prctl: then we were handed to
	// init (or a subreaper). The BEAM's erl_child_setup is never pid 1.
	if now := os.Getppid(); now != ppid || now == 1 {
		l.exit(exitSignal+int(syscall.SIGTERM), "the parent process is gone")
	}
	if err := syscall.Setpgid(0, 0); err != nil && syscall.Getpgrp() != os.Getpid() {
		logger.Printf("setpgid: %v (pyport does not lead its process group)", err)
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGINT)
	go func() {
		s := (<-sigs).(syscall.Signal)
		l.exit(exitSignal+int(s), "signal "+s.String())
	}()
	return l
}

// exit removes the slot directory, kills the rest of the process group
// and leaves with status, without finalising Python (PLATFORM.md). It
// never returns; concurrent calls wait for the first one's exit.
func (l *lifecycle) exit(status int, reason string) {
	l.mu.Lock()
	if status != exitEOF {
		l.logger.Printf("exiting with status %d: %s", status, reason)
	}
	removeSlotDir(l.slotDir, l.logger)
	killGroup(l.logger)
	os.Exit(status)
}

// onStuck is the pool's stuck watchdog's verdict: a packet
// '$exit', {stuck, Ctx, GraceMs} for the port owner, then the exit.
func (l *lifecycle) onStuck(out func() *port.Output) func(ctx int64, grace time.Duration) {
	return func(ctx int64, grace time.Duration) {
		ms := grace.Milliseconds()
		l.logger.Printf("context %d: a cancelled request still runs %d ms after its cancel (C code that ignores KeyboardInterrupt?)", ctx, ms)
		if o := out(); o != nil {
			pkt := proto.AppendStuck(nil, ctx, grace)
			sent := make(chan struct{})
			go func() { o.Send(pkt, nil); close(sent) }()
			select { // a BEAM that does not read must not keep us
			case <-sent:
			case <-time.After(time.Second):
			}
		}
		l.exit(exitStuck, fmt.Sprintf("stuck context %d", ctx))
	}
}

// killGroup sends SIGKILL to every other member of pyport's process group
// (processes that Python started and their children, unless they moved to
// a group of their own), found in /proc. Rounds repeat while they find
// someone, for members forked meanwhile.
func killGroup(logger *log.Logger) {
	self := os.Getpid()
	if syscall.Getpgrp() != self {
		return // not our group: leave the others alone
	}
	for round := 0; round < 20; round++ {
		pids := groupMembers(self)
		if len(pids) == 0 {
			return
		}
		for _, pid := range pids {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		time.Sleep(5 * time.Millisecond)
	}
	logger.Printf("process group %d: members left after 20 rounds of SIGKILL", self)
}
