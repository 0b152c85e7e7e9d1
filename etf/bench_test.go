package etf

import (
	"bytes"
	"testing"
)

// envelope is a typical request: {Ref, call, Ctx, Module, Function, Args, Kwargs}.
func envelope() Tuple {
	return Tuple{
		Ref{Node: "nonode@nohost", Len: 3, IDs: [5]uint32{1234, 5678, 91011}},
		Atom("call"), int64(1), Atom("json"), Binary("dumps"),
		List{MapOf(Atom("a"), List{int64(1), int64(2), int64(3)}, Binary("name"), Binary("erlang"))},
		MapOf(Atom("indent"), int64(2)),
	}
}

// benchDecode measures decoding t's encoding with d.
func benchDecode(b *testing.B, d Decoder, t Term) {
	data, err := Encode(t)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := d.Decode(data); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeEnvelope(b *testing.B) { benchDecode(b, Decoder{}, envelope()) }

func BenchmarkEncodeEnvelope(b *testing.B) {
	env := envelope()
	buf := make([]byte, 0, 256)
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if buf, err = AppendTerm(buf[:0], env); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(int64(len(buf)))
}

func BenchmarkDecodeBinary1MiB(b *testing.B) {
	benchDecode(b, Decoder{}, Binary(bytes.Repeat([]byte{7}, 1<<20)))
}

func BenchmarkDecodeBinary1MiBCopy(b *testing.B) {
	benchDecode(b, Decoder{CopyBinaries: true}, Binary(bytes.Repeat([]byte{7}, 1<<20)))
}

func BenchmarkEncodeBinary1MiB(b *testing.B) {
	bin := Binary(bytes.Repeat([]byte{7}, 1<<20))
	buf := make([]byte, 0, 1<<20+16)
	b.SetBytes(int64(len(bin)))
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if buf, err = AppendTerm(buf[:0], bin); err != nil {
			b.Fatal(err)
		}
	}
}
