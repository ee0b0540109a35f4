package e2e

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	gonet "net"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"chronik/kafka"
)

// wireTimeout bounds every read and write on a raw connection: a broker that neither
// answers nor closes within it has hung.
const wireTimeout = 10 * time.Second

// wireConn is a hand-driven Kafka connection, for input no client library would send.
type wireConn struct {
	t    testing.TB
	nc   gonet.Conn
	corr int32
}

func dialWire(t testing.TB, addr string) *wireConn {
	t.Helper()
	nc, err := gonet.DialTimeout("tcp", addr, wireTimeout)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return &wireConn{t: t, nc: nc}
}

// wireFrame is a whole request frame: size | key | version | correlation id | client
// id | [empty tagged fields when flexible] | body.
func wireFrame(key, version int16, corr int32, flexible bool, body []byte) []byte {
	const clientID = "badinput"
	b := make([]byte, 4, 4+8+2+len(clientID)+1+len(body))
	b = binary.BigEndian.AppendUint16(b, uint16(key))
	b = binary.BigEndian.AppendUint16(b, uint16(version))
	b = binary.BigEndian.AppendUint32(b, uint32(corr))
	b = binary.BigEndian.AppendUint16(b, uint16(len(clientID)))
	b = append(b, clientID...)
	if flexible {
		b = append(b, 0)
	}
	b = append(b, body...)
	binary.BigEndian.PutUint32(b, uint32(len(b)-4))
	return b
}

func (rc *wireConn) write(b []byte) {
	rc.t.Helper()
	if err := rc.nc.SetWriteDeadline(time.Now().Add(wireTimeout)); err != nil {
		rc.t.Fatal(err)
	}
	if _, err := rc.nc.Write(b); err != nil {
		rc.t.Fatalf("write: %v", err)
	}
}

// send writes req as a well-framed request at req's version and returns its correlation id.
func (rc *wireConn) send(req kmsg.Request) int32 {
	rc.t.Helper()
	rc.corr++
	rc.write(wireFrame(req.Key(), req.GetVersion(), rc.corr, req.IsFlexible(), req.AppendTo(nil)))
	return rc.corr
}

// readFrame reads one response frame (without its size prefix).
func (rc *wireConn) readFrame() []byte {
	rc.t.Helper()
	if err := rc.nc.SetReadDeadline(time.Now().Add(wireTimeout)); err != nil {
		rc.t.Fatal(err)
	}
	var size [4]byte
	if _, err := io.ReadFull(rc.nc, size[:]); err != nil {
		rc.t.Fatalf("read response size: %v", err)
	}
	n := int32(binary.BigEndian.Uint32(size[:]))
	if n < 4 || n > 64<<20 {
		rc.t.Fatalf("response frame of %d bytes", n)
	}
	frame := make([]byte, n)
	if _, err := io.ReadFull(rc.nc, frame); err != nil {
		rc.t.Fatalf("read response: %v", err)
	}
	return frame
}

// readResponse reads the answer to corr and decodes it as resp (whose version is set).
func (rc *wireConn) readResponse(corr int32, resp kmsg.Response) {
	rc.t.Helper()
	r := kbin.Reader{Src: rc.readFrame()}
	if got := r.Int32(); got != corr {
		rc.t.Fatalf("correlation id %d, want %d", got, corr)
	}
	if resp.IsFlexible() && resp.Key() != kmsg.ApiVersions.Int16() {
		kmsg.SkipTags(&r)
	}
	if !r.Ok() {
		rc.t.Fatal("short response header")
	}
	if err := resp.ReadFrom(r.Src); err != nil {
		rc.t.Fatalf("decode %T: %v", resp, err)
	}
}

// roundTrip sends req and returns its decoded response.
func (rc *wireConn) roundTrip(req kmsg.Request) kmsg.Response {
	rc.t.Helper()
	corr := rc.send(req)
	resp := req.ResponseKind()
	rc.readResponse(corr, resp)
	return resp
}

// expectClosed asserts that the broker closes the connection without answering: the
// next read ends in EOF or a reset, not in data and not in a timeout.
func (rc *wireConn) expectClosed() {
	rc.t.Helper()
	if err := rc.nc.SetReadDeadline(time.Now().Add(wireTimeout)); err != nil {
		rc.t.Fatal(err)
	}
	var buf [256]byte
	n, err := rc.nc.Read(buf[:])
	switch {
	case n > 0:
		rc.t.Fatalf("broker answered %d bytes (% x...) instead of closing", n, buf[:min(n, 16)])
	case errors.Is(err, io.EOF), errors.Is(err, syscall.ECONNRESET):
	default:
		rc.t.Fatalf("connection not closed: %v", err)
	}
}

