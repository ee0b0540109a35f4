package group

import (
	"errors"
	"strings"
	"testing"
)

// stableGroup brings members (by client id) into a Stable group "g" with a range
// assignment over 4 partitions and returns their member ids, leader first.
func stableGroup(t *testing.T, h *harness, clients ...string) []string {
	t.Helper()
	var toks []Token
	for _, cid := range clients {
		res := h.answeredJoin(h.join(JoinRequest{Group: "g", ClientID: cid, RequireKnownMemberID: true}))
		if !errors.Is(res.Err, ErrMemberIDRequired) {
			t.Fatalf("first join: %v, want MEMBER_ID_REQUIRED", res.Err)
		}
		toks = append(toks, h.join(JoinRequest{Group: "g", ClientID: cid, MemberID: res.MemberID, RequireKnownMemberID: true}))
	}
	h.advance(0) // the initial delay (0) ends at the next tick
	var ids []string
	var leader JoinResult
	for _, tok := range toks {
		res := h.answeredJoin(tok)
		if res.Err != nil {
			t.Fatalf("join: %v", res.Err)
		}
		ids = append(ids, res.MemberID)
		if res.Leader == res.MemberID {
			leader = res
		}
	}
	var syncs []Token
	for _, id := range ids {
		req := SyncRequest{Group: "g", MemberID: id, Generation: leader.Generation}
		if id == leader.MemberID {
			req.Assignments = rangeAssign(leader.Members, 4)
		}
		syncs = append(syncs, h.sync(req))
	}
	h.flush()
	for _, tok := range syncs {
		if res := h.answeredSync(tok); res.Err != nil {
			t.Fatalf("sync: %v", res.Err)
		}
	}
	if _, st, _ := h.c.Generation("g"); st != Stable {
		t.Fatalf("state %v, want Stable", st)
	}
	out := []string{leader.MemberID}
	for _, id := range ids {
		if id != leader.MemberID {
			out = append(out, id)
		}
	}
	return out
}

func TestJoinSyncSingleMember(t *testing.T) {
	h := newHarness(t, testConfig())
	ids := stableGroup(t, h, "a")
	gen, _, _ := h.c.Generation("g")
	if gen != 1 {
		t.Fatalf("generation %d, want 1", gen)
	}
	d, _ := h.c.Describe("g")
	if len(d.Members) != 1 || d.Members[0].MemberID != ids[0] || len(decodeAssignment(d.Members[0].Assignment)) != 4 {
		t.Fatalf("describe: %+v", d)
	}
	if !strings.HasPrefix(ids[0], "a-") {
		t.Fatalf("member id %q does not start with the client id", ids[0])
	}
}

func TestSecondMemberRebalances(t *testing.T) {
	h := newHarness(t, testConfig())
	a := stableGroup(t, h, "a")[0]
	// b joins: the group prepares a rebalance; a learns it from its heartbeat.
	res := h.answeredJoin(h.join(JoinRequest{Group: "g", ClientID: "b", RequireKnownMemberID: true}))
	bTok := h.join(JoinRequest{Group: "g", ClientID: "b", MemberID: res.MemberID, RequireKnownMemberID: true})
	if err := h.c.Heartbeat(h.now, "g", a, "", 1); !errors.Is(err, ErrRebalanceInProgress) {
		t.Fatalf("heartbeat during rebalance: %v", err)
	}
	if _, ok := h.joins[bTok]; ok {
		t.Fatal("b answered before a rejoined")
	}
	aTok := h.join(JoinRequest{Group: "g", ClientID: "a", MemberID: a})
	ja, jb := h.answeredJoin(aTok), h.answeredJoin(bTok)
	if ja.Generation != 2 || jb.Generation != 2 || ja.Leader != a || len(ja.Members) != 2 || len(jb.Members) != 0 {
		t.Fatalf("join answers: %+v / %+v", ja, jb)
	}
	// Old generation is refused everywhere.
	if err := h.c.Heartbeat(h.now, "g", a, "", 1); !errors.Is(err, ErrIllegalGeneration) {
		t.Fatalf("heartbeat with old generation: %v", err)
	}
	if err := h.commit(CommitRequest{Group: "g", MemberID: a, Generation: 2, Offsets: []CommitOffset{{TopicPartition: TopicPartition{"t", 0}, Offset: 1}}}); !errors.Is(err, ErrRebalanceInProgress) {
		t.Fatalf("commit while completing: %v", err)
	}
	sa := h.sync(SyncRequest{Group: "g", MemberID: a, Generation: 2, Assignments: rangeAssign(ja.Members, 4)})
	sb := h.sync(SyncRequest{Group: "g", MemberID: jb.MemberID, Generation: 2})
	if _, ok := h.syncs[sa]; ok {
		t.Fatal("leader's sync answered before its assignment was durable")
	}
	h.flush()
	pa, pb := decodeAssignment(h.answeredSync(sa).Assignment), decodeAssignment(h.answeredSync(sb).Assignment)
	if len(pa) != 2 || len(pb) != 2 {
		t.Fatalf("assignments %v %v", pa, pb)
	}
}

