package main

import (
	"errors"
	"io"
	"log"

	"github.com/erlang-python/erlang_python/bridge"
	"github.com/erlang-python/erlang_python/etf"
	"github.com/erlang-python/erlang_python/pool"
	"github.com/erlang-python/erlang_python/proto"
)

// The adapters from the real pool, store and port writer to the seams
// that bridge declares (bridge/seam.go).

// newServer is the sidecar's server: requests read from in run on p, and
// the packets built in Go go to out.
func newServer(p *pool.Pool, out *pool.Output, in io.Reader, maxPacket int, logger *log.Logger) *bridge.Server {
	return bridge.NewServer(sidecarPool{p, out}, sidecarStore{out}, in, out, maxPacket, logger)
}

// sidecarPool is a *pool.Pool whose executors write replies to out.
type sidecarPool struct {
	p   *pool.Pool
	out *pool.Output
}

var kinds = [...]pool.Kind{proto.Auto: pool.Auto, proto.SubInterp: pool.SubInterpreter, proto.Worker: pool.Worker}

func (sp sidecarPool) NewContext(kind proto.ContextKind, id int64) (bridge.Context, error) {
	if kind < 0 || int(kind) >= len(kinds) {
		return nil, errors.New("pool: unknown context kind " + kind.String())
	}
	ctx, err := sp.p.NewContext(kinds[kind], id, tracebackLogger(sp.out, id))
	if err != nil {
		return nil, err
	}
	return sidecarContext{ctx, sp.out}, nil
}

func (sp sidecarPool) Cancel(id []byte) { sp.p.Cancel(sp.out, id) }

func (sp sidecarPool) Info() proto.Info {
	return proto.Info{
		Mode:               string(sp.p.Mode()),
		PythonVersion:      sp.p.Version(),
		NumExecutors:       sp.p.NumExecutors(),
		SubinterpSupported: sp.p.SubinterpSupported(),
		SlotMin:            pool.SlotMin,
	}
}

// tracebackLogger sends the traceback of each Python exception that a
// request of context ctx returns to the BEAM's logger, as the '$log'
// packet {info, Ctx, Text}, just before the reply. It goes when the pool
// logs tracebacks from C itself.
func tracebackLogger(out *pool.Output, ctx int64) func(text []byte) {
	return func(text []byte) {
		id, _ := etf.Encode(proto.IDLog)
		body, err := etf.Encode(etf.Tuple{etf.Atom("info"), ctx, etf.Binary(text)})
		if err == nil {
			out.Send(id, body)
		}
	}
}

// sidecarContext is a *pool.Context whose replies go to out.
type sidecarContext struct {
	c   *pool.Context
	out *pool.Output
}

var ops = [...]pool.Op{proto.Call: pool.Call, proto.Eval: pool.Eval, proto.Exec: pool.Exec}

func (sc sidecarContext) Submit(op proto.Op, chain int64, id, payload []byte) error {
	return contextError(sc.c.Submit(sc.out, ops[op], chain, id, payload))
}

func (sc sidecarContext) SubmitFile(op proto.Op, chain int64, id []byte, path string, size int) error {
	return contextError(sc.c.SubmitFile(sc.out, ops[op], chain, id, path, size))
}

func (sc sidecarContext) CallbackReply(cb int64, payload []byte) error {
	return contextError(sc.c.CallbackReply(cb, payload))
}

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

// sidecarStore is the pool's shared state, mirrored to out.
type sidecarStore struct{ out *pool.Output }

func (sidecarStore) Put(key, value []byte) error        { return pool.StatePut(key, value) }
func (sidecarStore) Get(key, dst []byte) ([]byte, bool) { return pool.StateGet(key, dst) }
func (sidecarStore) Delete(key []byte) bool             { return pool.StateDelete(key) }
func (sidecarStore) Clear()                             { pool.StateClear() }
func (sidecarStore) Keys() [][]byte                     { return pool.StateKeys() }
func (st sidecarStore) StartMirror()                    { st.out.MirrorState(true) }

func (sidecarStore) Incr(key []byte, delta int64) (int64, error) {
	n, err := pool.StateIncr(key, delta)
	switch {
	case errors.Is(err, pool.ErrStateNotInteger):
		return 0, bridge.ErrNotInteger
	case errors.Is(err, pool.ErrStateOverflow):
		return 0, bridge.ErrOverflow
	}
	return n, err
}

func (sidecarStore) Load(entries []proto.StateEntry) error {
	pe := make([]pool.StateEntry, len(entries))
	for i, e := range entries {
		pe[i] = pool.StateEntry{Key: e.Key, Value: e.Value}
	}
	return pool.StateLoad(pe)
}
