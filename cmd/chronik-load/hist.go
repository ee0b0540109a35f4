package main

import (
	"math/bits"
	"time"
)

// hist is a latency histogram with bounded memory and a relative error below 1/64: a
// duration in microseconds falls in one of 64 linear sub-buckets of its power of two.
// The zero value is empty and ready.
type hist struct {
	counts [histBuckets]uint64
	n      uint64
	max    time.Duration
}

const (
	histSubBits = 6 // 64 sub-buckets per power of two
	histSub     = 1 << histSubBits
	// histBuckets covers 0 .. 2^40 µs (12 days), far beyond any request timeout.
	histBuckets = (40 - histSubBits + 1) * histSub
)

// bucketOf is the bucket of us microseconds.
func bucketOf(us uint64) int {
	if us < histSub {
		return int(us)
	}
	exp := bits.Len64(us) - 1 - histSubBits // us >> exp is in [64, 128)
	i := (exp+1)*histSub + int(us>>exp) - histSub
	return min(i, histBuckets-1)
}

// bucketHigh is the largest microsecond value of bucket i.
func bucketHigh(i int) uint64 {
	if i < histSub {
		return uint64(i)
	}
	exp := i/histSub - 1
	mant := uint64(i%histSub + histSub)
	return (mant+1)<<exp - 1
}

func (h *hist) add(d time.Duration) {
	h.counts[bucketOf(uint64(max(d, 0)/time.Microsecond))]++
	h.n++
	h.max = max(h.max, d)
}

// merge adds o's observations to h.
func (h *hist) merge(o *hist) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
	h.max = max(h.max, o.max)
}

// quantile is the nearest-rank q-quantile, as its bucket's upper bound capped at the
// largest observation; 0 when empty.
func (h *hist) quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(q * float64(h.n))
	if float64(rank) < q*float64(h.n) || rank == 0 {
		rank++
	}
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			return min(time.Duration(bucketHigh(i))*time.Microsecond+time.Microsecond-1, h.max)
		}
	}
	return h.max
}
