package etf

import (
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