func TestErrors(t *testing.T) {
	h := newHarness(t, testConfig())
	ids := stableGroup(t, h, "a")
	a := ids[0]
	long := strings.Repeat("x", MaxGroupIDLen+1)
	tp := TopicPartition{"t", 0}
	for _, tc := range []struct {
		name string
		err  error
		want error
	}{
		{"join empty group id", h.answeredJoin(h.join(JoinRequest{Group: ""})).Err, ErrInvalidGroupID},
		{"join oversized group id", h.answeredJoin(h.join(JoinRequest{Group: long})).Err, ErrInvalidGroupID},
		{"join session too short", h.answeredJoin(h.join(JoinRequest{Group: "g", SessionTimeoutMs: 10})).Err, ErrInvalidSessionTimeout},
		{"join unknown member", h.answeredJoin(h.join(JoinRequest{Group: "g", MemberID: "nobody"})).Err, ErrUnknownMemberID},
		{"join unknown group with member id", h.answeredJoin(h.join(JoinRequest{Group: "other", MemberID: "nobody"})).Err, ErrUnknownMemberID},
		{"join other protocol type", h.answeredJoin(h.join(JoinRequest{Group: "g", ProtocolType: "connect"})).Err, ErrInconsistentGroupProtocol},
		{"join no common protocol", h.answeredJoin(h.join(JoinRequest{Group: "g", Protocols: []Protocol{{Name: "sticky"}}})).Err, ErrInconsistentGroupProtocol},
		{"heartbeat unknown member", h.c.Heartbeat(h.now, "g", "nobody", "", 1), ErrUnknownMemberID},
		{"heartbeat unknown group", h.c.Heartbeat(h.now, "nope", a, "", 1), ErrUnknownMemberID},
		{"heartbeat illegal generation", h.c.Heartbeat(h.now, "g", a, "", 7), ErrIllegalGeneration},
		{"heartbeat empty group id", h.c.Heartbeat(h.now, "", a, "", 1), ErrInvalidGroupID},
		{"sync unknown member", h.answeredSync(h.sync(SyncRequest{Group: "g", MemberID: "nobody", Generation: 1})).Err, ErrUnknownMemberID},
		{"sync illegal generation", h.answeredSync(h.sync(SyncRequest{Group: "g", MemberID: a, Generation: 0})).Err, ErrIllegalGeneration},
		{"commit unknown member", h.commit(CommitRequest{Group: "g", MemberID: "nobody", Generation: 1, Offsets: []CommitOffset{{TopicPartition: tp}}}), ErrUnknownMemberID},
		{"commit illegal generation", h.commit(CommitRequest{Group: "g", MemberID: a, Generation: 5, Offsets: []CommitOffset{{TopicPartition: tp}}}), ErrIllegalGeneration},
		{"simple commit to a group with members", h.commit(CommitRequest{Group: "g", Generation: -1, Offsets: []CommitOffset{{TopicPartition: tp}}}), ErrUnknownMemberID},
		{"commit with generation to unknown group", h.commit(CommitRequest{Group: "nope", MemberID: "m", Generation: 3, Offsets: []CommitOffset{{TopicPartition: tp}}}), ErrIllegalGeneration},
		{"commit oversized group id", h.commit(CommitRequest{Group: long, Generation: -1, Offsets: []CommitOffset{{TopicPartition: tp}}}), ErrInvalidGroupID},
		{"commit metadata too large", h.commit(CommitRequest{Group: "g", MemberID: a, Generation: 1, Offsets: []CommitOffset{{TopicPartition: tp, Metadata: strings.Repeat("m", 4097)}}}), ErrOffsetMetadataTooLarge},
	} {
		if !errors.Is(tc.err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, tc.err, tc.want)
		}
	}
	// Nothing above disturbed the group or created another.
	if gen, st, _ := h.c.Generation("g"); gen != 1 || st != Stable {
		t.Fatalf("group after bad input: generation %d state %v", gen, st)
	}
	if ls := h.c.List(); len(ls) != 1 {
		t.Fatalf("groups after bad input: %+v", ls)
	}
	// A good commit still works, and is visible only once durable.
	if err := h.commit(CommitRequest{Group: "g", MemberID: a, Generation: 1, Offsets: []CommitOffset{{TopicPartition: tp, Offset: 42}}}); err != nil {
		t.Fatal(err)
	}
	if _, ok := h.c.Committed("g", tp); ok {
		t.Fatal("commit visible before it is durable")
	}
	h.flush()
	if o, ok := h.c.Committed("g", tp); !ok || o.Offset != 42 {
		t.Fatalf("committed %+v %v", o, ok)
	}
}

