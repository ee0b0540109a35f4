package log

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"strconv"
	"strings"
	"testing"
)

// TestDeterministicCore: this package is part of the deterministic core. Its non-test
// files import nothing that reaches the OS, the clock or a global random source, nothing
// of this repository but core packages, and start no goroutine.
func TestDeterministicCore(t *testing.T) {
	forbidden := map[string]bool{
		"os": true, "net": true, "sync": true, "sync/atomic": true, "time": true,
		"math/rand": true, "math/rand/v2": true, "crypto/rand": true, "syscall": true,
		"unsafe": true, "runtime": true,
	}
	fset := token.NewFileSet()
	entries, err := os.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		name := e.Name()
		if !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			if forbidden[path] || strings.HasPrefix(path, "net/") ||
				strings.HasPrefix(path, "chronik/") && !strings.HasPrefix(path, "chronik/core/") {
				t.Errorf("%s imports %q", name, path)
			}
		}
		ast.Inspect(f, func(n ast.Node) bool {
			if g, ok := n.(*ast.GoStmt); ok {
				t.Errorf("%s: go statement at %v", name, fset.Position(g.Pos()))
			}
			return true
		})
	}
}
