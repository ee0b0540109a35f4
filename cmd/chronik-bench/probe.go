package main

import (
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// Limits of the disk probe.
const (
	probeChunkBytes    = 1 << 20
	probeSyncEvery     = 4 << 20 // bytes written between fsyncs, like a busy group commit
	probeMaxBytes      = 512 << 20
	probeMaxTime       = 3 * time.Second
	probeSmallBytes    = 4 << 10
	probeSmallMaxSyncs = 200
	probeSmallMaxTime  = time.Second
)

// diskProbe is what the disk under the temp dir does with fsync, for reading Chronik's
// figures: an fsyncing broker cannot write faster than writeMBps.
type diskProbe struct {
	writeMBps float64       // sequential 1 MiB writes with an fsync every 4 MiB
	smallSync time.Duration // median write of 4 KiB + fsync
}

func (p diskProbe) String() string {
	return fmt.Sprintf("%.0f MB/s sequential write with an fsync every 4 MiB; 4 KiB write+fsync p50 %.2f ms",
		p.writeMBps, ms(p.smallSync))
}

// probeDisk measures the disk under dir with a file it removes afterwards.
func probeDisk(dir string) (diskProbe, error) {
	var p diskProbe
	path := filepath.Join(dir, "disk-probe")
	f, err := os.Create(path)
	if err != nil {
		return p, err
	}
	defer os.Remove(path)
	defer f.Close()

	chunk := make([]byte, probeChunkBytes)
	fillSplitMix(chunk, 1)
	start := time.Now()
	written := 0
	for written < probeMaxBytes && time.Since(start) < probeMaxTime {
		if _, err := f.Write(chunk); err != nil {
			return p, err
		}
		written += len(chunk)
		if written%probeSyncEvery == 0 {
			if err := f.Sync(); err != nil {
				return p, err
			}
		}
	}
	if err := f.Sync(); err != nil {
		return p, err
	}
	p.writeMBps = float64(written) / time.Since(start).Seconds() / 1e6

	var lat []time.Duration
	small := chunk[:probeSmallBytes]
	start = time.Now()
	for len(lat) < probeSmallMaxSyncs && time.Since(start) < probeSmallMaxTime {
		t0 := time.Now()
		if _, err := f.Write(small); err != nil {
			return p, err
		}
		if err := f.Sync(); err != nil {
			return p, err
		}
		lat = append(lat, time.Since(t0))
	}
	p.smallSync = percentile(lat, 0.5)
	return p, nil
}
