package sim

import (
	"math/rand/v2"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// metaTag tags a client's Metadata requests (owners' own tags are >= -1).
const metaTag = -2

// minRefreshUs spaces a client's Metadata requests, as a real client's
// retry.backoff.ms spaces its refreshes.
const minRefreshUs = 50_000

// routes is a client's view of where each partition of the topic is led, as a Kafka
// client keeps it: learned from Metadata asked of any node, refreshed when a request
// meets NOT_LEADER_OR_FOLLOWER, LEADER_NOT_AVAILABLE, a fenced or unknown leader epoch,
// or a lost connection. A partition's leader epoch only goes up: a Metadata answer that
// names an older epoch than the client knows is stale and ignored (KIP-320). With one
// node there is nothing to learn: node 0 leads everything.
type routes struct {
	cc     *clientConn
	rng    *rand.Rand
	leader []int   // per partition: the leader's node index, -1 unknown
	epoch  []int32 // per partition: the highest leader epoch seen, -1 none
	// asking is set while a Metadata request is out; next is the node asked next;
	// nextRefreshUs is the earliest time of the next request.
	asking        bool
	next          int
	nextRefreshUs int64
}

func newRoutes(cc *clientConn, rng *rand.Rand) *routes {
	s := cc.s
	r := &routes{cc: cc, rng: rng, next: rng.IntN(len(s.nodes))}
	for range s.cfg.Workload.Partitions {
		lead := -1
		if len(s.nodes) == 1 {
			lead = 0
		}
		r.leader = append(r.leader, lead)
		r.epoch = append(r.epoch, -1)
	}
	return r
}

// clustered reports whether there is anything to route.
func (r *routes) clustered() bool { return len(r.cc.s.nodes) > 1 }

// leaderOf is the node to send partition part's requests to, or -1 when unknown (a
// refresh is then asked for).
func (r *routes) leaderOf(part int32) int {
	if l := r.leader[part]; l >= 0 {
		return l
	}
	r.refresh()
	return -1
}

// anyNode is a node for requests any node answers (InitProducerId, CreateTopics): the
// next in turn.
func (r *routes) anyNode() int {
	n := r.next
	r.next = (r.next + 1) % len(r.cc.s.nodes)
	return n
}

// invalidate forgets part's leader after an answer or a loss that says it moved, and
// asks for a refresh.
func (r *routes) invalidate(part int32) {
	if !r.clustered() {
		return
	}
	if part >= 0 {
		r.leader[part] = -1
	}
	r.refresh()
}

// lostNode forgets every partition led by node (its connection was lost).
func (r *routes) lostNode(node int) {
	if !r.clustered() {
		return
	}
	for p, l := range r.leader {
		if l == node {
			r.leader[p] = -1
		}
	}
	r.refresh()
}

// refresh sends a Metadata request unless one is out or the last was too recent (then
// the owner's timer wakes it when one may go). The answer wakes the owner.
func (r *routes) refresh() {
	if !r.clustered() {
		return
	}
	if r.asking || r.cc.done {
		return
	}
	s := r.cc.s
	if s.now < r.nextRefreshUs {
		r.cc.wakeIn(r.nextRefreshUs - s.now)
		return
	}
	r.asking = true
	r.nextRefreshUs = s.now + minRefreshUs
	req := kmsg.NewPtrMetadataRequest()
	req.Version = int16(between(r.rng, 7, 12))
	t := kmsg.NewMetadataRequestTopic()
	name := topicName
	t.Topic = &name
	req.Topics = append(req.Topics, t)
	req.AllowAutoTopicCreation = false
	r.cc.send(r.anyNode(), req, metaTag)
}

// take updates the routes from a Metadata answer.
func (r *routes) take(resp *kmsg.MetadataResponse) {
	r.asking = false
	for _, t := range resp.Topics {
		if t.Topic == nil || *t.Topic != topicName || t.ErrorCode != 0 {
			continue
		}
		for _, p := range t.Partitions {
			if p.Partition < 0 || int(p.Partition) >= len(r.leader) {
				continue
			}
			i := p.Partition
			switch {
			case p.LeaderEpoch < r.epoch[i]:
				// Stale: the answering node has not heard of the newer leader.
			case p.ErrorCode != 0 || p.Leader < 0 || int(p.Leader) >= len(r.cc.s.nodes):
				r.leader[i] = -1
			default:
				r.leader[i], r.epoch[i] = int(p.Leader), p.LeaderEpoch
			}
		}
	}
	r.cc.s.tr.line(r.cc.s.now, r.cc.who, "routes").s("leaders", r.describe()).end()
}

// lost notes that a Metadata request got no answer: the next goes to another node.
func (r *routes) lost() {
	r.asking = false
}

// movedCode reports whether an error code says the partition's leader moved or is not
// known yet: the client refreshes its routes and retries.
func movedCode(code int16) bool {
	switch code {
	case kerr.NotLeaderForPartition.Code, kerr.LeaderNotAvailable.Code, kerr.FencedLeaderEpoch.Code,
		kerr.UnknownLeaderEpoch.Code, kerr.UnknownTopicOrPartition.Code, kerr.KafkaStorageError.Code:
		return true
	}
	return false
}

func (r *routes) describe() string {
	b := make([]byte, 0, 16)
	for i, l := range r.leader {
		if i > 0 {
			b = append(b, ',')
		}
		if l < 0 {
			b = append(b, '-')
		} else {
			b = append(b, 'n')
			b = append(b, itoa(l)...)
		}
		b = append(b, '@')
		b = append(b, itoa(int(r.epoch[i]))...)
	}
	return string(b)
}
