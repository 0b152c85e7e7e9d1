package bridge

import (
	"io"
	"log"
	"testing"

	"github.com/erlang-python/erlang_python/etf"
	"github.com/erlang-python/erlang_python/proto"
)

// nopContext takes requests and drops them: what is left to measure is
// the server's own work per request.
type nopContext struct{ n int }

func (c *nopContext) Submit(proto.Op, int64, []byte, []byte, []byte) error { c.n++; return nil }
func (c *nopContext) SubmitFile(proto.Op, int64, []byte, []byte, string, int) error {
	c.n++
	return nil
}
func (c *nopContext) CallbackReply(int64, []byte) error { return nil }
func (c *nopContext) Close()                            {}
func (c *nopContext) DropEnv([]byte) error              { return nil }

// BenchmarkHandleRequest: one exec request, header decode -> id ->
// Submit, as the reader does it for every call.
func BenchmarkHandleRequest(b *testing.B) {
	srv := NewServer(&fakePool{}, &fakeStore{}, nil, &fakeWriter{}, 0, log.New(io.Discard, "", 0))
	ctx := &nopContext{}
	srv.contexts[1] = ctx
	id := etf.Ref{Node: "nonode@nohost", Len: 3, IDs: [5]uint32{1, 2, 3}}
	head, _ := etf.Encode(etf.Tuple{proto.TagExec, id, 1})
	body, _ := etf.Encode(etf.Tuple{etf.Binary("pass")})
	frame := append(head, body...)
	b.ReportAllocs()
	for b.Loop() {
		srv.handle(frame)
	}
	if ctx.n == 0 {
		b.Fatal("no request submitted")
	}
}
