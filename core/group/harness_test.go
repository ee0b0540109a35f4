package group

import (
	"encoding/binary"
	"math/rand/v2"
	"sort"
)

// harness drives a Coordinator like the broker does: it parks requests under tokens, keeps
// an in-order log of records to append, and makes a prefix of that log durable on demand.
// failer is what the harness needs of *testing.T and *rapid.T.
type failer interface {
	Helper()
	Fatalf(format string, args ...any)
}

type harness struct {
	t     failer
	c     *Coordinator
	now   int64
	token Token

	joins map[Token]JoinResult
	syncs map[Token]SyncResult

	// log is the records appended and not yet durable, in append order.
	log []logEntry
	// applied is the fold of every durable offset record, the model of Committed.
	applied map[string]map[TopicPartition]Offset
	// durable are the records made durable, for replay tests.
	durable []Record
}

type logEntry struct {
	recs  []Record
	store StoreID // 0: offset records (Applied), else a Store (Stored)
}

func testConfig() Config {
	return Config{
		MinSessionTimeoutMs:     1000,
		MaxSessionTimeoutMs:     60000,
		InitialRebalanceDelayMs: 0,
		MaxSize:                 100,
		NewMemberJoinTimeoutMs:  300000,
		MaxMetadataBytes:        4096,
		Rand:                    rand.New(rand.NewPCG(1, 2)),
	}
}

func newHarness(t failer, cfg Config) *harness {
	h := &harness{t: t, c: New(cfg), now: 1000, joins: map[Token]JoinResult{}, syncs: map[Token]SyncResult{},
		applied: map[string]map[TopicPartition]Offset{}}
	h.c.LoadDone(h.now)
	return h
}

func (h *harness) nextToken() Token {
	h.token++
	return h.token
}

// collect takes the coordinator's output: replies are filed by token, stores logged.
func (h *harness) collect() {
	replies, stores := h.c.Ready()
	for _, r := range replies {
		if r.Join != nil {
			if _, dup := h.joins[r.Token]; dup {
				h.t.Fatalf("token %d answered twice", r.Token)
			}
			h.joins[r.Token] = *r.Join
		} else {
			if _, dup := h.syncs[r.Token]; dup {
				h.t.Fatalf("token %d answered twice", r.Token)
			}
			h.syncs[r.Token] = *r.Sync
		}
	}
	for _, s := range stores {
		h.log = append(h.log, logEntry{recs: []Record{s.Record}, store: s.ID})
	}
}

// durableUpTo makes the first n log entries durable, in order.
func (h *harness) durableUpTo(n int) {
	for _, e := range h.log[:n] {
		h.durable = append(h.durable, e.recs...)
		if e.store != 0 {
			h.c.Stored(h.now, e.store, nil)
		} else {
			for _, r := range e.recs {
				if r.Kind != OffsetRecord {
					continue
				}
				if h.applied[r.Group] == nil {
					h.applied[r.Group] = map[TopicPartition]Offset{}
				}
				if r.Offset == nil {
					delete(h.applied[r.Group], r.TopicPartition)
				} else {
					h.applied[r.Group][r.TopicPartition] = *r.Offset
				}
			}
			h.c.Applied(e.recs, true)
		}
		h.collect()
	}
	h.log = h.log[n:]
}

func (h *harness) flush() { h.durableUpTo(len(h.log)) }

func (h *harness) advance(ms int64) {
	h.now += ms
	h.c.Tick(h.now)
	h.collect()
}

// join sends a JoinGroup; the answer is in h.joins[token] once given.
func (h *harness) join(req JoinRequest) Token {
	req.Token = h.nextToken()
	if req.ProtocolType == "" {
		req.ProtocolType = "test"
	}
	if req.SessionTimeoutMs == 0 {
		req.SessionTimeoutMs = 10000
	}
	if req.RebalanceTimeoutMs == 0 {
		req.RebalanceTimeoutMs = 5000
	}
	if req.Protocols == nil {
		req.Protocols = []Protocol{{Name: "range", Metadata: []byte("m")}}
	}
	res, parked := h.c.Join(h.now, req)
	if !parked {
		h.joins[req.Token] = res
	}
	h.collect()
	return req.Token
}

func (h *harness) sync(req SyncRequest) Token {
	req.Token = h.nextToken()
	res, parked := h.c.Sync(h.now, req)
	if !parked {
		h.syncs[req.Token] = res
	}
	h.collect()
	return req.Token
}

func (h *harness) commit(req CommitRequest) error {
	recs, errs, err := h.c.Commit(h.now, req)
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	if len(recs) > 0 {
		h.log = append(h.log, logEntry{recs: recs})
	}
	h.collect()
	return err
}

// mustJoin returns the answer to a join that must have been answered.
func (h *harness) answeredJoin(tok Token) JoinResult {
	h.t.Helper()
	res, ok := h.joins[tok]
	if !ok {
		h.t.Fatalf("join %d not answered", tok)
	}
	return res
}

func (h *harness) answeredSync(tok Token) SyncResult {
	h.t.Helper()
	res, ok := h.syncs[tok]
	if !ok {
		h.t.Fatalf("sync %d not answered", tok)
	}
	return res
}

// rangeAssign is a range assignor over partitions 0..n-1: members sorted by id, each
// gets a contiguous run. An assignment is the partitions as big-endian int32s.
func rangeAssign(members []MemberMetadata, partitions int) []Assignment {
	ids := make([]string, len(members))
	for i, m := range members {
		ids[i] = m.MemberID
	}
	sort.Strings(ids)
	out := make([]Assignment, len(ids))
	for i, id := range ids {
		var b []byte
		for p := i * partitions / len(ids); p < (i+1)*partitions/len(ids); p++ {
			b = binary.BigEndian.AppendUint32(b, uint32(p))
		}
		out[i] = Assignment{MemberID: id, Assignment: b}
	}
	return out
}

func decodeAssignment(b []byte) []int32 {
	var ps []int32
	for len(b) >= 4 {
		ps = append(ps, int32(binary.BigEndian.Uint32(b)))
		b = b[4:]
	}
	return ps
}
