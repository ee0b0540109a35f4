package kafka

// Heartbeat, versions 0-4.
//
// Keeps a member's session alive; REBALANCE_IN_PROGRESS tells it to rejoin. Errors:
// UNKNOWN_MEMBER_ID, ILLEGAL_GENERATION, FENCED_INSTANCE_ID (v3+ static members),
// INVALID_GROUP_ID, NOT_COORDINATOR.

import (
	"github.com/twmb/franz-go/pkg/kmsg"

	"chronik/core/group"
)

func (n *Node) handleHeartbeat(req *Request, m *kmsg.HeartbeatRequest) {
	resp := m.ResponseKind().(*kmsg.HeartbeatResponse)
	instance := ""
	if m.InstanceID != nil {
		instance = *m.InstanceID
	}
	err := group.ValidGroupID(m.Group, false)
	if err == nil {
		var shard *group.Coordinator
		var i int
		shard, i, err = n.groupShard(m.Group, false)
		switch {
		case err != nil:
		case shard == nil:
			err = group.ErrUnknownMemberID
		default:
			err = shard.Heartbeat(n.nowMs, m.Group, m.MemberID, instance, m.Generation)
			n.flushGroups(i)
		}
	}
	resp.ErrorCode = errCodeOf(err)
	n.respond(req, resp)
}
