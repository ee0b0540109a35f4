package disk

import (
	"bytes"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"

	"pgregory.net/rapid"
)

// fileModel is what a test expects of one file: its synced content and everything written.
type fileModel struct {
	synced, all []byte
}

// checkCrashed checks the content of a file after a crash against its model: every synced
// byte is kept; after them come the unsynced writes, cut short, and only the last sector
// of what is kept (or its unsynced part) may differ from what was written.
func checkCrashed(t rapid.TB, name string, got []byte, want fileModel, opts CrashOptions) {
	t.Helper()
	synced, all := want.synced, want.all
	if len(got) < len(synced) || !bytes.Equal(got[:len(synced)], synced) {
		t.Fatalf("%s: crash lost synced bytes: got %d bytes, synced %d", name, len(got), len(synced))
	}
	if len(got) > len(all) {
		t.Fatalf("%s: crash grew the file to %d bytes, only %d written", name, len(got), len(all))
	}
	intact := len(got)
	if len(got) > len(synced) {
		intact = max(len(synced), (len(got)-1)/SectorBytes*SectorBytes)
	}
	if !bytes.Equal(got[:intact], all[:intact]) {
		t.Fatalf("%s: crash changed bytes before the last sector (offset %d)", name, intact)
	}
	if opts.TearProb == 0 {
		cut := len(got)
		if !bytes.Equal(got, all[:cut]) {
			t.Fatalf("%s: crash without tearing changed the last sector", name)
		}
		if cut != len(synced) && cut != len(all) && cut%SectorBytes != 0 {
			t.Fatalf("%s: crash without tearing cut at %d, inside a sector", name, cut)
		}
	}
	if opts.KeepProb == 1 && !bytes.Equal(got, all) {
		t.Fatalf("%s: KeepAll crash kept %d of %d bytes", name, len(got), len(all))
	}
	if opts.KeepProb+opts.TearProb == 0 && len(got) != len(synced) {
		t.Fatalf("%s: crash keeping nothing kept %d unsynced bytes", name, len(got)-len(synced))
	}
}

func drawCrashOptions(t *rapid.T) CrashOptions {
	keep := rapid.SampledFrom([]float64{0.5, 0.9, 0, 1}).Draw(t, "keepProb")
	tear := rapid.SampledFrom([]float64{0, 0.1, 0.5}).Draw(t, "tearProb")
	return CrashOptions{KeepProb: keep, TearProb: min(tear, 1-keep)}
}

func TestCrashKeepsSyncedPrefix(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		m := NewMem()
		must(rt, m.MkdirAll("/wal"))
		must(rt, m.SyncDir("/"))
		names := []string{"/wal/0", "/wal/1"}
		files := make([]File, len(names))
		models := make([]fileModel, len(names))
		for i, name := range names {
			f, err := m.Create(name)
			must(rt, err)
			files[i] = f
		}
		must(rt, m.SyncDir("/wal"))

		rt.Repeat(map[string]func(*rapid.T){
			"write": func(rt *rapid.T) {
				i := rapid.IntRange(0, len(names)-1).Draw(rt, "file")
				data := rapid.SliceOfN(rapid.Byte(), 1, 3*SectorBytes).Draw(rt, "data")
				_, err := files[i].Write(data)
				must(rt, err)
				models[i].all = append(models[i].all, data...)
			},
			"sync": func(rt *rapid.T) {
				i := rapid.IntRange(0, len(names)-1).Draw(rt, "file")
				must(rt, files[i].Sync())
				models[i].synced = bytes.Clone(models[i].all)
			},
		})

		opts := drawCrashOptions(rt)
		seed := rapid.Uint64().Draw(rt, "seed")
		crashed := m.CrashClone(rand.New(rand.NewPCG(seed, seed)), opts)
		for i, name := range names {
			checkCrashed(rt, name, readAll(rt, crashed, name), models[i], opts)
			// The crash does not change the FS it clones.
			if got := readAll(rt, m, name); !bytes.Equal(got, models[i].all) {
				rt.Fatalf("%s: CrashClone changed the original", name)
			}
		}
	})
}

