package record

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strings"
	"testing"

	"github.com/klauspost/compress/snappy"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// raw builds bytes from varints (int, int32, int64) and byte strings ([]byte, string), for
// hand-made records sections.
func raw(parts ...any) []byte {
	var b []byte
	for _, p := range parts {
		switch p := p.(type) {
		case int:
			b = binary.AppendVarint(b, int64(p))
		case int32:
			b = binary.AppendVarint(b, int64(p))
		case int64:
			b = binary.AppendVarint(b, p)
		case []byte:
			b = append(b, p...)
		case string:
			b = append(b, p...)
		default:
			panic("raw: unsupported part")
		}
	}
	return b
}

// prefixed prepends body's length as a varint, making a record from a record body.
func prefixed(body []byte) []byte { return append(binary.AppendVarint(nil, int64(len(body))), body...) }

// bodyOf returns a record body: attributes 0, timestampDelta 0, offsetDelta, then rest.
func bodyOf(offsetDelta int, rest ...any) []byte {
	return append([]byte{0}, raw(append([]any{0, offsetDelta}, rest...)...)...)
}

func TestValidate(t *testing.T) {
	good := buildBatch(t, codecCases[0], 0, sampleRecords())
	three := encodeRecords(sampleRecords()[:3])
	control := encodeRecords([]kmsg.Record{{Key: []byte{0, 0, 0, 1}, Value: []byte{0, 0, 0, 0, 0, 5}}})
	tests := []struct {
		name string
		b    []byte
		want error // nil for a valid batch
		msg  string
	}{
		{name: "good", b: good},
		{name: "good transactional", b: batchOf(0x10, 3, 2, three)},
		{name: "good log append time", b: batchOf(0x08, 3, 2, three)},
		{name: "good control", b: batchOf(0x30, 1, 0, control)},
		{name: "empty", b: nil, want: ErrTruncated},
		{name: "cut before magic", b: good[:16], want: ErrTruncated},
		{name: "cut in header", b: good[:HeaderSize-1], want: ErrTruncated},
		{name: "cut after header", b: good[:HeaderSize], want: ErrTruncated},
		{name: "cut last byte", b: good[:len(good)-1], want: ErrTruncated},
		{name: "magic 1", b: withByte(good, offMagic, 1), want: ErrUnsupportedMagic},
		{name: "magic 3", b: withByte(good, offMagic, 3), want: ErrUnsupportedMagic},
		{name: "bad crc", b: withByte(good, offCRC, good[offCRC]^1), want: ErrCorrupt, msg: "crc"},
		{name: "bad crc in records", b: withByte(good, len(good)-1, good[len(good)-1]^0x80), want: ErrCorrupt, msg: "crc"},
		{name: "trailing byte", b: append(bytes.Clone(good), 0), want: ErrCorrupt},
		{name: "batchLength below header", b: withLength(good, minLength-1), want: ErrCorrupt},
		{name: "batchLength negative", b: withLength(good, -1), want: ErrCorrupt},
		{name: "batchLength over data", b: withLength(good, int32(len(good))), want: ErrTruncated},
		{name: "count higher", b: batchOf(0, 4, 3, three), want: ErrInvalid, msg: "section ends after 3"},
		{name: "count lower", b: batchOf(0, 2, 1, three), want: ErrInvalid, msg: "follow the 2 declared"},
		{name: "count huge", b: batchOf(0, 1<<31-1, 1<<31-2, three), want: ErrInvalid},
		{name: "count zero", b: batchOf(0, 0, -1, nil), want: ErrInvalid},
		{name: "count negative", b: batchOf(0, -1, -2, nil), want: ErrInvalid},
		{name: "lastOffsetDelta off", b: batchOf(0, 3, 3, three), want: ErrInvalid, msg: "lastOffsetDelta"},
		{name: "codec 5", b: batchOf(5, 3, 2, three), want: ErrUnsupportedCodec},
		{name: "codec 6", b: batchOf(6, 3, 2, three), want: ErrUnsupportedCodec},
		{name: "codec 7", b: batchOf(7, 3, 2, three), want: ErrUnsupportedCodec},
		{name: "offsetDelta gap", b: batchOf(0, 2, 1, append(prefixed(bodyOf(0, -1, -1, 0)), prefixed(bodyOf(2, -1, -1, 0))...)), want: ErrInvalid, msg: "offsetDelta 2, want 1"},
		{name: "minimal record", b: batchOf(0, 1, 0, prefixed(bodyOf(0, -1, -1, 0)))},
		{name: "empty record body", b: batchOf(0, 1, 0, raw(0)), want: ErrInvalid, msg: "no attributes"},
		{name: "record length negative", b: batchOf(0, 1, 0, raw(-1, bodyOf(0, -1, -1, 0))), want: ErrInvalid},
		{name: "record length over section", b: batchOf(0, 1, 0, raw(8, bodyOf(0, -1, -1, 0))), want: ErrInvalid},
		{name: "record length short", b: batchOf(0, 1, 0, raw(5, bodyOf(0, -1, -1, 0))), want: ErrInvalid},
		{name: "record body trailing byte", b: batchOf(0, 1, 0, prefixed(bodyOf(0, -1, -1, 0, "x"))), want: ErrInvalid, msg: "follow the headers"},
		{name: "key length -2", b: batchOf(0, 1, 0, prefixed(bodyOf(0, -2, -1, 0))), want: ErrInvalid, msg: "key length -2"},
		{name: "key length over body", b: batchOf(0, 1, 0, prefixed(bodyOf(0, 9, "abc", -1, 0))), want: ErrInvalid},
		{name: "value length -7", b: batchOf(0, 1, 0, prefixed(bodyOf(0, -1, -7, 0))), want: ErrInvalid, msg: "value length"},
		{name: "header null key", b: batchOf(0, 1, 0, prefixed(bodyOf(0, -1, -1, 1, -1, -1))), want: ErrInvalid, msg: "null key"},
		{name: "header null value", b: batchOf(0, 1, 0, prefixed(bodyOf(0, -1, -1, 1, 1, "k", -1)))},
		{name: "header count negative", b: batchOf(0, 1, 0, prefixed(bodyOf(0, -1, -1, -1))), want: ErrInvalid},
		{name: "header count huge", b: batchOf(0, 1, 0, prefixed(bodyOf(0, -1, -1, 1<<30))), want: ErrInvalid},
		{name: "header missing", b: batchOf(0, 1, 0, prefixed(bodyOf(0, -1, -1, 2, 1, "k", -1))), want: ErrInvalid},
		{name: "varint too long", b: batchOf(0, 1, 0, prefixed(raw([]byte{0, 0}, []byte{0x80, 0x80, 0x80, 0x80, 0x80, 0}, -1, -1, 0))), want: ErrInvalid, msg: "offsetDelta varint"},
		{name: "varint over int32", b: batchOf(0, 1, 0, prefixed(raw([]byte{0, 0}, int64(1)<<40, -1, -1, 0))), want: ErrInvalid, msg: "offsetDelta varint"},
		{name: "varlong overflow", b: batchOf(0, 1, 0, prefixed(raw([]byte{0}, bytes.Repeat([]byte{0xff}, 10), []byte{1, 0, 1, 1, 0}))), want: ErrInvalid, msg: "timestampDelta"},
		{name: "varint cut", b: batchOf(0, 1, 0, []byte{0x80}), want: ErrInvalid, msg: "length varint"},
		{name: "control two records", b: batchOf(0x30, 2, 1, encodeRecords([]kmsg.Record{{Key: []byte{0, 0, 0, 1}}, {Key: []byte{0, 0, 0, 1}}})), want: ErrInvalid, msg: "control batch"},
		{name: "control short key", b: batchOf(0x30, 1, 0, encodeRecords([]kmsg.Record{{Key: []byte{0, 0}}})), want: ErrInvalid, msg: "control record key"},
		{name: "control null key", b: batchOf(0x30, 1, 0, encodeRecords([]kmsg.Record{{Value: []byte{0}}})), want: ErrInvalid, msg: "control record key"},
		{name: "gzip garbage", b: batchOf(int16(CodecGzip), 3, 2, three), want: ErrInvalid, msg: "gzip"},
		{name: "snappy garbage", b: batchOf(int16(CodecSnappy), 3, 2, three), want: ErrInvalid, msg: "snappy"},
		{name: "lz4 garbage", b: batchOf(int16(CodecLz4), 3, 2, three), want: ErrInvalid, msg: "lz4"},
		{name: "zstd garbage", b: batchOf(int16(CodecZstd), 3, 2, three), want: ErrInvalid, msg: "zstd"},
		{name: "gzip empty", b: batchOf(int16(CodecGzip), 3, 2, nil), want: ErrInvalid},
		{name: "gzip cut", b: batchOf(int16(CodecGzip), 3, 2, cut(compress(t, codecCases[1], three))), want: ErrInvalid},
		{name: "lz4 cut", b: batchOf(int16(CodecLz4), 3, 2, cut(compress(t, codecCases[4], three))), want: ErrInvalid},
		{name: "zstd cut", b: batchOf(int16(CodecZstd), 3, 2, cut(compress(t, codecCases[5], three))), want: ErrInvalid},
		{name: "snappy cut", b: batchOf(int16(CodecSnappy), 3, 2, cut(compress(t, codecCases[2], three))), want: ErrInvalid},
		{name: "lz4 dependent blocks", b: batchOf(int16(CodecLz4), 3, 2, lz4Edit(t, three, func(f []byte) []byte { f[4] &^= lz4FlagIndependent; return f })), want: ErrInvalid, msg: "dependent blocks"},
		{name: "lz4 dictionary id", b: batchOf(int16(CodecLz4), 3, 2, lz4Edit(t, three, func(f []byte) []byte { f[4] |= 1; return f })), want: ErrInvalid, msg: "dictionary"},
		{name: "lz4 version 2", b: batchOf(int16(CodecLz4), 3, 2, lz4Edit(t, three, func(f []byte) []byte { f[4] ^= 0xc0; return f })), want: ErrInvalid, msg: "version"},
		{name: "lz4 two frames", b: batchOf(int16(CodecLz4), 3, 2, append(compress(t, codecCases[4], three[:10]), compress(t, codecCases[4], three[10:])...)), want: ErrInvalid, msg: "lz4 frame ends"},
		{name: "lz4 trailing byte", b: batchOf(int16(CodecLz4), 3, 2, append(compress(t, codecCases[4], three), 0)), want: ErrInvalid, msg: "lz4 frame ends"},
		{name: "lz4 skippable frame first", b: batchOf(int16(CodecLz4), 3, 2, append([]byte{0x50, 0x2a, 0x4d, 0x18, 1, 0, 0, 0, 9}, compress(t, codecCases[4], three)...)), want: ErrInvalid, msg: "not an lz4 frame"},
		{name: "lz4 legacy magic", b: batchOf(int16(CodecLz4), 3, 2, lz4Edit(t, three, func(f []byte) []byte { f[0], f[1], f[2], f[3] = 0x02, 0x21, 0x4c, 0x18; return f })), want: ErrInvalid, msg: "not an lz4 frame"},
		{name: "lz4 block over section", b: batchOf(int16(CodecLz4), 3, 2, lz4Edit(t, three, func(f []byte) []byte { f[7+3] = 0x7f; return f })), want: ErrInvalid, msg: "lz4 block of"},
		{name: "xerial cut", b: batchOf(int16(CodecSnappy), 3, 2, cut(xerialEncode(three, 100))), want: ErrInvalid, msg: "xerial"},
		{name: "xerial header only", b: batchOf(int16(CodecSnappy), 3, 2, xerialEncode(nil, 100)), want: ErrInvalid, msg: "section ends after 0"},
		{name: "xerial short header", b: batchOf(int16(CodecSnappy), 3, 2, xerialEncode(three, 100)[:12]), want: ErrInvalid, msg: "xerial header"},
		{name: "xerial version 0", b: batchOf(int16(CodecSnappy), 3, 2, withByte(xerialEncode(three, 100), 11, 0)), want: ErrInvalid, msg: "xerial version"},
		{name: "xerial length cut", b: batchOf(int16(CodecSnappy), 3, 2, append(xerialEncode(three, 100), 0, 0)), want: ErrInvalid, msg: "xerial block length"},
		{name: "xerial length negative", b: batchOf(int16(CodecSnappy), 3, 2, append(xerialEncode(three, 100), 0xff, 0xff, 0xff, 0xff)), want: ErrInvalid, msg: "xerial block"},
		{name: "xerial small blocks", b: batchOf(int16(CodecSnappy), 3, 2, xerialEncode(three, 7))},
		{name: "snappy claims huge", b: batchOf(int16(CodecSnappy), 3, 2, raw([]byte{0xff, 0xff, 0xff, 0xff, 0x0f}, three)), want: ErrInvalid, msg: "more than"},
		{name: "snappy claims impossible", b: batchOf(int16(CodecSnappy), 3, 2, raw([]byte{0xff, 0xff, 0x3f}, three)), want: ErrInvalid, msg: "claims"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := bytes.Clone(tt.b)
			h, err := Validate(tt.b)
			if !bytes.Equal(before, tt.b) {
				t.Fatal("Validate modified its input")
			}
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				if h.Size() != len(tt.b) {
					t.Fatalf("Size %d, len %d", h.Size(), len(tt.b))
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("Validate: %v, want %v", err, tt.want)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("Validate: %q does not mention %q", err, tt.msg)
			}
		})
	}
}

