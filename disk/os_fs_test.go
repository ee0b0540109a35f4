package disk

import (
	"errors"
	"path/filepath"
	"syscall"
	"testing"
)

func TestOSWriteAndSizeDoNotAllocate(t *testing.T) {
	f, err := OS().Create(filepath.Join(t.TempDir(), "f"))
	must(t, err)
	defer func() { must(t, f.Close()) }()
	data := []byte("record")
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := f.Write(data); err != nil {
			t.Fatal(err)
		}
		if _, err := f.Size(); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("Write and Size allocate %v times per call", allocs)
	}
	size, err := f.Size()
	must(t, err)
	if want := int64(101 * len(data)); size != want { // AllocsPerRun runs once more to warm up
		t.Errorf("size %d, want %d", size, want)
	}
}

func TestOSSyncDirOfAFile(t *testing.T) {
	name := filepath.Join(t.TempDir(), "f")
	f, err := OS().Create(name)
	must(t, err)
	must(t, f.Close())
	if err := OS().SyncDir(name); !errors.Is(err, syscall.ENOTDIR) {
		t.Errorf("SyncDir of a file: got %v, want ENOTDIR", err)
	}
}
