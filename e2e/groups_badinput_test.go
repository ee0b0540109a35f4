package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"chronik/core/group"
)

// rawGroup sends group requests straight to the broker (no coordinator lookup or retry
// in the client), so the test sees the broker's own answers.
type rawGroup struct {
	t  *testing.T
	cl *kgo.Client
}

func (r rawGroup) do(req kmsg.Request) kmsg.Response {
	r.t.Helper()
	ctx := testCtx(r.t, groupStepTimeout)
	resp, err := r.cl.SeedBrokers()[0].Request(ctx, req)
	if err != nil {
		r.t.Fatalf("%T: %v", req, err)
	}
	return resp
}

func (r rawGroup) join(groupID, memberID string, sessionMs int32) *kmsg.JoinGroupResponse {
	r.t.Helper()
	req := kmsg.NewPtrJoinGroupRequest()
	req.Group, req.MemberID, req.ProtocolType = groupID, memberID, "consumer"
	req.SessionTimeoutMillis, req.RebalanceTimeoutMillis = sessionMs, 10000
	meta := kmsg.NewConsumerMemberMetadata()
	meta.Topics = []string{"bad-topic"}
	p := kmsg.NewJoinGroupRequestProtocol()
	p.Name, p.Metadata = "range", meta.AppendTo(nil)
	req.Protocols = append(req.Protocols, p)
	return r.do(req).(*kmsg.JoinGroupResponse)
}

// joinFully joins as a new member, answering MEMBER_ID_REQUIRED with a second join.
func (r rawGroup) joinFully(groupID string) *kmsg.JoinGroupResponse {
	r.t.Helper()
	first := r.join(groupID, "", 10000)
	if first.ErrorCode != kerr.MemberIDRequired.Code {
		r.t.Fatalf("first join: %v, want MEMBER_ID_REQUIRED", kerr.ErrorForCode(first.ErrorCode))
	}
	return r.join(groupID, first.MemberID, 10000)
}

func (r rawGroup) sync(groupID, memberID string, gen int32, assign map[string][]int32) *kmsg.SyncGroupResponse {
	r.t.Helper()
	req := kmsg.NewPtrSyncGroupRequest()
	req.Group, req.MemberID, req.Generation = groupID, memberID, gen
	for id, parts := range assign {
		a := kmsg.NewConsumerMemberAssignment()
		at := kmsg.NewConsumerMemberAssignmentTopic()
		at.Topic, at.Partitions = "bad-topic", parts
		a.Topics = append(a.Topics, at)
		ga := kmsg.NewSyncGroupRequestGroupAssignment()
		ga.MemberID, ga.MemberAssignment = id, a.AppendTo(nil)
		req.GroupAssignment = append(req.GroupAssignment, ga)
	}
	return r.do(req).(*kmsg.SyncGroupResponse)
}

func (r rawGroup) heartbeat(groupID, memberID string, gen int32) int16 {
	r.t.Helper()
	req := kmsg.NewPtrHeartbeatRequest()
	req.Group, req.MemberID, req.Generation = groupID, memberID, gen
	return r.do(req).(*kmsg.HeartbeatResponse).ErrorCode
}

// commit commits offsets (topic -> partition -> offset) and returns each partition's code.
func (r rawGroup) commit(groupID, memberID string, gen int32, metadata string, offsets map[string]map[int32]int64) map[string]map[int32]int16 {
	r.t.Helper()
	req := kmsg.NewPtrOffsetCommitRequest()
	req.Group, req.MemberID, req.Generation = groupID, memberID, gen
	for topic, parts := range offsets {
		rt := kmsg.NewOffsetCommitRequestTopic()
		rt.Topic = topic
		for p, o := range parts {
			rp := kmsg.NewOffsetCommitRequestTopicPartition()
			rp.Partition, rp.Offset, rp.Metadata = p, o, &metadata
			rt.Partitions = append(rt.Partitions, rp)
		}
		req.Topics = append(req.Topics, rt)
	}
	resp := r.do(req).(*kmsg.OffsetCommitResponse)
	out := map[string]map[int32]int16{}
	for _, t := range resp.Topics {
		out[t.Topic] = map[int32]int16{}
		for _, p := range t.Partitions {
			out[t.Topic][p.Partition] = p.ErrorCode
		}
	}
	return out
}