// withByte returns a copy of b with b[i] = v.
func withByte(b []byte, i int, v byte) []byte {
	b = bytes.Clone(b)
	b[i] = v
	return b
}

// withLength returns a copy of b with batchLength n and the CRC unchanged.
func withLength(b []byte, n int32) []byte {
	b = bytes.Clone(b)
	binary.BigEndian.PutUint32(b[offLength:], uint32(n))
	return b
}

// lz4Edit compresses section as an lz4 frame and returns edit's change of it.
func lz4Edit(t *testing.T, section []byte, edit func(frame []byte) []byte) []byte {
	return edit(compress(t, codecCases[4], section))
}

// cut drops the last byte of b.
func cut(b []byte) []byte { return b[:len(b)-1] }

func TestParseHeader(t *testing.T) {
	good := buildBatch(t, codecCases[0], 0x10, sampleRecords())
	tests := []struct {
		name     string
		b        []byte
		want     error
		wantSize int // the Size ParseHeader reports, even with ErrTruncated; 0 for none
	}{
		{"good", good, nil, len(good)},
		{"trailing batches", append(bytes.Clone(good), good...), nil, len(good)},
		{"garbage after", append(bytes.Clone(good), 1, 2, 3), nil, len(good)},
		{"bad crc", withByte(good, len(good)-1, 0), nil, len(good)},
		{"empty", nil, ErrTruncated, 0},
		{"before magic", good[:offMagic], ErrTruncated, 0},
		{"v1 message set", withByte(good[:40], offMagic, 1), ErrUnsupportedMagic, 0},
		{"v0 message set", withByte(good, offMagic, 0), ErrUnsupportedMagic, 0},
		{"magic negative", withByte(good, offMagic, 0xff), ErrUnsupportedMagic, 0},
		{"short header", good[:HeaderSize-1], ErrTruncated, 0},
		{"header only", good[:HeaderSize], ErrTruncated, len(good)},
		{"one short", good[:len(good)-1], ErrTruncated, len(good)},
		{"batchLength 48", withLength(good, 48), ErrCorrupt, 0},
		{"batchLength 49", withLength(good, 49)[:HeaderSize], nil, HeaderSize},
		{"batchLength min int32", withLength(good, -1<<31), ErrCorrupt, 0},
		{"batchLength max int32", withLength(good, 1<<31-1), ErrTruncated, 12 + 1<<31 - 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := ParseHeader(tt.b)
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Fatalf("ParseHeader: %v, want %v", err, tt.want)
			}
			if tt.wantSize != 0 && h.Size() != tt.wantSize {
				t.Fatalf("Size %d, want %d", h.Size(), tt.wantSize)
			}
		})
	}

	h, err := ParseHeader(good)
	if err != nil {
		t.Fatal(err)
	}
	want := Header{
		BaseOffset: 1000, Length: int32(len(good) - 12), PartitionLeaderEpoch: 7, Magic: 2,
		CRC: binary.BigEndian.Uint32(good[offCRC:]), Attributes: 0x10, LastOffsetDelta: 3,
		FirstTimestamp: 1700000000000, MaxTimestamp: 1700000000042, ProducerID: -1,
		ProducerEpoch: -1, BaseSequence: -1, NumRecords: 4,
	}
	if h != want {
		t.Fatalf("ParseHeader:\n got %+v\nwant %+v", h, want)
	}
	if h.LastOffset() != 1003 || h.Codec() != CodecNone || !h.Transactional() || h.Control() ||
		h.LogAppendTime() || h.Idempotent() {
		t.Fatalf("accessors disagree with %+v", h)
	}
}

