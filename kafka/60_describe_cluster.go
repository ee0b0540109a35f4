package kafka

// DescribeCluster, versions 0-1 (KIP-700): this node as the only broker and controller.

import "github.com/twmb/franz-go/pkg/kmsg"

func (n *Node) handleDescribeCluster(req *Request, m *kmsg.DescribeClusterRequest) {
	resp := m.ResponseKind().(*kmsg.DescribeClusterResponse)
	b := kmsg.NewDescribeClusterResponseBroker()
	b.NodeID, b.Host, b.Port = n.cfg.NodeID, n.cfg.Host, n.cfg.Port
	if n.cfg.Rack != "" {
		b.Rack = &n.cfg.Rack
	}
	resp.Brokers = []kmsg.DescribeClusterResponseBroker{b}
	resp.ClusterID = n.cfg.ClusterID
	resp.ControllerID = n.cfg.NodeID
	if n.cl != nil {
		resp.Brokers = nil
		for _, p := range n.cl.peers {
			if !n.peerAlive(RaftID(p.ID)) {
				continue // as Metadata: live brokers only
			}
			reg := n.cl.broker(p.ID)
			b := kmsg.NewDescribeClusterResponseBroker()
			b.NodeID, b.Host, b.Port = reg.ID, reg.Host, reg.Port
			if reg.Rack != "" {
				b.Rack = &reg.Rack
			}
			resp.Brokers = append(resp.Brokers, b)
		}
		resp.ControllerID = n.controllerID()
	}
	resp.ClusterAuthorizedOperations = -2147483648
	n.respond(req, resp)
}
