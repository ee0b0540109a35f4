package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"chronik/internal/loadrec"
)

// producer is one virtual user's stream of load records.
type producer struct {
	id  uint64
	key []byte
	// nextSeq is the sequence of the next record; acked and failed count the records
	// sent so far by outcome. Invariant: nextSeq == acked + failed.
	nextSeq, acked, failed uint64
	// failedRanges are the sequences that failed, as ascending, disjoint, non-adjacent
	// inclusive [first, last] ranges; at most maxFailedRanges, then failedTruncated.
	failedRanges    [][2]uint64
	failedTruncated bool
}

// maxFailedRanges bounds the failed ranges kept per producer.
const maxFailedRanges = 1000

// account adds a batch's outcome to p: the batch held sequences nextSeq .. nextSeq+n-1,
// and failed lists the failed ones as ranges of indexes within the batch.
func (p *producer) account(n int, r *batchResult) {
	for _, f := range r.failedRanges {
		first, last := p.nextSeq+uint64(f[0]), p.nextSeq+uint64(f[1])
		if k := len(p.failedRanges); k > 0 && p.failedRanges[k-1][1]+1 == first {
			p.failedRanges[k-1][1] = last
			continue
		}
		if len(p.failedRanges) == maxFailedRanges {
			p.failedTruncated = true
			continue
		}
		p.failedRanges = append(p.failedRanges, [2]uint64{first, last})
	}
	p.nextSeq += uint64(n)
	p.acked += uint64(r.ok)
	p.failed += uint64(r.failed)
}

// vu is a virtual user: its producer and its reusable buffers. One goroutine at a time
// owns a vu.
type vu struct {
	slot int
	p    producer
	// values holds the batch's record values back to back, batch*size bytes.
	values []byte
	body   bytes.Buffer
	recs   []kgo.Record
}

// fill encodes the next batch of records into v.values.
func (v *vu) fill(batch, size int) {
	for i := range batch {
		loadrec.Encode(v.values[i*size:(i+1)*size], v.p.id, v.p.nextSeq+uint64(i))
	}
}

// sender sends one batch of a virtual user and says what became of it. msg describes a
// failure for the log.
type sender interface {
	send(ctx context.Context, v *vu) (r batchResult, msg string)
}

// httpSender posts batches to the ingestor: the simple form, or REST Proxy v2 with
// binary embedded data (base64), so the record bytes in Kafka are the load records
// themselves either way.
type httpSender struct {
	client      *http.Client
	urls        []string // one per ingestor; a vu posts to urls[slot % len]
	ctype       string
	rest        bool
	batch, size int
}

// maxAnswerBytes bounds the answer read from the ingestor.
const maxAnswerBytes = 16 << 20

func (h *httpSender) send(ctx context.Context, v *vu) (batchResult, string) {
	v.fill(h.batch, h.size)
	h.encode(v)
	wire := int64(v.body.Len())
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.urls[v.slot%len(h.urls)], bytes.NewReader(v.body.Bytes()))
	if err != nil {
		panic(err) // the URL was checked when the flags were parsed
	}
	req.Header.Set("Content-Type", h.ctype)
	resp, err := h.client.Do(req)
	if err != nil {
		kind := "http transport error"
		if errors.Is(err, context.DeadlineExceeded) {
			kind = "http timeout"
		}
		return batchResult{failed: h.batch, failedRanges: whole(h.batch), wireBytes: wire, errKind: kind}, err.Error()
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswerBytes))
	if err != nil {
		return batchResult{failed: h.batch, failedRanges: whole(h.batch), wireBytes: wire, errKind: "http answer unread"}, err.Error()
	}
	return h.judge(resp.StatusCode, raw, wire)
}

// answer is the part of the ingestor's answer the load generator reads.
type answer struct {
	ErrorCode *int   `json:"error_code"`
	Message   string `json:"message"`
	Offsets   []struct {
		ErrorCode *int   `json:"error_code"`
		Offset    *int64 `json:"offset"`
	} `json:"offsets"`
}

