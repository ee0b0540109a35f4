package record

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// Limits on the varint encodings, as Kafka's ByteUtils reads them.
const (
	maxVarintBytes  = 5  // an int32 zigzag varint
	maxVarlongBytes = 10 // an int64 zigzag varint
	// minHeaderBytes is the smallest encoded record header: two one-byte lengths.
	minHeaderBytes = 2
	// minControlKeyBytes is a control record key's version and type, two int16s.
	minControlKeyBytes = 4
)

// checkRecords checks that data, a batch's uncompressed records section, holds exactly n
// well-formed records whose offset deltas are 0..n-1. A control batch must hold one
// record whose key carries a control record version and type. Every failure wraps
// ErrInvalid.
func checkRecords(data []byte, n int32, control bool) error {
	if control && n != 1 {
		return fmt.Errorf("%w: control batch with %d records, want 1", ErrInvalid, n)
	}
	// Each record takes at least one byte, so the loop ends by len(data) whatever n says.
	for i := int32(0); i < n; i++ {
		if len(data) == 0 {
			return fmt.Errorf("%w: %d records declared, section ends after %d", ErrInvalid, n, i)
		}
		length, m := varint(data)
		if m <= 0 {
			return fmt.Errorf("%w: record %d: malformed length varint", ErrInvalid, i)
		}
		data = data[m:]
		if length < 0 || int(length) > len(data) {
			return fmt.Errorf("%w: record %d: length %d with %d bytes left", ErrInvalid, i, length, len(data))
		}
		if err := checkRecord(data[:length], i, control); err != nil {
			return fmt.Errorf("%w: record %d: %s", ErrInvalid, i, err)
		}
		data = data[length:]
	}
	if len(data) != 0 {
		return fmt.Errorf("%w: %d bytes follow the %d declared records", ErrInvalid, len(data), n)
	}
	return nil
}

// checkRecord checks one record's body, everything after its length varint, expecting
// offset delta i. The body must be consumed exactly. Its errors carry no sentinel:
// checkRecords wraps them with ErrInvalid and the record's index.
func checkRecord(body []byte, i int32, control bool) error {
	if len(body) == 0 {
		return errors.New("no attributes")
	}
	// attributes (int8, unused) and timestampDelta (any value) need no check.
	body = body[1:]
	_, m := varlong(body)
	if m <= 0 {
		return errors.New("malformed timestampDelta varlong")
	}
	body = body[m:]
	delta, m := varint(body)
	if m <= 0 {
		return errors.New("malformed offsetDelta varint")
	}
	body = body[m:]
	if delta != i {
		return fmt.Errorf("offsetDelta %d, want %d", delta, i)
	}
	keyLen, body, err := skipNullableBytes(body, "key")
	if err != nil {
		return err
	}
	if control && keyLen < minControlKeyBytes {
		return fmt.Errorf("control record key length %d, want at least %d", keyLen, minControlKeyBytes)
	}
	if _, body, err = skipNullableBytes(body, "value"); err != nil {
		return err
	}
	if body, err = skipHeaders(body); err != nil {
		return err
	}
	if len(body) != 0 {
		return fmt.Errorf("%d bytes follow the headers", len(body))
	}
	return nil
}

// skipHeaders skips a record's header count and headers, returning what follows. Header
// keys must not be null (Kafka rejects a negative key length); values may be.
func skipHeaders(b []byte) ([]byte, error) {
	count, m := varint(b)
	if m <= 0 {
		return nil, errors.New("malformed header count varint")
	}
	b = b[m:]
	if count < 0 || int(count) > len(b)/minHeaderBytes {
		return nil, fmt.Errorf("header count %d with %d bytes left", count, len(b))
	}
	for j := int32(0); j < count; j++ {
		keyLen, rest, err := skipNullableBytes(b, "header key")
		if err != nil {
			return nil, err
		}
		if keyLen < 0 {
			return nil, fmt.Errorf("header %d: null key", j)
		}
		if _, b, err = skipNullableBytes(rest, "header value"); err != nil {
			return nil, err
		}
	}
	return b, nil
}

// skipNullableBytes skips a varint length and that many bytes; -1 means null and is
// followed by nothing. It returns the length and what follows.
func skipNullableBytes(b []byte, field string) (int32, []byte, error) {
	n, m := varint(b)
	if m <= 0 {
		return 0, nil, fmt.Errorf("malformed %s length varint", field)
	}
	b = b[m:]
	if n < -1 || int(n) > len(b) {
		return 0, nil, fmt.Errorf("%s length %d with %d bytes left", field, n, len(b))
	}
	if n > 0 {
		b = b[n:]
	}
	return n, b, nil
}

// varint decodes a zigzag int32 varint of at most maxVarintBytes bytes. It returns the
// value and the bytes read, or n <= 0 when b is short, the encoding too long, or the
// value outside int32.
func varint(b []byte) (v int32, n int) {
	x, n := binary.Varint(b)
	if n <= 0 || n > maxVarintBytes || x < math.MinInt32 || x > math.MaxInt32 {
		return 0, -1
	}
	return int32(x), n
}

// varlong decodes a zigzag int64 varint of at most maxVarlongBytes bytes. It returns the
// value and the bytes read, or n <= 0 when b is short or the encoding malformed.
func varlong(b []byte) (v int64, n int) {
	x, n := binary.Varint(b)
	if n <= 0 || n > maxVarlongBytes {
		return 0, -1
	}
	return x, n
}
