package disk

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sync"
)

// ErrInjected is the error the injectors here return: an I/O error, like EIO, that the
// disk did not really have. Match it with errors.Is.
var ErrInjected = errors.New("disk: injected i/o error")

// Op names an FS or File operation, for an Injector to choose which to fail.
type Op uint8

const (
	OpCreate Op = iota
	OpOpen
	OpRemove
	OpRename
	OpMkdirAll
	OpList
	OpSyncDir
	OpRead // File.ReadAt
	OpWrite
	OpSync
	OpTruncate
	OpSize
	OpClose
	numOps
)

var opNames = [numOps]string{
	OpCreate: "create", OpOpen: "open", OpRemove: "remove", OpRename: "rename",
	OpMkdirAll: "mkdirall", OpList: "list", OpSyncDir: "syncdir", OpRead: "read",
	OpWrite: "write", OpSync: "sync", OpTruncate: "truncate", OpSize: "size", OpClose: "close",
}

func (op Op) String() string {
	if op < numOps {
		return opNames[op]
	}
	return fmt.Sprintf("Op(%d)", uint8(op))
}

// Injector picks the operations an error-injecting FS fails.
type Injector interface {
	// MaybeError returns the error op on path should fail with, or nil to let it run.
	// path is the name given to the FS (for a File, to Create or Open; for Rename, the old
	// name). It is called before the operation, once per call.
	MaybeError(op Op, path string) error
}

// InjectorFunc is an Injector made of a function.
type InjectorFunc func(op Op, path string) error

// MaybeError returns f(op, path).
func (f InjectorFunc) MaybeError(op Op, path string) error { return f(op, path) }

// NewErrorFS returns an FS that runs every operation on inner unless inj returns an error
// for it; then the operation does nothing and returns that error wrapped in an
// *fs.PathError (*os.LinkError for Rename), except Close, which closes the inner file
// anyway.
//
// As on Linux, a failed Sync means the unsynced writes may be lost: the injected Sync does
// not reach inner, so they stay volatile (a MemFS crash may drop them). The failure is also
// sticky: every later Sync of that File returns the same error, because a Sync after a
// failed one must not claim writes it may have lost.
func NewErrorFS(inner FS, inj Injector) FS { return &errorFS{inner: inner, inj: inj} }

type errorFS struct {
	inner FS
	inj   Injector
}

// maybeError returns the injected error for op on path, wrapped.
func maybeError(inj Injector, op Op, path string) error {
	if err := inj.MaybeError(op, path); err != nil {
		return &fs.PathError{Op: op.String(), Path: path, Err: err}
	}
	return nil
}

func (e *errorFS) Create(name string) (File, error) {
	if err := maybeError(e.inj, OpCreate, name); err != nil {
		return nil, err
	}
	f, err := e.inner.Create(name)
	if err != nil {
		return nil, err
	}
	return &errorFile{inner: f, inj: e.inj, name: name}, nil
}

func (e *errorFS) Open(name string) (File, error) {
	if err := maybeError(e.inj, OpOpen, name); err != nil {
		return nil, err
	}
	f, err := e.inner.Open(name)
	if err != nil {
		return nil, err
	}
	return &errorFile{inner: f, inj: e.inj, name: name}, nil
}

func (e *errorFS) Remove(name string) error {
	if err := maybeError(e.inj, OpRemove, name); err != nil {
		return err
	}
	return e.inner.Remove(name)
}

func (e *errorFS) Rename(oldname, newname string) error {
	if err := e.inj.MaybeError(OpRename, oldname); err != nil {
		return &os.LinkError{Op: OpRename.String(), Old: oldname, New: newname, Err: err}
	}
	return e.inner.Rename(oldname, newname)
}

func (e *errorFS) MkdirAll(dir string) error {
	if err := maybeError(e.inj, OpMkdirAll, dir); err != nil {
		return err
	}
	return e.inner.MkdirAll(dir)
}

func (e *errorFS) List(dir string) ([]string, error) {
	if err := maybeError(e.inj, OpList, dir); err != nil {
		return nil, err
	}
	return e.inner.List(dir)
}

func (e *errorFS) SyncDir(dir string) error {
	if err := maybeError(e.inj, OpSyncDir, dir); err != nil {
		return err
	}
	return e.inner.SyncDir(dir)
}

// errorFile is a File of an errorFS.
type errorFile struct {
	inner File
	inj   Injector
	name  string // as given to Create or Open

	mu sync.Mutex
	// syncErr is the first error Sync returned; once set, Sync returns it without running.
	syncErr error
}

func (f *errorFile) ReadAt(p []byte, off int64) (int, error) {
	if err := maybeError(f.inj, OpRead, f.name); err != nil {
		return 0, err
	}
	return f.inner.ReadAt(p, off)
}

func (f *errorFile) Write(p []byte) (int, error) {
	if err := maybeError(f.inj, OpWrite, f.name); err != nil {
		return 0, err
	}
	return f.inner.Write(p)
}

func (f *errorFile) Close() error {
	injected := maybeError(f.inj, OpClose, f.name)
	if err := f.inner.Close(); err != nil {
		return err
	}
	return injected
}

func (f *errorFile) Sync() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.syncErr != nil {
		return f.syncErr
	}
	f.syncErr = maybeError(f.inj, OpSync, f.name)
	if f.syncErr == nil {
		f.syncErr = f.inner.Sync()
	}
	return f.syncErr
}

func (f *errorFile) Truncate(size int64) error {
	if err := maybeError(f.inj, OpTruncate, f.name); err != nil {
		return err
	}
	return f.inner.Truncate(size)
}

func (f *errorFile) Size() (int64, error) {
	if err := maybeError(f.inj, OpSize, f.name); err != nil {
		return 0, err
	}
	return f.inner.Size()
}
