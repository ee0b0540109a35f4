package kafka

// Fetch, versions 4-12, for consumers (ReplicaID -1).
//
// Serves committed data only: up to the high watermark, which on a single node is the
// durable (fsynced) end of the log. Batches are returned as stored, so the producer's
// codec reaches the consumer untouched. Byte limits follow KIP-74: the response holds at
// most MaxBytes and each partition at most PartitionMaxBytes, except that the first batch
// of the first non-empty partition is returned whole however large. A request that finds
// fewer than MinBytes parks until data arrives or MaxWaitMillis passes (long poll).
// Fetch sessions (KIP-227) are not kept: every answer has SessionID 0, which tells the
// client to send full fetches; a request naming a session gets FETCH_SESSION_ID_NOT_FOUND.
// CurrentLeaderEpoch (KIP-320) is checked against the partition's leader epoch.

import (
	"errors"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

type parkedFetch struct {
	req        *Request
	m          *kmsg.FetchRequest
	deadlineMs int64
}

func (n *Node) handleFetch(req *Request, m *kmsg.FetchRequest) {
	if m.SessionID != 0 {
		resp := m.ResponseKind().(*kmsg.FetchResponse)
		resp.ErrorCode = kerr.FetchSessionIDNotFound.Code
		n.respond(req, resp)
		return
	}
	resp, bytes, hasErr := n.fetchOnce(m)
	if hasErr || bytes >= int(m.MinBytes) || m.MaxWaitMillis <= 0 || len(n.parked) >= n.cfg.MaxParkedFetches {
		n.respond(req, resp)
		return
	}
	pf := &parkedFetch{req: req, m: m, deadlineMs: n.nowMs + int64(m.MaxWaitMillis)}
	if len(n.parked) == 0 || pf.deadlineMs < n.parkedDueMs {
		n.parkedDueMs = pf.deadlineMs
	}
	n.parked = append(n.parked, pf)
}

// fetchOnce builds a fetch answer from what is readable now.
func (n *Node) fetchOnce(m *kmsg.FetchRequest) (resp *kmsg.FetchResponse, bytes int, hasErr bool) {
	resp = m.ResponseKind().(*kmsg.FetchResponse)
	budget := int(min(m.MaxBytes, n.cfg.MaxFetchBytes))
	if m.Version < 3 || budget <= 0 {
		budget = int(n.cfg.MaxFetchBytes)
	}
	resp.Topics = make([]kmsg.FetchResponseTopic, len(m.Topics))
	for ti := range m.Topics {
		rt := &resp.Topics[ti]
		*rt = kmsg.NewFetchResponseTopic()
		rt.Topic = m.Topics[ti].Topic
		rt.Partitions = make([]kmsg.FetchResponseTopicPartition, len(m.Topics[ti].Partitions))
		for pi := range m.Topics[ti].Partitions {
			rq := &m.Topics[ti].Partitions[pi]
			rp := &rt.Partitions[pi]
			*rp = kmsg.NewFetchResponseTopicPartition()
			rp.Partition = rq.Partition
			rp.HighWatermark, rp.LastStableOffset, rp.LogStartOffset = -1, -1, -1
			rp.PreferredReadReplica = -1
			// An empty record set, never a null one: Kafka always sends a size >= 0, and
			// librdkafka and kafka-go reject a fetch answer holding -1.
			rp.RecordBatches = []byte{}
			p := n.partition(rt.Topic, rq.Partition)
			err := n.checkReadable(p, rq.CurrentLeaderEpoch)
			if err == nil {
				var got int
				got, err = n.readPartition(p, rq, rp, budget, bytes == 0)
				bytes += got
				budget -= got
			}
			if err != nil {
				rp.ErrorCode = errCodeOf(err)
				hasErr = true
			}
		}
	}
	return resp, bytes, hasErr
}

// checkReadable is the common precondition of reading a partition.
func (n *Node) checkReadable(p *partition, currentLeaderEpoch int32) error {
	switch {
	case p == nil || p.deleted:
		return n.errMissing()
	case p.failed != nil:
		return p.failed
	}
	if p.replicas != nil {
		if err := p.checkLeader(); err != nil && !(bugDeposedFetch && p.leadEnd > 0) { // planted bug: chronikbugs only
			return err
		}
	}
	epoch := p.leaderEpoch()
	switch {
	case p.log.Err() != nil:
		p.fail(p.log.Err())
		return p.failed
	case currentLeaderEpoch >= 0 && currentLeaderEpoch < epoch:
		return errFencedEpoch
	case currentLeaderEpoch > epoch:
		return errUnknownEpoch
	}
	return nil
}

// readPartition fills rp with the batches at rq.FetchOffset below the high watermark.
// first allows one batch over budget (KIP-74).
func (n *Node) readPartition(p *partition, rq *kmsg.FetchRequestTopicPartition, rp *kmsg.FetchResponseTopicPartition, budget int, first bool) (int, error) {
	hw := p.highWatermark()
	if bugHWBeforeQuorum && p.rep != nil && p.rep.IsLeader() { // planted bug: chronikbugs builds only
		hw = p.log.EndOffset()
	}
	rp.HighWatermark, rp.LastStableOffset, rp.LogStartOffset = hw, hw, p.log.StartOffset()
	if rq.FetchOffset < p.log.StartOffset() || rq.FetchOffset > p.log.EndOffset() {
		return 0, errOffsetOutOfRange
	}
	if rq.FetchOffset >= hw {
		return 0, nil
	}
	limit := int(rq.PartitionMaxBytes)
	if !first {
		limit = min(limit, budget)
	}
	if limit <= 0 && !first {
		return 0, nil
	}
	data, err := p.log.Read(rq.FetchOffset, max(limit, 1), hw)
	if err == nil && p.rep != nil {
		data, err = n.dropRaftBatches(p, data, max(limit, 1), hw)
	}
	if errors.Is(err, errOffsetOutOfRange) {
		return 0, err
	}
	if err != nil {
		// A read that fails below the high watermark is a storage fault: the partition
		// stops serving (KAFKA_STORAGE_ERROR) rather than answer from a damaged log.
		p.fail(err)
		return 0, p.failed
	}
	if len(data) > 0 {
		rp.RecordBatches = data
	}
	return len(data), nil
}

// wakeParked answers the parked fetches that p's new data satisfies.
func (n *Node) wakeParked(p *partition) {
	if len(n.parked) == 0 {
		return
	}
	kept := n.parked[:0]
	for _, pf := range n.parked {
		if !pf.wants(p) {
			kept = append(kept, pf)
			continue
		}
		resp, bytes, hasErr := n.fetchOnce(pf.m)
		if hasErr || bytes >= int(pf.m.MinBytes) {
			n.respond(pf.req, resp)
			continue
		}
		kept = append(kept, pf)
	}
	clear(n.parked[len(kept):])
	n.parked = kept
}

// wakeParkedAll re-evaluates every parked fetch (after topics change).
func (n *Node) wakeParkedAll() {
	parked := n.parked
	n.parked = nil
	for _, pf := range parked {
		resp, bytes, hasErr := n.fetchOnce(pf.m)
		if hasErr || bytes >= int(pf.m.MinBytes) {
			n.respond(pf.req, resp)
			continue
		}
		n.parked = append(n.parked, pf)
	}
}

// expireParked answers the parked fetches whose wait is over. It walks them only when the
// earliest deadline has come, not on every tick.
func (n *Node) expireParked() {
	if len(n.parked) == 0 || n.nowMs < n.parkedDueMs {
		return
	}
	kept := n.parked[:0]
	for _, pf := range n.parked {
		if n.nowMs < pf.deadlineMs {
			if len(kept) == 0 || pf.deadlineMs < n.parkedDueMs {
				n.parkedDueMs = pf.deadlineMs
			}
			kept = append(kept, pf)
			continue
		}
		resp, _, _ := n.fetchOnce(pf.m)
		n.respond(pf.req, resp)
	}
	clear(n.parked[len(kept):])
	n.parked = kept
}

func (pf *parkedFetch) wants(p *partition) bool {
	for ti := range pf.m.Topics {
		if pf.m.Topics[ti].Topic != p.topic.name {
			continue
		}
		for pi := range pf.m.Topics[ti].Partitions {
			if pf.m.Topics[ti].Partitions[pi].Partition == p.index {
				return true
			}
		}
	}
	return false
}
