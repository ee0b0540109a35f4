package log

import "io"

// File is the part of a file the log needs. It is an alias of an interface literal, not a
// named type, so that disk.File (the identical literal) and this one are the same type and
// every disk.FS satisfies FS without core importing disk.
//
// Writes are volatile until Sync returns nil: a crash may keep, drop or tear them.
type File = interface {
	io.ReaderAt
	io.Writer
	io.Closer
	// Sync makes every write that returned before the call durable.
	Sync() error
	// Truncate cuts or extends the file to size bytes.
	Truncate(size int64) error
	// Size is the file's current length in bytes, unsynced writes included.
	Size() (int64, error)
}

// FS is the file system the log writes through (the consumer-owned interface; disk/ has
// the OS, crashable in-memory and error-injecting implementations).
type FS interface {
	// Create creates name, truncating it if it exists, opened for reading and appending.
	Create(name string) (File, error)
	// Open opens an existing file for reading and appending at its end.
	Open(name string) (File, error)
	// Remove deletes a file.
	Remove(name string) error
	// Rename renames a file, replacing newname if it exists.
	Rename(oldname, newname string) error
	// MkdirAll creates a directory and its parents.
	MkdirAll(dir string) error
	// List returns the names (not paths) of the entries of dir, sorted.
	List(dir string) ([]string, error)
	// SyncDir makes the creation, removal and renaming of dir's entries durable.
	SyncDir(dir string) error
}