func TestSimpleCommitAndDelete(t *testing.T) {
	h := newHarness(t, testConfig())
	tp := TopicPartition{"t", 3}
	if err := h.commit(CommitRequest{Group: "simple", Generation: -1, Offsets: []CommitOffset{{TopicPartition: tp, Offset: 7}}}); err != nil {
		t.Fatal(err)
	}
	h.flush()
	if ls := h.c.List(); len(ls) != 1 || ls[0].State != Empty {
		t.Fatalf("list: %+v", ls)
	}
	// DeleteOffsets on an Empty group removes any offset.
	recs, errs, err := h.c.DeleteOffsets("simple", []TopicPartition{tp})
	if err != nil || errs[0] != nil || len(recs) != 1 || recs[0].Offset != nil {
		t.Fatalf("delete offsets: %v %v %+v", err, errs, recs)
	}
	h.log = append(h.log, logEntry{recs: recs})
	h.flush()
	if _, ok := h.c.Committed("simple", tp); ok {
		t.Fatal("offset still there")
	}
	// DeleteGroup: not found, non-empty, then empty.
	if _, err := h.c.DeleteGroup("missing"); !errors.Is(err, ErrGroupIDNotFound) {
		t.Fatalf("delete missing: %v", err)
	}
	stableGroup(t, h, "a")
	if _, err := h.c.DeleteGroup("g"); !errors.Is(err, ErrNonEmptyGroup) {
		t.Fatalf("delete non-empty: %v", err)
	}
	if err := h.commit(CommitRequest{Group: "e", Generation: -1, Offsets: []CommitOffset{{TopicPartition: tp, Offset: 1}}}); err != nil {
		t.Fatal(err)
	}
	// The commit is in flight: the tombstones must cover it.
	recs, err = h.c.DeleteGroup("e")
	if err != nil || len(recs) != 2 {
		t.Fatalf("delete e: %v %+v", err, recs)
	}
	h.log = append(h.log, logEntry{recs: recs})
	h.flush()
	if _, ok := h.c.Committed("e", tp); ok {
		t.Fatal("offset of a deleted group survived")
	}
	if _, ok := h.c.Describe("e"); ok {
		t.Fatal("deleted group still described")
	}
}

func TestSessionTimeoutRemovesMember(t *testing.T) {
	h := newHarness(t, testConfig())
	ids := stableGroup(t, h, "a", "b")
	a, b := ids[0], ids[1]
	// Only a heartbeats; b's session (10 s) runs out.
	for i := 0; i < 12; i++ {
		h.advance(1000)
		if err := h.c.Heartbeat(h.now, "g", a, "", 1); err != nil && !errors.Is(err, ErrRebalanceInProgress) {
			t.Fatalf("heartbeat: %v", err)
		}
	}
	if err := h.c.Heartbeat(h.now, "g", b, "", 1); !errors.Is(err, ErrUnknownMemberID) {
		t.Fatalf("expired member heartbeat: %v", err)
	}
	tok := h.join(JoinRequest{Group: "g", ClientID: "a", MemberID: a})
	res := h.answeredJoin(tok)
	if res.Generation != 2 || len(res.Members) != 1 {
		t.Fatalf("rejoin after expiry: %+v", res)
	}
}

