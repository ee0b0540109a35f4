package kafka

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"chronik/disk"
)

// Fuzzing limits: a fuzzed request meets a node small enough that no input can make it
// do unbounded work.
const (
	fuzzMaxPartitions = 64 // the node's MaxPartitionsTotal
	fuzzMaxReadyLoops = 16 // Ready/SyncDone rounds after the fuzzed request
	fuzzTopic         = "fuzz"
)

// fuzzFrame is a request frame without its length prefix: key | version | correlation id
// | client id | [empty tagged fields when flexible] | body.
func fuzzFrame(key, version int16, corr int32, clientID *string, flexible bool, body []byte) []byte {
	b := binary.BigEndian.AppendUint16(nil, uint16(key))
	b = binary.BigEndian.AppendUint16(b, uint16(version))
	b = binary.BigEndian.AppendUint32(b, uint32(corr))
	if clientID == nil {
		b = binary.BigEndian.AppendUint16(b, 0xffff)
	} else {
		b = binary.BigEndian.AppendUint16(b, uint16(len(*clientID)))
		b = append(b, *clientID...)
	}
	if flexible {
		b = append(b, 0)
	}
	return append(b, body...)
}

// fuzzBatch is a valid uncompressed v2 batch of values.
func fuzzBatch(values ...string) []byte {
	var records []byte
	for i, v := range values {
		r := kmsg.Record{OffsetDelta: int32(i), Value: []byte(v)}
		r.Length = int32(len(r.AppendTo(nil)) - 1)
		records = r.AppendTo(records)
	}
	b := kmsg.RecordBatch{
		Length: int32(49 + len(records)), PartitionLeaderEpoch: -1, Magic: 2,
		LastOffsetDelta: int32(len(values) - 1), FirstTimestamp: 1, MaxTimestamp: 1,
		ProducerID: -1, ProducerEpoch: -1, FirstSequence: -1, NumRecords: int32(len(values)),
		Records: records,
	}
	raw := b.AppendTo(nil)
	binary.BigEndian.PutUint32(raw[17:], crc32.Checksum(raw[21:], crc32.MakeTable(crc32.Castagnoli)))
	return raw
}

// fuzzSeeds are valid frames of every served key at its lowest, middle and highest
// version, some with content, plus frames Decode must refuse.
func fuzzSeeds() [][]byte {
	id := "fuzz-client"
	var seeds [][]byte
	keys := make([]int16, 0, len(supported))
	for k := range supported {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		vr := supported[k]
		for _, v := range []int16{vr.min, (vr.min + vr.max) / 2, vr.max} {
			for _, msg := range fuzzMessages(k, v) {
				seeds = append(seeds, fuzzFrame(k, v, int32(v), &id, msg.IsFlexible(), msg.AppendTo(nil)))
			}
		}
	}
	return append(seeds,
		nil,
		[]byte{0, 18},
		fuzzFrame(18, 99, 1, nil, true, nil),  // ApiVersions too new (KIP-511)
		fuzzFrame(0, 2, 1, &id, false, nil),   // Produce too old
		fuzzFrame(999, 0, 1, &id, false, nil), // unknown key
	)
}

// fuzzMessages is a default request of key at version v and, for some keys, one with
// content that reaches the node's handlers.
func fuzzMessages(key, v int16) []kmsg.Request {
	msg := kmsg.RequestForKey(key)
	msg.SetVersion(v)
	out := []kmsg.Request{msg}
	switch m := kmsg.RequestForKey(key).(type) {
	case *kmsg.ProduceRequest:
		m.Acks, m.TimeoutMillis = -1, 1000
		t := kmsg.NewProduceRequestTopic()
		t.Topic = fuzzTopic
		for p, recs := range [][]byte{fuzzBatch("a", "b"), fuzzBatch("c")} {
			rp := kmsg.NewProduceRequestTopicPartition()
			rp.Partition, rp.Records = int32(p), recs
			t.Partitions = append(t.Partitions, rp)
		}
		m.Topics = append(m.Topics, t)
		out = append(out, m)
	case *kmsg.FetchRequest:
		m.MaxWaitMillis, m.MinBytes, m.MaxBytes = 100, 1, 1<<20
		t := kmsg.NewFetchRequestTopic()
		t.Topic = fuzzTopic
		p := kmsg.NewFetchRequestTopicPartition()
		p.PartitionMaxBytes = 1 << 20
		t.Partitions = append(t.Partitions, p)
		m.Topics = append(m.Topics, t)
		out = append(out, m)
	case *kmsg.MetadataRequest:
		t := kmsg.NewMetadataRequestTopic()
		t.Topic = kmsg.StringPtr(fuzzTopic)
		m.Topics = append(m.Topics, t)
		out = append(out, m)
	case *kmsg.CreateTopicsRequest:
		t := kmsg.NewCreateTopicsRequestTopic()
		t.Topic, t.NumPartitions, t.ReplicationFactor = "fuzz-new", 2, 1
		m.Topics = append(m.Topics, t)
		out = append(out, m)
	case *kmsg.ListOffsetsRequest:
		t := kmsg.NewListOffsetsRequestTopic()
		t.Topic = fuzzTopic
		p := kmsg.NewListOffsetsRequestTopicPartition()
		p.Timestamp = -1
		t.Partitions = append(t.Partitions, p)
		m.Topics = append(m.Topics, t)
		out = append(out, m)
	default:
		return out
	}
	out[len(out)-1].SetVersion(v)
	return out
}

