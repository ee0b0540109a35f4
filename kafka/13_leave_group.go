package kafka

// LeaveGroup, versions 0-5.
//
// v0-v2 name one member; from v3 a batch of members, each by member id or, for static
// members, by group.instance.id alone (KIP-345: an administrator removing a static
// member), each with its own error. A leaving member triggers a rebalance. v0-v2 answer
// the member's error at the top level. Errors: UNKNOWN_MEMBER_ID, FENCED_INSTANCE_ID,
// INVALID_GROUP_ID, NOT_COORDINATOR.

import (
	"github.com/twmb/franz-go/pkg/kmsg"

	"chronik/core/group"
)

func (n *Node) handleLeaveGroup(req *Request, m *kmsg.LeaveGroupRequest) {
	resp := m.ResponseKind().(*kmsg.LeaveGroupResponse)
	var leaving []group.LeaveMember
	if req.Version < 3 {
		leaving = []group.LeaveMember{{MemberID: m.MemberID}}
	} else {
		for _, lm := range m.Members {
			l := group.LeaveMember{MemberID: lm.MemberID}
			if lm.InstanceID != nil {
				l.InstanceID = *lm.InstanceID
			}
			leaving = append(leaving, l)
		}
	}
	results, err := n.leaveGroup(m.Group, leaving)
	if err != nil {
		resp.ErrorCode = errCodeOf(err)
		n.respond(req, resp)
		return
	}
	if req.Version < 3 {
		resp.ErrorCode = errCodeOf(results[0].Err)
		n.respond(req, resp)
		return
	}
	for _, r := range results {
		rm := kmsg.NewLeaveGroupResponseMember()
		rm.MemberID, rm.ErrorCode = r.MemberID, errCodeOf(r.Err)
		if r.InstanceID != "" {
			id := r.InstanceID
			rm.InstanceID = &id
		}
		resp.Members = append(resp.Members, rm)
	}
	n.respond(req, resp)
}

func (n *Node) leaveGroup(groupID string, leaving []group.LeaveMember) ([]group.LeaveResult, error) {
	if err := group.ValidGroupID(groupID, false); err != nil {
		return nil, err
	}
	shard, i, err := n.groupShard(groupID, false)
	if err != nil {
		return nil, err
	}
	if shard == nil {
		results := make([]group.LeaveResult, len(leaving))
		for k, l := range leaving {
			results[k] = group.LeaveResult{MemberID: l.MemberID, InstanceID: l.InstanceID, Err: group.ErrUnknownMemberID}
		}
		return results, nil
	}
	results, err := shard.Leave(n.nowMs, groupID, leaving)
	n.flushGroups(i)
	return results, err
}
