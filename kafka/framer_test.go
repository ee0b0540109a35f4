package kafka

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"testing"
)

// TestFramerChunks feeds a stream of frames in random chunks and checks that the frames
// come back whole and in order, whatever the chunking.
func TestFramerChunks(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for round := 0; round < 200; round++ {
		var stream []byte
		var want [][]byte
		for i := 0; i < 1+rng.IntN(8); i++ {
			frame := make([]byte, rng.IntN(300))
			for j := range frame {
				frame[j] = byte(rng.Uint32())
			}
			want = append(want, frame)
			stream = binary.BigEndian.AppendUint32(stream, uint32(len(frame)))
			stream = append(stream, frame...)
		}
		f := NewFramer(1 << 10)
		var got [][]byte
		for len(stream) > 0 {
			n := 1 + rng.IntN(min(len(stream), 64))
			f.Feed(stream[:n])
			stream = stream[n:]
			for {
				frame, err := f.Next()
				if err != nil {
					t.Fatal(err)
				}
				if frame == nil {
					break
				}
				got = append(got, frame)
			}
		}
		if len(got) != len(want) {
			t.Fatalf("round %d: %d frames, want %d", round, len(got), len(want))
		}
		for i := range want {
			if !bytes.Equal(got[i], want[i]) {
				t.Fatalf("round %d: frame %d differs", round, i)
			}
		}
		if f.Buffered() != 0 {
			t.Fatalf("round %d: %d bytes left over", round, f.Buffered())
		}
	}
}

func TestFramerTooLarge(t *testing.T) {
	f := NewFramer(10)
	f.Feed([]byte{0, 0, 0, 11, 1})
	if _, err := f.Next(); !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("got %v, want ErrFrameTooLarge", err)
	}
	f.Feed([]byte{0, 0, 0, 1, 1})
	if _, err := f.Next(); !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("error not sticky: %v", err)
	}
}