// scriptOp is one operation of a random script run on a MemFS.
type scriptOp struct {
	Kind string
	Name string // file or directory
	To   string // rename target
	Data []byte // write
	Size int64  // truncate
}

var (
	scriptNames = []string{"/a", "/b", "/d/a", "/d/b", "/d/e/c"}
	scriptDirs  = []string{"/", "/d", "/d/e"}
)

func drawScriptOp(t *rapid.T, label string) scriptOp {
	kind := rapid.SampledFrom([]string{
		"create", "write", "write", "write", "sync", "sync", "truncate", "remove", "rename",
		"mkdirAll", "syncDir", "syncDir",
	}).Draw(t, label+".kind")
	op := scriptOp{Kind: kind, Name: rapid.SampledFrom(scriptNames).Draw(t, label+".name")}
	switch kind {
	case "write":
		op.Data = rapid.SliceOfN(rapid.Byte(), 1, 2*SectorBytes).Draw(t, label+".data")
	case "truncate":
		op.Size = rapid.Int64Range(0, 2*SectorBytes).Draw(t, label+".size")
	case "rename":
		op.To = rapid.SampledFrom(scriptNames).Draw(t, label+".to")
	case "mkdirAll", "syncDir":
		op.Name = rapid.SampledFrom(scriptDirs).Draw(t, label+".dir")
	}
	return op
}

// runScript runs ops on m and returns the outcome of each, so that two runs can be
// compared.
func runScript(m *MemFS, ops []scriptOp) []string {
	var out []string
	onFile := func(name string, do func(File) error) error {
		f, err := m.Open(name)
		if err != nil {
			return err
		}
		err = do(f)
		if closeErr := f.Close(); err == nil {
			err = closeErr
		}
		return err
	}
	for _, op := range ops {
		var err error
		switch op.Kind {
		case "create":
			var f File
			if f, err = m.Create(op.Name); err == nil {
				err = f.Close()
			}
		case "write":
			err = onFile(op.Name, func(f File) error { _, err := f.Write(op.Data); return err })
		case "sync":
			err = onFile(op.Name, File.Sync)
		case "truncate":
			err = onFile(op.Name, func(f File) error { return f.Truncate(op.Size) })
		case "remove":
			err = m.Remove(op.Name)
		case "rename":
			err = m.Rename(op.Name, op.To)
		case "mkdirAll":
			err = m.MkdirAll(op.Name)
		case "syncDir":
			err = m.SyncDir(op.Name)
		default:
			panic("unknown script op " + op.Kind)
		}
		out = append(out, fmt.Sprintf("%s %s: %v", op.Kind, op.Name, err))
	}
	return out
}