func TestPendingSyncTimeout(t *testing.T) {
	h := newHarness(t, testConfig())
	ids := stableGroup(t, h, "a", "b")
	a, b := ids[0], ids[1]
	// a rejoins (leader rejoin triggers a rebalance); b rejoins but never syncs.
	ta := h.join(JoinRequest{Group: "g", ClientID: "a", MemberID: a})
	tb := h.join(JoinRequest{Group: "g", ClientID: "b", MemberID: b})
	ja := h.answeredJoin(ta)
	h.answeredJoin(tb)
	sa := h.sync(SyncRequest{Group: "g", MemberID: a, Generation: ja.Generation, Assignments: rangeAssign(ja.Members, 4)})
	h.flush()
	if h.answeredSync(sa).Err != nil {
		t.Fatal("leader sync failed")
	}
	h.advance(5001) // rebalance timeout: b never synced
	if err := h.c.Heartbeat(h.now, "g", b, "", ja.Generation); !errors.Is(err, ErrUnknownMemberID) {
		t.Fatalf("b after pending sync timeout: %v", err)
	}
	if err := h.c.Heartbeat(h.now, "g", a, "", ja.Generation); !errors.Is(err, ErrRebalanceInProgress) {
		t.Fatalf("a after pending sync timeout: %v", err)
	}
}

func TestInitialRebalanceDelay(t *testing.T) {
	cfg := testConfig()
	cfg.InitialRebalanceDelayMs = 100
	h := newHarness(t, cfg)
	t1 := h.join(JoinRequest{Group: "g", ClientID: "a"})
	h.advance(60)
	t2 := h.join(JoinRequest{Group: "g", ClientID: "b"}) // arrives inside the delay: extends it
	h.advance(60)
	if _, ok := h.joins[t1]; ok {
		t.Fatal("answered before the extended delay")
	}
	h.advance(100) // the delay restarted when it ended at 1100, at the tick of 1120
	r1, r2 := h.answeredJoin(t1), h.answeredJoin(t2)
	if r1.Generation != 1 || r2.Generation != 1 {
		t.Fatalf("generations %d %d", r1.Generation, r2.Generation)
	}
}

func TestStaticMembership(t *testing.T) {
	h := newHarness(t, testConfig())
	// A static member joins without MEMBER_ID_REQUIRED.
	tok := h.join(JoinRequest{Group: "g", ClientID: "c", InstanceID: "i1", RequireKnownMemberID: true})
	h.advance(0)
	j := h.answeredJoin(tok)
	if j.Err != nil || !strings.HasPrefix(j.MemberID, "i1-") {
		t.Fatalf("static join: %+v", j)
	}
	s := h.sync(SyncRequest{Group: "g", MemberID: j.MemberID, InstanceID: "i1", Generation: 1, Assignments: rangeAssign(j.Members, 4)})
	h.flush()
	h.answeredSync(s)
	// The instance restarts: same instance id, no member id. No rebalance; the old member
	// id is fenced.
	tok = h.join(JoinRequest{Group: "g", ClientID: "c", InstanceID: "i1", RequireKnownMemberID: true, SupportsSkipAssignment: true})
	h.flush()
	j2 := h.answeredJoin(tok)
	if j2.Err != nil || j2.MemberID == j.MemberID || j2.Generation != 1 || !j2.SkipAssignment || j2.Leader != j2.MemberID {
		t.Fatalf("static rejoin: %+v", j2)
	}
	if err := h.c.Heartbeat(h.now, "g", j.MemberID, "i1", 1); !errors.Is(err, ErrFencedInstanceID) {
		t.Fatalf("old member id: %v, want FENCED_INSTANCE_ID", err)
	}
	if err := h.c.Heartbeat(h.now, "g", j2.MemberID, "i1", 1); err != nil {
		t.Fatalf("new member id: %v", err)
	}
	// Leave by instance id alone.
	res, err := h.c.Leave(h.now, "g", []LeaveMember{{InstanceID: "i1"}, {InstanceID: "nope"}})
	if err != nil || res[0].Err != nil || res[0].MemberID != j2.MemberID || !errors.Is(res[1].Err, ErrUnknownMemberID) {
		t.Fatalf("leave: %v %+v", err, res)
	}
	h.collect()
	if gen, st, _ := h.c.Generation("g"); st != Empty || gen != 2 {
		t.Fatalf("after leave: gen %d state %v", gen, st)
	}
}

