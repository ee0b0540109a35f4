package kafka

// ListGroups, versions 0-4.
//
// Every group this node coordinates, sorted by id, with its protocol type and (v4+,
// KIP-518) its state; a states filter (v4+, names matched without regard to case) keeps
// the groups in one of the named states. Groups of an internal partition that failed are
// left out.

import (
	"sort"

	"github.com/twmb/franz-go/pkg/kmsg"

	"chronik/core/group"
)

func (n *Node) handleListGroups(req *Request, m *kmsg.ListGroupsRequest) {
	resp := m.ResponseKind().(*kmsg.ListGroupsResponse)
	var want map[group.State]bool
	if len(m.StatesFilter) > 0 {
		want = map[group.State]bool{}
		for _, name := range m.StatesFilter {
			if s, ok := group.ParseState(name); ok {
				want[s] = true
			}
		}
	}
	if _, err := n.offsetsTopicNow(false); err != nil {
		resp.ErrorCode = errCodeOf(err)
		n.respond(req, resp)
		return
	}
	var all []group.Listing
	for i, shard := range n.groups.shards {
		if shard == nil || n.groups.topic.partitions[i].failed != nil {
			continue
		}
		all = append(all, shard.List()...)
	}
	sort.Slice(all, func(i, j int) bool { return all[i].Group < all[j].Group })
	for _, l := range all {
		if want != nil && !want[l.State] {
			continue
		}
		g := kmsg.NewListGroupsResponseGroup()
		g.Group, g.ProtocolType, g.GroupState = l.Group, l.ProtocolType, l.State.String()
		resp.Groups = append(resp.Groups, g)
	}
	n.respond(req, resp)
}
