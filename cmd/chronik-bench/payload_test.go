package main

import (
	"errors"
	"math"
	"testing"
	"time"
)

func TestPayloadRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		size int
		id   uint32
		seq  uint64
	}{
		{16, 0, 0},
		{17, 1, 1},
		{256, 3, 123456},
		{1024, 63, 1<<40 + 7},
		{1031, 2, 99},
	} {
		v := make([]byte, tc.size)
		encodePayload(v, tc.id, tc.seq)
		id, seq, err := decodePayload(v, tc.size)
		if err != nil || id != tc.id || seq != tc.seq {
			t.Errorf("size %d: decode = (%d, %d, %v), want (%d, %d, nil)", tc.size, id, seq, err, tc.id, tc.seq)
		}
	}
}

func TestPayloadDetectsDamage(t *testing.T) {
	good := make([]byte, 256)
	encodePayload(good, 2, 77)
	for _, tc := range []struct {
		name   string
		damage func([]byte) []byte
	}{
		{"flipped filler bit", func(v []byte) []byte { v[200] ^= 1; return v }},
		{"flipped sequence bit", func(v []byte) []byte { v[11] ^= 1; return v }},
		{"flipped producer bit", func(v []byte) []byte { v[0] ^= 0x80; return v }},
		{"truncated", func(v []byte) []byte { return v[:255] }},
		{"zeroed", func(v []byte) []byte { clear(v); return v }},
		{"another record's filler", func(v []byte) []byte {
			other := make([]byte, len(v))
			encodePayload(other, 2, 78)
			copy(v[payloadHeaderBytes:], other[payloadHeaderBytes:])
			return v
		}},
	} {
		v := tc.damage(append([]byte(nil), good...))
		if _, _, err := decodePayload(v, len(good)); !errors.Is(err, errPayload) {
			t.Errorf("%s: err = %v, want errPayload", tc.name, err)
		}
	}
}

func TestAckPacking(t *testing.T) {
	for _, tc := range []struct {
		p   int32
		off int64
	}{{0, 0}, {2, 1}, {maxPartitions - 1, maxOffset}} {
		a := packAck(tc.p, tc.off)
		if a == 0 {
			t.Errorf("packAck(%d, %d) = 0, the no-ack value", tc.p, tc.off)
		}
		if p, off := unpackAck(a); p != tc.p || off != tc.off {
			t.Errorf("unpackAck(packAck(%d, %d)) = (%d, %d)", tc.p, tc.off, p, off)
		}
	}
}

func TestPercentile(t *testing.T) {
	ms := func(ns ...int) []time.Duration {
		ds := make([]time.Duration, len(ns))
		for i, n := range ns {
			ds[i] = time.Duration(n) * time.Millisecond
		}
		return ds
	}
	for _, tc := range []struct {
		in   []time.Duration
		q    float64
		want time.Duration
	}{
		{nil, 0.5, 0},
		{ms(5), 0.99, 5 * time.Millisecond},
		{ms(4, 1, 3, 2), 0.5, 2 * time.Millisecond},
		{ms(10, 9, 8, 7, 6, 5, 4, 3, 2, 1), 0.99, 10 * time.Millisecond},
		{ms(10, 9, 8, 7, 6, 5, 4, 3, 2, 1), 0.9, 9 * time.Millisecond},
	} {
		if got := percentile(tc.in, tc.q); got != tc.want {
			t.Errorf("percentile(%v, %v) = %v, want %v", tc.in, tc.q, got, tc.want)
		}
	}
}

func TestMedian(t *testing.T) {
	for _, tc := range []struct {
		in   []float64
		want float64
	}{
		{[]float64{3}, 3},
		{[]float64{3, 1, 2}, 2},
		{[]float64{4, 1, 3, 2}, 2.5},
	} {
		if got := median(tc.in); got != tc.want {
			t.Errorf("median(%v) = %v, want %v", tc.in, got, tc.want)
		}
	}
	if got := median(nil); !math.IsNaN(got) {
		t.Errorf("median(nil) = %v, want NaN", got)
	}
}
