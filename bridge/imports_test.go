package bridge

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// bridge depends on its seams, not on the pool nor on any package that
// embeds CPython: its tests run without it.
func TestBridgeImportsNoPool(t *testing.T) {
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
			path, _ := strconv.Unquote(imp.Path.Value)
			if strings.HasPrefix(path, "github.com/erlang-python/erlang_python/") &&
				path != "github.com/erlang-python/erlang_python/etf" && path != "github.com/erlang-python/erlang_python/proto" {
				t.Errorf("%s imports %s: bridge may import etf and proto only", name, path)
			}
		}
	}
}
