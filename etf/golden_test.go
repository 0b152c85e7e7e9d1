package etf

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// goldenExpected holds, for the corpus terms that have a Go literal, the
// value the decoder must produce. Terms without one (pids, refs, funs,
// the 1 MiB binary...) are still decoded and sent back to the BEAM.
func goldenExpected() map[string]Term {
	bigS := func(s string) *big.Int {
		v, ok := new(big.Int).SetString(s, 10)
		if !ok {
			panic(s)
		}
		return v
	}
	pow2 := func(n uint) *big.Int { return new(big.Int).Lsh(bigOne(), n) }
	tuple256 := make(Tuple, 256)
	for i := range tuple256 {
		tuple256[i] = int64(i + 1)
	}
	return map[string]Term{
		"zero": int64(0), "minus_one": int64(-1), "byte": int64(255), "b256": int64(256),
		"two27": int64(1 << 27), "two31": int64(1 << 31), "neg_two31": int64(-1 << 31),
		"neg_two31m1": int64(-1<<31 - 1),
		"max_int64":   int64(1<<63 - 1), "two63": bigS("9223372036854775808"),
		"min_int64": int64(-1 << 63), "two64": bigS("18446744073709551616"),
		"neg_two100": new(big.Int).Neg(pow2(100)), "huge": pow2(3000),
		"neg_huge": new(big.Int).Add(new(big.Int).Neg(pow2(3000)), bigS("7")),
		"neg_zero": negZero(), "f1e308": 1e308, "pi": 3.141592653589793,
		"denormal": 5e-324, "float_one": 1.0, "neg_float": -2.5e-10,
		"a_ok": OK, "a_true": True, "a_empty": Atom(""), "a_latin": Atom("café"),
		"a_unicode": Atom("ünï😀"), "a_long": Atom(strings.Repeat("x", 255)),
		"a_long_unicode": Atom(strings.Repeat("😀", 255)),
		"bin_empty":      Binary{}, "bin_hello": Binary("hello"), "bin_not_utf8": Binary{255, 0, 1},
		"bin_1m":     Binary(bytes.Repeat([]byte("ab"), 1<<19)),
		"bits3":      BitBinary{Data: []byte{0x20}, Bits: 3},
		"bits9":      BitBinary{Data: []byte{255, 0x80}, Bits: 1},
		"sub_binary": Binary("23456"),
		"nil":        List{}, "string": List{int64('a'), int64('b'), int64('c')},
		"list_unicode":      List{int64(256), int64(1000)},
		"list_mixed":        List{int64(1), Atom("a"), Binary("b"), 2.0, Tuple{}},
		"improper":          ImproperList{Elems: []Term{int64(1)}, Tail: int64(2)},
		"improper2":         ImproperList{Elems: []Term{Atom("a"), Atom("b")}, Tail: Atom("c")},
		"improper_bin_tail": ImproperList{Elems: []Term{Atom("a")}, Tail: Binary("t")},
		"long_string":       repeatList(int64('a'), 70000),
		"nested_lists":      List{List{List{List{}}}},
		"tuple_empty":       Tuple{}, "tuple2": Tuple{Atom("a"), int64(1)}, "tuple256": tuple256,
		"map_empty": Map{}, "map_small": MapOf(Atom("a"), int64(1), Binary("b"), List{int64(2)}),
		"map_nested": MapOf(Atom("k"), MapOf(Atom("k2"), MapOf(Atom("k3"), List{int64(1), int64(2)}))),
		"map_term_keys": MapOf(Tuple{int64(1), int64(2)}, Atom("x"), MapOf(Atom("a"), int64(1)), Atom("y"),
			List{int64(1)}, Atom("z"), 1.5, Atom("f")),
		"map_large":      largeMap(),
		"pid_made":       Pid{Node: "nonode@nohost", ID: 1234, Serial: 5},
		"export":         Export{Module: "lists", Function: "map", Arity: 2},
		"old_small_atom": Atom("café"), "old_atom_latin1": Atom("éèx"),
		"old_pid":         Pid{Node: "nonode@nohost", ID: 77, Serial: 3},
		"old_port":        Port{Node: "nonode@nohost", ID: 9},
		"new_port":        Port{Node: "nonode@nohost", ID: 9},
		"v4_port":         Port{Node: "nonode@nohost", ID: 9},
		"old_ref":         Ref{Node: "nonode@nohost", Len: 3, IDs: [5]uint32{5}},
		"new_ref":         Ref{Node: "nonode@nohost", Len: 3, IDs: [5]uint32{1, 2, 3}},
		"big_small_value": int64(-5), "large_big": int64(0x030201),
		"string_ext":       List{int64(1), int64(2), int64(3)},
		"list_string_tail": List{int64(7), int64(8), int64(9)},
	}
}

