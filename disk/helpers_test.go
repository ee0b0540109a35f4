package disk

import (
	"errors"
	"io"
	"io/fs"
	"path"
	"syscall"

	"pgregory.net/rapid"
)

// must fails the test on a non-nil err.
func must(t rapid.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("unexpected error: %v", err)
	}
}

// readAll returns the content of the file name of fsys.
func readAll(t rapid.TB, fsys FS, name string) []byte {
	t.Helper()
	f, err := fsys.Open(name)
	must(t, err)
	data, err := readFile(f)
	if closeErr := f.Close(); err == nil {
		err = closeErr
	}
	must(t, err)
	return data
}

// readFile returns everything in f.
func readFile(f File) ([]byte, error) {
	size, err := f.Size()
	if err != nil {
		return nil, err
	}
	data := make([]byte, size)
	n, err := f.ReadAt(data, 0)
	if errors.Is(err, io.EOF) && n == len(data) {
		err = nil
	}
	return data[:n], err
}

// dump returns every entry under the directory root of fsys, by slash path relative to
// root: "/" for a directory, "=" and the content for a file.
func dump(t rapid.TB, fsys FS, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	var walk func(rel string)
	walk = func(rel string) {
		names, err := fsys.List(path.Join(root, rel))
		must(t, err)
		for _, name := range names {
			child := path.Join(rel, name)
			if _, err := fsys.List(path.Join(root, child)); err == nil {
				out[child] = "/"
				walk(child)
				continue
			} else if !errors.Is(err, syscall.ENOTDIR) {
				t.Fatalf("list %s: %v", child, err)
			}
			out[child] = "=" + string(readAll(t, fsys, path.Join(root, child)))
		}
	}
	walk("")
	return out
}

// errClass is what two FSs must agree on about an error: nil, io.EOF, fs.ErrClosed or its
// errno. Anything else is returned whole, so that it never matches by chance.
func errClass(err error) string {
	var errno syscall.Errno
	switch {
	case err == nil:
		return "nil"
	case errors.Is(err, io.EOF):
		return "EOF"
	case errors.Is(err, fs.ErrClosed):
		return "closed"
	case errors.As(err, &errno):
		return errno.Error()
	}
	return "other: " + err.Error()
}
