package disk

import (
	"errors"
	"io/fs"
	"os"
	"path"
	"slices"
	"sync"
	"syscall"
)

// MemFS is an in-memory FS that records which changes are durable, so that CrashClone can
// show the disk as a power loss would leave it. It is deterministic: the same operations
// give the same state, and CrashClone draws randomness only from the rng it is given.
//
// MemFS and its Files are safe for concurrent use (one mutex guards everything). Names are
// slash-separated and resolved against the root "/", which always exists and is durable.
// Renaming a directory is not supported. Errors carry the errno os gives on Linux
// (syscall.ENOENT, ENOTDIR, EISDIR, ENOTEMPTY, and EEXIST for a rename onto a directory),
// wrapped in *fs.PathError or *os.LinkError.
//
// A directory change is remembered until it and every change before it are durable, so a
// directory that is changed but never synced makes that list, and the cost of CrashClone,
// grow: SyncDir every directory you change.
type MemFS struct {
	mu sync.Mutex
	// cur is the namespace operations see.
	cur namespace
	// base is the durable namespace before pending[0].
	// Invariant: applying pending to base in order succeeds for every op and gives cur.
	base namespace
	// pending are the directory changes since base, in order. Some may be durable already,
	// waiting behind an earlier one that is not.
	// Invariant: pending is empty or pending[0] is not durable.
	pending []*metaOp
}

// NewMem returns an empty MemFS holding only the root directory.
func NewMem() *MemFS {
	return &MemFS{cur: newNamespace(), base: newNamespace()}
}

// record applies op to the current namespace and queues it until it is durable.
func (m *MemFS) record(op *metaOp) error {
	if err := m.cur.apply(op); err != nil {
		return err
	}
	m.pending = append(m.pending, op)
	return nil
}

// Create creates name, or truncates it if it exists, and opens it for reading and
// appending. The new entry is durable after SyncDir of its directory; the truncation of an
// existing file is durable after File.Sync.
func (m *MemFS) Create(name string) (File, error) {
	p := cleanPath(name)
	m.mu.Lock()
	defer m.mu.Unlock()
	f, err := m.cur.fileAt(p)
	switch {
	case err == nil:
		f.truncate(0)
	case errors.Is(err, syscall.ENOENT):
		f = &memFile{}
		err = m.record(newMetaOp(metaCreate, p, "", f))
	}
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	return &memHandle{fs: m, file: f, name: name}, nil
}

// Open opens the existing file name for reading and appending.
func (m *MemFS) Open(name string) (File, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	f, err := m.cur.fileAt(cleanPath(name))
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	return &memHandle{fs: m, file: f, name: name}, nil
}

// Remove removes the file or empty directory name. Open Files of a removed file stay
// usable.
func (m *MemFS) Remove(name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.record(newMetaOp(metaRemove, cleanPath(name), "", nil)); err != nil {
		return &fs.PathError{Op: "remove", Path: name, Err: err}
	}
	return nil
}

// Rename renames the file oldname to newname, replacing a file at newname. It is durable
// after SyncDir of both directories.
func (m *MemFS) Rename(oldname, newname string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	op := newMetaOp(metaRename, cleanPath(oldname), cleanPath(newname), nil)
	if err := m.record(op); err != nil {
		return &os.LinkError{Op: "rename", Old: oldname, New: newname, Err: err}
	}
	return nil
}

// MkdirAll creates dir and its missing parents; each is durable after SyncDir of its
// parent.
func (m *MemFS) MkdirAll(dir string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	var missing []string // from dir up
	for q := cleanPath(dir); q != rootDir; q = path.Dir(q) {
		if m.cur.dirs[q] != nil {
			break
		}
		missing = append(missing, q)
	}
	for _, q := range slices.Backward(missing) {
		if err := m.record(newMetaOp(metaMkdir, q, "", nil)); err != nil {
			return &fs.PathError{Op: "mkdir", Path: q, Err: err}
		}
	}
	return nil
}

// List returns the sorted names of dir's entries.
func (m *MemFS) List(dir string) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	d, err := m.cur.dirAt(cleanPath(dir))
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: dir, Err: err}
	}
	names := make([]string, 0, len(d.files)+len(d.subdirs))
	for name := range d.files {
		names = append(names, name)
	}
	for name := range d.subdirs {
		names = append(names, name)
	}
	slices.Sort(names)
	return names, nil
}

// SyncDir makes every create, remove, rename and mkdir in dir so far durable (a rename
// between directories once both are synced).
func (m *MemFS) SyncDir(dir string) error {
	p := cleanPath(dir)
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, err := m.cur.dirAt(p); err != nil {
		return &fs.PathError{Op: "syncdir", Path: dir, Err: err}
	}
	for _, op := range m.pending {
		op.markSynced(p)
	}
	m.foldDurable()
	return nil
}

// foldDurable moves the durable ops at the head of pending into base.
func (m *MemFS) foldDurable() {
	n := 0
	for n < len(m.pending) && m.pending[n].durable() {
		if err := m.base.apply(m.pending[n]); err != nil {
			panic("disk: memfs: durable op does not apply to base: " + err.Error())
		}
		n++
	}
	m.pending = slices.Delete(m.pending, 0, n)
}