func expectCode(t *testing.T, what string, got int16, want *kerr.Error) {
	t.Helper()
	if got != want.Code {
		t.Errorf("%s: %v, want %v", what, kerr.ErrorForCode(got), want)
	}
}

// TestGroupBadInput sends the broker every kind of wrong group request — unknown member,
// illegal generation, rebalance in progress, empty and oversized group ids, a commit for
// an unknown topic, oversized metadata, an out-of-bounds session timeout — checks Kafka's
// error code for each, and then that the group and its committed offsets are intact.
func TestGroupBadInput(t *testing.T) {
	b := startBroker(t, withGroupTimers())
	cl := newClient(t, b.Addr())
	adm := kadm.NewClient(cl)
	createGroupTopic(t, adm, "bad-topic")
	r := rawGroup{t: t, cl: cl}
	const g = "bad-group"

	// A one-member Stable group with a committed offset.
	j1 := r.joinFully(g)
	if j1.ErrorCode != 0 || j1.Generation != 1 || j1.LeaderID != j1.MemberID {
		t.Fatalf("join: %+v", j1)
	}
	m1 := j1.MemberID
	if s := r.sync(g, m1, 1, map[string][]int32{m1: {0, 1, 2, 3}}); s.ErrorCode != 0 {
		t.Fatalf("sync: %v", kerr.ErrorForCode(s.ErrorCode))
	}
	codes := r.commit(g, m1, 1, "", map[string]map[int32]int64{"bad-topic": {0: 5}, "no-such-topic": {0: 9}})
	expectCode(t, "commit", codes["bad-topic"][0], &kerr.Error{Code: 0})
	expectCode(t, "commit to an unknown topic", codes["no-such-topic"][0], kerr.UnknownTopicOrPartition)

	long := strings.Repeat("g", group.MaxGroupIDLen+1)
	expectCode(t, "heartbeat, unknown member", r.heartbeat(g, "nobody", 1), kerr.UnknownMemberID)
	expectCode(t, "heartbeat, illegal generation", r.heartbeat(g, m1, 9), kerr.IllegalGeneration)
	expectCode(t, "heartbeat, unknown group", r.heartbeat("no-group", m1, 1), kerr.UnknownMemberID)
	expectCode(t, "sync, unknown member", r.sync(g, "nobody", 1, nil).ErrorCode, kerr.UnknownMemberID)
	expectCode(t, "sync, illegal generation", r.sync(g, m1, 0, nil).ErrorCode, kerr.IllegalGeneration)
	expectCode(t, "join, empty group id", r.join("", "", 10000).ErrorCode, kerr.InvalidGroupID)
	expectCode(t, "join, oversized group id", r.join(long, "", 10000).ErrorCode, kerr.InvalidGroupID)
	expectCode(t, "join, unknown member", r.join(g, "nobody", 10000).ErrorCode, kerr.UnknownMemberID)
	expectCode(t, "join, session timeout below the minimum", r.join(g, "", 10).ErrorCode, kerr.InvalidSessionTimeout)
	expectCode(t, "join, session timeout above the maximum", r.join(g, "", 1<<30).ErrorCode, kerr.InvalidSessionTimeout)
	codes = r.commit(long, "", -1, "", map[string]map[int32]int64{"bad-topic": {0: 1}})
	expectCode(t, "commit, oversized group id", codes["bad-topic"][0], kerr.InvalidGroupID)
	codes = r.commit(g, m1, 7, "", map[string]map[int32]int64{"bad-topic": {0: 1}})
	expectCode(t, "commit, illegal generation", codes["bad-topic"][0], kerr.IllegalGeneration)
	codes = r.commit(g, "nobody", 1, "", map[string]map[int32]int64{"bad-topic": {0: 1}})
	expectCode(t, "commit, unknown member", codes["bad-topic"][0], kerr.UnknownMemberID)
	codes = r.commit(g, "", -1, "", map[string]map[int32]int64{"bad-topic": {0: 1}})
	expectCode(t, "simple commit to a group with members", codes["bad-topic"][0], kerr.UnknownMemberID)
	codes = r.commit("never-joined", "m", 3, "", map[string]map[int32]int64{"bad-topic": {0: 1}})
	expectCode(t, "commit with a generation to an unknown group", codes["bad-topic"][0], kerr.IllegalGeneration)
	codes = r.commit(g, m1, 1, strings.Repeat("m", 4097), map[string]map[int32]int64{"bad-topic": {1: 1}})
	expectCode(t, "commit, metadata too large", codes["bad-topic"][1], kerr.OffsetMetadataTooLarge)
	fc := kmsg.NewPtrFindCoordinatorRequest() // v4: batched keys, an error each
	fc.CoordinatorKeys = []string{long, g}
	fcr := r.do(fc).(*kmsg.FindCoordinatorResponse)
	expectCode(t, "find coordinator, oversized group id", fcr.Coordinators[0].ErrorCode, kerr.InvalidGroupID)
	expectCode(t, "find coordinator, good group id", fcr.Coordinators[1].ErrorCode, &kerr.Error{Code: 0})
	if fcr.Coordinators[1].NodeID != 1 {
		t.Errorf("coordinator of %s: node %d", g, fcr.Coordinators[1].NodeID)
	}
	fc = kmsg.NewPtrFindCoordinatorRequest()
	fc.CoordinatorKeys, fc.CoordinatorType = []string{"txn"}, 1
	expectCode(t, "find coordinator, transaction", r.do(fc).(*kmsg.FindCoordinatorResponse).Coordinators[0].ErrorCode, kerr.InvalidRequest)
	dg := kmsg.NewPtrDeleteGroupsRequest()
	dg.Groups = []string{g, "no-group"}
	dgr := r.do(dg).(*kmsg.DeleteGroupsResponse)
	expectCode(t, "delete a group with members", dgr.Groups[0].ErrorCode, kerr.NonEmptyGroup)
	expectCode(t, "delete an unknown group", dgr.Groups[1].ErrorCode, kerr.GroupIDNotFound)

	// A second member starts a rebalance: the first hears REBALANCE_IN_PROGRESS from
	// Heartbeat and SyncGroup, and a commit between join and sync is refused too.
	joined := make(chan *kmsg.JoinGroupResponse, 1)
	first := r.join(g, "", 10000)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), groupStepTimeout)
		defer cancel()
		req := kmsg.NewPtrJoinGroupRequest()
		req.Group, req.MemberID, req.ProtocolType = g, first.MemberID, "consumer"
		req.SessionTimeoutMillis, req.RebalanceTimeoutMillis = 10000, 10000
		meta := kmsg.NewConsumerMemberMetadata()
		meta.Topics = []string{"bad-topic"}
		req.Protocols = []kmsg.JoinGroupRequestProtocol{{Name: "range", Metadata: meta.AppendTo(nil)}}
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			t.Errorf("second member's join: %v", err)
		}
		joined <- resp
	}()
	waitFor(t, "the rebalance to start", func() bool { return r.heartbeat(g, m1, 1) == kerr.RebalanceInProgress.Code })
	expectCode(t, "sync during the rebalance", r.sync(g, m1, 1, nil).ErrorCode, kerr.RebalanceInProgress)
	j1 = r.join(g, m1, 10000)
	var j2 *kmsg.JoinGroupResponse
	select {
	case j2 = <-joined:
	case <-time.After(groupStepTimeout):
		t.Fatal("second member's join never answered")
	}
	if j1.ErrorCode != 0 || j2 == nil || j2.ErrorCode != 0 || j1.Generation != 2 || j2.Generation != 2 {
		t.Fatalf("rejoin: %+v / %+v", j1, j2)
	}
	codes = r.commit(g, m1, 2, "", map[string]map[int32]int64{"bad-topic": {0: 6}})
	expectCode(t, "commit between join and sync", codes["bad-topic"][0], kerr.RebalanceInProgress)
	m2 := j2.MemberID
	done := make(chan *kmsg.SyncGroupResponse, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), groupStepTimeout)
		defer cancel()
		req := kmsg.NewPtrSyncGroupRequest()
		req.Group, req.MemberID, req.Generation = g, m2, 2
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			t.Errorf("second member's sync: %v", err)
		}
		done <- resp
	}()
	if s := r.sync(g, m1, 2, map[string][]int32{m1: {0, 1}, m2: {2, 3}}); s.ErrorCode != 0 {
		t.Fatalf("leader sync: %v", kerr.ErrorForCode(s.ErrorCode))
	}
	if s := <-done; s == nil || s.ErrorCode != 0 {
		t.Fatalf("second member's sync: %+v", s)
	}

	// Intact: Stable at generation 2 with both members, the offset committed before the
	// bad requests, no group made from a bad id.
	d := describeGroup(t, adm, g)
	if d.State != "Stable" || len(d.Members) != 2 {
		t.Fatalf("group after bad input: %s with %d members", d.State, len(d.Members))
	}
	ctx := testCtx(t, groupStepTimeout)
	offs, err := adm.FetchOffsets(ctx, g)
	if err != nil {
		t.Fatal(err)
	}
	if o, ok := offs.Lookup("bad-topic", 0); !ok || o.At != 5 {
		t.Fatalf("committed offset after bad input: %+v", o)
	}
	if _, ok := offs.Lookup("bad-topic", 1); ok {
		t.Fatal("an offset with oversized metadata was committed")
	}
	listed, err := adm.ListGroups(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if names := listed.Groups(); len(names) != 1 || names[0] != g {
		t.Fatalf("groups after bad input: %v", names)
	}

	// Both leave (batched, v3+); the Empty group's offsets can be deleted, then the group.
	lv := kmsg.NewPtrLeaveGroupRequest()
	lv.Group = g
	lv.Members = []kmsg.LeaveGroupRequestMember{{MemberID: m1}, {MemberID: m2}, {MemberID: "ghost"}}
	lr := r.do(lv).(*kmsg.LeaveGroupResponse)
	if lr.ErrorCode != 0 || len(lr.Members) != 3 || lr.Members[0].ErrorCode != 0 || lr.Members[1].ErrorCode != 0 || lr.Members[2].ErrorCode != kerr.UnknownMemberID.Code {
		t.Fatalf("leave: %+v", lr)
	}
	waitFor(t, "the group to empty", func() bool { return describeGroup(t, adm, g).State == "Empty" })
	dor, err := adm.DeleteOffsets(ctx, g, kadm.TopicsSet{"bad-topic": {0: {}}})
	if err != nil || dor.Error() != nil {
		t.Fatalf("delete offsets: %v %v", err, dor.Error())
	}
	if offs, _ := adm.FetchOffsets(ctx, g); len(offs) != 0 {
		t.Fatalf("offsets after OffsetDelete: %+v", offs)
	}
	del, err := adm.DeleteGroups(ctx, g)
	if err != nil || del[g].Err != nil {
		t.Fatalf("delete group: %v %v", err, del[g].Err)
	}
	if listed, _ := adm.ListGroups(ctx); len(listed) != 0 {
		t.Fatalf("groups after delete: %v", listed.Groups())
	}
}