func TestCrashIsDeterministic(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		ops := rapid.SliceOfN(rapid.Custom(func(t *rapid.T) scriptOp { return drawScriptOp(t, "op") }), 0, 60).Draw(rt, "ops")
		opts := drawCrashOptions(rt)
		seed := rapid.Uint64().Draw(rt, "seed")

		// A prelude creates every file, with unsynced data, so that most crashes draw for
		// several files.
		var prelude []scriptOp
		for _, dir := range scriptDirs {
			prelude = append(prelude, scriptOp{Kind: "mkdirAll", Name: dir})
		}
		for _, name := range scriptNames {
			prelude = append(prelude, scriptOp{Kind: "create", Name: name},
				scriptOp{Kind: "write", Name: name, Data: bytes.Repeat([]byte(name), SectorBytes)})
		}
		ops = append(prelude, ops...)

		m1, m2 := NewMem(), NewMem()
		if out1, out2 := runScript(m1, ops), runScript(m2, ops); !slices.Equal(out1, out2) {
			rt.Fatalf("same script, different outcomes:\n%q\n%q", out1, out2)
		}
		before := dump(rt, m1, "/")
		c1 := m1.CrashClone(rand.New(rand.NewPCG(seed, 1)), opts)
		c2 := m2.CrashClone(rand.New(rand.NewPCG(seed, 1)), opts)
		c3 := m1.CrashClone(rand.New(rand.NewPCG(seed, 1)), opts)
		d1, d2, d3 := dump(rt, c1, "/"), dump(rt, c2, "/"), dump(rt, c3, "/")
		if !maps.Equal(d1, d2) || !maps.Equal(d1, d3) {
			rt.Fatalf("same script and seed, different crashes:\n%q\n%q\n%q", d1, d2, d3)
		}
		if after := dump(rt, m1, "/"); !maps.Equal(before, after) {
			rt.Fatalf("CrashClone changed the original:\nbefore %q\nafter  %q", before, after)
		}
		if opts == KeepAll && !maps.Equal(before, d1) {
			rt.Fatalf("KeepAll crash lost something:\nbefore %q\nafter  %q", before, d1)
		}
		// A crash of a crash keeps everything: the clone is all durable.
		if again := dump(rt, c1.CrashClone(nil, CrashOptions{}), "/"); !maps.Equal(d1, again) {
			rt.Fatalf("crashing a crashed FS lost something:\nfirst  %q\nsecond %q", d1, again)
		}
	})
}

// memSetup is a step of a table test: it fails the test on an error.
type memSetup func(t *testing.T, m *MemFS)

func mkdirAll(dir string) memSetup {
	return func(t *testing.T, m *MemFS) { t.Helper(); must(t, m.MkdirAll(dir)) }
}

func syncDir(dir string) memSetup {
	return func(t *testing.T, m *MemFS) { t.Helper(); must(t, m.SyncDir(dir)) }
}

func remove(name string) memSetup {
	return func(t *testing.T, m *MemFS) { t.Helper(); must(t, m.Remove(name)) }
}

func rename(from, to string) memSetup {
	return func(t *testing.T, m *MemFS) { t.Helper(); must(t, m.Rename(from, to)) }
}

// writeFile creates name (or opens it, if open), writes data, and Syncs it when sync is set.
func writeFile(name, data string, open, sync bool) memSetup {
	return func(t *testing.T, m *MemFS) {
		t.Helper()
		var f File
		var err error
		if open {
			f, err = m.Open(name)
		} else {
			f, err = m.Create(name)
		}
		must(t, err)
		_, err = f.Write([]byte(data))
		must(t, err)
		if sync {
			must(t, f.Sync())
		}
		must(t, f.Close())
	}
}

func truncate(name string, size int64, sync bool) memSetup {
	return func(t *testing.T, m *MemFS) {
		t.Helper()
		f, err := m.Open(name)
		must(t, err)
		must(t, f.Truncate(size))
		if sync {
			must(t, f.Sync())
		}
		must(t, f.Close())
	}
}