// judge counts the records of an answer: each offset with an error_code failed; an
// answer without one offset per record failed whole.
func (h *httpSender) judge(status int, raw []byte, wire int64) (batchResult, string) {
	r := batchResult{wireBytes: wire}
	var a answer
	if err := json.Unmarshal(raw, &a); err != nil || len(a.Offsets) != h.batch {
		r.failed, r.failedRanges = h.batch, whole(h.batch)
		r.errKind = fmt.Sprintf("http %d", status)
		if a.ErrorCode != nil {
			r.errKind = fmt.Sprintf("http %d (%d)", status, *a.ErrorCode)
		}
		return r, fmt.Sprintf("%s: %s", r.errKind, clip(raw))
	}
	var msg string
	for i, o := range a.Offsets {
		if o.ErrorCode != nil || o.Offset == nil {
			r.addFailed(i)
			r.failed++
			if r.errKind == "" && o.ErrorCode != nil {
				r.errKind = fmt.Sprintf("http %d (%d)", status, *o.ErrorCode)
			}
			continue
		}
		r.ok++
	}
	if r.failed > 0 {
		if r.errKind == "" {
			r.errKind = fmt.Sprintf("http %d", status)
		}
		msg = fmt.Sprintf("%s: %s", r.errKind, clip(raw))
	}
	r.payloadBytes = int64(r.ok * h.size)
	return r, msg
}

// encode writes the batch's request body into v.body. Keys are hex and values are
// loadrec's base64url-alphabet ASCII, so neither needs JSON escaping.
func (h *httpSender) encode(v *vu) {
	b := &v.body
	b.Reset()
	var b64 []byte
	if h.rest {
		b.WriteString(`{"records":[`)
	} else {
		b.WriteByte('[')
	}
	for i := range h.batch {
		if i > 0 {
			b.WriteByte(',')
		}
		val := v.values[i*h.size : (i+1)*h.size]
		b.WriteString(`{"key":"`)
		if h.rest {
			b64 = base64.StdEncoding.AppendEncode(b64[:0], v.p.key)
			b.Write(b64)
		} else {
			b.Write(v.p.key)
		}
		b.WriteString(`","value":"`)
		if h.rest {
			b64 = base64.StdEncoding.AppendEncode(b64[:0], val)
			b.Write(b64)
		} else {
			b.Write(val)
		}
		b.WriteString(`"}`)
	}
	if h.rest {
		b.WriteString(`]}`)
	} else {
		b.WriteByte(']')
	}
}

// directSender produces batches with franz-go, as the report's projected "direct Kafka"
// mode: a vu uses clients[slot % len] and waits for every record of its batch.
type directSender struct {
	clients     []*kgo.Client
	topic       string
	batch, size int
}

func (d *directSender) send(ctx context.Context, v *vu) (batchResult, string) {
	v.fill(d.batch, d.size)
	cl := d.clients[v.slot%len(d.clients)]
	var (
		wg        sync.WaitGroup
		mu        sync.Mutex
		first     error
		failedIdx []int
	)
	r := batchResult{}
	wg.Add(d.batch)
	for i := range d.batch {
		v.recs[i] = kgo.Record{Topic: d.topic, Key: v.p.key, Value: v.values[i*d.size : (i+1)*d.size]}
		r.wireBytes += int64(len(v.p.key) + d.size)
		cl.Produce(ctx, &v.recs[i], func(_ *kgo.Record, err error) {
			mu.Lock()
			if err != nil {
				failedIdx = append(failedIdx, i)
				r.failed++
				if first == nil {
					first = err
				}
			} else {
				r.ok++
			}
			mu.Unlock()
			wg.Done()
		})
	}
	wg.Wait()
	slices.Sort(failedIdx) // promises of different partitions may come in any order
	for _, i := range failedIdx {
		r.addFailed(i)
	}
	r.payloadBytes = int64(r.ok * d.size)
	if first != nil {
		r.errKind = "kafka: " + kafkaErrName(first)
		return r, first.Error()
	}
	return r, ""
}

// kafkaErrName is the Kafka error code name of err, or a short class.
func kafkaErrName(err error) string {
	if ke, ok := errors.AsType[*kerr.Error](err); ok {
		return ke.Message
	}
	switch {
	case errors.Is(err, kgo.ErrRecordTimeout):
		return "record timeout"
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return "canceled"
	}
	return "client error"
}

func clip(b []byte) string {
	const max = 300
	if len(b) > max {
		return string(b[:max]) + "..."
	}
	return string(b)
}

// whole is the failed ranges of a batch of n records that failed entirely.
func whole(n int) [][2]int { return [][2]int{{0, n - 1}} }
