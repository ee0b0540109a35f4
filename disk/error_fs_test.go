package disk

import (
	"errors"
	"io/fs"
	"maps"
	"math/rand/v2"
	"os"
	"slices"
	"testing"
)

// failOnly returns an Injector failing every call of op, recording the paths it saw.
func failOnly(op Op, paths *[]string) Injector {
	return InjectorFunc(func(got Op, path string) error {
		if got != op {
			return nil
		}
		*paths = append(*paths, path)
		return ErrInjected
	})
}

func TestErrorFSInjectsEveryOp(t *testing.T) {
	tests := []struct {
		op   Op
		path string // the path the injector must see
		do   func(fsys FS, f File) error
		// unchanged checks that the failed op had no effect on the inner FS.
		unchanged func(t *testing.T, inner *MemFS)
	}{
		{OpCreate, "/new", func(fsys FS, _ File) error { _, err := fsys.Create("/new"); return err },
			func(t *testing.T, inner *MemFS) { wantMissing(t, inner, "/new") }},
		{OpOpen, "/f", func(fsys FS, _ File) error { _, err := fsys.Open("/f"); return err }, nil},
		{OpRemove, "/f", func(fsys FS, _ File) error { return fsys.Remove("/f") },
			func(t *testing.T, inner *MemFS) { wantContent(t, inner, "/f", "data") }},
		{OpRename, "/f", func(fsys FS, _ File) error { return fsys.Rename("/f", "/g") },
			func(t *testing.T, inner *MemFS) { wantMissing(t, inner, "/g") }},
		{OpMkdirAll, "/dir", func(fsys FS, _ File) error { return fsys.MkdirAll("/dir") },
			func(t *testing.T, inner *MemFS) { wantMissing(t, inner, "/dir") }},
		{OpList, "/", func(fsys FS, _ File) error { _, err := fsys.List("/"); return err }, nil},
		{OpSyncDir, "/", func(fsys FS, _ File) error { return fsys.SyncDir("/") },
			func(t *testing.T, inner *MemFS) { wantAfterCrash(t, inner, map[string]string{}) }},
		{OpRead, "/f", func(_ FS, f File) error { _, err := f.ReadAt(make([]byte, 1), 0); return err }, nil},
		{OpWrite, "/f", func(_ FS, f File) error { _, err := f.Write([]byte("more")); return err },
			func(t *testing.T, inner *MemFS) { wantContent(t, inner, "/f", "data") }},
		{OpSync, "/f", func(_ FS, f File) error { return f.Sync() },
			func(t *testing.T, inner *MemFS) {
				must(t, inner.SyncDir("/"))
				wantAfterCrash(t, inner, map[string]string{"f": "="})
			}},
		{OpTruncate, "/f", func(_ FS, f File) error { return f.Truncate(1) },
			func(t *testing.T, inner *MemFS) { wantContent(t, inner, "/f", "data") }},
		{OpSize, "/f", func(_ FS, f File) error { _, err := f.Size(); return err }, nil},
		{OpClose, "/f", func(_ FS, f File) error { return f.Close() }, nil},
	}
	for _, tt := range tests {
		t.Run(tt.op.String(), func(t *testing.T) {
			inner := NewMem()
			setup, err := inner.Create("/f")
			must(t, err)
			_, err = setup.Write([]byte("data"))
			must(t, err)
			must(t, setup.Close())
			var paths []string
			fsys := NewErrorFS(inner, failOnly(tt.op, &paths))
			var f File
			if tt.op != OpOpen {
				f, err = fsys.Open("/f")
				must(t, err)
			}

			err = tt.do(fsys, f)
			if !errors.Is(err, ErrInjected) {
				t.Fatalf("%v: got error %v, want ErrInjected", tt.op, err)
			}
			var pathErr *fs.PathError
			var linkErr *os.LinkError
			if !errors.As(err, &pathErr) && !errors.As(err, &linkErr) {
				t.Errorf("%v: error %v is neither *fs.PathError nor *os.LinkError", tt.op, err)
			}
			if want := []string{tt.path}; !slices.Equal(paths, want) {
				t.Errorf("%v: injector saw paths %q, want %q", tt.op, paths, want)
			}
			if tt.unchanged != nil {
				tt.unchanged(t, inner)
			}
		})
	}
}

func wantMissing(t *testing.T, m *MemFS, name string) {
	t.Helper()
	if _, err := m.Open(name); !errors.Is(err, fs.ErrNotExist) {
		if _, err := m.List(name); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s exists after the failed op", name)
		}
	}
}

