package kafka

// SyncGroup, versions 0-5 (classic group protocol).
//
// Every member of a new generation sends SyncGroup; the leader's carries the assignment
// its client-side assignor computed. The answers park until the leader's assignment is
// durable in __consumer_offsets (the group metadata record, as Kafka writes it), and the
// group is then Stable. A member syncing a Stable group gets its assignment at once.
// Members that do not sync within the rebalance timeout are removed and the group
// rebalances. From v5 the protocol type and name are checked and answered (KIP-559).
// Errors: UNKNOWN_MEMBER_ID, ILLEGAL_GENERATION, REBALANCE_IN_PROGRESS,
// INCONSISTENT_GROUP_PROTOCOL, FENCED_INSTANCE_ID, INVALID_GROUP_ID, NOT_COORDINATOR.

import (
	"github.com/twmb/franz-go/pkg/kmsg"

	"chronik/core/group"
)

func (n *Node) handleSyncGroup(req *Request, m *kmsg.SyncGroupRequest) {
	sr := group.SyncRequest{
		Group:        m.Group,
		MemberID:     m.MemberID,
		Generation:   m.Generation,
		ProtocolType: m.ProtocolType,
		Protocol:     m.Protocol,
	}
	if m.InstanceID != nil {
		sr.InstanceID = *m.InstanceID
	}
	for _, a := range m.GroupAssignment {
		sr.Assignments = append(sr.Assignments, group.Assignment{MemberID: a.MemberID, Assignment: a.MemberAssignment})
	}
	if err := group.ValidGroupID(m.Group, false); err != nil {
		n.respond(req, syncResponse(req, group.SyncResult{Err: err}))
		return
	}
	shard, i, err := n.groupShard(m.Group, false)
	switch {
	case err != nil:
		n.respond(req, syncResponse(req, group.SyncResult{Err: err}))
		return
	case shard == nil:
		n.respond(req, syncResponse(req, group.SyncResult{Err: group.ErrUnknownMemberID}))
		return
	}
	sr.Token = n.newGroupToken()
	res, parked := shard.Sync(n.nowMs, sr)
	if parked {
		n.groups.parked[sr.Token] = req
	} else {
		n.respond(req, syncResponse(req, res))
	}
	n.flushGroups(i)
}

func syncResponse(req *Request, res group.SyncResult) *kmsg.SyncGroupResponse {
	resp := req.Msg.(*kmsg.SyncGroupRequest).ResponseKind().(*kmsg.SyncGroupResponse)
	resp.ErrorCode = errCodeOf(res.Err)
	resp.MemberAssignment = res.Assignment
	if resp.MemberAssignment == nil {
		resp.MemberAssignment = []byte{}
	}
	if res.Err == nil {
		pt, p := res.ProtocolType, res.Protocol
		resp.ProtocolType, resp.Protocol = &pt, &p
	}
	return resp
}
