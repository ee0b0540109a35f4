package kafka

// DeleteTopics, versions 0-6.
//
// Deletes topics by name, or from v6 by topic id (KIP-516). The partitions stop serving at
// once; waiting produce answers and parked fetches get UNKNOWN_TOPIC_OR_PARTITION; the
// partition directories are removed.

import (
	"encoding/hex"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func (n *Node) handleDeleteTopics(req *Request, m *kmsg.DeleteTopicsRequest) {
	resp := m.ResponseKind().(*kmsg.DeleteTopicsResponse)
	type target struct {
		name *string
		id   [16]byte
	}
	var targets []target
	if req.Version >= 6 {
		for _, t := range m.Topics {
			targets = append(targets, target{t.Topic, t.TopicID})
		}
	} else {
		for i := range m.TopicNames {
			targets = append(targets, target{name: &m.TopicNames[i]})
		}
	}
	resp.Topics = make([]kmsg.DeleteTopicsResponseTopic, 0, len(targets))
	w := &adminWait{n: n, req: req, resp: resp}
	w.add()
	defer w.done()
	for _, tg := range targets {
		ot := kmsg.NewDeleteTopicsResponseTopic()
		ot.Topic, ot.TopicID = tg.name, tg.id
		var t *topic
		if tg.name != nil {
			t = n.topics[*tg.name]
		} else {
			t = n.topicIDs[tg.id]
		}
		switch {
		case t == nil && tg.name == nil:
			ot.ErrorCode = kerr.UnknownTopicID.Code
		case t == nil:
			ot.ErrorCode = kerr.UnknownTopicOrPartition.Code
		case t.internal():
			err := fmt.Errorf("%w %s: it cannot be deleted", errInternalTopic, t.name)
			ot.ErrorCode, ot.ErrorMessage = errCodeOf(err), errMessage(err)
		case n.cl != nil:
			name := t.name
			ot.Topic, ot.TopicID = &name, t.id
			k := len(resp.Topics)
			w.add()
			err := n.proposeMeta(&metaCommand{DeleteTopic: &metaDeleteTopic{Name: t.name, ID: hex.EncodeToString(t.id[:])}}, func(err error) {
				if err != nil {
					resp.Topics[k].ErrorCode, resp.Topics[k].ErrorMessage = errCodeOf(err), errMessage(err)
				}
				w.done()
			})
			if err != nil {
				w.waiting--
				ot.ErrorCode, ot.ErrorMessage = errCodeOf(err), errMessage(err)
			}
		default:
			name := t.name
			ot.Topic, ot.TopicID = &name, t.id
			if err := n.deleteTopic(t); err != nil {
				err = fmt.Errorf("kafka: delete %s: %w", t.name, err)
				ot.ErrorCode, ot.ErrorMessage = errCodeOf(err), errMessage(err)
			}
		}
		resp.Topics = append(resp.Topics, ot)
	}
}