func TestCrashDurability(t *testing.T) {
	// durableF is the setup of a synced file /d/f holding "old".
	durableF := []memSetup{mkdirAll("/d"), syncDir("/"), writeFile("/d/f", "old", false, true), syncDir("/d")}
	steps := func(ss ...[]memSetup) []memSetup {
		var out []memSetup
		for _, s := range ss {
			out = append(out, s...)
		}
		return out
	}
	tests := []struct {
		name  string
		setup []memSetup
		// dropAll and keepAll are the trees after a crash with the zero CrashOptions and
		// with KeepAll.
		dropAll, keepAll map[string]string
	}{{
		name:    "synced file and entry survive",
		setup:   durableF,
		dropAll: map[string]string{"d": "/", "d/f": "=old"},
		keepAll: map[string]string{"d": "/", "d/f": "=old"},
	}, {
		name:    "unsynced entry vanishes although the file is synced",
		setup:   []memSetup{mkdirAll("/d"), syncDir("/"), writeFile("/d/f", "x", false, true)},
		dropAll: map[string]string{"d": "/"},
		keepAll: map[string]string{"d": "/", "d/f": "=x"},
	}, {
		name:    "unsynced write is lost",
		setup:   steps(durableF, []memSetup{writeFile("/d/f", "new", true, false)}),
		dropAll: map[string]string{"d": "/", "d/f": "=old"},
		keepAll: map[string]string{"d": "/", "d/f": "=oldnew"},
	}, {
		name:    "unsynced remove is undone",
		setup:   steps(durableF, []memSetup{remove("/d/f")}),
		dropAll: map[string]string{"d": "/", "d/f": "=old"},
		keepAll: map[string]string{"d": "/"},
	}, {
		name:    "synced remove holds",
		setup:   steps(durableF, []memSetup{remove("/d/f"), syncDir("/d")}),
		dropAll: map[string]string{"d": "/"},
		keepAll: map[string]string{"d": "/"},
	}, {
		name:    "unsynced rename is undone",
		setup:   steps(durableF, []memSetup{rename("/d/f", "/d/g")}),
		dropAll: map[string]string{"d": "/", "d/f": "=old"},
		keepAll: map[string]string{"d": "/", "d/g": "=old"},
	}, {
		name: "rename over a file is atomic",
		setup: steps(durableF, []memSetup{
			writeFile("/d/tmp", "new", false, true), syncDir("/d"), rename("/d/tmp", "/d/f"),
		}),
		dropAll: map[string]string{"d": "/", "d/f": "=old", "d/tmp": "=new"},
		keepAll: map[string]string{"d": "/", "d/f": "=new"},
	}, {
		name: "rename between directories needs both synced",
		setup: steps(durableF, []memSetup{
			mkdirAll("/e"), syncDir("/"), rename("/d/f", "/e/f"), syncDir("/e"),
		}),
		dropAll: map[string]string{"d": "/", "d/f": "=old", "e": "/"},
		keepAll: map[string]string{"d": "/", "e": "/", "e/f": "=old"},
	}, {
		name: "rename between synced directories holds",
		setup: steps(durableF, []memSetup{
			mkdirAll("/e"), syncDir("/"), rename("/d/f", "/e/f"), syncDir("/e"), syncDir("/d"),
		}),
		dropAll: map[string]string{"d": "/", "e": "/", "e/f": "=old"},
		keepAll: map[string]string{"d": "/", "e": "/", "e/f": "=old"},
	}, {
		name:    "unsynced mkdir takes its synced entries with it",
		setup:   []memSetup{mkdirAll("/d"), writeFile("/d/f", "x", false, true), syncDir("/d")},
		dropAll: map[string]string{},
		keepAll: map[string]string{"d": "/", "d/f": "=x"},
	}, {
		name: "a synced change behind an unsynced one survives",
		setup: steps(durableF, []memSetup{
			writeFile("/top", "t", false, true), writeFile("/d/g", "g", false, true), syncDir("/d"),
		}),
		dropAll: map[string]string{"d": "/", "d/f": "=old", "d/g": "=g"},
		keepAll: map[string]string{"d": "/", "d/f": "=old", "d/g": "=g", "top": "=t"},
	}, {
		name:    "unsynced truncate is undone",
		setup:   steps(durableF, []memSetup{truncate("/d/f", 1, false)}),
		dropAll: map[string]string{"d": "/", "d/f": "=old"},
		keepAll: map[string]string{"d": "/", "d/f": "=o"},
	}, {
		name:    "synced truncate holds",
		setup:   steps(durableF, []memSetup{truncate("/d/f", 1, true)}),
		dropAll: map[string]string{"d": "/", "d/f": "=o"},
		keepAll: map[string]string{"d": "/", "d/f": "=o"},
	}, {
		name:    "truncate then write, unsynced",
		setup:   steps(durableF, []memSetup{truncate("/d/f", 1, false), writeFile("/d/f", "ne", true, false)}),
		dropAll: map[string]string{"d": "/", "d/f": "=old"},
		keepAll: map[string]string{"d": "/", "d/f": "=one"},
	}, {
		name:    "extending truncate adds zeros",
		setup:   steps(durableF, []memSetup{truncate("/d/f", 5, true)}),
		dropAll: map[string]string{"d": "/", "d/f": "=old\x00\x00"},
		keepAll: map[string]string{"d": "/", "d/f": "=old\x00\x00"},
	}, {
		name:    "create over an existing file truncates until Sync",
		setup:   steps(durableF, []memSetup{writeFile("/d/f", "new", false, false)}),
		dropAll: map[string]string{"d": "/", "d/f": "=old"},
		keepAll: map[string]string{"d": "/", "d/f": "=new"},
	}, {
		name:    "create over an existing file, synced",
		setup:   steps(durableF, []memSetup{writeFile("/d/f", "new", false, true)}),
		dropAll: map[string]string{"d": "/", "d/f": "=new"},
		keepAll: map[string]string{"d": "/", "d/f": "=new"},
	}, {
		name:    "remove then create of the same name, unsynced",
		setup:   steps(durableF, []memSetup{remove("/d/f"), writeFile("/d/f", "new", false, true)}),
		dropAll: map[string]string{"d": "/", "d/f": "=old"},
		keepAll: map[string]string{"d": "/", "d/f": "=new"},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := NewMem()
			for _, step := range tt.setup {
				step(t, m)
			}
			for _, c := range []struct {
				opts CrashOptions
				want map[string]string
			}{{CrashOptions{}, tt.dropAll}, {KeepAll, tt.keepAll}} {
				if got := dump(t, m.CrashClone(nil, c.opts), "/"); !maps.Equal(got, c.want) {
					t.Errorf("crash %+v:\ngot  %q\nwant %q", c.opts, got, c.want)
				}
			}
		})
	}
}

