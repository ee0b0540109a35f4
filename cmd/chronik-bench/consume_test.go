package main

import (
	"reflect"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestVerifier feeds a verifier hand-made logs of two producers, three records each, all
// acknowledged at partition 0 offsets 0..5 in the order p0s0 p1s0 p0s1 p1s1 p0s2 p1s2.
func TestVerifier(t *testing.T) {
	const size = 64
	rec := func(p int32, off int64, id uint32, seq uint64) *kgo.Record {
		v := make([]byte, size)
		encodePayload(v, id, seq)
		return &kgo.Record{Partition: p, Offset: off, Value: v}
	}
	clean := []*kgo.Record{rec(0, 0, 0, 0), rec(0, 1, 1, 0), rec(0, 2, 0, 1), rec(0, 3, 1, 1), rec(0, 4, 0, 2), rec(0, 5, 1, 2)}
	corrupt := rec(0, 5, 1, 2)
	corrupt.Value[40] ^= 1
	for _, tc := range []struct {
		name string
		log  []*kgo.Record
		want verifyStats
	}{
		{"clean", clean, verifyStats{consumed: 6}},
		{"lost last", clean[:5], verifyStats{consumed: 5, lost: 1}},
		{"duplicate", append(clean[:6:6], rec(0, 6, 0, 2)), verifyStats{consumed: 7, duplicated: 1}},
		{"reordered", []*kgo.Record{rec(0, 0, 0, 1), rec(0, 1, 1, 0), rec(0, 2, 0, 0), rec(0, 3, 1, 1), rec(0, 4, 0, 2), rec(0, 5, 1, 2)},
			verifyStats{consumed: 6, reordered: 1, misplaced: 2}},
		{"wrong partition", []*kgo.Record{rec(0, 0, 0, 0), rec(0, 1, 1, 0), rec(0, 2, 0, 1), rec(0, 3, 1, 1), rec(0, 4, 0, 2), rec(1, 5, 1, 2)},
			verifyStats{consumed: 6, misplaced: 1}},
		{"corrupt", append(clean[:5:5], corrupt), verifyStats{consumed: 6, corrupt: 1, lost: 1}},
		{"never sent", append(clean[:6:6], rec(0, 6, 0, 3)), verifyStats{consumed: 7, corrupt: 1}},
	} {
		prod := &produceResult{}
		for id := range 2 {
			pr := &producerResult{}
			for seq := range 3 {
				pr.acks = append(pr.acks, packAck(0, int64(2*seq+id)))
			}
			prod.producers = append(prod.producers, pr)
		}
		v := newVerifier(size, 2, prod)
		for _, r := range tc.log {
			v.check(r)
		}
		v.finish()
		got := v.stats
		got.examples = nil
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: stats = %+v, want %+v", tc.name, got, tc.want)
		}
		if ok := reflect.DeepEqual(tc.want, verifyStats{consumed: tc.want.consumed}); v.stats.ok() != ok {
			t.Errorf("%s: ok() = %v, want %v", tc.name, v.stats.ok(), ok)
		}
	}
}
