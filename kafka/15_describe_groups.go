package kafka

// DescribeGroups, versions 0-5.
//
// Each group's state, protocol type, and members (member and instance id, client id);
// the selected protocol and each member's metadata and assignment only when the group is
// Stable, as Kafka answers. A group the coordinator does not know is answered as Dead with
// no error (Kafka's answer before v6). AuthorizedOperations (v3+) lists every group
// operation when asked: there are no ACLs. Errors: INVALID_GROUP_ID (over
// group.MaxGroupIDLen), NOT_COORDINATOR. The client host is not known to the node and is
// answered empty.

import (
	"github.com/twmb/franz-go/pkg/kmsg"

	"chronik/core/group"
)

// groupOperations is the AuthorizedOperations bit set of a group without ACLs: READ (3),
// DELETE (6), DESCRIBE (8).
const groupOperations = 1<<3 | 1<<6 | 1<<8

func (n *Node) handleDescribeGroups(req *Request, m *kmsg.DescribeGroupsRequest) {
	resp := m.ResponseKind().(*kmsg.DescribeGroupsResponse)
	for _, id := range m.Groups {
		g := kmsg.NewDescribeGroupsResponseGroup()
		g.Group = id
		g.AuthorizedOperations = -2147483648
		if m.IncludeAuthorizedOperations {
			g.AuthorizedOperations = groupOperations
		}
		d, err := n.describeGroup(id)
		if err != nil {
			g.ErrorCode = errCodeOf(err)
			resp.Groups = append(resp.Groups, g)
			continue
		}
		g.State, g.ProtocolType, g.Protocol = d.State.String(), d.ProtocolType, d.Protocol
		for _, md := range d.Members {
			gm := kmsg.NewDescribeGroupsResponseGroupMember()
			gm.MemberID, gm.ClientID, gm.ClientHost = md.MemberID, md.ClientID, md.ClientHost
			if md.InstanceID != "" {
				iid := md.InstanceID
				gm.InstanceID = &iid
			}
			gm.ProtocolMetadata, gm.MemberAssignment = md.Metadata, md.Assignment
			if gm.ProtocolMetadata == nil {
				gm.ProtocolMetadata = []byte{}
			}
			if gm.MemberAssignment == nil {
				gm.MemberAssignment = []byte{}
			}
			g.Members = append(g.Members, gm)
		}
		resp.Groups = append(resp.Groups, g)
	}
	n.respond(req, resp)
}

func (n *Node) describeGroup(id string) (group.Description, error) {
	if err := group.ValidGroupID(id, true); err != nil {
		return group.Description{}, err
	}
	shard, _, err := n.groupShard(id, false)
	if err != nil {
		return group.Description{}, err
	}
	if shard == nil {
		return group.Description{State: group.Dead}, nil
	}
	d, _ := shard.Describe(id)
	return d, nil
}
