package disk

import "io"

// SectorBytes is the unit of a torn write: a crash keeps, drops or tears each unsynced
// sector of a file as a whole. Sectors are aligned to file offsets that are multiples of
// SectorBytes.
const SectorBytes = 512

// File is an open file. It is an alias of an interface literal, not a named type, so that
// it is the same type as chronik/core/log.File and every FS here satisfies log.FS without
// core importing disk.
//
// Writes append at the end of the file and are volatile until Sync returns nil.
type File = interface {
	io.ReaderAt
	io.Writer
	io.Closer
	// Sync makes every write that returned before the call durable.
	Sync() error
	// Truncate cuts or extends (with zeros) the file to size bytes.
	Truncate(size int64) error
	// Size is the file's current length in bytes, unsynced writes included.
	Size() (int64, error)
}

// FS is a file system. Errors for missing files satisfy errors.Is(err, fs.ErrNotExist).
type FS interface {
	// Create creates name, truncating it if it exists, opened for reading and appending.
	Create(name string) (File, error)
	// Open opens an existing file for reading and appending at its end.
	Open(name string) (File, error)
	// Remove deletes a file or an empty directory.
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
