package kafka

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kmsg"

	"chronik/core/record"
)

// MaxFrameBytes is the default largest request frame accepted (Kafka's
// socket.request.max.bytes); a larger length prefix closes the connection.
const MaxFrameBytes = 100 << 20

// Errors from Decode. Each one closes the connection, as Kafka does, except that an
// ApiVersions request at a version we do not serve is answered (KIP-511).
var (
	ErrFrameTooLarge      = errors.New("kafka: frame over the size limit")
	ErrUnknownAPI         = errors.New("kafka: unknown api key")
	ErrUnsupportedVersion = errors.New("kafka: unsupported api version")
	ErrMalformed          = errors.New("kafka: malformed request")
)

// ConnID names a client connection for the node. Connection ids are never reused within
// a node's lifetime.
type ConnID uint64

// Request is a decoded client request, ready for the node's loop. Decoding, CRC checks and
// record validation have already run at the edge.
type Request struct {
	Conn ConnID
	// Seq numbers the requests of one connection from 0; responses are written in Seq
	// order whatever order the node finishes them in.
	Seq           uint64
	Key           int16
	Version       int16
	CorrelationID int32
	ClientID      string
	Msg           kmsg.Request
	// BadRecords holds, for a produce request, the validation error of each partition's
	// records by [topic index][partition index]; nil when every partition validated.
	BadRecords [][]error
	// Headers holds, for a produce request, the header of each partition's single batch,
	// by [topic index][partition index], when it validated.
	Headers [][]record.Header
}

// Response is one answer for a connection. Msg nil means no bytes are written (acks=0),
// but the sequence slot is consumed.
type Response struct {
	Conn          ConnID
	Seq           uint64
	CorrelationID int32
	Msg           kmsg.Response
	// Close asks the edge to close the connection after writing what precedes Seq.
	Close bool
}

// FrameLength reads a request's 4-byte length prefix and checks it against maxBytes.
func FrameLength(prefix []byte, maxBytes int) (int, error) {
	n := int(int32(binary.BigEndian.Uint32(prefix)))
	if n < 0 || n > maxBytes {
		return 0, fmt.Errorf("%w: %d bytes", ErrFrameTooLarge, n)
	}
	return n, nil
}

// Decode parses one request frame (without its length prefix). On ErrUnsupportedVersion
// for ApiVersions the returned Request is still usable: the node answers it with
// UNSUPPORTED_VERSION and its version list (KIP-511). The Request owns frame.
func Decode(frame []byte) (*Request, error) { return DecodeWith(frame, nil) }

// DecodeWith is Decode reusing v's decompression state for produce validation; a
// connection's reader keeps one Validator. v nil allocates one when needed.
func DecodeWith(frame []byte, v *record.Validator) (*Request, error) {
	r := kbin.Reader{Src: frame}
	req := &Request{Key: r.Int16(), Version: r.Int16(), CorrelationID: r.Int32()}
	cid := r.NullableString()
	if !r.Ok() {
		return nil, fmt.Errorf("%w: short header", ErrMalformed)
	}
	if cid != nil {
		req.ClientID = *cid
	}
	msg := kmsg.RequestForKey(req.Key)
	if msg == nil {
		return nil, fmt.Errorf("%w: %d", ErrUnknownAPI, req.Key)
	}
	vr, served := supported[req.Key]
	if !served {
		return nil, fmt.Errorf("%w: %d", ErrUnknownAPI, req.Key)
	}
	if req.Version < vr.min || req.Version > vr.max {
		if req.Key == 18 {
			// KIP-511: answer in v0 form with the versions we serve.
			req.Msg = msg
			msg.SetVersion(0)
			return req, ErrUnsupportedVersion
		}
		return nil, fmt.Errorf("%w: key %d version %d", ErrUnsupportedVersion, req.Key, req.Version)
	}
	msg.SetVersion(req.Version)
	if msg.IsFlexible() {
		kmsg.SkipTags(&r)
		if !r.Ok() {
			return nil, fmt.Errorf("%w: header tags", ErrMalformed)
		}
	}
	if err := msg.ReadFrom(r.Src); err != nil {
		return nil, fmt.Errorf("%w: key %d version %d: %v", ErrMalformed, req.Key, req.Version, err)
	}
	req.Msg = msg
	if p, ok := msg.(*kmsg.ProduceRequest); ok {
		validateProduce(req, p, v)
	}
	return req, nil
}

// validateProduce checks each partition's records: exactly one v2 batch that validates.
func validateProduce(req *Request, p *kmsg.ProduceRequest, v *record.Validator) {
	req.Headers = make([][]record.Header, len(p.Topics))
	for ti := range p.Topics {
		parts := p.Topics[ti].Partitions
		req.Headers[ti] = make([]record.Header, len(parts))
		for pi := range parts {
			h, err := validateOneBatch(parts[pi].Records, v)
			if err != nil {
				if req.BadRecords == nil {
					req.BadRecords = make([][]error, len(p.Topics))
				}
				if req.BadRecords[ti] == nil {
					req.BadRecords[ti] = make([]error, len(parts))
				}
				req.BadRecords[ti][pi] = err
				continue
			}
			req.Headers[ti][pi] = h
		}
	}
}

// errNotOneBatch is INVALID_RECORD: produce v3+ carries exactly one batch per partition.
var errNotOneBatch = fmt.Errorf("%w: produce must carry exactly one record batch per partition", record.ErrInvalid)

func validateOneBatch(b []byte, v *record.Validator) (record.Header, error) {
	if len(b) == 0 {
		return record.Header{}, errNotOneBatch
	}
	h, err := record.ParseHeader(b)
	if errors.Is(err, record.ErrTruncated) || errors.Is(err, record.ErrUnsupportedMagic) {
		// Kafka finds no whole v2 batch here (ProduceRequest.validateRecords): INVALID_RECORD.
		return h, fmt.Errorf("%w: %v", errNotOneBatch, err)
	}
	if err != nil {
		return h, err
	}
	if h.Size() != len(b) {
		return h, errNotOneBatch
	}
	if v == nil {
		return record.Validate(b)
	}
	return v.Validate(b)
}

// AppendResponse appends resp's frame (length prefix, correlation id, header tags and
// body) to dst.
func AppendResponse(dst []byte, corr int32, msg kmsg.Response) []byte {
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0)
	dst = binary.BigEndian.AppendUint32(dst, uint32(corr))
	if msg.IsFlexible() && msg.Key() != 18 {
		dst = append(dst, 0) // response header v1: empty tagged fields
	}
	dst = msg.AppendTo(dst)
	binary.BigEndian.PutUint32(dst[start:], uint32(len(dst)-start-4))
	return dst
}

// EncodedSizeHint is a capacity that holds msg's encoding in one allocation: exact enough
// for fetch responses, whose record bytes dominate; small for everything else.
func EncodedSizeHint(msg kmsg.Response) int {
	f, ok := msg.(*kmsg.FetchResponse)
	if !ok {
		return 4 << 10
	}
	n := 1 << 10
	for ti := range f.Topics {
		n += 64 + len(f.Topics[ti].Topic)
		for pi := range f.Topics[ti].Partitions {
			n += 64 + len(f.Topics[ti].Partitions[pi].RecordBatches)
		}
	}
	return n
}