var wireCRCTable = crc32.MakeTable(crc32.Castagnoli)

// wireRecord is one v2 record at offsetDelta with a null key.
func wireRecord(offsetDelta int32, value string) []byte {
	r := kmsg.Record{OffsetDelta: offsetDelta, Value: []byte(value)}
	r.Length = int32(len(r.AppendTo(nil)) - 1) // Length 0 is one varint byte
	return r.AppendTo(nil)
}

// wireBatch is a valid, uncompressed, non-idempotent batch of values, not yet sealed.
func wireBatch(values ...string) kmsg.RecordBatch {
	now := time.Now().UnixMilli()
	b := kmsg.RecordBatch{
		PartitionLeaderEpoch: -1,
		Magic:                2,
		LastOffsetDelta:      int32(len(values) - 1),
		FirstTimestamp:       now,
		MaxTimestamp:         now,
		ProducerID:           -1,
		ProducerEpoch:        -1,
		FirstSequence:        -1,
		NumRecords:           int32(len(values)),
	}
	for i, v := range values {
		b.Records = append(b.Records, wireRecord(int32(i), v)...)
	}
	return b
}

// wireSeal encodes b with its Length and CRC-32C (over the bytes from attributes on) computed
// from its other fields.
func wireSeal(b kmsg.RecordBatch) []byte {
	b.Length = int32(49 + len(b.Records))
	raw := b.AppendTo(nil)
	binary.BigEndian.PutUint32(raw[17:21], crc32.Checksum(raw[21:], wireCRCTable))
	return raw
}

type wirePart struct {
	partition int32
	records   []byte
}

func wireProduce(version, acks int16, topic string, parts ...wirePart) *kmsg.ProduceRequest {
	req := kmsg.NewPtrProduceRequest()
	req.SetVersion(version)
	req.Acks = acks
	req.TimeoutMillis = 10000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	for _, p := range parts {
		rp := kmsg.NewProduceRequestTopicPartition()
		rp.Partition, rp.Records = p.partition, p.records
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	return req
}

// produceCodes sends req and returns each partition's error code and base offset.
func (rc *wireConn) produceCodes(req *kmsg.ProduceRequest) map[int32][2]int64 {
	rc.t.Helper()
	resp := rc.roundTrip(req).(*kmsg.ProduceResponse)
	got := map[int32][2]int64{}
	for _, rt := range resp.Topics {
		for _, rp := range rt.Partitions {
			got[rp.Partition] = [2]int64{int64(rp.ErrorCode), rp.BaseOffset}
		}
	}
	if len(resp.Topics) != 1 || len(got) != len(req.Topics[0].Partitions) {
		rc.t.Fatalf("produce answer for %d topics, partitions %v; want 1 topic, %d partitions", len(resp.Topics), got, len(req.Topics[0].Partitions))
	}
	return got
}

// expectProduceCode asserts that a one-partition produce is refused with code.
func (rc *wireConn) expectProduceCode(req *kmsg.ProduceRequest, code *kerr.Error) {
	rc.t.Helper()
	p := req.Topics[0].Partitions[0].Partition
	got := rc.produceCodes(req)[p]
	if got[0] != int64(code.Code) || got[1] != -1 {
		rc.t.Fatalf("partition %d: error %d (%v) base offset %d; want %d (%s) and -1", p, got[0], kerr.ErrorForCode(int16(got[0])), got[1], code.Code, code.Message)
	}
}

// wireReadLog reads all of partition 0 of topic, from its start to its end offset, with
// franz-go, and returns the values in offset order. It fails t on a gap in the offsets.
func wireReadLog(t testing.TB, addr, topic string) []string {
	t.Helper()
	cl := newClient(t, addr, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtStart()}}),
		kgo.FetchMaxWait(100*time.Millisecond))
	ctx := testCtx(t, 20*time.Second)
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	end, _ := ends.Lookup(topic, 0)
	if end.Err != nil {
		t.Fatalf("end offset: %v", end.Err)
	}
	var got []string
	for int64(len(got)) < end.Offset {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("read %d of %d records: %v", len(got), end.Offset, err)
		}
		fs.EachError(func(topic string, p int32, err error) { t.Fatalf("fetch %s/%d: %v", topic, p, err) })
		for _, r := range fs.Records() {
			if r.Offset != int64(len(got)) {
				t.Fatalf("record at offset %d after %d records", r.Offset, len(got))
			}
			got = append(got, string(r.Value))
		}
	}
	return got
}

