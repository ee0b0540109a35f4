// Package disk is the small virtual file system Chronik writes through, in the spirit of
// pebble's vfs: an FS and a File built from io.ReaderAt, io.Writer and io.Closer plus Sync,
// with three implementations:
//
//   - OS, the real file system through package os;
//   - MemFS (NewMem), an in-memory file system that records what is durable and can show
//     the disk as a power loss would leave it (MemFS.CrashClone);
//   - NewErrorFS, a wrapper that fails the operations an Injector picks.
//
// # Model
//
// A File is always opened for reading and appending: every Write appends at the end of the
// file (O_APPEND), and reads go through ReadAt. Every change is volatile until it is made
// durable:
//
//   - Writes to a file, its Truncates, and the truncation Create does to an existing file
//     become durable when a later File.Sync of that file returns nil.
//   - Creating, removing and renaming a file, and creating a directory, change an entry of
//     the parent directory and become durable when a later SyncDir of that directory returns
//     nil (a rename between two directories needs both). Syncing a file does not make its
//     directory entry durable.
//
// A crash keeps everything durable. Of the rest (see CrashOptions) it keeps, drops or tears
// each unsynced 512-byte sector (SectorBytes) in file order, and a file keeps only the
// writes before the first sector it dropped or tore, so after a crash every file holds its
// synced content followed by a prefix of its unsynced writes whose last sector may be
// garbage. Each unsynced truncate, create, remove, rename or mkdir independently survives
// or vanishes.
//
// # The caller's duties
//
//  1. To make a new file durable: Create it, Write, File.Sync, then SyncDir its directory.
//  2. To replace a file atomically: write and Sync a temporary file, Rename it over the
//     target, then SyncDir the directory.
//  3. After a crash, expect the unsynced tail of every file to be cut short or torn:
//     validate the tail (checksums) and Truncate what does not validate.
//  4. Treat a failed Sync as fatal for the file: Linux may drop the unsynced pages when
//     fsync fails and a later fsync can then succeed without them. Never retry a Sync and
//     carry on as if the data were safe.
//  5. Names are slash-separated paths. OS passes them to package os unchanged; MemFS
//     resolves relative names against its root "/".
package disk
