package kafka

// Produce, versions 3-11 (record batch v2 only).
//
// Each partition's records must be exactly one v2 batch (as Kafka requires since v3); the
// edge validated its CRC-32C, length and record count (Decode), so the loop only checks
// the topic, the batch size against max.message.bytes, min.insync.replicas for acks=all,
// and the idempotent producer's epoch and sequence (KIP-98): a retried batch that matches
// one of the producer's last five is answered with its original offsets and not written
// again; a gap is OUT_OF_ORDER_SEQUENCE_NUMBER; an old epoch is INVALID_PRODUCER_EPOCH.
//
// acks=1 and acks=all are answered once the batch is fsynced (group commit: every append
// that arrives while a sync runs shares the next one); acks=0 is not answered, and a
// failed acks=0 request closes the connection so the client notices, as Kafka does.
// Clients cannot append to the internal topic __consumer_offsets (INVALID_TOPIC_EXCEPTION).
// Batches are stored as sent, codec included; only baseOffset and partitionLeaderEpoch
// are rewritten (neither is covered by the CRC).

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kmsg"

	"chronik/core/record"
)

// leaderEpoch is the partition leader epoch of a single node: it never changes.
const leaderEpoch = 0

// pendingProduce is a produce answer waiting for partitions to become durable.
type pendingProduce struct {
	req  *Request
	resp *kmsg.ProduceResponse
	// waiting counts the partitions not yet durable. Invariant: waiting >= 0; the answer
	// is sent when it reaches 0.
	waiting int
}

type produceWaiter struct {
	pp     *pendingProduce
	ti, pi int   // the partition's place in pp.resp
	end    int64 // answer once DurableOffset >= end
	// Cluster mode: answer on the outcome of proposal token, Durable (acks 1) or
	// Committed (acks -1).
	token uint64
	acks  int16
	// commitTerm, when not 0, makes this the answer to a retried batch whose original is
	// written but not committed: answered once the high watermark passes end while this
	// node still leads in that term (replicated.go).
	commitTerm uint64
}

func (n *Node) handleProduce(req *Request, m *kmsg.ProduceRequest) {
	resp := m.ResponseKind().(*kmsg.ProduceResponse)
	pp := &pendingProduce{req: req, resp: resp}
	failed := false
	resp.Topics = make([]kmsg.ProduceResponseTopic, len(m.Topics))
	for ti := range m.Topics {
		rt := &resp.Topics[ti]
		*rt = kmsg.NewProduceResponseTopic()
		rt.Topic = m.Topics[ti].Topic
		rt.Partitions = make([]kmsg.ProduceResponseTopicPartition, len(m.Topics[ti].Partitions))
		for pi := range m.Topics[ti].Partitions {
			rp := &rt.Partitions[pi]
			*rp = kmsg.NewProduceResponseTopicPartition()
			rp.Partition = m.Topics[ti].Partitions[pi].Partition
			rp.BaseOffset, rp.LogAppendTime, rp.LogStartOffset = -1, -1, -1
			w, err := n.produceOne(req, m, ti, pi)
			if err != nil {
				failed = true
				rp.ErrorCode = errCodeOf(err)
				if req.Version >= 8 {
					rp.ErrorMessage = errMessage(err)
				}
				continue
			}
			rp.BaseOffset = w.base
			rp.LogStartOffset = w.p.log.StartOffset()
			if bugAckBeforeFsync { // planted bug: chronikbugs builds only
				w.end = 0
			}
			if w.waitCommit {
				if m.Acks != 0 {
					pp.waiting++
					w.p.waiters = append(w.p.waiters, produceWaiter{pp: pp, ti: ti, pi: pi, end: w.end, commitTerm: w.p.term})
				}
				continue
			}
			if w.token != 0 {
				if m.Acks != 0 {
					pp.waiting++
					w.p.waiters = append(w.p.waiters, produceWaiter{pp: pp, ti: ti, pi: pi, end: w.end, token: w.token, acks: max(m.Acks, -1)})
				}
				continue
			}
			if w.p.rep == nil && m.Acks != 0 && w.end > w.p.log.DurableOffset() {
				pp.waiting++
				w.p.waiters = append(w.p.waiters, produceWaiter{pp: pp, ti: ti, pi: pi, end: w.end})
			}
		}
	}
	switch {
	case m.Acks == 0 && failed:
		n.closeConn(req)
	case m.Acks == 0:
		n.respond(req, nil)
	case pp.waiting == 0:
		n.respond(req, resp)
	}
}

type written struct {
	p    *partition
	base int64 // offset of the batch's first record
	end  int64 // offset after its last record
	// token names the proposal (cluster mode); 0 when nothing was proposed.
	token uint64
	// waitCommit: a retry of a batch written here but not committed yet (cluster mode).
	waitCommit bool
}

// produceOne appends one partition's batch, or says why not.
func (n *Node) produceOne(req *Request, m *kmsg.ProduceRequest, ti, pi int) (written, error) {
	if req.BadRecords != nil && req.BadRecords[ti] != nil && req.BadRecords[ti][pi] != nil {
		return written{}, req.BadRecords[ti][pi]
	}
	rp := m.Topics[ti].Partitions[pi]
	p := n.partition(m.Topics[ti].Topic, rp.Partition)
	if p == nil || p.deleted {
		return written{}, n.errMissing()
	}
	if p.failed != nil {
		return written{}, p.failed
	}
	if p.topic.internal() {
		return written{}, fmt.Errorf("%w %s: clients cannot append to it", errInternalTopic, p.topic.name)
	}
	if len(rp.Records) > int(p.topic.config.MaxMessageBytes) {
		return written{}, errMessageTooLarge
	}
	h := req.Headers[ti][pi]
	if n.cl != nil {
		return n.produceReplicated(p, m.Acks, rp.Records, h)
	}
	if m.Acks == -1 && p.topic.config.MinInsyncReplicas > 1 {
		return written{}, errNotEnoughISR
	}
	dup, err := p.producers.Check(h)
	if err != nil {
		return written{}, err
	}
	if dup != nil {
		return written{p: p, base: dup.FirstOffset, end: dup.LastOffset + 1}, nil
	}
	record.SetPartitionLeaderEpoch(rp.Records, leaderEpoch)
	first, last, err := p.log.Append(rp.Records, n.nowMs)
	if err != nil {
		p.fail(err)
		return written{}, err
	}
	h.BaseOffset = first
	if h.LogAppendTime() {
		h.MaxTimestamp = n.nowMs // as log.Append stamped it, so a replay rebuilds the same state
	}
	p.producers.Append(h)
	n.markDirty(p, len(rp.Records))
	return written{p: p, base: first, end: last + 1}, nil
}

// releaseWaiters answers the produce requests whose partitions are now durable.
func (p *partition) releaseWaiters(n *Node) {
	durable := p.log.DurableOffset()
	kept := p.waiters[:0]
	for _, w := range p.waiters {
		if w.end > durable {
			kept = append(kept, w)
			continue
		}
		w.pp.done(n)
	}
	clear(p.waiters[len(kept):])
	p.waiters = kept
}

// failWaiters answers every waiting produce on p with code.
func (p *partition) failWaiters(n *Node, code int16) {
	for _, w := range p.waiters {
		rp := &w.pp.resp.Topics[w.ti].Partitions[w.pi]
		rp.ErrorCode, rp.BaseOffset = code, -1
		w.pp.done(n)
	}
	p.waiters = nil
}

func (pp *pendingProduce) done(n *Node) {
	pp.waiting--
	if pp.waiting == 0 {
		n.respond(pp.req, pp.resp)
	}
}
