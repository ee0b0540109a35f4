package disk

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"path"
	"syscall"
)

// namespace is a tree of directories and files, kept flat: every directory by its clean
// absolute path. MemFS keeps two, the current one and the durable base.
type namespace struct {
	// dirs holds every directory by clean absolute path.
	// Invariant: dirs["/"] exists; for every other key p, dirs[path.Dir(p)] exists and has
	// path.Base(p) in its subdirs.
	dirs map[string]*memDir
}

// memDir is the entries of one directory.
// Invariant: a name is in at most one of files and subdirs.
type memDir struct {
	files   map[string]*memFile // entry name -> file
	subdirs map[string]struct{} // entry names of subdirectories
}

func newMemDir() *memDir {
	return &memDir{files: map[string]*memFile{}, subdirs: map[string]struct{}{}}
}

func newNamespace() namespace {
	return namespace{dirs: map[string]*memDir{rootDir: newMemDir()}}
}

const rootDir = "/"

// cleanPath resolves name against the root: "a//b/../c" and "/a/c" are both "/a/c".
func cleanPath(name string) string { return path.Clean(rootDir + name) }

// clone returns a deep copy whose files are remap(file) (files themselves are shared when
// remap returns its argument).
func (ns namespace) clone(remap func(*memFile) *memFile) namespace {
	c := namespace{dirs: make(map[string]*memDir, len(ns.dirs))}
	for p, d := range ns.dirs {
		cd := &memDir{files: make(map[string]*memFile, len(d.files)), subdirs: maps.Clone(d.subdirs)}
		for name, f := range d.files {
			cd.files[name] = remap(f)
		}
		c.dirs[p] = cd
	}
	return c
}

// dirAt returns the directory at clean path p or why there is none: ENOTDIR when a
// component is a file, ENOENT when one is missing (as Linux reports them).
func (ns namespace) dirAt(p string) (*memDir, error) {
	if d := ns.dirs[p]; d != nil {
		return d, nil
	}
	// The nearest existing ancestor tells which. The root exists, so the loop returns.
	for q := p; q != rootDir; q = path.Dir(q) {
		parent := ns.dirs[path.Dir(q)]
		if parent == nil {
			continue
		}
		if _, isFile := parent.files[path.Base(q)]; isFile {
			return nil, syscall.ENOTDIR
		}
		return nil, syscall.ENOENT
	}
	panic(fmt.Sprintf("disk: memfs: root missing looking up %q", p))
}

// parentOf returns the directory holding clean path p, and p's name in it.
func (ns namespace) parentOf(p string) (*memDir, string, error) {
	if p == rootDir {
		return nil, "", syscall.EISDIR
	}
	d, err := ns.dirAt(path.Dir(p))
	return d, path.Base(p), err
}

// fileAt returns the file at clean path p.
func (ns namespace) fileAt(p string) (*memFile, error) {
	d, name, err := ns.parentOf(p)
	if err != nil {
		return nil, err
	}
	if f := d.files[name]; f != nil {
		return f, nil
	}
	if _, isDir := d.subdirs[name]; isDir {
		return nil, syscall.EISDIR
	}
	return nil, syscall.ENOENT
}

// metaKind is the kind of a metaOp.
type metaKind uint8

const (
	metaCreate metaKind = iota
	metaMkdir
	metaRemove
	metaRename
)

// metaOp is a change of directory entries, volatile until SyncDir of every directory it
// changes.
type metaOp struct {
	kind    metaKind
	path    string   // clean path created, removed, or renamed from
	newPath string   // metaRename: clean path renamed to
	file    *memFile // metaCreate: the new file
	// unsyncedDirs are the directories whose SyncDir the op still waits for; empty when
	// the op is durable.
	unsyncedDirs []string
}

func newMetaOp(kind metaKind, p, newPath string, f *memFile) *metaOp {
	op := &metaOp{kind: kind, path: p, newPath: newPath, file: f, unsyncedDirs: []string{path.Dir(p)}}
	if kind == metaRename && path.Dir(newPath) != path.Dir(p) {
		op.unsyncedDirs = append(op.unsyncedDirs, path.Dir(newPath))
	}
	return op
}

func (op *metaOp) durable() bool { return len(op.unsyncedDirs) == 0 }

// markSynced records that dir was synced.
func (op *metaOp) markSynced(dir string) {
	for i, d := range op.unsyncedDirs {
		if d == dir {
			op.unsyncedDirs = append(op.unsyncedDirs[:i], op.unsyncedDirs[i+1:]...)
			return
		}
	}
}

// apply checks op's preconditions and, when they hold, applies op. An error leaves ns
// unchanged.
func (ns namespace) apply(op *metaOp) error {
	switch op.kind {
	case metaCreate:
		return ns.create(op.path, op.file)
	case metaMkdir:
		return ns.mkdir(op.path)
	case metaRemove:
		return ns.remove(op.path)
	case metaRename:
		return ns.rename(op.path, op.newPath)
	}
	panic(fmt.Sprintf("disk: memfs: unknown metaKind %d", op.kind))
}

// create sets the entry p to f, replacing a file there.
func (ns namespace) create(p string, f *memFile) error {
	d, name, err := ns.parentOf(p)
	if err != nil {
		return err
	}
	if _, isDir := d.subdirs[name]; isDir {
		return syscall.EISDIR
	}
	d.files[name] = f
	return nil
}

func (ns namespace) mkdir(p string) error {
	d, name, err := ns.parentOf(p)
	if err != nil {
		return err
	}
	if _, isFile := d.files[name]; isFile {
		return syscall.ENOTDIR
	}
	if _, isDir := d.subdirs[name]; isDir {
		return syscall.EEXIST
	}
	d.subdirs[name] = struct{}{}
	ns.dirs[p] = newMemDir()
	return nil
}

// remove removes the file or empty directory p.
func (ns namespace) remove(p string) error {
	d, name, err := ns.parentOf(p)
	if err != nil {
		return err
	}
	if _, isFile := d.files[name]; isFile {
		delete(d.files, name)
		return nil
	}
	if _, isDir := d.subdirs[name]; !isDir {
		return syscall.ENOENT
	}
	if sub := ns.dirs[p]; len(sub.files)+len(sub.subdirs) > 0 {
		return syscall.ENOTEMPTY
	}
	delete(d.subdirs, name)
	delete(ns.dirs, p)
	return nil
}

// rename moves the file at from to to, replacing a file there. Directories cannot be
// renamed. Errors are checked in the order of os.Rename on Linux: first its own check for a
// directory at to, then rename(2)'s lookups of both parents before the entries.
func (ns namespace) rename(from, to string) error {
	if ns.dirs[to] != nil {
		if _, err := ns.fileAt(from); err != nil && !errors.Is(err, syscall.EISDIR) {
			return err
		}
		return syscall.EEXIST
	}
	srcDir, srcName, err := ns.parentOf(from)
	if err != nil {
		return err
	}
	dstDir, dstName, err := ns.parentOf(to)
	if err != nil {
		return err
	}
	f := srcDir.files[srcName]
	if f == nil {
		if _, isDir := srcDir.subdirs[srcName]; isDir {
			return errRenameDir
		}
		return syscall.ENOENT
	}
	if from != to {
		delete(srcDir.files, srcName)
		dstDir.files[dstName] = f
	}
	return nil
}

// errRenameDir is MemFS's answer to renaming a directory, which it does not support.
var errRenameDir = fmt.Errorf("disk: memfs: renaming a directory is not supported: %w", fs.ErrInvalid)