func addFuzzSeeds(f *testing.F) {
	for _, s := range fuzzSeeds() {
		f.Add(s)
	}
}

var decodeErrors = []error{ErrFrameTooLarge, ErrUnknownAPI, ErrUnsupportedVersion, ErrMalformed}

// FuzzDecode: Decode never panics; it fails only with one of its sentinel errors, and
// returns a request with an error only for ApiVersions at a version not served; a request
// it returns re-encodes (kmsg AppendTo) into a frame that decodes to the same request.
func FuzzDecode(f *testing.F) {
	addFuzzSeeds(f)
	f.Fuzz(func(t *testing.T, frame []byte) {
		req, err := Decode(slices.Clone(frame))
		if err != nil {
			if !slices.ContainsFunc(decodeErrors, func(e error) bool { return errors.Is(err, e) }) {
				t.Fatalf("Decode error %v is none of the sentinels", err)
			}
			if req != nil && !(errors.Is(err, ErrUnsupportedVersion) && req.Key == kmsg.ApiVersions.Int16()) {
				t.Fatalf("Decode returned a request with error %v", err)
			}
			return
		}
		if req.Msg == nil || req.Msg.Key() != req.Key || req.Msg.GetVersion() != req.Version {
			t.Fatalf("request key %d version %d carries %T", req.Key, req.Version, req.Msg)
		}
		var cid *string
		if int16(binary.BigEndian.Uint16(frame[8:])) >= 0 { // a non-null client id
			cid = &req.ClientID
		}
		again := fuzzFrame(req.Key, req.Version, req.CorrelationID, cid, req.Msg.IsFlexible(), req.Msg.AppendTo(nil))
		req2, err := Decode(again)
		if err != nil {
			t.Fatalf("re-encoded request does not decode: %v\nfirst: %#v", err, req.Msg)
		}
		if req2.Key != req.Key || req2.Version != req.Version || req2.CorrelationID != req.CorrelationID || req2.ClientID != req.ClientID {
			t.Fatalf("header changed: %+v then %+v", *req, *req2)
		}
		if !reflect.DeepEqual(req.Msg, req2.Msg) {
			t.Fatalf("re-encoded request decodes differently:\nfirst:  %#v\nsecond: %#v", req.Msg, req2.Msg)
		}
		if !reflect.DeepEqual(badRecordCodes(req), badRecordCodes(req2)) || !reflect.DeepEqual(req.Headers, req2.Headers) {
			t.Fatalf("record validation differs: %v then %v", badRecordCodes(req), badRecordCodes(req2))
		}
	})
}

// badRecordCodes is req.BadRecords as Kafka error codes.
func badRecordCodes(req *Request) [][]int16 {
	var codes [][]int16
	for _, ps := range req.BadRecords {
		var row []int16
		for _, err := range ps {
			row = append(row, errCodeOf(err))
		}
		codes = append(codes, row)
	}
	return codes
}

// FuzzNodeHandle: any request Decode accepts can be handled by a node on an in-memory
// disk without a panic, and every response it produces encodes.
func FuzzNodeHandle(f *testing.F) {
	addFuzzSeeds(f)
	f.Fuzz(func(t *testing.T, frame []byte) {
		req, err := Decode(slices.Clone(frame))
		if req == nil {
			return
		}
		if err != nil && !errors.Is(err, ErrUnsupportedVersion) {
			t.Fatalf("Decode returned a request with error %v", err)
		}
		const nowMs = 1_700_000_000_000
		n, err := NewNode(Config{NodeID: 1, DataDir: "data", MaxPartitionsTotal: fuzzMaxPartitions}, disk.NewMem(), nowMs, 1)
		if err != nil {
			t.Fatal(err)
		}
		ct := kmsg.NewPtrCreateTopicsRequest()
		ct.SetVersion(7)
		topic := kmsg.NewCreateTopicsRequestTopic()
		topic.Topic, topic.NumPartitions, topic.ReplicationFactor = fuzzTopic, 2, 1
		ct.Topics = append(ct.Topics, topic)
		n.Handle(&Request{Conn: 1, Key: ct.Key(), Version: 7, Msg: ct})
		fuzzRunReady(t, n)
		if n.partition(fuzzTopic, 1) == nil {
			t.Fatal("the fuzz topic was not created")
		}

		req.Conn, req.Seq = 2, 0
		n.Handle(req)
		fuzzRunReady(t, n)
		n.Tick(nowMs + int64(time.Hour/time.Millisecond)) // expire any parked fetch
		fuzzRunReady(t, n)
		n.ConnClosed(2)
		if err := n.Close(); err != nil {
			t.Fatalf("close: %v", err)
		}
	})
}

// fuzzRunReady takes the node's work until it has none: runs every sync job, reports it,
// and encodes every response.
func fuzzRunReady(t *testing.T, n *Node) {
	t.Helper()
	for range fuzzMaxReadyLoops {
		rd := n.Ready()
		for _, r := range rd.Responses {
			if r.Msg != nil {
				AppendResponse(nil, r.CorrelationID, r.Msg)
			}
		}
		if len(rd.Syncs) == 0 {
			return
		}
		for _, s := range rd.Syncs {
			n.SyncDone(s, s.Run())
		}
	}
	t.Fatalf("node still has sync work after %d rounds", fuzzMaxReadyLoops)
}