func TestSplit(t *testing.T) {
	a := buildBatch(t, codecCases[0], 0, sampleRecords())
	b := buildBatch(t, codecCases[5], 0, sampleRecords()[:1])
	c := buildBatch(t, codecCases[3], 0, sampleRecords()[1:])
	all := bytes.Join([][]byte{a, b, c}, nil)

	var got [][]byte
	if err := Split(all, func(batch []byte, h Header) bool {
		if h.Size() != len(batch) || cap(batch) != len(batch) {
			t.Fatalf("batch of %d bytes (cap %d), Size %d", len(batch), cap(batch), h.Size())
		}
		got = append(got, batch)
		return true
	}); err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || !bytes.Equal(got[0], a) || !bytes.Equal(got[1], b) || !bytes.Equal(got[2], c) {
		t.Fatalf("Split yielded %d batches, not a, b, c", len(got))
	}

	calls := 0
	if err := Split(all, func([]byte, Header) bool { calls++; return false }); err != nil || calls != 1 {
		t.Fatalf("stopping: %d calls, err %v", calls, err)
	}
	if err := Split(nil, func([]byte, Header) bool { t.Fatal("called on empty input"); return true }); err != nil {
		t.Fatal(err)
	}

	calls = 0
	err := Split(all[:len(all)-1], func([]byte, Header) bool { calls++; return true })
	if !errors.Is(err, ErrTruncated) || calls != 2 {
		t.Fatalf("truncated tail: %d calls, err %v", calls, err)
	}
	calls = 0
	err = Split(append(bytes.Clone(a), withByte(b, offMagic, 1)...), func([]byte, Header) bool { calls++; return true })
	if !errors.Is(err, ErrUnsupportedMagic) || calls != 1 {
		t.Fatalf("v1 second batch: %d calls, err %v", calls, err)
	}
}

