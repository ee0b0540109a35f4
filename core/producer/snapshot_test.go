package producer

import (
	"bytes"
	"encoding/hex"
	"errors"
	"testing"

	"chronik/core/record"
)

func exampleState() *State {
	s := New()
	s.Append(hdrAt(9, 0, 100, 1700000000000))
	s.Append(hdr(2, 1, 0, 3, 0))
	return s
}

// TestSnapshotGolden pins version 1's bytes: a change here needs a new version.
func TestSnapshotGolden(t *testing.T) {
	got, err := exampleState().MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	const want = "01" + "00000002" +
		"0000000000000002" + "0001" + "0000000000000000" + "01" +
		"00000000" + "00000002" + "0000000000000000" + "0000000000000002" +
		"0000000000000009" + "0000" + "0000018bcfe56800" + "01" +
		"00000000" + "00000000" + "0000000000000064" + "0000000000000064"
	if h := hex.EncodeToString(got); h[:len(h)-8] != want {
		t.Fatalf("encoding\n%s\nwant\n%s", h[:len(h)-8], want)
	}
}

func TestDecodeErrors(t *testing.T) {
	good, err := exampleState().MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	// reseal recomputes the CRC so that the error is the field's, not the checksum's.
	reseal := func(edit func(b []byte) []byte) []byte {
		b := edit(bytes.Clone(good[:len(good)-4]))
		return appendCRC(b, 0)
	}
	tests := []struct {
		name string
		b    []byte
		want error
	}{
		{"empty", nil, ErrCorrupt},
		{"short", good[:8], ErrCorrupt},
		{"bit flip", func() []byte { b := bytes.Clone(good); b[20] ^= 1; return b }(), ErrCorrupt},
		{"trailing byte", append(bytes.Clone(good), 0), ErrCorrupt},
		{"version 2", reseal(func(b []byte) []byte { b[0] = 2; return b }), ErrUnsupportedVersion},
		{"count too large", reseal(func(b []byte) []byte { b[1] = 0xff; return b }), ErrCorrupt},
		{"count above the bytes", reseal(func(b []byte) []byte { b[4] = 3; return b }), ErrCorrupt},
		{"ids not increasing", reseal(func(b []byte) []byte { b[5+7] = 9; return b }), ErrCorrupt},
		{"negative id", reseal(func(b []byte) []byte { b[5] = 0x80; return b }), ErrCorrupt},
		{"zero batches", reseal(func(b []byte) []byte { b[5+18] = 0; return b }), ErrCorrupt},
		{"six batches", reseal(func(b []byte) []byte { b[5+18] = 6; return b }), ErrCorrupt},
		{"extra body byte", reseal(func(b []byte) []byte { return append(b, 0) }), ErrCorrupt},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := exampleState()
			before, _ := s.MarshalBinary()
			if err := s.UnmarshalBinary(tt.b); !errors.Is(err, tt.want) {
				t.Fatalf("err %v, want %v", err, tt.want)
			}
			if after, _ := s.MarshalBinary(); !bytes.Equal(before, after) {
				t.Fatalf("a failed UnmarshalBinary changed the state")
			}
		})
	}
}

func TestUnmarshalIntoZeroState(t *testing.T) {
	b, _ := exampleState().MarshalBinary()
	var s State
	if err := s.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	if s.Len() != 2 || s.maxProducers != MaxProducers {
		t.Fatalf("len %d, maxProducers %d", s.Len(), s.maxProducers)
	}
}

// FuzzDecode: Decode never panics; a state it accepts re-encodes to the same bytes, keeps
// the invariants, and takes Check and Append. With reseal the input gets a correct CRC
// appended, so that the fuzzer reaches the parser behind the checksum.
func FuzzDecode(f *testing.F) {
	for _, s := range []*State{New(), exampleState()} {
		b, _ := s.MarshalBinary()
		f.Add(b, false)
		f.Add(b[:len(b)-4], true)
	}
	f.Add([]byte{}, false)
	f.Add([]byte{1, 0, 0, 0, 0, 0, 0, 0, 0}, false)
	f.Fuzz(func(t *testing.T, b []byte, reseal bool) {
		if reseal {
			b = appendCRC(bytes.Clone(b), 0)
		}
		s, err := Decode(b)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrUnsupportedVersion) {
				t.Fatalf("unclassified error %v", err)
			}
			return
		}
		again, _ := s.MarshalBinary()
		if !bytes.Equal(again, b) {
			t.Fatalf("re-encoding differs:\n%x\n%x", b, again)
		}
		if err := checkInvariants(s); err != nil {
			t.Fatal(err)
		}
		for _, p := range s.Producers() {
			h := record.Header{ProducerID: p.ID, ProducerEpoch: p.Epoch, BaseSequence: nextSequence(p.LastSeq), BaseOffset: 1 << 40}
			if _, err := s.Check(h); err != nil {
				t.Fatalf("next batch of %+v: %v", p, err)
			}
			s.Append(h)
		}
		if err := checkInvariants(s); err != nil {
			t.Fatalf("after appends: %v", err)
		}
	})
}
