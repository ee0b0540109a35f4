package sim

import (
	"math/rand/v2"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// consumer reads one partition from offset 0 by assignment, one fetch at a time, and
// checks what it reads as it reads: offsets only increase with no gap, nothing is read at
// or above the high watermark, the high watermark never goes back, every batch validates,
// and every offset holds what any consumer read there before. A verifying consumer (at
// the end, with no faults) also records the final log.
type consumer struct {
	s       *Sim
	cc      *clientConn
	rng     *rand.Rand
	routes  *routes
	part    int32
	version int16
	waitMs  int32
	maxB    int32 // response MaxBytes
	partB   int32 // PartitionMaxBytes

	pos      int64 // the next offset to read
	hw       int64 // the last high watermark seen
	inflight bool
	stopped  bool
	broken   bool // a check failed: stop reading, one violation is enough
	verify   bool
	verified bool
}

func (c *consumer) init(verify bool) {
	c.rng = c.s.clientRand(c.cc)
	c.routes = newRoutes(c.cc, c.rng)
	c.verify = verify
	c.version = int16(between(c.rng, 4, 12))
	c.waitMs = int32(between(c.rng, 5, 500))
	c.maxB = int32(between(c.rng, 1<<10, 256<<10))
	c.partB = int32(between(c.rng, 64, 64<<10))
	if verify {
		c.waitMs, c.maxB, c.partB = 10, 1<<20, 1<<20
	}
}

// finish stops the consumer and checks it caught up with every acknowledged write.
func (c *consumer) finish() {
	c.stopped = true
	if !c.broken && c.pos < c.s.hist.ackedEnd[c.part] {
		c.s.violate("progress", c.part, "%s: read up to offset %d, but writes were acknowledged up to %d", c.cc.who, c.pos, c.s.hist.ackedEnd[c.part])
	}
}

func (c *consumer) wake() {
	if c.stopped || c.inflight || c.broken || c.verified {
		return
	}
	node := c.routes.leaderOf(c.part)
	if node < 0 {
		return // the routes' answer wakes the consumer
	}
	req := kmsg.NewPtrFetchRequest()
	req.Version = c.version
	req.ReplicaID = -1
	req.MaxWaitMillis = c.waitMs
	req.MinBytes = 1
	req.MaxBytes = c.maxB
	req.SessionEpoch = -1
	t := kmsg.NewFetchRequestTopic()
	t.Topic = topicName
	p := kmsg.NewFetchRequestTopicPartition()
	p.Partition = c.part
	p.FetchOffset = c.pos
	p.PartitionMaxBytes = c.partB
	if c.routes.clustered() {
		p.CurrentLeaderEpoch = c.routes.epoch[c.part] // sent from v9 on (KIP-320)
	}
	t.Partitions = append(t.Partitions, p)
	req.Topics = append(req.Topics, t)
	c.inflight = true
	c.cc.send(node, req, int64(c.routes.epoch[c.part]))
}

func (c *consumer) lost(call *call) {
	if call.tag == metaTag {
		c.routes.lost()
	} else {
		c.routes.lostNode(call.node)
		c.inflight = false
	}
	c.cc.wakeIn(backoff(c.rng))
}

func (c *consumer) reply(call *call, resp kmsg.Response) {
	if r, ok := resp.(*kmsg.MetadataResponse); ok {
		c.routes.take(r)
		c.wake()
		return
	}
	c.inflight = false
	r := resp.(*kmsg.FetchResponse)
	if len(r.Topics) != 1 || len(r.Topics[0].Partitions) != 1 {
		if r.ErrorCode == 0 {
			c.s.violate("protocol", c.part, "%s: fetch response with %d topics", c.cc.who, len(r.Topics))
		}
		c.cc.wakeIn(backoff(c.rng))
		return
	}
	rp := &r.Topics[0].Partitions[0]
	c.s.checkCode(c.cc, "fetch", c.part, rp.ErrorCode)
	switch rp.ErrorCode {
	case 0:
	case kerr.OffsetOutOfRange.Code:
		c.s.violate("log-shrank", c.part, "%s: offset %d, read before, is out of range now (high watermark %d)", c.cc.who, c.pos, rp.HighWatermark)
		c.broken = true
		return
	default:
		if movedCode(rp.ErrorCode) {
			c.routes.invalidate(c.part)
		}
		c.cc.wakeIn(backoff(c.rng))
		return
	}
	c.take(rp, call)
	if c.broken {
		return
	}
	if c.verify && c.pos == rp.HighWatermark {
		c.verified = true
		c.cc.close()
		return
	}
	c.cc.wakeIn(0)
}

// take checks and records one partition's answer.
//
// In cluster mode a new leader's high watermark may start below its predecessor's (it
// catches up once its first entry commits; Kafka's does the same), so the high
// watermark must not go back within one leader epoch: checked for fetches that carry
// the epoch (v9 on), which the broker fences, so the answer is from that epoch's leader.
func (c *consumer) take(rp *kmsg.FetchResponseTopicPartition, call *call) {
	h := &c.s.hist
	hw := rp.HighWatermark
	switch {
	case !c.routes.clustered():
		if hw < h.maxHW[c.part] {
			c.s.violate("hw-regressed", c.part, "%s: high watermark %d after %d was served", c.cc.who, hw, h.maxHW[c.part])
			c.broken = true
			return
		}
	case call.req.GetVersion() >= 9:
		epoch := int32(call.tag)
		m := h.epochHW[c.part]
		if prev, ok := m[epoch]; ok && hw < prev {
			c.s.violate("hw-regressed", c.part, "%s: high watermark %d in leader epoch %d after %d was served in it", c.cc.who, hw, epoch, prev)
			c.broken = true
			return
		}
		m[epoch] = hw
	}
	h.maxHW[c.part] = max(h.maxHW[c.part], hw)
	c.hw = hw
	err := readBatches(rp.RecordBatches, func(offset int64, v uint64, ok bool) {
		if c.broken || offset < c.pos {
			return
		}
		if offset > c.pos && c.routes.clustered() && offset < hw {
			// A cluster serves no Raft control batches (a new leader's first entry): the
			// offsets they take are gaps, taken here as control offsets. A record lost
			// in a gap still shows: the verifier's final log would lack it.
			for ; c.pos < offset; c.pos++ {
				c.observe(controlValue)
			}
		}
		switch {
		case offset != c.pos:
			c.s.violate("order", c.part, "%s: read offset %d at position %d", c.cc.who, offset, c.pos)
		case offset >= hw:
			c.s.violate("read-beyond-hw", c.part, "%s: read offset %d at high watermark %d", c.cc.who, offset, hw)
		case !ok:
			c.s.violate("unexplained", c.part, "%s: offset %d holds a record no client wrote", c.cc.who, offset)
		case offset < int64(len(h.obs[c.part])) && h.obs[c.part][offset] != v:
			c.s.violate("inconsistent-read", c.part, "%s: offset %d holds %s; %s was read there before", c.cc.who, offset, valueName(v), valueName(h.obs[c.part][offset]))
		default:
			c.observe(v)
			c.pos++
			c.s.res.Reads++
			return
		}
		c.broken = true
	})
	if err != nil && !c.broken {
		c.s.violate("corrupt-read", c.part, "%s: fetch at %d served a bad batch: %v", c.cc.who, c.pos, err)
		c.broken = true
	}
	c.s.tr.line(c.s.now, c.cc.who, "fetched").i("p", int64(c.part)).i("pos", c.pos).i("hw", hw).end()
}

// observe records value v read at c.pos.
func (c *consumer) observe(v uint64) {
	h := &c.s.hist
	if c.pos == int64(len(h.obs[c.part])) {
		h.obs[c.part] = append(h.obs[c.part], v)
	} else if c.pos < int64(len(h.obs[c.part])) && h.obs[c.part][c.pos] != v && v == controlValue {
		c.s.violate("inconsistent-read", c.part, "%s: offset %d, a gap now, held %s before", c.cc.who, c.pos, valueName(h.obs[c.part][c.pos]))
		c.broken = true
	}
	if c.verify {
		h.final[c.part] = append(h.final[c.part], v)
	}
}
