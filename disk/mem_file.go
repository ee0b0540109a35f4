package disk

import (
	"errors"
	"io"
	"io/fs"
)

// memFile is the content of one MemFS file (its inode): what reads see, what is durable,
// and the changes in between.
type memFile struct {
	// data is the content reads see.
	// Invariant: bytes below len(data) are never changed in place (truncate copies into a
	// new array), so synced and ops may alias data.
	data []byte
	// synced is the content as of the last Sync: a crash keeps it.
	synced []byte
	// ops are the appends and truncates since the last Sync, in order.
	// Invariant: applying ops to synced gives data.
	ops []fileOp
}

// fileOp is an unsynced change of a memFile.
type fileOp struct {
	// truncate is set for a truncate to sizeBytes; otherwise the op appends data.
	truncate  bool
	sizeBytes int
	data      []byte // appended bytes, a slice of a memFile.data array
}

func (f *memFile) write(p []byte) {
	if len(p) == 0 {
		return
	}
	oldLen := len(f.data)
	f.data = append(f.data, p...)
	if n := len(f.ops); n > 0 && !f.ops[n-1].truncate {
		// No truncate since the last append op, so its bytes end at oldLen in data.
		last := &f.ops[n-1]
		last.data = f.data[oldLen-len(last.data):]
		return
	}
	f.ops = append(f.ops, fileOp{data: f.data[oldLen:]})
}

func (f *memFile) truncate(sizeBytes int) {
	data := make([]byte, sizeBytes)
	copy(data, f.data)
	f.data = data
	f.ops = append(f.ops, fileOp{truncate: true, sizeBytes: sizeBytes})
}

func (f *memFile) sync() {
	f.synced = f.data[:len(f.data):len(f.data)]
	clear(f.ops)
	f.ops = f.ops[:0]
}

// memHandle is an open MemFS file.
type memHandle struct {
	fs   *MemFS
	file *memFile
	name string // as given to Create or Open
	// closed is set by Close; every later call fails with fs.ErrClosed.
	closed bool
}

var errNegativeOffset = errors.New("disk: memfs: negative offset")

// checkOpen returns the error of op on a closed handle. The caller holds h.fs.mu.
func (h *memHandle) checkOpen(op string) error {
	if h.closed {
		return &fs.PathError{Op: op, Path: h.name, Err: fs.ErrClosed}
	}
	return nil
}

func (h *memHandle) ReadAt(p []byte, off int64) (int, error) {
	h.fs.mu.Lock()
	defer h.fs.mu.Unlock()
	// The order of the checks is os.File's: an empty read of a closed file succeeds.
	if off < 0 {
		return 0, &fs.PathError{Op: "readat", Path: h.name, Err: errNegativeOffset}
	}
	if len(p) == 0 {
		return 0, nil
	}
	if err := h.checkOpen("read"); err != nil {
		return 0, err
	}
	data := h.file.data
	if off >= int64(len(data)) {
		return 0, io.EOF
	}
	n := copy(p, data[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (h *memHandle) Write(p []byte) (int, error) {
	h.fs.mu.Lock()
	defer h.fs.mu.Unlock()
	if err := h.checkOpen("write"); err != nil {
		return 0, err
	}
	h.file.write(p)
	return len(p), nil
}

func (h *memHandle) Close() error {
	h.fs.mu.Lock()
	defer h.fs.mu.Unlock()
	if err := h.checkOpen("close"); err != nil {
		return err
	}
	h.closed = true
	return nil
}

// Sync makes the file's writes and truncates so far durable.
func (h *memHandle) Sync() error {
	h.fs.mu.Lock()
	defer h.fs.mu.Unlock()
	if err := h.checkOpen("sync"); err != nil {
		return err
	}
	h.file.sync()
	return nil
}

// Truncate cuts or extends the file to size bytes; it is durable after Sync.
func (h *memHandle) Truncate(size int64) error {
	h.fs.mu.Lock()
	defer h.fs.mu.Unlock()
	if err := h.checkOpen("truncate"); err != nil {
		return err
	}
	if size < 0 || size != int64(int(size)) {
		return &fs.PathError{Op: "truncate", Path: h.name, Err: fs.ErrInvalid}
	}
	h.file.truncate(int(size))
	return nil
}

func (h *memHandle) Size() (int64, error) {
	h.fs.mu.Lock()
	defer h.fs.mu.Unlock()
	if err := h.checkOpen("seek"); err != nil {
		return 0, err
	}
	return int64(len(h.file.data)), nil
}
