package group

import (
	"errors"
	"fmt"
	"testing"

	"pgregory.net/rapid"
)

// propPartitions is the partition count of the one topic the property's group consumes.
const propPartitions = 7

// client is a group member as a client library runs it: it joins, syncs (running the
// range assignor when it leads), heartbeats, commits and leaves; a crash forgets it all.
type client struct {
	name       string
	memberID   string
	generation int32
	joinTok    Token
	syncTok    Token
	assigned   []int32
	synced     bool // holds the assignment of generation
	alive      bool
}

type propWorld struct {
	h       *harness
	clients []*client
}

func (w *propWorld) join(c *client) {
	if c.joinTok != 0 || c.syncTok != 0 {
		return
	}
	c.synced = false
	c.joinTok = w.h.join(JoinRequest{Group: "g", ClientID: c.name, MemberID: c.memberID, RequireKnownMemberID: true,
		SessionTimeoutMs: 3000, RebalanceTimeoutMs: 2000})
}

// settle processes every answer the clients are waiting for, as clients do: a join
// answer leads to a SyncGroup, MEMBER_ID_REQUIRED to a new join.
func (w *propWorld) settle(t *rapid.T) {
	for round := 0; round < 100; round++ {
		progressed := false
		for _, c := range w.clients {
			if c.joinTok != 0 {
				res, ok := w.h.joins[c.joinTok]
				if !ok {
					continue
				}
				progressed = true
				c.joinTok = 0
				if !c.alive {
					continue // a crashed client's connection is gone
				}
				switch {
				case errors.Is(res.Err, ErrMemberIDRequired):
					c.memberID = res.MemberID
					w.join(c)
				case errors.Is(res.Err, ErrUnknownMemberID):
					c.memberID = ""
				case res.Err != nil:
				default:
					c.memberID, c.generation = res.MemberID, res.Generation
					req := SyncRequest{Group: "g", MemberID: c.memberID, Generation: c.generation}
					if res.Leader == c.memberID {
						req.Assignments = rangeAssign(res.Members, propPartitions)
					}
					c.syncTok = w.h.sync(req)
				}
			}
			if c.syncTok != 0 {
				res, ok := w.h.syncs[c.syncTok]
				if !ok {
					continue
				}
				progressed = true
				c.syncTok = 0
				if !c.alive {
					continue
				}
				switch {
				case errors.Is(res.Err, ErrUnknownMemberID):
					c.memberID = ""
				case res.Err != nil:
				default:
					c.assigned, c.synced = decodeAssignment(res.Assignment), true
				}
			}
		}
		if !progressed {
			return
		}
	}
	t.Fatalf("answers did not settle in 100 rounds")
}

func (w *propWorld) heartbeat(c *client) {
	if !c.alive || c.memberID == "" || c.joinTok != 0 || c.syncTok != 0 {
		return
	}
	err := w.h.c.Heartbeat(w.h.now, "g", c.memberID, "", c.generation)
	switch {
	case err == nil:
	case errors.Is(err, ErrUnknownMemberID):
		c.memberID = ""
		w.join(c)
	default: // rebalance in progress, illegal generation: rejoin
		w.join(c)
	}
}

