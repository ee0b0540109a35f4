// Package lint holds the repository's rules as tests: the deterministic packages stay
// deterministic, and the import graph keeps its shape.
package lint

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

const module = "chronik"

// deterministic lists the folders whose non-test code runs inside the simulator: no
// goroutines, no clock, no OS, no network, no locks, no global randomness.
var deterministic = []string{"core", "kafka"}

// forbidden imports in deterministic code, with why.
var forbidden = map[string]string{
	"os":          "the caller does I/O through the FS interface",
	"net":         "the network is an edge concern",
	"sync":        "the core is single-threaded",
	"sync/atomic": "the core is single-threaded",
	"time":        "time is a tick passed in",
	"math/rand":   "use a seeded *rand.Rand from math/rand/v2",
	"crypto/rand": "nondeterministic",
	"io/ioutil":   "the caller does I/O",
	"os/exec":     "no processes",
	"syscall":     "no system calls",
	"unsafe":      "no unsafe",
}

// randConstructors are the math/rand/v2 identifiers that do not touch the global source.
var randConstructors = map[string]bool{"New": true, "NewPCG": true, "NewChaCha8": true, "NewZipf": true, "Rand": true, "Source": true, "PCG": true, "ChaCha8": true, "Zipf": true}

func root(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, "..", "..")
}

type goFile struct {
	rel  string
	file *ast.File
	fset *token.FileSet
}

func walk(t *testing.T, top string, tests bool) []goFile {
	t.Helper()
	var out []goFile
	base := root(t)
	err := filepath.WalkDir(filepath.Join(base, top), func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".")) {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") != tests {
			return nil
		}
		fset := token.NewFileSet()
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(base, path)
		out = append(out, goFile{rel: rel, file: f, fset: fset})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func imports(f *ast.File) []string {
	var out []string
	for _, imp := range f.Imports {
		p, _ := strconv.Unquote(imp.Path.Value)
		out = append(out, p)
	}
	return out
}

func TestDeterministicPackages(t *testing.T) {
	for _, top := range deterministic {
		for _, gf := range walk(t, top, false) {
			for _, p := range imports(gf.file) {
				if why, bad := forbidden[p]; bad {
					t.Errorf("%s imports %q: %s", gf.rel, p, why)
				}
			}
			ast.Inspect(gf.file, func(n ast.Node) bool {
				switch x := n.(type) {
				case *ast.GoStmt:
					t.Errorf("%s: go statement: deterministic code starts no goroutine", gf.fset.Position(x.Pos()))
				case *ast.SelectorExpr:
					if id, ok := x.X.(*ast.Ident); ok && id.Name == "rand" && !randConstructors[x.Sel.Name] {
						t.Errorf("%s: rand.%s uses the global random source", gf.fset.Position(x.Pos()), x.Sel.Name)
					}
				}
				return true
			})
		}
	}
}

func TestCoreImportsOnlyItself(t *testing.T) {
	for _, gf := range walk(t, "core", false) {
		for _, p := range imports(gf.file) {
			if strings.HasPrefix(p, module+"/") && !strings.HasPrefix(p, module+"/core/") {
				t.Errorf("%s imports %q: core imports nothing of this repo but its own subpackages", gf.rel, p)
			}
		}
	}
}

func TestNobodyImportsSimOrChaos(t *testing.T) {
	base := root(t)
	entries, err := os.ReadDir(base)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !e.IsDir() || strings.HasPrefix(e.Name(), ".") || e.Name() == "cmd" || e.Name() == "sim" || e.Name() == "chaos" {
			continue
		}
		for _, gf := range walk(t, e.Name(), false) {
			for _, p := range imports(gf.file) {
				if p == module+"/sim" || strings.HasPrefix(p, module+"/sim/") || p == module+"/chaos" || strings.HasPrefix(p, module+"/chaos/") {
					t.Errorf("%s imports %q: only tests and cmd may", gf.rel, p)
				}
			}
		}
	}
}

func TestNoUtilPackages(t *testing.T) {
	bad := map[string]bool{"util": true, "utils": true, "common": true, "misc": true, "types": true, "helpers": true}
	err := filepath.WalkDir(root(t), func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && strings.HasPrefix(d.Name(), ".") && path != root(t) {
			return filepath.SkipDir
		}
		if d.IsDir() && (d.Name() == "node_modules" || d.Name() == "data") {
			return filepath.SkipDir
		}
		if d.IsDir() && bad[d.Name()] {
			t.Errorf("%s: no util/common/misc/types packages", path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
