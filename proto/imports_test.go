package proto

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"testing"
)

// proto is pure Go: no cgo, and of this module only etf.
func TestProtoIsPureGo(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range files {
		f, err := parser.ParseFile(token.NewFileSet(), name, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			switch imp.Path.Value {
			case `"C"`:
				t.Errorf("%s uses cgo", name)
			case `"github.com/erlang-python/erlang_python/bridge"`, `"github.com/erlang-python/erlang_python/pool"`:
				t.Errorf("%s imports %s", name, imp.Path.Value)
			}
		}
	}
}
