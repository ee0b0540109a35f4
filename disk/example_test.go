package disk_test

import (
	"fmt"
	"math/rand/v2"

	"chronik/disk"
)

func ExampleMemFS_CrashClone() {
	m := disk.NewMem()
	check := func(err error) {
		if err != nil {
			panic(err)
		}
	}
	f, err := m.Create("/wal")
	check(err)
	_, err = f.Write([]byte("synced;"))
	check(err)
	check(f.Sync())
	check(m.SyncDir("/")) // makes the entry "wal" durable
	_, err = f.Write([]byte("volatile"))
	check(err)

	for _, opts := range []disk.CrashOptions{{}, disk.KeepAll, {KeepProb: 0.5, TearProb: 0.5}} {
		crashed := m.CrashClone(rand.New(rand.NewPCG(1, 2)), opts)
		g, err := crashed.Open("/wal")
		check(err)
		size, err := g.Size()
		check(err)
		buf := make([]byte, 7)
		_, err = g.ReadAt(buf, 0)
		check(err)
		fmt.Printf("%+v: %q then %d more bytes\n", opts, buf, size-7)
	}
	// Output:
	// {KeepProb:0 TearProb:0}: "synced;" then 0 more bytes
	// {KeepProb:1 TearProb:0}: "synced;" then 8 more bytes
	// {KeepProb:0.5 TearProb:0.5}: "synced;" then 5 more bytes
}
