package etf

import (
	"bytes"
	"strings"
	"testing"
)

// FuzzDecode feeds the decoder arbitrary bytes: it must never panic, and
// whatever it accepts must encode and decode back to an equal term.
func FuzzDecode(f *testing.F) {
	for _, v := range goldenExpected() {
		b, err := Encode(v)
		if err != nil {
			f.Fatal(err)
		}
		if len(b) < 4096 {
			f.Add(b)
		}
	}
	compressing := Encoder{CompressThreshold: 8}
	seed, _ := compressing.Encode(Tuple{Binary("aaaaaaaaaaaaaaaaaaaaaaaa"), List{1, 2, 3}})
	f.Add(seed)
	f.Add([]byte{131, 103, 100, 0, 1, 'n', 0, 0, 0, 1, 0, 0, 0, 2, 3})
	f.Add([]byte{131, 112, 0, 0, 0, 4})
	f.Add([]byte{131, 99, '1', '.', '5', 'e', '0', '0', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})

	f.Fuzz(func(t *testing.T, data []byte) {
		d := Decoder{MaxInflated: 1 << 20}
		checkSkip(t, &d, data)
		term, err := d.Decode(data)
		if err != nil {
			return
		}
		again, err := Encode(term)
		if err != nil {
			t.Fatalf("decoded %#v but cannot encode it: %v", term, err)
		}
		back, err := d.Decode(again)
		if err != nil {
			t.Fatalf("cannot decode our own encoding of %#v: %v", term, err)
		}
		if !Equal(term, back) {
			t.Fatalf("round trip changed %#v into %#v", term, back)
		}
	})
}

// checkSkip: Skip accepts whatever DecodeTerm accepts, with the same
// length, and refuses only what DecodeTerm refuses too, but for a map's
// duplicate keys, which it does not look for; the span it finds, as a
// RawTerm, encodes back to the same bytes.
func checkSkip(t *testing.T, d *Decoder, data []byte) {
	if len(data) > 0 && data[0] == VersionTag {
		data = data[1:]
	}
	term, n, derr := d.DecodeTerm(data)
	sn, serr := d.Skip(data)
	switch {
	case derr == nil && serr != nil:
		t.Fatalf("DecodeTerm read %#v in %d bytes, Skip refused it: %v", term, n, serr)
	case derr == nil && sn != n:
		t.Fatalf("DecodeTerm read %#v in %d bytes, Skip %d", term, n, sn)
	case derr != nil && serr == nil && !strings.Contains(derr.Error(), "duplicate key"):
		t.Fatalf("Skip took %d bytes of what DecodeTerm refused: %v", sn, derr)
	}
	if serr == nil {
		b, err := AppendTerm(nil, Tuple{RawTerm(data[:sn])})
		if err != nil || !bytes.Equal(b[2:], data[:sn]) {
			t.Fatalf("RawTerm of %d bytes encoded as %x (%v)", sn, b, err)
		}
	}
}
