package pyetf

import (
	"fmt"
	"sync"
	"testing"
)

// The count is one per process: these tests run in order and set it up
// themselves.
func TestAtomsBudget(t *testing.T) {
	SetMaxAtoms(5)
	if err := LoadAtoms(2, [][]byte{[]byte("made_before")}, [][]byte{[]byte("ValueError")}); err != nil {
		t.Fatal(err)
	}
	for _, known := range []string{"made_before", "ValueError", "ok", "true", "$send"} {
		if !AdmitAtom([]byte(known)) {
			t.Errorf("known name %q refused", known)
		}
	}
	if AtomsSpent() != 2 {
		t.Fatalf("known names counted: spent %d", AtomsSpent())
	}
	for i := range 3 { // 5 - 2
		if !AdmitAtom(fmt.Appendf(nil, "new%d", i)) {
			t.Fatalf("new%d refused within the budget", i)
		}
	}
	if AdmitAtom([]byte("one_too_many")) {
		t.Fatal("a new name admitted past the budget")
	}
	// made once: making it again is free, also past the budget
	if !AdmitAtom([]byte("new1")) || !AdmitAtom([]byte("made_before")) {
		t.Fatal("a name already made is refused")
	}
	if AtomsSpent() != 5 {
		t.Fatalf("spent %d, want 5", AtomsSpent())
	}
	if !AdmitAtom(nil) == AdmitAtom([]byte("")) {
		t.Fatal("the empty name is inconsistent")
	}
}

// Many threads admit at once: the budget holds exactly.
func TestAtomsConcurrent(t *testing.T) {
	SetMaxAtoms(AtomsSpent() + 1000)
	var wg sync.WaitGroup
	var mu sync.Mutex
	admitted := 0
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n := 0
			for i := range 10000 {
				if AdmitAtom(fmt.Appendf(nil, "c%d_%d", g, i)) {
					n++
				}
			}
			mu.Lock()
			admitted += n
			mu.Unlock()
		}()
	}
	wg.Wait()
	if admitted != 1000 {
		t.Fatalf("%d new names admitted, want 1000", admitted)
	}
}

// Past the budget a name may be asked of the BEAM, a bounded number of
// times: one it has is free from then on, one it has not is not asked again.
func TestAtomsAsk(t *testing.T) {
	SetMaxAtoms(AtomsSpent()) // spent
	SetAtomAsks(2, 0)
	t.Cleanup(func() { SetAtomAsks(1000, 100) })
	if AdmitAtom([]byte("ask_lists")) {
		t.Fatal("admitted past the budget")
	}
	if !AskAtom([]byte("ask_lists"), true) {
		t.Fatal("not asked")
	}
	if !AdmitAtom([]byte("ask_lists")) {
		t.Fatal("a name the BEAM has is refused after the answer")
	}
	if !AskAtom([]byte("ask_nope"), false) || AdmitAtom([]byte("ask_nope")) {
		t.Fatal("an absent name: asked once, then refused")
	}
	if AskAtom([]byte("ask_nope"), false) {
		t.Fatal("an absent name asked twice")
	}
	if AskAtom([]byte("ask_third"), true) {
		t.Fatal("asked past the asks")
	}
	// a raised cap admits the absent name, counted
	SetMaxAtoms(AtomsSpent() + 1)
	if !AdmitAtom([]byte("ask_nope")) {
		t.Fatal("an absent name refused within the budget")
	}
}