func TestCrashTearsTheLastSector(t *testing.T) {
	m := NewMem()
	f, err := m.Create("/f")
	must(t, err)
	must(t, m.SyncDir("/"))
	written := bytes.Repeat([]byte{0xAA}, 4*SectorBytes)
	_, err = f.Write(written)
	must(t, err)

	// Each sector is torn: the file keeps a non-empty prefix of the first sector only.
	sawGarbage := false
	for seed := range uint64(20) {
		got := readAll(t, m.CrashClone(rand.New(rand.NewPCG(seed, 0)), CrashOptions{TearProb: 1}), "/f")
		if len(got) == 0 || len(got) > SectorBytes {
			t.Fatalf("seed %d: torn file has %d bytes, want 1..%d", seed, len(got), SectorBytes)
		}
		sawGarbage = sawGarbage || !bytes.Equal(got, written[:len(got)])
	}
	if !sawGarbage {
		t.Errorf("20 torn sectors all held the written bytes")
	}
}

func TestCrashCloneLeavesOriginalUsable(t *testing.T) {
	m := NewMem()
	f, err := m.Create("/f")
	must(t, err)
	_, err = f.Write([]byte("before"))
	must(t, err)
	crashed := m.CrashClone(nil, KeepAll)
	_, err = f.Write([]byte(" after"))
	must(t, err)
	if got := string(readAll(t, m, "/f")); got != "before after" {
		t.Errorf("original holds %q, want %q", got, "before after")
	}
	if got := string(readAll(t, crashed, "/f")); got != "before" {
		t.Errorf("clone holds %q, want %q", got, "before")
	}
}

func TestCrashOptionsValidate(t *testing.T) {
	for _, opts := range []CrashOptions{{KeepProb: -0.1}, {TearProb: -1}, {KeepProb: 0.6, TearProb: 0.5}} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("CrashClone(%+v) did not panic", opts)
				}
			}()
			NewMem().CrashClone(rand.New(rand.NewPCG(0, 0)), opts)
		}()
	}
}
