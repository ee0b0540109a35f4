package kafka

// DescribeConfigs, versions 0-4.
//
// Topic resources list the topic configs Chronik understands with their effective values;
// a key set on the topic has source DYNAMIC_TOPIC_CONFIG, the rest DEFAULT_CONFIG. Broker
// resources (named by this node's id, or "" for the cluster default) list the broker
// settings that shape topics. ConfigNames narrows the answer. Synonyms and documentation
// are not returned.

import (
	"fmt"
	"strconv"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func (n *Node) handleDescribeConfigs(req *Request, m *kmsg.DescribeConfigsRequest) {
	resp := m.ResponseKind().(*kmsg.DescribeConfigsResponse)
	for _, rr := range m.Resources {
		or := kmsg.NewDescribeConfigsResponseResource()
		or.ResourceType, or.ResourceName = rr.ResourceType, rr.ResourceName
		var entries []kmsg.DescribeConfigsResponseResourceConfig
		switch rr.ResourceType {
		case kmsg.ConfigResourceTypeTopic:
			t := n.topics[rr.ResourceName]
			if t == nil {
				or.ErrorCode = kerr.UnknownTopicOrPartition.Code
				break
			}
			entries = describeTopicConfig(&t.config)
		case kmsg.ConfigResourceTypeBroker:
			if rr.ResourceName != "" && rr.ResourceName != strconv.Itoa(int(n.cfg.NodeID)) {
				or.ErrorCode = kerr.InvalidRequest.Code
				msg := fmt.Sprintf("unknown broker %q", rr.ResourceName)
				or.ErrorMessage = &msg
				break
			}
			entries = n.describeBrokerConfig()
		default:
			or.ErrorCode = kerr.InvalidRequest.Code
			msg := fmt.Sprintf("resource type %d is not supported", rr.ResourceType)
			or.ErrorMessage = &msg
		}
		or.Configs = filterConfigs(entries, rr.ConfigNames)
		resp.Resources = append(resp.Resources, or)
	}
	n.respond(req, resp)
}

// describeTopicConfig lists a topic's configs in name order.
func describeTopicConfig(tc *topicConfig) []kmsg.DescribeConfigsResponseResourceConfig {
	var out []kmsg.DescribeConfigsResponseResourceConfig
	for _, name := range sortedKeys(topicConfigKeys) {
		e := kmsg.NewDescribeConfigsResponseResourceConfig()
		v := topicConfigKeys[name].value(tc)
		e.Name, e.Value = name, &v
		_, set := tc.Set[name]
		e.IsDefault = !set
		e.Source = kmsg.ConfigSourceDefaultConfig
		if set {
			e.Source = kmsg.ConfigSourceDynamicTopicConfig
		}
		e.ConfigType = kmsg.ConfigTypeString
		out = append(out, e)
	}
	return out
}

func (n *Node) describeBrokerConfig() []kmsg.DescribeConfigsResponseResourceConfig {
	c := &n.cfg
	kv := []struct{ name, value string }{
		{"auto.create.topics.enable", strconv.FormatBool(!c.DisableAutoCreate)},
		{"broker.id", strconv.Itoa(int(c.NodeID))},
		{"log.retention.bytes", strconv.FormatInt(c.RetentionBytes, 10)},
		{"log.retention.ms", strconv.FormatInt(c.RetentionMs, 10)},
		{"log.roll.ms", strconv.FormatInt(c.SegmentMs, 10)},
		{"log.segment.bytes", strconv.FormatInt(c.SegmentBytes, 10)},
		{"message.max.bytes", strconv.Itoa(int(c.MaxMessageBytes))},
		{"min.insync.replicas", strconv.Itoa(int(c.MinInsyncReplicas))},
		{"num.partitions", strconv.Itoa(int(c.DefaultPartitions))},
	}
	out := make([]kmsg.DescribeConfigsResponseResourceConfig, 0, len(kv))
	for _, e := range kv {
		v := e.value
		r := kmsg.NewDescribeConfigsResponseResourceConfig()
		r.Name, r.Value, r.ReadOnly = e.name, &v, true
		r.Source = kmsg.ConfigSourceStaticBrokerConfig
		r.ConfigType = kmsg.ConfigTypeString
		out = append(out, r)
	}
	return out
}

// filterConfigs keeps the entries named in names; nil names keeps all.
func filterConfigs(entries []kmsg.DescribeConfigsResponseResourceConfig, names []string) []kmsg.DescribeConfigsResponseResourceConfig {
	if names == nil {
		return entries
	}
	want := map[string]bool{}
	for _, nm := range names {
		want[nm] = true
	}
	var out []kmsg.DescribeConfigsResponseResourceConfig
	for _, e := range entries {
		if want[e.Name] {
			out = append(out, e)
		}
	}
	return out
}