func TestLeaveRebalancesAndAnswersParked(t *testing.T) {
	h := newHarness(t, testConfig())
	ids := stableGroup(t, h, "a", "b")
	a, b := ids[0], ids[1]
	ta := h.join(JoinRequest{Group: "g", ClientID: "a", MemberID: a}) // parks: b has not rejoined
	res, err := h.c.Leave(h.now, "g", []LeaveMember{{MemberID: b}, {MemberID: "ghost"}})
	if err != nil || res[0].Err != nil || !errors.Is(res[1].Err, ErrUnknownMemberID) {
		t.Fatalf("leave: %v %+v", err, res)
	}
	h.collect()
	ja := h.answeredJoin(ta)
	if ja.Err != nil || len(ja.Members) != 1 || ja.Generation != 2 {
		t.Fatalf("join after leave: %+v", ja)
	}
}

func TestReplayRestoresGroupAndOffsets(t *testing.T) {
	h := newHarness(t, testConfig())
	ids := stableGroup(t, h, "a", "b")
	tp := TopicPartition{"t", 1}
	for _, off := range []int64{5, 9, 3} { // a lower commit is a commit too
		if err := h.commit(CommitRequest{Group: "g", MemberID: ids[0], Generation: 1, Offsets: []CommitOffset{{TopicPartition: tp, Offset: off}}}); err != nil {
			t.Fatal(err)
		}
	}
	h.flush()
	// Through the batch encoding, as the broker writes and reads it.
	var batches [][]byte
	for _, r := range h.durable {
		batches = append(batches, AppendBatch(nil, []Record{r}, h.now))
	}
	c2 := New(testConfig())
	for _, b := range batches {
		if err := ParseBatch(b, func(r Record, err error) {
			if err != nil {
				t.Fatal(err)
			}
			c2.Replay(r)
		}); err != nil {
			t.Fatal(err)
		}
	}
	c2.LoadDone(h.now)
	if o, ok := c2.Committed("g", tp); !ok || o.Offset != 3 {
		t.Fatalf("replayed offset %+v %v", o, ok)
	}
	gen, st, _ := c2.Generation("g")
	if gen != 1 || st != Stable {
		t.Fatalf("replayed group: gen %d state %v", gen, st)
	}
	d, _ := c2.Describe("g")
	if len(d.Members) != 2 {
		t.Fatalf("replayed members: %+v", d.Members)
	}
	// Loaded members heartbeat on; silent ones expire a session timeout after load.
	if err := c2.Heartbeat(h.now+1000, "g", ids[0], "", 1); err != nil {
		t.Fatal(err)
	}
	c2.Tick(h.now + 10001)
	if err := c2.Heartbeat(h.now+10001, "g", ids[1], "", 1); !errors.Is(err, ErrUnknownMemberID) {
		t.Fatalf("silent loaded member: %v", err)
	}
}

func TestPartitionFor(t *testing.T) {
	for _, tc := range []struct {
		id   string
		n    int32
		want int32
	}{
		{"hello", 50, 99162322 % 50},
		{"polygenelubricants", 50, 0}, // hashCode is Integer.MIN_VALUE: Utils.abs gives 0
		{"", 8, 0},
		{"a", 8, 97 % 8},
		{"Aa", 8, 2112 % 8},
		{"é", 8, 233 % 8},
	} {
		if got := PartitionFor(tc.id, tc.n); got != tc.want {
			t.Errorf("PartitionFor(%q, %d) = %d, want %d", tc.id, tc.n, got, tc.want)
		}
	}
}

func TestParseRecordRejectsGarbage(t *testing.T) {
	for _, key := range [][]byte{nil, {0}, {0, 9, 1, 2}, {0, 1, 0, 5, 'a'}} {
		if _, err := ParseRecord(key, []byte{1, 2, 3}); err == nil {
			t.Errorf("key %v parsed", key)
		}
	}
}