// wireCheckLog asserts that partition 0 of topic holds exactly want, at offsets
// 0..len(want)-1.
func wireCheckLog(t testing.TB, addr, topic string, want []string) {
	t.Helper()
	got := wireReadLog(t, addr, topic)
	if !slices.Equal(got, want) {
		t.Fatalf("the log holds %d records %q; want the %d acknowledged %q", len(got), got, len(want), want)
	}
}

// badInputCase sends one bad input on a fresh connection and asserts the broker's exact
// reaction. next is the offset the partition's next record will get; run returns the
// values it wrote successfully, in order, if any.
type badInputCase struct {
	name string
	run  func(t *testing.T, rc *wireConn, next int64) []string
}

const badInputTopic = "bad-input"

func badInputCases(served map[int16]bool) []badInputCase {
	closes := func(frame func() []byte) func(*testing.T, *wireConn, int64) []string {
		return func(_ *testing.T, rc *wireConn, _ int64) []string {
			rc.write(frame())
			rc.expectClosed()
			return nil
		}
	}
	produceFrame := func(version int16) []byte {
		req := wireProduce(version, -1, badInputTopic, wirePart{0, wireSeal(wireBatch("never-written"))})
		return wireFrame(0, version, 1, req.IsFlexible(), req.AppendTo(nil))
	}
	// unserved is an API key kmsg knows and this broker does not serve.
	unserved := int16(-1)
	for k := int16(0); k < 100 && unserved < 0; k++ {
		if kmsg.RequestForKey(k) != nil && !served[k] {
			unserved = k
		}
	}
	badBatch := func(name string, code *kerr.Error, records func() []byte) badInputCase {
		return badInputCase{name, func(_ *testing.T, rc *wireConn, _ int64) []string {
			rc.expectProduceCode(wireProduce(9, -1, badInputTopic, wirePart{0, records()}), code)
			return nil
		}}
	}
	return []badInputCase{
		{"frame-over-limit", closes(func() []byte {
			return binary.BigEndian.AppendUint32(nil, kafka.MaxFrameBytes+1)
		})},
		{"frame-length-negative", closes(func() []byte { return []byte{0xff, 0xff, 0xff, 0xfe} })},
		{"frame-shorter-than-header", closes(func() []byte { return []byte{0, 0, 0, 3, 0, 18, 0} })},
		{"unknown-api-key", closes(func() []byte { return wireFrame(999, 0, 1, false, nil) })},
		{"unserved-api-key", func(t *testing.T, rc *wireConn, _ int64) []string {
			if unserved < 0 {
				t.Skip("every key kmsg knows below 100 is served")
			}
			req := kmsg.RequestForKey(unserved)
			rc.write(wireFrame(unserved, 0, 1, req.IsFlexible(), req.AppendTo(nil)))
			rc.expectClosed()
			return nil
		}},
		{"produce-version-too-old", closes(func() []byte { return produceFrame(2) })},
		{"produce-version-too-new", closes(func() []byte {
			f := produceFrame(11)
			binary.BigEndian.PutUint16(f[6:], 99)
			return f
		})},
		{"fetch-version-too-new", closes(func() []byte {
			req := kmsg.NewPtrFetchRequest()
			req.SetVersion(13)
			return wireFrame(1, 13, 1, true, req.AppendTo(nil))
		})},
		{"apiversions-too-new", func(t *testing.T, rc *wireConn, _ int64) []string {
			// KIP-511: a v0 answer with UNSUPPORTED_VERSION and the keys served; the
			// connection stays open for the client's retry at a version we serve.
			req := kmsg.NewPtrApiVersionsRequest()
			req.SetVersion(4)
			req.ClientSoftwareName, req.ClientSoftwareVersion = "badinput", "1"
			rc.corr++
			rc.write(wireFrame(18, 99, rc.corr, true, req.AppendTo(nil)))
			resp := kmsg.NewPtrApiVersionsResponse()
			resp.SetVersion(0)
			rc.readResponse(rc.corr, resp)
			if resp.ErrorCode != kerr.UnsupportedVersion.Code {
				t.Fatalf("error %d, want UNSUPPORTED_VERSION (35)", resp.ErrorCode)
			}
			keys := map[int16][2]int16{}
			for _, k := range resp.ApiKeys {
				keys[k.ApiKey] = [2]int16{k.MinVersion, k.MaxVersion}
			}
			if keys[18] != [2]int16{0, 4} || keys[0] != [2]int16{3, 11} || len(keys) != len(served) {
				t.Fatalf("keys %v, want the %d served keys with ApiVersions 0-4 and Produce 3-11", keys, len(served))
			}
			req.SetVersion(3)
			if ok := rc.roundTrip(req).(*kmsg.ApiVersionsResponse); ok.ErrorCode != 0 || len(ok.ApiKeys) != len(served) {
				t.Fatalf("retry at v3: error %d, %d keys", ok.ErrorCode, len(ok.ApiKeys))
			}
			return nil
		}},
		{"truncated-produce", closes(func() []byte {
			f := produceFrame(9)
			f = f[:len(f)/2]
			binary.BigEndian.PutUint32(f, uint32(len(f)-4))
			return f
		})},
		{"garbage-produce-body", closes(func() []byte {
			body := make([]byte, 64)
			for i := range body {
				body[i] = 0xff
			}
			return wireFrame(0, 9, 1, true, body)
		})},
		{"garbage-frame", closes(func() []byte {
			return []byte{0, 0, 0, 16, 0xde, 0xad, 0xbe, 0xef, 0x01, 0x02, 0x03, 0x04, 0xff, 0xff, 0x7f, 0x00, 0x11, 0x22, 0x33, 0x44}
		})},
		badBatch("bad-crc", kerr.CorruptMessage, func() []byte {
			raw := wireSeal(wireBatch("crc-1", "crc-2"))
			raw[17] ^= 0x01
			return raw
		}),
		badBatch("bad-crc-records-flipped", kerr.CorruptMessage, func() []byte {
			raw := wireSeal(wireBatch("crc-3"))
			raw[len(raw)-1] ^= 0x80
			return raw
		}),
		badBatch("record-count-over", kerr.InvalidRecord, func() []byte {
			b := wireBatch("over-1", "over-2")
			b.NumRecords, b.LastOffsetDelta = 3, 2 // consistent header, one record missing
			return wireSeal(b)
		}),
		badBatch("record-count-under", kerr.InvalidRecord, func() []byte {
			b := wireBatch("under-1", "under-2")
			b.NumRecords, b.LastOffsetDelta = 1, 0 // a record left over
			return wireSeal(b)
		}),
		badBatch("record-count-vs-offset-delta", kerr.InvalidRecord, func() []byte {
			b := wireBatch("delta-1", "delta-2")
			b.LastOffsetDelta = 5
			return wireSeal(b)
		}),
		badBatch("record-count-zero", kerr.InvalidRecord, func() []byte {
			b := wireBatch("zero-1")
			b.NumRecords, b.LastOffsetDelta, b.Records = 0, -1, nil
			return wireSeal(b)
		}),
		badBatch("record-count-after-crc", kerr.CorruptMessage, func() []byte {
			// The count is changed after the CRC was computed: the CRC check comes first.
			raw := wireSeal(wireBatch("stale-1", "stale-2"))
			binary.BigEndian.PutUint32(raw[57:], 3)
			return raw
		}),
		badBatch("two-batches", kerr.InvalidRecord, func() []byte {
			return append(wireSeal(wireBatch("two-1")), wireSeal(wireBatch("two-2"))...)
		}),
		badBatch("no-batch", kerr.InvalidRecord, func() []byte { return []byte{} }),
		badBatch("truncated-batch", kerr.InvalidRecord, func() []byte {
			raw := wireSeal(wireBatch("cut-1", "cut-2", "cut-3"))
			return raw[:len(raw)-10]
		}),
		badBatch("magic-1", kerr.InvalidRecord, func() []byte {
			raw := wireSeal(wireBatch("magic"))
			raw[16] = 1
			return raw
		}),
		{"bad-crc-acks0", func(_ *testing.T, rc *wireConn, _ int64) []string {
			// acks=0 has no answer to carry the error: the broker closes the connection.
			raw := wireSeal(wireBatch("acks0"))
			raw[30] ^= 0xff
			rc.send(wireProduce(9, 0, badInputTopic, wirePart{0, raw}))
			rc.expectClosed()
			return nil
		}},
		{"unknown-partition", func(t *testing.T, rc *wireConn, next int64) []string {
			// Each partition is answered on its own: partition 0 is written.
			v := fmt.Sprintf("beside-p99-%d", next)
			got := rc.produceCodes(wireProduce(9, -1, badInputTopic,
				wirePart{99, wireSeal(wireBatch("p99"))}, wirePart{0, wireSeal(wireBatch(v))}, wirePart{-1, wireSeal(wireBatch("p-1"))}))
			code := int64(kerr.UnknownTopicOrPartition.Code)
			if got[99] != [2]int64{code, -1} || got[-1] != [2]int64{code, -1} || got[0] != [2]int64{0, next} {
				t.Fatalf("got %v; want partitions 99 and -1 UNKNOWN_TOPIC_OR_PARTITION (3), partition 0 written at %d", got, next)
			}
			return []string{v}
		}},
		{"unknown-topic", func(_ *testing.T, rc *wireConn, _ int64) []string {
			req := wireProduce(9, -1, "no-such-topic", wirePart{0, wireSeal(wireBatch("nowhere"))})
			rc.expectProduceCode(req, kerr.UnknownTopicOrPartition)
			return nil
		}},
		{"bad-then-good-same-conn", func(t *testing.T, rc *wireConn, next int64) []string {
			// A refused batch leaves the connection usable.
			bad := wireSeal(wireBatch("bad"))
			bad[40] ^= 0x10
			rc.expectProduceCode(wireProduce(7, -1, badInputTopic, wirePart{0, bad}), kerr.CorruptMessage)
			v := fmt.Sprintf("same-conn-%d", next)
			if got := rc.produceCodes(wireProduce(7, -1, badInputTopic, wirePart{0, wireSeal(wireBatch(v))})); got[0] != [2]int64{0, next} {
				t.Fatalf("good produce after a bad one: %v, want offset %d", got[0], next)
			}
			return []string{v}
		}},
	}
}