func TestSetters(t *testing.T) {
	b := buildBatch(t, codecCases[1], 0, sampleRecords())
	SetBaseOffset(b, 1<<40+3)
	SetPartitionLeaderEpoch(b, 99)
	h, err := Validate(b)
	if err != nil {
		t.Fatal(err)
	}
	if h.BaseOffset != 1<<40+3 || h.PartitionLeaderEpoch != 99 || h.LastOffset() != 1<<40+6 {
		t.Fatalf("setters not reflected: %+v", h)
	}
	for name, set := range map[string]func(){
		"SetBaseOffset":           func() { SetBaseOffset(b[:HeaderSize-1], 1) },
		"SetPartitionLeaderEpoch": func() { SetPartitionLeaderEpoch(b[:10], 1) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s on a short batch did not panic", name)
				}
			}()
			set()
		}()
	}
}

// TestSnappyStrict checks that snappy blocks are decoded as the Java broker decodes them:
// the s2 "repeat offset" extension, which klauspost's lenient decoder accepts, is refused.
func TestSnappyStrict(t *testing.T) {
	// "abcd", copy offset 4 length 4, then an s2 repeat (copy1 with offset 0) of length 8.
	block := []byte{16, 0x0c, 'a', 'b', 'c', 'd', 0x01, 0x04, 0x11, 0x00}
	lenient, err := snappy.Decode(nil, block)
	if err != nil || string(lenient) != strings.Repeat("abcd", 4) {
		t.Fatalf("the lenient decoder gave %q, %v; the test block is wrong", lenient, err)
	}
	if out, err := unsnappy(nil, block); err == nil {
		t.Fatalf("unsnappy accepted an s2 repeat: %q", out)
	}
	if out, err := unsnappy(nil, []byte{8, 0x0c, 'a', 'b', 'c', 'd', 0x01, 0x04}); err != nil || string(out) != "abcdabcd" {
		t.Fatalf("unsnappy of a standard block: %q, %v", out, err)
	}
}
