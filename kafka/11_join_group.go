package kafka

// JoinGroup, versions 0-9 (classic group protocol).
//
// The broker never looks inside the protocols: it selects the one every member supports
// that most members prefer, hands the leader every member's metadata for it, and relays
// the leader's assignment (SyncGroup), so any client assignor works (range, roundrobin,
// sticky, cooperative-sticky). From v4 a new dynamic member gets MEMBER_ID_REQUIRED with
// its member id and joins again with it (KIP-394); a member with group.instance.id (v5+,
// KIP-345) is static: it joins at once, and rejoining under the same instance id fences
// the old member id, without a rebalance when nothing changed (with SkipAssignment for
// the leader from v9, KIP-814). The answer parks until the join phase ends: every member
// has joined, or the rebalance timeout (or, for a new group, the initial rebalance delay)
// has passed. Errors: INVALID_GROUP_ID (empty or over group.MaxGroupIDLen),
// INVALID_SESSION_TIMEOUT, UNKNOWN_MEMBER_ID, INCONSISTENT_GROUP_PROTOCOL,
// FENCED_INSTANCE_ID, GROUP_MAX_SIZE_REACHED, NOT_COORDINATOR.

import (
	"github.com/twmb/franz-go/pkg/kmsg"

	"chronik/core/group"
)

func (n *Node) handleJoinGroup(req *Request, m *kmsg.JoinGroupRequest) {
	jr := group.JoinRequest{
		Group:                  m.Group,
		MemberID:               m.MemberID,
		ClientID:               req.ClientID,
		ProtocolType:           m.ProtocolType,
		SessionTimeoutMs:       m.SessionTimeoutMillis,
		RebalanceTimeoutMs:     m.RebalanceTimeoutMillis,
		RequireKnownMemberID:   req.Version >= 4,
		SupportsSkipAssignment: req.Version >= 9,
	}
	if req.Version == 0 {
		jr.RebalanceTimeoutMs = jr.SessionTimeoutMs
	}
	if m.InstanceID != nil {
		jr.InstanceID = *m.InstanceID
	}
	for _, p := range m.Protocols {
		jr.Protocols = append(jr.Protocols, group.Protocol{Name: p.Name, Metadata: p.Metadata})
	}
	if err := group.ValidGroupID(m.Group, false); err != nil {
		n.respond(req, joinResponse(req, group.JoinResult{Err: err, MemberID: m.MemberID, Generation: -1}))
		return
	}
	shard, i, err := n.groupShard(m.Group, true)
	if err != nil {
		n.respond(req, joinResponse(req, group.JoinResult{Err: err, MemberID: m.MemberID, Generation: -1}))
		return
	}
	jr.Token = n.newGroupToken()
	res, parked := shard.Join(n.nowMs, jr)
	if parked {
		n.groups.parked[jr.Token] = req
	} else {
		n.respond(req, joinResponse(req, res))
	}
	n.flushGroups(i)
}

func joinResponse(req *Request, res group.JoinResult) *kmsg.JoinGroupResponse {
	resp := req.Msg.(*kmsg.JoinGroupRequest).ResponseKind().(*kmsg.JoinGroupResponse)
	resp.ErrorCode = errCodeOf(res.Err)
	resp.Generation = res.Generation
	resp.MemberID = res.MemberID
	resp.LeaderID = res.Leader
	resp.SkipAssignment = res.SkipAssignment
	if res.HasProtocol {
		pt, p := res.ProtocolType, res.Protocol
		resp.ProtocolType, resp.Protocol = &pt, &p
	}
	for _, mm := range res.Members {
		rm := kmsg.NewJoinGroupResponseMember()
		rm.MemberID, rm.ProtocolMetadata = mm.MemberID, mm.Metadata
		if mm.InstanceID != "" {
			id := mm.InstanceID
			rm.InstanceID = &id
		}
		resp.Members = append(resp.Members, rm)
	}
	return resp
}
