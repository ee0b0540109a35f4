package disk

import (
	"bytes"
	"fmt"
	"maps"
	"os"
	"path"
	"slices"
	"testing"

	"pgregory.net/rapid"
)

// The differential test runs the same random operations on OS (in a temporary directory)
// and on MemFS and requires the same results, errors compared by errno.

var (
	diffFiles   = []string{"a", "b", "d", "d/a", "d/e/c", "a/x"}
	diffDirs    = []string{"", "a", "d", "d/e"}
	diffRemoves = append(slices.Clone(diffFiles), "d/e")
	// diffRenameSources leaves out "d", which is usually a directory: MemFS cannot rename
	// one.
	diffRenameSources = []string{"a", "b", "d/a", "d/e/c", "a/x"}
)

// diffHandle is one File opened on both FSs by the same call.
type diffHandle struct {
	name     string
	os, mem  File
	osClosed bool // the OS file must be closed when the test ends
}

type diffState struct {
	osRoot  string
	osFS    FS
	memFS   *MemFS
	handles []*diffHandle
	nOpened int // numbers handle names
}

func (s *diffState) osPath(name string) string  { return path.Join(s.osRoot, name) }
func (s *diffState) memPath(name string) string { return "/" + name }

// sameErr fails unless the two errors have the same class.
func sameErr(t *rapid.T, what string, osErr, memErr error) {
	t.Helper()
	if o, m := errClass(osErr), errClass(memErr); o != m {
		t.Fatalf("%s: OS error %v (%s), MemFS error %v (%s)", what, osErr, o, memErr, m)
	}
}

func (s *diffState) handle(t *rapid.T) *diffHandle {
	if len(s.handles) == 0 {
		t.Skip("no open file")
	}
	return rapid.SampledFrom(s.handles).Draw(t, "file")
}

func (s *diffState) opened(t *rapid.T, name string, osF, memF File, osErr, memErr error) {
	sameErr(t, "open "+name, osErr, memErr)
	if osErr == nil {
		s.nOpened++
		s.handles = append(s.handles, &diffHandle{name: fmt.Sprintf("%s#%d", name, s.nOpened), os: osF, mem: memF})
	}
}