// TestBadInput sends each bad input on its own connection and checks the broker's exact
// answer (a Kafka error, or a closed connection). After each, a franz-go client still
// produces to and consumes from the same partition, and the log holds exactly the records
// that were acknowledged; after them all, a restart recovers that same log.
func TestBadInput(t *testing.T) {
	dir := t.TempDir()
	b := startBrokerIn(t, dir)
	cl := newClient(t, b.Addr(), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	ctx := testCtx(t, 5*time.Minute)
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, 1, 1, nil, badInputTopic); err != nil {
		t.Fatal(err)
	}
	rc := dialWire(t, b.Addr())
	req := kmsg.NewPtrApiVersionsRequest()
	req.SetVersion(3)
	served := map[int16]bool{}
	for _, k := range rc.roundTrip(req).(*kmsg.ApiVersionsResponse).ApiKeys {
		served[k.ApiKey] = true
	}
	rc.nc.Close()

	var good []string
	for _, c := range badInputCases(served) {
		ok := t.Run(c.name, func(t *testing.T) {
			good = append(good, c.run(t, dialWire(t, b.Addr()), int64(len(good)))...)
			v := "franz-after-" + c.name
			r := &kgo.Record{Topic: badInputTopic, Partition: 0, Value: []byte(v)}
			if err := cl.ProduceSync(testCtx(t, 20*time.Second), r).FirstErr(); err != nil {
				t.Fatalf("franz-go produce after %s: %v", c.name, err)
			}
			if r.Offset != int64(len(good)) {
				t.Fatalf("franz-go record at offset %d, want %d", r.Offset, len(good))
			}
			good = append(good, v)
			wireCheckLog(t, b.Addr(), badInputTopic, good)
		})
		if !ok {
			// Resynchronize with the log so that later cases check only what they did.
			good = wireReadLog(t, b.Addr(), badInputTopic)
		}
	}

	cl.Close()
	if err := b.Close(); err != nil {
		t.Fatalf("broker close: %v", err)
	}
	b2 := startBrokerIn(t, dir)
	wireCheckLog(t, b2.Addr(), badInputTopic, good)
	r := &kgo.Record{Topic: badInputTopic, Value: []byte("after-restart")}
	if err := newClient(t, b2.Addr()).ProduceSync(ctx, r).FirstErr(); err != nil {
		t.Fatalf("produce after restart: %v", err)
	}
	good = append(good, "after-restart")
	wireCheckLog(t, b2.Addr(), badInputTopic, good)
}
