package disk

import (
	"bytes"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
)

// CrashOptions says how much of the volatile state a crash keeps. The zero value keeps
// nothing that was not made durable.
type CrashOptions struct {
	// KeepProb is the probability that a crash keeps an unsynced sector, and that an
	// unsynced truncate, create, remove, rename or mkdir survives (otherwise it vanishes).
	KeepProb float64
	// TearProb is the probability that a crash tears an unsynced sector: the file keeps a
	// prefix of that sector (at least one byte) in which every byte is the written one,
	// zero or random, and nothing after it. A sector neither kept nor torn is dropped with
	// everything after it in the file.
	TearProb float64
}

// KeepAll is a crash of the process rather than of the machine: every change survives.
var KeepAll = CrashOptions{KeepProb: 1}

func (o CrashOptions) validate() {
	if o.KeepProb < 0 || o.TearProb < 0 || o.KeepProb+o.TearProb > 1 {
		panic(fmt.Sprintf("disk: invalid CrashOptions %+v: want probabilities >= 0 summing to <= 1", o))
	}
}

// CrashClone returns a new MemFS holding what the disk would hold after a power loss now.
// Everything durable is kept; the volatile rest is kept, dropped or torn as opts says (see
// the package doc), drawing only from rng, first for the pending directory changes in the
// order they were made, then for the files in order of path. The same operations, opts and
// rng state give the same clone. rng may be nil when no draw is needed (KeepAll or the zero
// CrashOptions).
//
// The receiver is not changed and stays usable, and its open Files keep writing to it. The
// clone has no open Files, and everything in it is durable.
func (m *MemFS) CrashClone(rng *rand.Rand, opts CrashOptions) *MemFS {
	opts.validate()
	m.mu.Lock()
	defer m.mu.Unlock()

	ns := m.base.clone(func(f *memFile) *memFile { return f })
	for _, op := range m.pending {
		if !op.durable() && !chance(rng, opts.KeepProb) {
			continue // vanishes
		}
		if err := ns.apply(op); err != nil {
			continue // it depended on a change that vanished, so it vanishes too
		}
	}

	crashed := map[*memFile]*memFile{}
	for _, dirPath := range slices.Sorted(maps.Keys(ns.dirs)) {
		d := ns.dirs[dirPath]
		for _, name := range slices.Sorted(maps.Keys(d.files)) {
			f := d.files[name]
			if crashed[f] == nil {
				data := f.crashData(rng, opts)
				crashed[f] = &memFile{data: data, synced: data[:len(data):len(data)]}
			}
			d.files[name] = crashed[f]
		}
	}
	return &MemFS{cur: ns, base: ns.clone(func(f *memFile) *memFile { return f })}
}

// crashData returns the content of f after a crash: its synced content, then its unsynced
// changes until the first one the crash drops, tears or makes vanish.
func (f *memFile) crashData(rng *rand.Rand, opts CrashOptions) []byte {
	data := make([]byte, len(f.synced), max(len(f.synced), len(f.data)))
	copy(data, f.synced)
	for _, op := range f.ops {
		if op.truncate {
			if !chance(rng, opts.KeepProb) {
				return data
			}
			data = resize(data, op.sizeBytes)
			continue
		}
		var complete bool
		data, complete = appendSectors(rng, opts, data, op.data)
		if !complete {
			return data
		}
	}
	if !bytes.Equal(data, f.data) {
		panic("disk: memfs: replaying every unsynced change does not give the file's content")
	}
	return data
}

// resize cuts or zero-extends data to sizeBytes.
func resize(data []byte, sizeBytes int) []byte {
	if sizeBytes <= len(data) {
		return data[:sizeBytes]
	}
	return append(data, make([]byte, sizeBytes-len(data))...)
}

// sectorFate is what a crash does to one unsynced sector.
type sectorFate uint8

const (
	sectorKept sectorFate = iota
	sectorTorn
	sectorDropped
)

// appendSectors appends written to data sector by sector (sectors aligned to file
// offsets), stopping after the first sector the crash tears or drops. complete reports
// whether every sector was kept.
func appendSectors(rng *rand.Rand, opts CrashOptions, data, written []byte) (_ []byte, complete bool) {
	for len(written) > 0 {
		n := min(SectorBytes-len(data)%SectorBytes, len(written))
		switch drawSectorFate(rng, opts) {
		case sectorKept:
			data = append(data, written[:n]...)
			written = written[n:]
		case sectorTorn:
			return appendTorn(rng, data, written[:n]), false
		case sectorDropped:
			return data, false
		}
	}
	return data, true
}

// appendTorn appends a torn copy of sector: a non-empty prefix whose every byte is the
// written one, zero or random.
func appendTorn(rng *rand.Rand, data, sector []byte) []byte {
	for _, b := range sector[:1+rng.IntN(len(sector))] {
		switch rng.IntN(3) {
		case 0:
			data = append(data, b)
		case 1:
			data = append(data, 0)
		default:
			data = append(data, byte(rng.Uint32()))
		}
	}
	return data
}

func drawSectorFate(rng *rand.Rand, opts CrashOptions) sectorFate {
	switch {
	case opts.KeepProb >= 1:
		return sectorKept
	case opts.KeepProb+opts.TearProb <= 0:
		return sectorDropped
	}
	u := rng.Float64()
	switch {
	case u < opts.KeepProb:
		return sectorKept
	case u < opts.KeepProb+opts.TearProb:
		return sectorTorn
	default:
		return sectorDropped
	}
}

// chance reports true with probability p, drawing from rng only when 0 < p < 1.
func chance(rng *rand.Rand, p float64) bool {
	switch {
	case p <= 0:
		return false
	case p >= 1:
		return true
	}
	return rng.Float64() < p
}
