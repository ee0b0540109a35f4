package disk

import (
	"io"
	"io/fs"
	"os"
	"syscall"
)

// OS returns the FS of the operating system: names go to package os unchanged, Sync is
// fsync. It is safe for concurrent use, as are its Files.
func OS() FS { return osFS{} }

type osFS struct{}

// osFile adds Size to *os.File. It is one pointer wide, so storing it in a File does not
// allocate.
type osFile struct{ *os.File }

const (
	osFileFlags = os.O_RDWR | os.O_APPEND
	osFilePerm  = 0o644
	osDirPerm   = 0o755
)

func (osFS) Create(name string) (File, error) {
	f, err := os.OpenFile(name, osFileFlags|os.O_CREATE|os.O_TRUNC, osFilePerm)
	if err != nil {
		return nil, err
	}
	return osFile{f}, nil
}

func (osFS) Open(name string) (File, error) {
	f, err := os.OpenFile(name, osFileFlags, 0)
	if err != nil {
		return nil, err
	}
	return osFile{f}, nil
}

func (osFS) Remove(name string) error { return os.Remove(name) }

func (osFS) Rename(oldname, newname string) error { return os.Rename(oldname, newname) }

func (osFS) MkdirAll(dir string) error { return os.MkdirAll(dir, osDirPerm) }

func (osFS) List(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir) // sorted by name
	if err != nil {
		return nil, err
	}
	names := make([]string, len(entries))
	for i, e := range entries {
		names[i] = e.Name()
	}
	return names, nil
}

// SyncDir fsyncs dir. It fails with ENOTDIR when dir is not a directory, as MemFS does.
func (osFS) SyncDir(dir string) (err error) {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer func() {
		if closeErr := d.Close(); err == nil {
			err = closeErr
		}
	}()
	info, err := d.Stat()
	if err != nil {
		return err
	}
	if !info.IsDir() {
		return &fs.PathError{Op: "syncdir", Path: dir, Err: syscall.ENOTDIR}
	}
	return d.Sync()
}

// Size returns the end offset. Seeking does not disturb writes (O_APPEND) or ReadAt, and
// unlike Stat it does not allocate.
func (f osFile) Size() (int64, error) { return f.Seek(0, io.SeekEnd) }
