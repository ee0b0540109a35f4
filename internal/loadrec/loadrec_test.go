package loadrec

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
)

func ExampleEncode() {
	v := make([]byte, 80)
	Encode(v, ProducerID(1, 42), 7)
	fmt.Printf("%s\n", v)
	r, err := Decode(v)
	fmt.Printf("%+v %v\n", r, err)
	// Output:
	// clr1 000000010000002a 0000000000000007 00000050 54d6c489 3uDHtvZceD9muIx2H5cSMLm
	// {Producer:4294967338 Seq:7 Bytes:80} <nil>
}

func TestRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		size    int
		id, seq uint64
	}{
		{HeaderBytes, 0, 0},
		{HeaderBytes + 1, 1, 1},
		{256, ProducerID(7, 3), 123456},
		{1024, ^uint64(0), ^uint64(0)},
		{1031, 2, 99},
		{MaxBytes, ProducerID(1<<31, 1<<31), 1 << 40},
	} {
		v := Append([]byte("prefix"), tc.id, tc.seq, tc.size)[len("prefix"):]
		r, err := Decode(v)
		if want := (Record{Producer: tc.id, Seq: tc.seq, Bytes: tc.size}); err != nil || r != want {
			t.Errorf("size %d: Decode = (%+v, %v), want (%+v, nil)", tc.size, r, err, want)
		}
		for i, c := range v {
			if c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
				t.Fatalf("size %d: byte %d is %#x, not JSON-safe printable ASCII", tc.size, i, c)
			}
		}
	}
}

func TestDecodeDetectsDamage(t *testing.T) {
	good := make([]byte, 256)
	Encode(good, 2, 77)
	other := make([]byte, 256)
	Encode(other, 2, 78)
	for _, tc := range []struct {
		name   string
		damage func([]byte) []byte
		want   error
	}{
		{"flipped filler bit", func(v []byte) []byte { v[200] ^= 1; return v }, ErrCorrupt},
		{"sequence digit", func(v []byte) []byte { v[37] = '9'; return v }, ErrCorrupt},
		{"producer digit", func(v []byte) []byte { v[5] = '1'; return v }, ErrCorrupt},
		{"upper-case hex", func(v []byte) []byte { v[producerAt] = 'A'; return v }, ErrCorrupt},
		{"separator", func(v []byte) []byte { v[21] = '_'; return v }, ErrCorrupt},
		{"truncated", func(v []byte) []byte { return v[:255] }, ErrCorrupt},
		{"extended", func(v []byte) []byte { return append(v, 'A') }, ErrCorrupt},
		{"header only", func(v []byte) []byte { return v[:HeaderBytes-1] }, ErrCorrupt},
		{"another record's filler", func(v []byte) []byte { copy(v[fillerAt:], other[fillerAt:]); return v }, ErrCorrupt},
		{"zeroed", func(v []byte) []byte { clear(v); return v }, ErrForeign},
		{"empty", func([]byte) []byte { return nil }, ErrForeign},
		{"json text", func([]byte) []byte { return []byte(`{"a":1}`) }, ErrForeign},
	} {
		v := tc.damage(bytes.Clone(good))
		if _, err := Decode(v); !errors.Is(err, tc.want) {
			t.Errorf("%s: err = %v, want %v", tc.name, err, tc.want)
		}
	}
}

func TestKey(t *testing.T) {
	if got, want := string(Key(ProducerID(1, 42))), "000000010000002a"; got != want {
		t.Errorf("Key = %q, want %q", got, want)
	}
}

func TestEncodePanicsOnBadSize(t *testing.T) {
	for _, n := range []int{0, HeaderBytes - 1, MaxBytes + 1} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("Encode of %d bytes did not panic", n)
				}
			}()
			Encode(make([]byte, n), 1, 1)
		}()
	}
}

// FuzzDecode: Decode never panics, and whatever it accepts has the length it claims and
// the header that Encode writes for its producer and sequence. (The filler is covered by
// the checksum, not compared byte for byte: a CRC can be forged.)
func FuzzDecode(f *testing.F) {
	v := make([]byte, 100)
	Encode(v, 3, 4)
	f.Add(v)
	f.Add([]byte("clr1"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, v []byte) {
		r, err := Decode(v)
		if err != nil {
			return
		}
		again := make([]byte, r.Bytes)
		Encode(again, r.Producer, r.Seq)
		if r.Bytes != len(v) || !bytes.Equal(again[:checksumAt], v[:checksumAt]) {
			t.Fatalf("Decode accepted %q, which re-encodes as %q", v, again)
		}
	})
}
