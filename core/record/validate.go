package record

// ParseHeader decodes the header at the start of b without checking the CRC. It returns
// ErrTruncated when b is shorter than HeaderSize or than the batch's Size, and
// ErrUnsupportedMagic when magic is not 2; ErrCorrupt when batchLength is below the
// header's own size.
func ParseHeader(b []byte) (Header, error) { panic("todo") }

// Validate checks that b is exactly one well-formed v2 batch: magic 2, batchLength
// consistent with len(b), CRC-32C over b[21:] correct, NumRecords >= 1, LastOffsetDelta ==
// NumRecords-1, and the records section (decompressed first when the codec is not none)
// holds exactly NumRecords well-formed records whose offset deltas are 0..NumRecords-1.
// It never modifies b and never panics on any input.
func Validate(b []byte) (Header, error) { panic("todo") }

// Split walks the concatenated batches in b, calling fn with each whole batch's bytes and
// header (CRC not checked). It stops at the first error from ParseHeader and returns it;
// a b that ends exactly on a batch boundary returns nil. fn returning false stops the walk.
func Split(b []byte, fn func(batch []byte, h Header) bool) error { panic("todo") }

// SetBaseOffset overwrites the baseOffset field of the batch at the start of b.
func SetBaseOffset(b []byte, offset int64) { panic("todo") }

// SetPartitionLeaderEpoch overwrites the partitionLeaderEpoch field of the batch in b.
func SetPartitionLeaderEpoch(b []byte, epoch int32) { panic("todo") }
