package sim

// outcome is what a write's client learned.
type outcome uint8

const (
	outPending outcome = iota
	outAcked           // answered with an offset
	outFailed          // refused before it could be appended: it must never appear
	outUnknown         // timed out, connection lost, or an error after which it may be in the log
)

var outcomeNames = [...]string{"pending", "acked", "failed", "unknown"}

// writeOp is one write in the history: for an idempotent producer, every attempt of one
// batch (the same bytes); for a plain producer, one attempt (each retry is a new write).
type writeOp struct {
	id     int
	client int
	part   int32
	base   uint64 // value of the first record; record i is base+i
	n      int
	idem   bool
	callUs int64
	retUs  int64
	out    outcome
	offset int64 // acked: the offset answered
}

// history is what the clients saw, for the checkers.
type history struct {
	ops    []*writeOp
	byBase map[uint64]*writeOp
	// obs holds, per partition, the value consumers read at each offset (they read from
	// 0 without gaps, so it is a prefix of the log).
	obs [][]uint64
	// maxHW is the highest high watermark a fetch returned, per partition.
	maxHW []int64
	// epochHW is, per partition, the highest high watermark a fetch carrying a leader
	// epoch returned, by epoch (cluster mode).
	epochHW []map[int32]int64
	// ackedEnd is the end offset of the highest acknowledged write, per partition.
	ackedEnd []int64
	// final is the log the verifying consumers read at the end, per partition.
	final [][]uint64
	// grp is what the consumer group's members saw (groupcheck.go).
	grp groupHistory
}

func (s *Sim) beginWrite(client int, part int32, base uint64, n int, idem bool) *writeOp {
	if s.hist.byBase == nil {
		s.hist.byBase = map[uint64]*writeOp{}
	}
	op := &writeOp{id: len(s.hist.ops), client: client, part: part, base: base, n: n, idem: idem, callUs: s.now, offset: -1}
	s.hist.ops = append(s.hist.ops, op)
	s.hist.byBase[base] = op
	s.res.Writes++
	s.tr.line(s.now, s.clients[client].who, "write-call").i("op", int64(op.id)).i("p", int64(part)).
		i("value", int64(base)).i("n", int64(n)).end()
	return op
}

func (s *Sim) endWrite(op *writeOp, out outcome, offset int64) {
	op.out, op.retUs, op.offset = out, s.now, offset
	switch out {
	case outAcked:
		s.res.Acked++
		s.hist.ackedEnd[op.part] = max(s.hist.ackedEnd[op.part], offset+int64(op.n))
	case outUnknown:
		s.res.Unknown++
	}
	s.tr.line(s.now, s.clients[op.client].who, "write-return").i("op", int64(op.id)).s("out", outcomeNames[out]).
		i("offset", offset).end()
}
