package kafka

// DeleteGroups, versions 0-2.
//
// Deletes groups without members: the group and its committed offsets are forgotten, and
// tombstones for the group record and every offset are appended to __consumer_offsets;
// the answer waits until they are durable. Errors per group: GROUP_ID_NOT_FOUND,
// NON_EMPTY_GROUP, INVALID_GROUP_ID (over group.MaxGroupIDLen), NOT_COORDINATOR.

import (
	"github.com/twmb/franz-go/pkg/kmsg"

	"chronik/core/group"
)

func (n *Node) handleDeleteGroups(req *Request, m *kmsg.DeleteGroupsRequest) {
	resp := m.ResponseKind().(*kmsg.DeleteGroupsResponse)
	resp.Groups = make([]kmsg.DeleteGroupsResponseGroup, len(m.Groups))
	waiting := 1 // released below, after every group is handled
	done := func() {
		if waiting--; waiting == 0 {
			n.respond(req, resp)
		}
	}
	for gi, id := range m.Groups {
		out := &resp.Groups[gi]
		*out = kmsg.NewDeleteGroupsResponseGroup()
		out.Group = id
		recs, i, err := n.deleteGroup(id)
		if err != nil {
			out.ErrorCode = errCodeOf(err)
			continue
		}
		waiting++
		n.appendGroupRecords(i, recs, 0, func(err error) {
			out.ErrorCode = errCodeOf(err)
			done()
		})
		n.flushGroups(i)
	}
	done()
}

func (n *Node) deleteGroup(id string) ([]group.Record, int, error) {
	if err := group.ValidGroupID(id, true); err != nil {
		return nil, 0, err
	}
	shard, i, err := n.groupShard(id, false)
	switch {
	case err != nil:
		return nil, 0, err
	case shard == nil:
		return nil, 0, group.ErrGroupIDNotFound
	}
	recs, err := shard.DeleteGroup(id)
	return recs, i, err
}
