package record

import (
	"bytes"
	"errors"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// FuzzValidate states Validate's invariants on any input: it never panics; it agrees
// with a reused Validator; every error wraps a sentinel; and when it accepts b,
// ParseHeader agrees, Size() == len(b), and Split sees exactly b. Each input is also
// checked with its CRC fixed, so that the fuzzer reaches the decompressors and the
// record parser rather than stopping at the CRC.
func FuzzValidate(f *testing.F) {
	for _, cc := range codecCases {
		f.Add(buildBatch(f, cc, 0, sampleRecords()))
		f.Add(buildBatch(f, cc, 0x10, []kmsg.Record{{}}))
	}
	recs := encodeRecords(sampleRecords())
	f.Add(batchOf(int16(CodecSnappy), 4, 3, xerialEncode(recs, 100))) // many small xerial blocks
	f.Add(batchOf(0x30, 1, 0, encodeRecords([]kmsg.Record{{Key: []byte{0, 0, 0, 1}, Value: []byte{0, 0, 0, 0, 0, 1}}})))
	two := buildBatch(f, codecCases[0], 0, sampleRecords())
	f.Add(append(bytes.Clone(two), two...))
	f.Add(two[:HeaderSize])

	var shared Validator
	f.Fuzz(func(t *testing.T, b []byte) {
		checkInvariants(t, &shared, b)
		if len(b) > offAttributes {
			fixed := bytes.Clone(b)
			fixCRC(fixed)
			checkInvariants(t, &shared, fixed)
		}
	})
}

var sentinels = []error{ErrTruncated, ErrCorrupt, ErrInvalid, ErrUnsupportedMagic, ErrUnsupportedCodec}

func checkInvariants(t *testing.T, shared *Validator, b []byte) {
	t.Helper()
	before := bytes.Clone(b)
	h, err := Validate(b)
	if !bytes.Equal(before, b) {
		t.Fatal("Validate modified its input")
	}
	h2, err2 := shared.Validate(b)
	if (err == nil) != (err2 == nil) || h != h2 {
		t.Fatalf("fresh Validate: %+v, %v; reused Validator: %+v, %v", h, err, h2, err2)
	}
	batches := 0
	splitErr := Split(b, func([]byte, Header) bool { batches++; return true })
	if err != nil {
		for _, s := range sentinels {
			if errors.Is(err, s) {
				return
			}
		}
		t.Fatalf("error wraps no sentinel: %v", err)
	}
	ph, perr := ParseHeader(b)
	if perr != nil || ph != h || h.Size() != len(b) {
		t.Fatalf("Validate accepted %+v; ParseHeader: %+v, %v; len %d", h, ph, perr, len(b))
	}
	if splitErr != nil || batches != 1 {
		t.Fatalf("Split of a valid batch: %d batches, %v", batches, splitErr)
	}
}