func wantContent(t *testing.T, m *MemFS, name, want string) {
	t.Helper()
	if got := string(readAll(t, m, name)); got != want {
		t.Errorf("%s holds %q after the failed op, want %q", name, got, want)
	}
}

func wantAfterCrash(t *testing.T, m *MemFS, want map[string]string) {
	t.Helper()
	if got := dump(t, m.CrashClone(nil, CrashOptions{}), "/"); !maps.Equal(got, want) {
		t.Errorf("after a crash: got %q, want %q", got, want)
	}
}

func TestErrorFSFailedSyncIsSticky(t *testing.T) {
	inner := NewMem()
	failures := 1
	fsys := NewErrorFS(inner, InjectorFunc(func(op Op, _ string) error {
		if op == OpSync && failures > 0 {
			failures--
			return ErrInjected
		}
		return nil
	}))
	f, err := fsys.Create("/f")
	must(t, err)
	must(t, fsys.SyncDir("/"))
	_, err = f.Write([]byte("lost"))
	must(t, err)
	for i := range 3 {
		if err := f.Sync(); !errors.Is(err, ErrInjected) {
			t.Fatalf("Sync #%d after a failed Sync: got %v, want ErrInjected", i+1, err)
		}
	}
	wantAfterCrash(t, inner, map[string]string{"f": "="})

	// Another File of the same file syncs: the failure belongs to the handle.
	g, err := fsys.Open("/f")
	must(t, err)
	must(t, g.Sync())
	wantAfterCrash(t, inner, map[string]string{"f": "=lost"})
}

func TestErrorFSCloseClosesInner(t *testing.T) {
	fsys := NewErrorFS(NewMem(), FailAfter(0, OpClose))
	f, err := fsys.Create("/f")
	must(t, err)
	if err := f.Close(); !errors.Is(err, ErrInjected) {
		t.Fatalf("Close: got %v, want ErrInjected", err)
	}
	if err := f.Close(); !errors.Is(err, fs.ErrClosed) {
		t.Fatalf("second Close: got %v, want fs.ErrClosed from the inner file", err)
	}
}

func TestFailAfter(t *testing.T) {
	inj := FailAfter(2, OpWrite, OpSync)
	tests := []struct {
		op   Op
		fail bool
	}{
		{OpWrite, false}, {OpRead, false}, {OpSync, false}, {OpCreate, false},
		{OpWrite, true}, {OpRead, false}, {OpSync, true}, {OpWrite, true},
	}
	for i, tt := range tests {
		err := inj.MaybeError(tt.op, "/f")
		if got := errors.Is(err, ErrInjected); got != tt.fail || (err != nil && !got) {
			t.Errorf("call %d (%v): got %v, want failure %v", i, tt.op, err, tt.fail)
		}
	}
	all := FailAfter(1)
	for i, op := range []Op{OpOpen, OpClose, OpList} {
		if failed := all.MaybeError(op, "/") != nil; failed != (i > 0) {
			t.Errorf("FailAfter(1) call %d (%v): failed %v, want %v", i, op, failed, i > 0)
		}
	}
}

func TestRandomErrorsIsSeeded(t *testing.T) {
	pattern := func(seed uint64) []bool {
		inj := RandomErrors(rand.New(rand.NewPCG(seed, 0)), 0.5, OpWrite)
		var out []bool
		for i := range 200 {
			op := OpWrite
			if i%3 == 0 {
				op = OpRead // never fails and never draws
			}
			err := inj.MaybeError(op, "/f")
			if err != nil && (op != OpWrite || !errors.Is(err, ErrInjected)) {
				t.Fatalf("call %d (%v): unexpected error %v", i, op, err)
			}
			out = append(out, err != nil)
		}
		return out
	}
	first := pattern(7)
	if !slices.Equal(first, pattern(7)) {
		t.Errorf("the same seed gave different failures")
	}
	if !slices.Contains(first, true) || !slices.Contains(first[1:], false) {
		t.Errorf("probability 0.5 gave no failures or only failures: %v", first)
	}
}

func TestOpString(t *testing.T) {
	seen := map[string]bool{}
	for op := range numOps {
		name := op.String()
		if name == "" || seen[name] {
			t.Errorf("Op %d has name %q, empty or taken", op, name)
		}
		seen[name] = true
	}
	if got := numOps.String(); got != "Op(13)" {
		t.Errorf("unknown Op prints %q", got)
	}
}
