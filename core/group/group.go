package group

import (
	"bytes"
	"sort"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// State is a classic group's state, named as Kafka names it in DescribeGroups and
// ListGroups.
type State int8

// The states of a classic group (Kafka's GroupState).
const (
	Empty State = iota
	PreparingRebalance
	CompletingRebalance
	Stable
	Dead
)

var stateNames = [...]string{"Empty", "PreparingRebalance", "CompletingRebalance", "Stable", "Dead"}

// String is the state's Kafka name.
func (s State) String() string { return stateNames[s] }

// ParseState parses a Kafka state name, ignoring case (ListGroups' states filter).
func ParseState(name string) (State, bool) {
	for i, n := range stateNames {
		if equalFold(n, name) {
			return State(i), true
		}
	}
	return 0, false
}

func equalFold(a, b string) bool { return bytes.EqualFold([]byte(a), []byte(b)) }

// Protocol is one assignor a member supports, with its metadata (for the consumer
// protocol, a ConsumerMemberMetadata: the member's subscription).
type Protocol struct {
	Name     string
	Metadata []byte
}

// member is one member of a group.
type member struct {
	id, instanceID       string // instanceID "" is a dynamic member
	clientID, clientHost string
	protocols            []Protocol
	sessionTimeoutMs     int32
	rebalanceTimeoutMs   int32
	assignment           []byte

	// joinToken is the parked JoinGroup (0: none): the member is awaiting join.
	joinToken Token
	// syncToken is the parked SyncGroup (0: none): the member is awaiting sync.
	syncToken Token
	// isNew: added in the current rebalance and not yet answered; such a member expires
	// after NewMemberJoinTimeoutMs even while it awaits join.
	isNew bool
	// heartbeatDeadlineMs is when the member's session expires unless it heartbeats.
	heartbeatDeadlineMs int64
}

func (m *member) awaitingJoin() bool { return m.joinToken != 0 }
func (m *member) awaitingSync() bool { return m.syncToken != 0 }

func (m *member) metadataFor(protocol string) []byte {
	for _, p := range m.protocols {
		if p.Name == protocol {
			return p.Metadata
		}
	}
	return nil
}

// matches reports whether protocols are the member's current ones, in order.
func (m *member) matches(protocols []Protocol) bool {
	if len(m.protocols) != len(protocols) {
		return false
	}
	for i := range protocols {
		if m.protocols[i].Name != protocols[i].Name || !bytes.Equal(m.protocols[i].Metadata, protocols[i].Metadata) {
			return false
		}
	}
	return true
}

// Group is one classic group's membership state.
type Group struct {
	name         string
	state        State
	stateSinceMs int64
	protocolType string
	protocol     string // selected protocol of the generation; "" when none
	generation   int32
	leader       string // "" when there are no members

	members map[string]*member
	// pending are member ids handed out with MEMBER_ID_REQUIRED (KIP-394), by expiry.
	pending map[string]int64
	// static maps an instance id to its current member id (KIP-345).
	// Invariant: static[i] == id iff members[id].instanceID == i != "".
	static map[string]string
	// protocolCounts counts the members supporting each protocol.
	protocolCounts map[string]int
	// numAwaitingJoin counts members with a parked JoinGroup.
	// Invariant: numAwaitingJoin == |{m in members : m.awaitingJoin()}|.
	numAwaitingJoin int

	// joinDeadlineMs ends the join phase of a rebalance (0: none). While initialDelay is
	// set it is group.initial.rebalance.delay.ms away, extended while members keep
	// arriving, up to the rebalance timeout (Kafka's InitialDelayedJoin).
	joinDeadlineMs     int64
	initialDelay       bool
	initialDelayMs     int64
	initialRemainingMs int64
	newMemberAdded     bool

	// syncDeadlineMs ends the wait for every member's SyncGroup (0: none); pendingSync are
	// the members of the generation that have not sent it.
	syncDeadlineMs int64
	pendingSync    map[string]bool

	// storing is the store of the leader's assignment in flight (0: none).
	storing StoreID
}

func newGroup(name string, nowMs int64) *Group {
	return &Group{
		name:           name,
		state:          Empty,
		stateSinceMs:   nowMs,
		members:        map[string]*member{},
		pending:        map[string]int64{},
		static:         map[string]string{},
		protocolCounts: map[string]int{},
	}
}

func (g *Group) transition(s State, nowMs int64) {
	g.state = s
	g.stateSinceMs = nowMs
}

// memberIDs are the member ids in sorted order: every walk that can reach an output goes
// through it.
func (g *Group) memberIDs() []string {
	ids := make([]string, 0, len(g.members))
	for id := range g.members {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// supportsProtocols is Kafka's GroupMetadata.supportsProtocols.
func (g *Group) supportsProtocols(protocolType string, protocols []Protocol) bool {
	if len(g.members) == 0 {
		return protocolType != "" && len(protocols) > 0
	}
	if protocolType != g.protocolType {
		return false
	}
	for _, p := range protocols {
		if g.protocolCounts[p.Name] == len(g.members) {
			return true
		}
	}
	return false
}

func (g *Group) countProtocols(m *member, delta int) {
	for _, p := range m.protocols {
		g.protocolCounts[p.Name] += delta
		if g.protocolCounts[p.Name] == 0 {
			delete(g.protocolCounts, p.Name)
		}
	}
}

// selectProtocol is the protocol of the next generation: among those every member
// supports, the one most members list first; a tie goes to the leader's preference.
func (g *Group) selectProtocol() string {
	votes := map[string]int{}
	for _, id := range g.memberIDs() {
		for _, p := range g.members[id].protocols {
			if g.protocolCounts[p.Name] == len(g.members) {
				votes[p.Name]++
				break
			}
		}
	}
	best, bestVotes := "", 0
	var order []Protocol
	if l := g.members[g.leader]; l != nil {
		order = l.protocols
	}
	for _, p := range order {
		if v := votes[p.Name]; v > bestVotes {
			best, bestVotes = p.Name, v
		}
	}
	if best == "" {
		// Unreachable while supportsProtocols guards every join; keep the leader's choice.
		if len(order) > 0 {
			return order[0].Name
		}
	}
	return best
}

func (g *Group) rebalanceTimeoutMs() int64 {
	var t int32
	for _, m := range g.members {
		t = max(t, m.rebalanceTimeoutMs)
	}
	return int64(t)
}

func (g *Group) hasAllMembersJoined() bool {
	return len(g.members) == g.numAwaitingJoin && len(g.pending) == 0
}

// size counts members and pending members against group.max.size.
func (g *Group) size() int { return len(g.members) + len(g.pending) }

// isStaticMemberFenced reports whether instanceID now belongs to another member id.
func (g *Group) isStaticMemberFenced(instanceID, memberID string) bool {
	if instanceID == "" {
		return false
	}
	cur, ok := g.static[instanceID]
	return ok && cur != memberID
}

// subscribedTopics are the topics the members' consumer-protocol metadata names; ok is
// false when they cannot be known (not the consumer protocol, or metadata that does not
// parse), and then every topic counts as subscribed, as in Kafka.
func (g *Group) subscribedTopics() (topics map[string]bool, ok bool) {
	if g.protocolType != "consumer" || g.protocol == "" {
		return nil, false
	}
	topics = map[string]bool{}
	for _, m := range g.members {
		var meta kmsg.ConsumerMemberMetadata
		if err := meta.ReadFrom(m.metadataFor(g.protocol)); err != nil {
			return nil, false
		}
		for _, t := range meta.Topics {
			topics[t] = true
		}
	}
	return topics, true
}

// nextDeadline is the group's earliest timer (0: none).
func (g *Group) nextDeadline() int64 {
	d := int64(0)
	earliest := func(t int64) {
		if t > 0 && (d == 0 || t < d) {
			d = t
		}
	}
	if g.state == PreparingRebalance {
		earliest(g.joinDeadlineMs)
	}
	earliest(g.syncDeadlineMs)
	for _, t := range g.pending {
		earliest(t)
	}
	for _, m := range g.members {
		earliest(m.heartbeatDeadlineMs)
	}
	return d
}

// metadataValue is the group's record for the internal topic, with each member's
// assignment taken from assignments when given, else from the member.
func (g *Group) metadataValue(nowMs int64, assignments map[string][]byte) *kmsg.GroupMetadataValue {
	v := kmsg.NewGroupMetadataValue()
	v.Version = groupValueVersion
	v.ProtocolType = g.protocolType
	v.Generation = g.generation
	if g.protocol != "" {
		p := g.protocol
		v.Protocol = &p
	}
	if g.leader != "" {
		l := g.leader
		v.Leader = &l
	}
	v.CurrentStateTimestamp = nowMs
	for _, id := range g.memberIDs() {
		m := g.members[id]
		vm := kmsg.NewGroupMetadataValueMember()
		vm.MemberID = m.id
		if m.instanceID != "" {
			i := m.instanceID
			vm.InstanceID = &i
		}
		vm.ClientID, vm.ClientHost = m.clientID, m.clientHost
		vm.RebalanceTimeoutMillis, vm.SessionTimeoutMillis = m.rebalanceTimeoutMs, m.sessionTimeoutMs
		vm.Subscription = m.metadataFor(g.protocol)
		vm.Assignment = m.assignment
		if assignments != nil {
			vm.Assignment = assignments[id]
		}
		if vm.Subscription == nil {
			vm.Subscription = []byte{}
		}
		if vm.Assignment == nil {
			vm.Assignment = []byte{}
		}
		v.Members = append(v.Members, vm)
	}
	return &v
}