func bigOne() *big.Int { return big.NewInt(1) }

func largeMap() Map {
	m := Map{}
	for i := 1; i <= 100; i++ {
		m = append(m, Pair{int64(i), Binary(fmt.Sprint(i))})
	}
	return m
}

func repeatList(v Term, n int) List {
	l := make(List, n)
	for i := range l {
		l[i] = v
	}
	return l
}

// TestGoldenBEAM decodes what a real BEAM writes and has the BEAM decode
// what Go writes. It needs escript on PATH; ETF_REQUIRE_ERL=1 (set by
// make test) turns its absence into a failure.
func TestGoldenBEAM(t *testing.T) {
	escript, err := exec.LookPath("escript")
	if err != nil {
		if os.Getenv("ETF_REQUIRE_ERL") != "" {
			t.Fatal("escript not found and ETF_REQUIRE_ERL is set")
		}
		t.Skip("escript not found; the golden test needs Erlang")
	}
	cmd := exec.Command(escript, "testdata/golden.escript")
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	cmd.Stderr = os.Stderr
	require.NoError(t, cmd.Start())
	defer cmd.Wait()
	defer stdin.Close()

	out := bufio.NewReaderSize(stdout, 1<<20)
	readLine := func() string {
		line, err := out.ReadString('\n')
		require.NoError(t, err, "escript ended early")
		return strings.TrimSpace(line)
	}

	expected := goldenExpected()
	decoded := map[string]Term{}
	var names []string
	variants := 0
	for line := readLine(); line != "END"; line = readLine() {
		f := strings.Fields(line)
		require.Len(t, f, 4, line)
		name, variant := f[1], f[2]
		raw, err := hex.DecodeString(f[3])
		require.NoError(t, err)
		got, err := Decode(raw)
		require.NoError(t, err, "%s/%s", name, variant)
		if len(raw) > 1 && raw[1] != TagCompressed {
			n, err := Skip(raw[1:])
			require.NoError(t, err, "Skip %s/%s", name, variant)
			assert.Equal(t, len(raw)-1, n, "Skip %s/%s", name, variant)
		}
		variants++
		if want, ok := expected[name]; ok {
			assert.True(t, Equal(want, got), "%s/%s: got %#v", name, variant, got)
		}
		if first, seen := decoded[name]; seen {
			if _, isFun := got.(Fun); isFun && variant == "minor2" {
				continue // a fun's bytes hold its atoms, Latin-1 or UTF-8 by variant
			}
			assert.True(t, Equal(first, got), "%s/%s differs from the other encodings", name, variant)
		} else {
			decoded[name] = got
			names = append(names, name)
		}
	}
	for name := range expected {
		assert.Contains(t, decoded, name, "the escript corpus lost %s", name)
	}
	assert.IsType(t, Pid{}, decoded["pid"])
	assert.IsType(t, Ref{}, decoded["ref"])
	assert.IsType(t, Ref{}, decoded["alias"])
	assert.IsType(t, Port{}, decoded["port"])
	assert.IsType(t, Fun{}, decoded["fun_local"])
	assert.IsType(t, Fun{}, decoded["fun_closure"])

	// Send Go's encodings back, plain and compressed, for the BEAM to judge.
	compressing := Encoder{CompressThreshold: 16}
	w := bufio.NewWriter(stdin)
	for _, name := range names {
		for _, enc := range []func(Term) ([]byte, error){Encode, compressing.Encode} {
			b, err := enc(decoded[name])
			require.NoError(t, err, name)
			fmt.Fprintf(w, "E %s %s\n", name, strings.ToUpper(hex.EncodeToString(b)))
		}
	}
	fmt.Fprintln(w, "STOP")
	require.NoError(t, w.Flush())
	for range 2 * len(names) {
		f := strings.SplitN(readLine(), " ", 3)
		require.Len(t, f, 3)
		assert.Equal(t, "ok", f[2], "BEAM decoding Go's %s", f[1])
	}
	t.Logf("%d terms, %d BEAM encodings decoded, %d Go encodings checked by the BEAM", len(names), variants, 2*len(names))
}
