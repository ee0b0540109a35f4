package log

import (
	"bytes"
	"testing"

	"chronik/core/record"
	"chronik/disk"
)

// TestAppendAsIs: a follower's append keeps the leader's bytes except baseOffset, where
// Append stamps LogAppendTime batches; both give the same offsets, and recovery accepts
// the stored CRC.
func TestAppendAsIs(t *testing.T) {
	for _, tc := range []struct {
		name   string
		attrs  int16
		firstT int64
		nowMs  int64
		asIs   bool
		wantTs int64 // max timestamp stored
	}{
		{"create time, as is", 0, 100, 900, true, 101},
		{"create time, append", 0, 100, 900, false, 101},
		{"log append time, as is keeps the leader's", attrLogAppendTime, 100, 900, true, 101},
		{"log append time, append stamps", attrLogAppendTime, 100, 900, false, 900},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs := disk.NewMem()
			l, err := Open(fs, testDir, Config{}, 0)
			if err != nil {
				t.Fatal(err)
			}
			// Leader bytes: a batch stored at some other base offset.
			leader := makeBatch(batchSpec{records: 2, valueBytes: 5, firstTs: tc.firstT, attrs: tc.attrs})
			record.SetBaseOffset(leader, 4242)
			in := bytes.Clone(leader)
			if _, _, err := l.Append(makeBatch(spec(3, 1, 1)), 0); err != nil {
				t.Fatal(err)
			}
			appendFn := l.Append
			if tc.asIs {
				appendFn = l.AppendAsIs
			}
			first, last, err := appendFn(in, tc.nowMs)
			if err != nil || first != 3 || last != 4 {
				t.Fatalf("append: %d %d %v", first, last, err)
			}
			got, err := l.Read(3, 0, 5)
			if err != nil {
				t.Fatal(err)
			}
			h, err := record.Validate(got)
			if err != nil || h.BaseOffset != 3 || h.MaxTimestamp != tc.wantTs {
				t.Fatalf("stored %+v: %v", h, err)
			}
			if tc.asIs && !bytes.Equal(got[8:], leader[8:]) {
				t.Fatal("AppendAsIs changed more than baseOffset")
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			// Recovery validates every batch, CRC included: the stored bytes must pass.
			if l, err = Open(fs, testDir, Config{}, 0); err != nil || l.EndOffset() != 5 {
				t.Fatalf("reopen: %v", err)
			}
		})
	}
}