func (s *diffState) actions() map[string]func(*rapid.T) {
	return map[string]func(*rapid.T){
		"create": func(t *rapid.T) {
			name := rapid.SampledFrom(diffFiles).Draw(t, "name")
			osF, osErr := s.osFS.Create(s.osPath(name))
			memF, memErr := s.memFS.Create(s.memPath(name))
			s.opened(t, name, osF, memF, osErr, memErr)
		},
		"open": func(t *rapid.T) {
			name := rapid.SampledFrom(diffFiles).Draw(t, "name")
			osF, osErr := s.osFS.Open(s.osPath(name))
			memF, memErr := s.memFS.Open(s.memPath(name))
			s.opened(t, name, osF, memF, osErr, memErr)
		},
		"write": func(t *rapid.T) {
			h := s.handle(t)
			data := rapid.SliceOfN(rapid.Byte(), 0, 700).Draw(t, "data")
			osN, osErr := h.os.Write(data)
			memN, memErr := h.mem.Write(data)
			sameErr(t, "write "+h.name, osErr, memErr)
			if osN != memN {
				t.Fatalf("write %s: OS wrote %d bytes, MemFS %d", h.name, osN, memN)
			}
		},
		"readAt": func(t *rapid.T) {
			h := s.handle(t)
			n := rapid.IntRange(0, 600).Draw(t, "len")
			off := rapid.Int64Range(0, 1500).Draw(t, "off")
			osBuf, memBuf := make([]byte, n), make([]byte, n)
			osN, osErr := h.os.ReadAt(osBuf, off)
			memN, memErr := h.mem.ReadAt(memBuf, off)
			sameErr(t, "readAt "+h.name, osErr, memErr)
			if !bytes.Equal(osBuf[:osN], memBuf[:memN]) {
				t.Fatalf("readAt %s: OS read %q, MemFS %q", h.name, osBuf[:osN], memBuf[:memN])
			}
		},
		"sync": func(t *rapid.T) {
			h := s.handle(t)
			sameErr(t, "sync "+h.name, h.os.Sync(), h.mem.Sync())
		},
		"truncate": func(t *rapid.T) {
			h := s.handle(t)
			size := rapid.Int64Range(0, 1200).Draw(t, "size")
			sameErr(t, "truncate "+h.name, h.os.Truncate(size), h.mem.Truncate(size))
		},
		"size": func(t *rapid.T) {
			h := s.handle(t)
			osSize, osErr := h.os.Size()
			memSize, memErr := h.mem.Size()
			sameErr(t, "size "+h.name, osErr, memErr)
			if osSize != memSize {
				t.Fatalf("size %s: OS %d, MemFS %d", h.name, osSize, memSize)
			}
		},
		"close": func(t *rapid.T) {
			h := s.handle(t)
			osErr, memErr := h.os.Close(), h.mem.Close()
			h.osClosed = true
			sameErr(t, "close "+h.name, osErr, memErr)
		},
		"remove": func(t *rapid.T) {
			name := rapid.SampledFrom(diffRemoves).Draw(t, "name")
			sameErr(t, "remove "+name, s.osFS.Remove(s.osPath(name)), s.memFS.Remove(s.memPath(name)))
		},
		"rename": func(t *rapid.T) {
			from := rapid.SampledFrom(diffRenameSources).Draw(t, "from")
			to := rapid.SampledFrom(diffFiles).Draw(t, "to")
			if _, err := s.memFS.List(s.memPath(from)); err == nil {
				t.Skip("MemFS does not rename directories")
			}
			osErr := s.osFS.Rename(s.osPath(from), s.osPath(to))
			memErr := s.memFS.Rename(s.memPath(from), s.memPath(to))
			sameErr(t, "rename "+from+" "+to, osErr, memErr)
		},
		"mkdirAll": func(t *rapid.T) {
			dir := rapid.SampledFrom(diffDirs).Draw(t, "dir")
			sameErr(t, "mkdirAll "+dir, s.osFS.MkdirAll(s.osPath(dir)), s.memFS.MkdirAll(s.memPath(dir)))
		},
		"list": func(t *rapid.T) {
			dir := rapid.SampledFrom(diffDirs).Draw(t, "dir")
			osNames, osErr := s.osFS.List(s.osPath(dir))
			memNames, memErr := s.memFS.List(s.memPath(dir))
			sameErr(t, "list "+dir, osErr, memErr)
			if !slices.Equal(osNames, memNames) {
				t.Fatalf("list %s: OS %q, MemFS %q", dir, osNames, memNames)
			}
		},
		"syncDir": func(t *rapid.T) {
			dir := rapid.SampledFrom(diffDirs).Draw(t, "dir")
			sameErr(t, "syncDir "+dir, s.osFS.SyncDir(s.osPath(dir)), s.memFS.SyncDir(s.memPath(dir)))
		},
		"": func(t *rapid.T) {
			if osTree, memTree := dump(t, s.osFS, s.osRoot), dump(t, s.memFS, "/"); !maps.Equal(osTree, memTree) {
				t.Fatalf("trees differ:\nOS    %q\nMemFS %q", osTree, memTree)
			}
		},
	}
}

func TestDifferentialOSMem(t *testing.T) {
	parent := t.TempDir()
	rapid.Check(t, func(rt *rapid.T) {
		root, err := os.MkdirTemp(parent, "case")
		must(rt, err)
		s := &diffState{osRoot: root, osFS: OS(), memFS: NewMem()}
		rt.Cleanup(func() {
			for _, h := range s.handles {
				if !h.osClosed {
					if err := h.os.Close(); err != nil {
						rt.Errorf("close %s: %v", h.name, err)
					}
				}
			}
			if err := os.RemoveAll(root); err != nil {
				rt.Errorf("remove %s: %v", root, err)
			}
		})
		rt.Repeat(s.actions())
	})
}
