package sim

import "chronik/kafka"

// evKind is what an event does when its time comes.
type evKind uint8

const (
	evDeliver     evKind = iota // the head chunk of link.q[dir] arrives at the far end
	evWake                      // a client's timer (idx: client, token: its timer token)
	evTimeout                   // a request's timeout (link, token: correlation id)
	evTick                      // a node's deadline (node, gen)
	evSyncDone                  // a node's fsync completes (node, gen, task)
	evFault                     // fault idx of the schedule starts
	evFaultEnd                  // fault idx's effect ends (restart, pause end, kill)
	evPhase                     // the run's phase idx begins
	evSpin                      // planted bug spin-on-close: a dead handler reads again
	evPeer                      // the head message of peer link idx arrives (gen: link epoch)
	evUnreachable               // node learns it could not send to Raft id token (gen)
)

// event is one scheduled event; the fields a kind does not use are zero.
type event struct {
	at    int64 // simulated µs
	kind  evKind
	dir   uint8
	node  int32
	idx   int32
	gen   uint64 // node incarnation or link epoch the event belongs to
	token uint64
	link  *link
	task  kafka.SyncTask
}

// heapKey orders the heap: (at, seq), seq being the scheduling order. It holds no
// pointer, so moving keys costs no write barrier; the event itself waits in a slab slot.
type heapKey struct {
	at   int64
	seq  uint64
	slot int32
}

// scheduler is a binary min-heap of events ordered by (at, seq): the one order a run
// follows.
type scheduler struct {
	keys []heapKey
	slab []event // event by slot
	free []int32 // free slots
	seq  uint64
}

func newScheduler() *scheduler {
	return &scheduler{keys: make([]heapKey, 0, 1024), slab: make([]event, 0, 1024)}
}

func (h *scheduler) len() int { return len(h.keys) }

func (h *scheduler) push(e event) {
	var slot int32
	if n := len(h.free); n > 0 {
		slot = h.free[n-1]
		h.free = h.free[:n-1]
		h.slab[slot] = e
	} else {
		slot = int32(len(h.slab))
		h.slab = append(h.slab, e)
	}
	h.seq++
	h.keys = append(h.keys, heapKey{at: e.at, seq: h.seq, slot: slot})
	q := h.keys
	i := len(q) - 1
	for i > 0 {
		p := (i - 1) / 2
		if !keyLess(q[i], q[p]) {
			break
		}
		q[i], q[p] = q[p], q[i]
		i = p
	}
}

func keyLess(a, b heapKey) bool {
	if a.at != b.at {
		return a.at < b.at
	}
	return a.seq < b.seq
}

// pop removes and returns the earliest event.
func (h *scheduler) pop() event {
	q := h.keys
	top := q[0]
	n := len(q) - 1
	q[0] = q[n]
	q = q[:n]
	i := 0
	for {
		l := 2*i + 1
		if l >= n {
			break
		}
		m := l
		if r := l + 1; r < n && keyLess(q[r], q[l]) {
			m = r
		}
		if !keyLess(q[m], q[i]) {
			break
		}
		q[i], q[m] = q[m], q[i]
		i = m
	}
	h.keys = q
	e := h.slab[top.slot]
	h.slab[top.slot] = event{}
	h.free = append(h.free, top.slot)
	return e
}
