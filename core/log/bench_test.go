package log

import (
	"io"
	"math"
	"testing"

	"chronik/disk"
)

// BenchmarkAppend appends 16 KiB batches to a log without syncing: on the OS file system,
// and on nullFS, which drops writes, to show the log's own cost.
func BenchmarkAppend(b *testing.B) {
	for _, fsName := range []string{"os", "null"} {
		b.Run(fsName, func(b *testing.B) {
			fs, dir := FS(disk.OS()), b.TempDir()+"/p0"
			if fsName == "null" {
				fs, dir = nullFS{}, testDir
			}
			l, err := Open(fs, dir, Config{SegmentBytes: 256 << 20}, 0)
			if err != nil {
				b.Fatal(err)
			}
			batch := makeBatch(spec(16, 1000, 0))
			b.SetBytes(int64(len(batch)))
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				if _, _, err := l.Append(batch, int64(i)); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			if err := l.Close(); err != nil {
				b.Fatal(err)
			}
		})
	}
}

// BenchmarkRead reads at random offsets of a 64 MiB log of 16 KiB batches on the OS file
// system: one batch (maxBytes 0) and 1 MiB per Read.
func BenchmarkRead(b *testing.B) {
	l, err := Open(disk.OS(), b.TempDir()+"/p0", Config{SegmentBytes: 16 << 20}, 0)
	if err != nil {
		b.Fatal(err)
	}
	batch := makeBatch(spec(16, 1000, 0))
	for l.Stats().Bytes < 64<<20 {
		if _, _, err := l.Append(batch, 0); err != nil {
			b.Fatal(err)
		}
	}
	end := l.EndOffset()
	for _, maxBytes := range []int{0, 1 << 20} {
		name := "batch"
		if maxBytes > 0 {
			name = "1MiB"
		}
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			var n int64
			x := uint64(1)
			for b.Loop() {
				x ^= x << 13 // xorshift: deterministic offsets, no global random source
				x ^= x >> 7
				x ^= x << 17
				got, err := l.Read(int64(x%uint64(end)), maxBytes, math.MaxInt64)
				if err != nil || len(got) == 0 {
					b.Fatal(err)
				}
				n += int64(len(got))
			}
			b.SetBytes(n / int64(b.N))
		})
	}
	if err := l.Close(); err != nil {
		b.Fatal(err)
	}
}

// nullFS is an FS whose files drop what is written to them: every file is empty on Open.
type nullFS struct{}

func (nullFS) Create(string) (File, error)   { return &nullFile{}, nil }
func (nullFS) Open(string) (File, error)     { return &nullFile{}, nil }
func (nullFS) Remove(string) error           { return nil }
func (nullFS) Rename(string, string) error   { return nil }
func (nullFS) MkdirAll(string) error         { return nil }
func (nullFS) List(string) ([]string, error) { return nil, nil }
func (nullFS) SyncDir(string) error          { return nil }

type nullFile struct{ size int64 }

func (f *nullFile) ReadAt(p []byte, off int64) (int, error) { return 0, io.EOF }
func (f *nullFile) Write(p []byte) (int, error)             { f.size += int64(len(p)); return len(p), nil }
func (f *nullFile) Close() error                            { return nil }
func (f *nullFile) Sync() error                             { return nil }
func (f *nullFile) Truncate(size int64) error               { f.size = size; return nil }
func (f *nullFile) Size() (int64, error)                    { return f.size, nil }
