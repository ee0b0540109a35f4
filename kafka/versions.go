package kafka

import (
	"sort"

	"github.com/twmb/franz-go/pkg/kmsg"
)

type versionRange struct{ min, max int16 }

// supported lists the API keys and versions the broker serves; ApiVersions answers from it.
// Produce starts at v3 and Fetch at v4: older versions carry message format v0/v1, which
// Chronik does not store. Fetch stops at v12 and Produce at v11, the last versions that
// name topics rather than topic ids.
var supported = map[int16]versionRange{
	kmsg.Produce.Int16():              {3, 11},
	kmsg.Fetch.Int16():                {4, 12},
	kmsg.ListOffsets.Int16():          {1, 7},
	kmsg.Metadata.Int16():             {0, 12},
	kmsg.ApiVersions.Int16():          {0, 4},
	kmsg.CreateTopics.Int16():         {0, 7},
	kmsg.DeleteTopics.Int16():         {0, 6},
	kmsg.InitProducerID.Int16():       {0, 5},
	kmsg.OffsetForLeaderEpoch.Int16(): {0, 4},
	kmsg.DescribeConfigs.Int16():      {0, 4},
	kmsg.CreatePartitions.Int16():     {0, 3},
	kmsg.DescribeCluster.Int16():      {0, 1},
	// Consumer groups (classic protocol): groups.go.
	kmsg.OffsetCommit.Int16():    {0, 8},
	kmsg.OffsetFetch.Int16():     {0, 8},
	kmsg.FindCoordinator.Int16(): {0, 4},
	kmsg.JoinGroup.Int16():       {0, 9},
	kmsg.Heartbeat.Int16():       {0, 4},
	kmsg.LeaveGroup.Int16():      {0, 5},
	kmsg.SyncGroup.Int16():       {0, 5},
	kmsg.DescribeGroups.Int16():  {0, 5},
	kmsg.ListGroups.Int16():      {0, 4},
	kmsg.DeleteGroups.Int16():    {0, 2},
	kmsg.OffsetDelete.Int16():    {0, 0},
}

// apiKeys is supported as a sorted ApiVersions list.
func apiKeys() []kmsg.ApiVersionsResponseApiKey {
	keys := make([]kmsg.ApiVersionsResponseApiKey, 0, len(supported))
	for k, v := range supported {
		key := kmsg.NewApiVersionsResponseApiKey()
		key.ApiKey, key.MinVersion, key.MaxVersion = k, v.min, v.max
		keys = append(keys, key)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].ApiKey < keys[j].ApiKey })
	return keys
}
