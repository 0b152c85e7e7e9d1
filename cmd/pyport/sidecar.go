package main

import (
	"errors"
	"io"
	"log"

	"github.com/erlang-python/erlang_python/bridge"
	"github.com/erlang-python/erlang_python/etf"
	"github.com/erlang-python/erlang_python/pool"
	"github.com/erlang-python/erlang_python/port"
	"github.com/erlang-python/erlang_python/proto"
	"github.com/erlang-python/erlang_python/pyetf"
	"github.com/erlang-python/erlang_python/store"
)

// The adapters from the real pool, store and port writer to the seams
// that bridge declares (bridge/seam.go).

// newServer is the sidecar's server: requests read from in run on p, and
// the packets built in Go go to out.
func newServer(p *pool.Pool, out *port.Output, in io.Reader, maxPacket int, logger *log.Logger) *bridge.Server {
	return bridge.NewServer(sidecarPool{p, out}, sidecarStore{out}, in, out, maxPacket, logger)
}

// sidecarPool is a *pool.Pool whose executors write replies to out.
type sidecarPool struct {
	p   *pool.Pool
	out *port.Output
}

var kinds = [...]pool.Kind{proto.Auto: pool.Auto, proto.SubInterp: pool.SubInterpreter, proto.Worker: pool.Worker}

func (sp sidecarPool) NewContext(kind proto.ContextKind, id int64) (bridge.Context, error) {
	if kind < 0 || int(kind) >= len(kinds) {
		return nil, errors.New("pool: unknown context kind " + kind.String())
	}
	ctx, err := sp.p.NewContext(kinds[kind], id)
	if err != nil {
		return nil, err
	}
	return sidecarContext{ctx, sp.out}, nil
}

func (sp sidecarPool) Cancel(id []byte) { sp.p.Cancel(sp.out, id) }

func (sp sidecarPool) Exited(pid []byte) { sp.p.Exited(pid) }

// LoadAtoms (bridge.AtomLoader): the count of erlang.Atom starts from the BEAM's.
func (sp sidecarPool) LoadAtoms(a proto.AtomsLoad) error {
	return pyetf.LoadAtoms(a.Spent, a.Created, a.Known)
}

func (sp sidecarPool) Info() proto.Info {
	return proto.Info{
		Mode:               string(sp.p.Mode()),
		PythonVersion:      sp.p.Version(),
		NumExecutors:       sp.p.NumExecutors(),
		SubinterpSupported: sp.p.SubinterpSupported(),
		SlotMin:            pool.SlotMin,
	}
}

// sidecarContext is a *pool.Context whose replies go to out.
type sidecarContext struct {
	c   *pool.Context
	out *port.Output
}

var ops = [...]pool.Op{proto.Call: pool.Call, proto.Eval: pool.Eval, proto.Exec: pool.Exec, proto.Task: pool.Task}

func (sc sidecarContext) Submit(op proto.Op, chain int64, id, caller, payload []byte) error {
	return contextError(sc.c.SubmitFrom(sc.out, ops[op], chain, id, caller, payload))
}

func (sc sidecarContext) SubmitFile(op proto.Op, chain int64, id, caller []byte, path string, size int) error {
	return contextError(sc.c.SubmitFileFrom(sc.out, ops[op], chain, id, caller, path, size))
}

func (sc sidecarContext) CallbackReply(cb int64, payload []byte) error {
	return contextError(sc.c.CallbackReply(cb, payload))
}

func (sc sidecarContext) DropEnv(pid []byte) error { return contextError(sc.c.DropEnv(pid)) }

func (sc sidecarContext) Close() { sc.c.Close() }

// contextError turns the pool's errors into bridge's.
func contextError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, pool.ErrClosed):
		return bridge.ErrClosed
	case errors.Is(err, pool.ErrBadSlot):
		return bridge.ErrBadSlot
	}
	return err
}

// sidecarStore is the shared state (package store), mirrored to out.
type sidecarStore struct{ out *port.Output }

func (sidecarStore) Put(key, value []byte) error        { return store.Put(key, value) }
func (sidecarStore) Get(key, dst []byte) ([]byte, bool) { return store.Get(key, dst) }
func (sidecarStore) Delete(key []byte) bool             { return store.Delete(key) }
func (sidecarStore) Clear()                             { store.Clear() }
func (sidecarStore) Keys() [][]byte                     { return store.Keys() }
func (st sidecarStore) StartMirror()                    { store.Mirror(st.out, true) }

func (sidecarStore) Incr(key []byte, delta int64) (int64, error) {
	n, err := store.Incr(key, delta)
	switch {
	case errors.Is(err, store.ErrNotInteger):
		return 0, bridge.ErrNotInteger
	case errors.Is(err, store.ErrOverflow):
		return 0, bridge.ErrOverflow
	}
	return n, err
}

func (sidecarStore) Load(entries []proto.StateEntry) error {
	pe := make([]store.Entry, len(entries))
	for i, e := range entries {
		pe[i] = store.Entry{Key: e.Key, Value: e.Value}
	}
	return store.Load(pe)
}

// ChanOpen (bridge.Channels): the sidecar's channels, acknowledged to out.
func (sp sidecarPool) ChanOpen(id int64, kind etf.Atom, max int64) error {
	k := pool.ChanTerms
	if kind == proto.AtomChanBytes {
		k = pool.ChanBytes
	}
	switch err := pool.ChanOpen(sp.out, id, k, max); {
	case errors.Is(err, pool.ErrChanExists):
		return errors.New("exists")
	case errors.Is(err, pool.ErrChanTooMany):
		return errors.New("too_many")
	case err != nil:
		return errors.New("no_memory")
	}
	return nil
}

func (sp sidecarPool) ChanPush(id int64, data []byte) { pool.ChanPush(id, data) }

func (sp sidecarPool) ChanClose(id int64, drop bool) { pool.ChanClose(id, drop) }