// TestPropertyRebalanceAndCommits checks, over random sequences of joins, syncs, leaves,
// crashes, commits, durability points and elapsed time:
//   - every partition of the final stable generation is assigned to exactly one member,
//     and the members are exactly the live clients;
//   - the committed offsets are always the fold of the durable commits in log order: a
//     committed offset never goes backwards unless a member committed a lower one.
func TestPropertyRebalanceAndCommits(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		cfg := testConfig()
		cfg.InitialRebalanceDelayMs = rapid.SampledFrom([]int64{0, 50, 300}).Draw(t, "initialDelay")
		w := &propWorld{h: newHarness(t, cfg)}
		n := rapid.IntRange(1, 5).Draw(t, "clients")
		for i := 0; i < n; i++ {
			w.clients = append(w.clients, &client{name: fmt.Sprintf("c%d", i), alive: true})
		}
		steps := rapid.IntRange(1, 60).Draw(t, "steps")
		for s := 0; s < steps; s++ {
			c := w.clients[rapid.IntRange(0, n-1).Draw(t, "client")]
			switch rapid.IntRange(0, 7).Draw(t, "op") {
			case 0, 1:
				if c.alive {
					w.join(c)
				}
			case 2:
				w.heartbeat(c)
			case 3:
				if c.alive && c.memberID != "" {
					if _, err := w.h.c.Leave(w.h.now, "g", []LeaveMember{{MemberID: c.memberID}}); err != nil {
						t.Fatal(err)
					}
					w.h.collect()
					c.memberID, c.synced = "", false
				}
			case 4:
				// Crash: the client vanishes without leaving; its parked requests are dropped.
				if c.alive {
					c.alive = false
				} else {
					*c = client{name: c.name, alive: true}
				}
			case 5:
				if c.alive && c.synced && len(c.assigned) > 0 {
					p := c.assigned[rapid.IntRange(0, len(c.assigned)-1).Draw(t, "partition")]
					off := rapid.Int64Range(0, 100).Draw(t, "offset")
					_ = w.h.commit(CommitRequest{Group: "g", MemberID: c.memberID, Generation: c.generation,
						Offsets: []CommitOffset{{TopicPartition: TopicPartition{"t", p}, Offset: off}}})
				}
			case 6:
				w.h.durableUpTo(rapid.IntRange(0, len(w.h.log)).Draw(t, "durable"))
			case 7:
				w.h.advance(rapid.Int64Range(0, 4000).Draw(t, "elapse"))
			}
			w.settle(t)
			checkCommitted(t, w.h)
		}
		// Quiesce: no more faults; live clients heartbeat every 500 ms and rejoin when told.
		for i := 0; i < 200; i++ {
			w.h.flush()
			for _, c := range w.clients {
				if c.alive && c.memberID == "" {
					w.join(c)
				}
				w.heartbeat(c)
			}
			w.settle(t)
			w.h.flush()
			w.settle(t)
			if w.stable() {
				break
			}
			w.h.advance(500)
			w.settle(t)
		}
		checkCommitted(t, w.h)
		if !w.stable() {
			gen, st, _ := w.h.c.Generation("g")
			t.Fatalf("no stable generation after quiescing: gen %d state %v", gen, st)
		}
		checkAssignment(t, w)
	})
}

// stable reports whether the group is Stable and every live client holds that
// generation's assignment.
func (w *propWorld) stable() bool {
	gen, st, ok := w.h.c.Generation("g")
	live := 0
	for _, c := range w.clients {
		if c.alive {
			live++
			if c.memberID == "" || c.generation != gen || !c.synced || c.joinTok != 0 || c.syncTok != 0 {
				return false
			}
		}
	}
	if live == 0 {
		return !ok || st == Empty
	}
	d, _ := w.h.c.Describe("g")
	return ok && st == Stable && len(d.Members) == live
}

func checkAssignment(t *rapid.T, w *propWorld) {
	owner := map[int32]string{}
	for _, c := range w.clients {
		if !c.alive {
			continue
		}
		for _, p := range c.assigned {
			if prev, dup := owner[p]; dup {
				t.Fatalf("partition %d assigned to %s and %s", p, prev, c.memberID)
			}
			owner[p] = c.memberID
		}
	}
	anyLive := false
	for _, c := range w.clients {
		anyLive = anyLive || c.alive
	}
	if anyLive && len(owner) != propPartitions {
		t.Fatalf("%d of %d partitions assigned: %v", len(owner), propPartitions, owner)
	}
}

func checkCommitted(t *rapid.T, h *harness) {
	want := h.applied["g"]
	got := h.c.AllCommitted("g")
	if len(got) != len(want) {
		t.Fatalf("committed %v, durable commits say %v", got, want)
	}
	for _, o := range got {
		if w := want[o.TopicPartition]; w != o.Offset {
			t.Fatalf("committed %v at %v, last durable commit was %v", o.Offset, o.TopicPartition, w)
		}
	}
}
