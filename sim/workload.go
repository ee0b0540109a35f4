package sim

import (
	"math/rand/v2"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// topicName is the one topic of the workload.
const topicName = "sim"

// producerLike is what the phases ask of a producer.
type producerLike interface {
	start()
	// checkProgress fails the run if the producer was not acknowledged since the heal.
	checkProgress()
	// stop ends new writes; retries of writes in flight go on.
	stop()
	// finish gives up what is still in flight: the connections are about to close.
	finish()
}

func (s *Sim) startWorkload() {
	w := s.cfg.Workload
	s.hist.obs = make([][]uint64, w.Partitions)
	s.hist.final = make([][]uint64, w.Partitions)
	s.hist.maxHW = make([]int64, w.Partitions)
	s.hist.epochHW = make([]map[int32]int64, w.Partitions)
	for i := range s.hist.epochHW {
		s.hist.epochHW[i] = map[int32]int64{}
	}
	s.hist.ackedEnd = make([]int64, w.Partitions)
	s.partFailed = make([]int, w.Partitions)
	s.hist.grp = groupHistory{
		commits: make([][]*commitOp, w.Partitions),
		reads:   make([][]offsetRead, w.Partitions),
		gens:    map[int32]*generationView{},
	}
	a := &admin{s: s}
	a.cc = s.newClient("admin", a)
	a.routes = newRoutes(a.cc, s.clientRand(a.cc))
	for i := 0; i < w.IdempotentProducers; i++ {
		p := &idemProducer{s: s, pid: -1, nextSeq: make([]int32, w.Partitions)}
		p.cc = s.newClient("idem-"+itoa(i), p)
		p.init()
		s.producer = append(s.producer, p)
	}
	for i := 0; i < w.PlainProducers; i++ {
		p := &plainProducer{s: s}
		p.cc = s.newClient("plain-"+itoa(i), p)
		p.init()
		s.producer = append(s.producer, p)
	}
	for part := 0; part < w.Partitions; part++ {
		for i := 0; i < w.ConsumersPerPart; i++ {
			c := &consumer{s: s, part: int32(part)}
			c.cc = s.newClient("consumer-"+itoa(part)+"-"+itoa(i), c)
			c.init(false)
			s.cons = append(s.cons, c)
		}
	}
	for i := 0; i < w.GroupMembers; i++ {
		m := &groupMember{s: s}
		m.cc = s.newClient("member-"+itoa(i), m)
		m.init()
		s.members = append(s.members, m)
	}
	for _, cc := range s.clients[1:] {
		s.work = append(s.work, cc)
	}
	a.cc.wakeIn(0)
}

// topicReady starts the producers and consumers.
func (s *Sim) topicReady() {
	s.setupDone = true
	s.tr.line(s.now, "sim", "topic-ready").end()
	for _, p := range s.producer {
		p.start()
	}
	for _, c := range s.cons {
		c.cc.wakeIn(0)
	}
	for _, m := range s.members {
		m.start()
	}
}

func (s *Sim) startVerify() {
	for part := 0; part < s.cfg.Workload.Partitions; part++ {
		v := &consumer{s: s, part: int32(part)}
		v.cc = s.newClient("verify-"+itoa(part), v)
		v.init(true)
		s.verifier = append(s.verifier, v)
		v.cc.wakeIn(0)
	}
}

// backoff draws a retry backoff.
func backoff(r *rand.Rand) int64 { return between(r, minBackoffUs, maxBackoffUs) }

func (s *Sim) clientRand(cc *clientConn) *rand.Rand {
	return newRand(s.cfg.Seed, streamClients, uint64(cc.idx))
}

// refusedBeforeAppend reports whether a produce error code means the batch was rejected
// before anything was written: such a write must never appear in the log. Every other
// error (a storage error, an unknown server error) leaves the outcome unknown.
func refusedBeforeAppend(code int16) bool {
	switch code {
	case kerr.MessageTooLarge.Code, kerr.CorruptMessage.Code, kerr.InvalidRecord.Code,
		kerr.UnknownTopicOrPartition.Code, kerr.OutOfOrderSequenceNumber.Code,
		kerr.InvalidProducerEpoch.Code, kerr.NotEnoughReplicas.Code,
		kerr.UnsupportedForMessageFormat.Code, kerr.InvalidRequiredAcks.Code:
		return true
	}
	return false
}

// checkCode traces an error answer and checks its class: the broker answers storage
// failures with KAFKA_STORAGE_ERROR (retriable), never UNKNOWN_SERVER_ERROR.
func (s *Sim) checkCode(cc *clientConn, api string, part int32, code int16) {
	if code == 0 {
		return
	}
	s.tr.line(s.now, cc.who, api+"-error").i("p", int64(part)).i("code", int64(code)).end()
	if code == kerr.UnknownServerError.Code {
		s.finding("error-code", part, "%s: %s answered UNKNOWN_SERVER_ERROR; a storage failure is KAFKA_STORAGE_ERROR, which clients retry", cc.who, api)
	}
}

// admin creates the topic.
type admin struct {
	s      *Sim
	cc     *clientConn
	routes *routes
	done   bool
}

func (a *admin) wake() {
	if a.done {
		return
	}
	req := kmsg.NewPtrCreateTopicsRequest()
	req.Version = 5
	req.TimeoutMillis = 5000
	t := kmsg.NewCreateTopicsRequestTopic()
	t.Topic = topicName
	t.NumPartitions = int32(a.s.cfg.Workload.Partitions)
	t.ReplicationFactor = int16(len(a.s.nodes)) // every node holds every partition
	req.Topics = append(req.Topics, t)
	a.cc.send(a.routes.anyNode(), req, 0)
}

func (a *admin) reply(c *call, resp kmsg.Response) {
	r := resp.(*kmsg.CreateTopicsResponse)
	if len(r.Topics) == 1 && r.Topics[0].ErrorCode != 0 {
		a.s.tr.line(a.s.now, a.cc.who, "create-error").i("code", int64(r.Topics[0].ErrorCode)).end()
	}
	if len(r.Topics) == 1 && (r.Topics[0].ErrorCode == 0 || r.Topics[0].ErrorCode == kerr.TopicAlreadyExists.Code) {
		a.done = true
		a.cc.close()
		a.s.topicReady()
		return
	}
	a.cc.wakeIn(minBackoffUs)
}

func (a *admin) lost(c *call) {
	if !a.done {
		a.cc.wakeIn(minBackoffUs)
	}
}

// idemProducer is an idempotent producer, as KIP-98 clients are: InitProducerId, then
// every batch carries the producer id, epoch and per-partition sequence, with up to
// maxInflight batches in flight on one connection. A batch whose outcome is unknown is
// resent as is (same bytes, same sequence), in sequence order per partition, until it is
// answered or its delivery timeout passes. Then every pending batch is abandoned and the
// producer takes a new producer id, as a real producer bumps its epoch.
type idemProducer struct {
	s           *Sim
	cc          *clientConn
	rng         *rand.Rand
	routes      *routes
	version     int16
	maxInflight int

	pid         int64
	epoch       int16
	initPending bool
	nextSeq     []int32 // per partition: the sequence of the next new batch
	wseq        uint32  // writes so far: the value's write number
	nextNewUs   int64

	// pending are the batches not yet answered, in creation order (so in sequence order
	// within a partition).
	pending []*idemBatch

	stopped, finished bool
	healAcks          int
}

// idemBatch is one batch of an idempotent producer, from creation to its answer.
type idemBatch struct {
	op          *writeOp
	seq         int32
	batch       []byte
	attempts    int
	refusedOnly bool  // every attempt so far was refused before append
	inflight    bool  // sent on the current connection, not answered
	readyUs     int64 // not resent before
}

func (p *idemProducer) init() {
	p.rng = p.s.clientRand(p.cc)
	p.routes = newRoutes(p.cc, p.rng)
	p.version = int16(between(p.rng, 3, 11))
	p.maxInflight = 1 + p.rng.IntN(5)
}

func (p *idemProducer) start() {
	p.nextNewUs = p.s.now + between(p.rng, 0, 5000)
	p.cc.wakeIn(p.nextNewUs - p.s.now)
}

func (p *idemProducer) stop() { p.stopped = true }

// finish gives up every pending batch: the connections are about to close.
func (p *idemProducer) finish() {
	p.finished = true
	p.abandon(false)
}

func (p *idemProducer) checkProgress() {
	if p.healAcks == 0 {
		p.s.violate("progress", -1, "%s: no write acknowledged in the %dms after faults healed", p.cc.who, p.s.ph.progressMs)
	}
}

func (p *idemProducer) inflight() int {
	n := 0
	for _, b := range p.pending {
		if b.inflight {
			n++
		}
	}
	return n
}

func (p *idemProducer) wake() {
	if p.finished {
		return
	}
	if p.pid < 0 {
		if !p.initPending {
			req := kmsg.NewPtrInitProducerIDRequest()
			req.Version = int16(between(p.rng, 0, 5))
			req.TransactionTimeoutMillis = 60000
			p.initPending = true
			p.cc.send(p.routes.anyNode(), req, -1)
		}
		return
	}
	// Resend what is due, never overtaking an earlier batch of the same partition.
	inflight := p.inflight()
	var blocked uint64 // partitions with an earlier batch not sent yet
	for _, b := range p.pending {
		bit := uint64(1) << uint(b.op.part)
		switch {
		case b.inflight:
		case blocked&bit != 0 || b.readyUs > p.s.now || inflight >= p.maxInflight:
			blocked |= bit
		default:
			node := p.routes.leaderOf(b.op.part)
			if node < 0 {
				blocked |= bit // sent once the routes say where
				continue
			}
			p.send(b, node)
			inflight++
		}
	}
	// New batches, up to maxInflight pending in all: so a resent batch is never more than
	// MaxCachedBatches behind, and the broker still recognizes it.
	for !p.stopped && inflight < p.maxInflight && len(p.pending) < p.maxInflight && p.nextNewUs <= p.s.now {
		b := p.newBatch()
		p.nextNewUs = p.s.now + between(p.rng, 0, p.s.cfg.Workload.MaxThinkMs*1000)
		if blocked&(uint64(1)<<uint(b.op.part)) != 0 {
			continue // waits behind an earlier batch of its partition
		}
		node := p.routes.leaderOf(b.op.part)
		if node < 0 {
			blocked |= uint64(1) << uint(b.op.part)
			continue
		}
		p.send(b, node)
		inflight++
	}
	p.arm()
}

// arm sets the timer for the next resend or new batch.
func (p *idemProducer) arm() {
	// A batch due now but not sent waits for an answer, which wakes the producer.
	next := int64(-1)
	for _, b := range p.pending {
		if !b.inflight && b.readyUs > p.s.now && (next < 0 || b.readyUs < next) {
			next = b.readyUs
		}
	}
	if !p.stopped && len(p.pending) < p.maxInflight && (next < 0 || p.nextNewUs < next) {
		next = p.nextNewUs
	}
	if next >= 0 {
		p.cc.wakeIn(max(next-p.s.now, 1))
	}
}

func (p *idemProducer) newBatch() *idemBatch {
	part := int32(p.rng.IntN(p.s.cfg.Workload.Partitions))
	n := 1 + p.rng.IntN(p.s.cfg.Workload.MaxRecordsPerBatch)
	base := writeBase(p.cc.idx, p.wseq, 0)
	p.wseq++
	b := &idemBatch{seq: p.nextSeq[part], refusedOnly: true}
	p.nextSeq[part] += int32(n)
	b.batch = buildBatch(base, n, epochUs/1000+p.s.now/1000, idemFields{pid: p.pid, epoch: p.epoch, seq: b.seq})
	b.op = p.s.beginWrite(p.cc.idx, part, base, n, true)
	p.pending = append(p.pending, b)
	return b
}

func (p *idemProducer) send(b *idemBatch, node int) {
	req := kmsg.NewPtrProduceRequest()
	req.Version = p.version
	req.Acks = -1
	req.TimeoutMillis = 5000
	t := kmsg.NewProduceRequestTopic()
	t.Topic = topicName
	pp := kmsg.NewProduceRequestTopicPartition()
	pp.Partition = b.op.part
	pp.Records = b.batch // encoded into the frame at send: the broker's rewrite never reaches it
	t.Partitions = append(t.Partitions, pp)
	req.Topics = append(req.Topics, t)
	b.attempts++
	b.inflight = true
	p.cc.send(node, req, int64(b.op.id))
}

// find returns the pending batch of op id, or -1 (an answer to an abandoned batch).
func (p *idemProducer) find(id int64) int {
	for i, b := range p.pending {
		if int64(b.op.id) == id {
			return i
		}
	}
	return -1
}

// earlierPending reports whether a batch before pending[i] goes to the same partition.
func (p *idemProducer) earlierPending(i int) bool {
	for _, b := range p.pending[:i] {
		if b.op.part == p.pending[i].op.part {
			return true
		}
	}
	return false
}

func (p *idemProducer) reply(c *call, resp kmsg.Response) {
	switch r := resp.(type) {
	case *kmsg.MetadataResponse:
		p.routes.take(r)
		p.wake()
	case *kmsg.InitProducerIDResponse:
		p.initPending = false
		if r.ErrorCode != 0 {
			p.cc.wakeIn(backoff(p.rng))
			return
		}
		p.pid, p.epoch = r.ProducerID, r.ProducerEpoch
		clear(p.nextSeq)
		p.cc.wakeIn(0)
	case *kmsg.ProduceResponse:
		i := p.find(c.tag)
		if i < 0 {
			return
		}
		b := p.pending[i]
		b.inflight = false
		code, offset, ok := produceResult(r, b.op.part)
		if !ok {
			p.s.violate("protocol", b.op.part, "%s: produce response without the partition", p.cc.who)
			code = kerr.UnknownServerError.Code
		}
		p.s.checkCode(p.cc, "produce", b.op.part, code)
		switch {
		case code == 0:
			p.s.endWrite(b.op, outAcked, offset)
			p.pending = append(p.pending[:i], p.pending[i+1:]...)
			if p.s.healed {
				p.healAcks++
			}
		case (code == kerr.OutOfOrderSequenceNumber.Code || code == kerr.InvalidProducerEpoch.Code) && p.earlierPending(i):
			// An earlier batch of this partition is not written yet: resend after it.
			b.readyUs = p.s.now
		case code == kerr.OutOfOrderSequenceNumber.Code || code == kerr.InvalidProducerEpoch.Code:
			// Every earlier batch of this producer id to this partition was
			// acknowledged: the broker lost their state.
			p.s.violate("idempotence", b.op.part, "%s: %s for pid %d sequence %d after every earlier batch was acknowledged",
				p.cc.who, kerr.ErrorForCode(code), p.pid, b.seq)
			p.abandon(true)
		case refusedBeforeAppend(code):
			p.abandon(true)
		default:
			if movedCode(code) {
				p.routes.invalidate(b.op.part)
			}
			b.refusedOnly = false
			p.retry(b)
		}
		p.wake()
	}
}

func (p *idemProducer) lost(c *call) {
	if c.tag == metaTag {
		p.routes.lost()
		if !p.finished {
			p.cc.wakeIn(backoff(p.rng))
		}
		return
	}
	p.routes.lostNode(c.node)
	if c.tag < 0 {
		p.initPending = false
		if !p.finished {
			p.cc.wakeIn(backoff(p.rng))
		}
		return
	}
	i := p.find(c.tag)
	if i < 0 {
		return
	}
	b := p.pending[i]
	b.inflight = false
	b.refusedOnly = false
	if p.finished {
		return
	}
	p.retry(b)
	p.wake()
}

// retry schedules a resend of b, or abandons every pending batch once b is out of time.
func (p *idemProducer) retry(b *idemBatch) {
	if p.s.now-b.op.callUs > deliveryTimeoutUs || b.attempts >= maxAttempts {
		p.abandon(true)
		return
	}
	b.readyUs = p.s.now + backoff(p.rng)
}

// abandon gives up every pending batch (unknown, or failed when every attempt was refused
// before append) and the producer id; with reset, the connection too, so that nothing of
// the old id is still in flight when the new one starts.
func (p *idemProducer) abandon(reset bool) {
	pending := p.pending
	p.pending = nil
	for _, b := range pending {
		out := outUnknown
		if b.refusedOnly && !b.inflight {
			out = outFailed
		}
		p.s.endWrite(b.op, out, -1)
	}
	p.pid = -1
	if reset && len(pending) > 0 {
		p.cc.drop()
	}
	if !p.finished {
		p.cc.wakeIn(backoff(p.rng))
	}
}

// produceResult finds a partition's answer in a produce response.
func produceResult(r *kmsg.ProduceResponse, part int32) (code int16, offset int64, ok bool) {
	for _, t := range r.Topics {
		if t.Topic != topicName {
			continue
		}
		for _, p := range t.Partitions {
			if p.Partition == part {
				return p.ErrorCode, p.BaseOffset, true
			}
		}
	}
	return 0, 0, false
}

// plainProducer writes without idempotence, up to maxInflight batches at once: each
// retry is re-encoded with its attempt number, so it is a write of its own.
type plainProducer struct {
	s           *Sim
	cc          *clientConn
	rng         *rand.Rand
	routes      *routes
	version     int16
	acks        int16
	maxInflight int
	inflight    int
	wseq        uint32
	nextNewUs   int64
	retries     []plainRetry

	stopped, finished bool
	healAcks          int
}

type plainRetry struct {
	seq     uint32
	part    int32
	n       int
	attempt int
	readyUs int64
}

func (p *plainProducer) init() {
	p.rng = p.s.clientRand(p.cc)
	p.version = int16(between(p.rng, 3, 11))
	p.acks = []int16{-1, 1}[p.rng.IntN(2)]
	p.routes = newRoutes(p.cc, p.rng)
	if len(p.s.nodes) > 1 {
		// acks=1 may be lost when the leader fails before the write commits (Kafka's
		// contract too): the checks hold acks=all writes to no loss.
		p.acks = -1
	}
	p.maxInflight = 1 + p.rng.IntN(4)
}

func (p *plainProducer) start() {
	p.nextNewUs = p.s.now + between(p.rng, 0, 5000)
	p.cc.wakeIn(p.nextNewUs - p.s.now)
}

func (p *plainProducer) stop() { p.stopped = true }

func (p *plainProducer) finish() { p.finished = true }

func (p *plainProducer) checkProgress() {
	if p.healAcks == 0 {
		p.s.violate("progress", -1, "%s: no write acknowledged in the %dms after faults healed", p.cc.who, p.s.ph.progressMs)
	}
}

func (p *plainProducer) wake() {
	if p.finished {
		return
	}
	for p.inflight < p.maxInflight {
		var r plainRetry
		switch {
		case len(p.retries) > 0 && p.retries[0].readyUs <= p.s.now:
			r = p.retries[0]
			p.retries = p.retries[1:]
		case !p.stopped && p.nextNewUs <= p.s.now:
			r = plainRetry{seq: p.wseq, part: int32(p.rng.IntN(p.s.cfg.Workload.Partitions)),
				n: 1 + p.rng.IntN(p.s.cfg.Workload.MaxRecordsPerBatch)}
			p.wseq++
			p.nextNewUs = p.s.now + between(p.rng, 0, p.s.cfg.Workload.MaxThinkMs*1000)
		default:
			p.arm()
			return
		}
		node := p.routes.leaderOf(r.part)
		if node < 0 {
			// No known leader: the write waits for the routes.
			r.readyUs = p.s.now + backoff(p.rng)
			p.queueRetry(r)
			continue
		}
		p.send(r, node)
	}
}

// arm sets the timer for the next retry or new write.
func (p *plainProducer) arm() {
	next := int64(-1)
	if len(p.retries) > 0 {
		next = p.retries[0].readyUs
	}
	if !p.stopped && (next < 0 || p.nextNewUs < next) {
		next = p.nextNewUs
	}
	if next >= 0 {
		p.cc.wakeIn(max(next-p.s.now, 1))
	}
}

func (p *plainProducer) send(r plainRetry, node int) {
	base := writeBase(p.cc.idx, r.seq, r.attempt)
	batch := buildBatch(base, r.n, epochUs/1000+p.s.now/1000, idemFields{pid: -1, epoch: -1, seq: -1})
	op := p.s.beginWrite(p.cc.idx, r.part, base, r.n, false)
	req := kmsg.NewPtrProduceRequest()
	req.Version = p.version
	req.Acks = p.acks
	req.TimeoutMillis = 5000
	t := kmsg.NewProduceRequestTopic()
	t.Topic = topicName
	pp := kmsg.NewProduceRequestTopicPartition()
	pp.Partition = r.part
	pp.Records = batch
	t.Partitions = append(t.Partitions, pp)
	req.Topics = append(req.Topics, t)
	p.inflight++
	p.cc.send(node, req, int64(op.id))
}

func (p *plainProducer) reply(c *call, resp kmsg.Response) {
	if r, ok := resp.(*kmsg.MetadataResponse); ok {
		p.routes.take(r)
		p.wake()
		return
	}
	p.inflight--
	op := p.s.hist.ops[c.tag]
	code, offset, ok := produceResult(resp.(*kmsg.ProduceResponse), op.part)
	p.s.checkCode(p.cc, "produce", op.part, code)
	switch {
	case !ok:
		p.s.violate("protocol", op.part, "%s: produce response without the partition", p.cc.who)
		p.s.endWrite(op, outUnknown, -1)
	case code == 0:
		p.s.endWrite(op, outAcked, offset)
		if p.s.healed {
			p.healAcks++
		}
	case refusedBeforeAppend(code):
		p.s.endWrite(op, outFailed, -1)
	default:
		if movedCode(code) {
			p.routes.invalidate(op.part)
		}
		p.s.endWrite(op, outUnknown, -1)
		p.retry(op)
	}
	p.wake()
}

func (p *plainProducer) lost(c *call) {
	if c.tag == metaTag {
		p.routes.lost()
		if !p.finished {
			p.cc.wakeIn(backoff(p.rng))
		}
		return
	}
	p.routes.lostNode(c.node)
	p.inflight--
	op := p.s.hist.ops[c.tag]
	p.s.endWrite(op, outUnknown, -1)
	p.retry(op)
	if !p.finished {
		p.cc.wakeIn(backoff(p.rng))
	}
}

// retry queues another attempt of op's batch, re-encoded, unless it had its last.
func (p *plainProducer) retry(op *writeOp) {
	attempt := int(op.base>>8) & 0xff
	if p.finished || attempt+1 >= maxPlainAttempts {
		return
	}
	p.queueRetry(plainRetry{
		seq: uint32(op.base >> 16), part: op.part, n: op.n, attempt: attempt + 1,
		readyUs: p.s.now + backoff(p.rng),
	})
}

// queueRetry inserts r into the retries, kept in readyUs order.
func (p *plainProducer) queueRetry(r plainRetry) {
	i := len(p.retries)
	for i > 0 && p.retries[i-1].readyUs > r.readyUs {
		i--
	}
	p.retries = slices.Insert(p.retries, i, r)
}
