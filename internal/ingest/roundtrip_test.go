package ingest

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

// wantRecord is a record the test expects at the partition and offset the ingestor
// answered; nil key or value is a Kafka null.
type wantRecord struct {
	key, value []byte
	partition  int32 // -1: any
}

// checkRoundTrip posts body, expects 200 with one offset per want, consumes the topic
// back and finds each record, with its key and value, at the offset it was answered.
func checkRoundTrip(t *testing.T, brokerAddr, url, ctype, topic, body string, want []wantRecord) {
	t.Helper()
	status, a := postTyped(t, url, ctype, body)
	if status != http.StatusOK || a.ErrorCode != nil || a.Message != "" {
		t.Fatalf("status %d, answer %+v; want 200", status, a)
	}
	if len(a.Offsets) != len(want) {
		t.Fatalf("%d offsets for %d records", len(a.Offsets), len(want))
	}
	type at struct {
		p   int32
		off int64
	}
	got := map[at]*kgo.Record{}
	for _, r := range consumeAll(t, brokerAddr, topic, len(want)) {
		got[at{r.Partition, r.Offset}] = r
	}
	for i, w := range want {
		o := a.Offsets[i]
		if o.Partition == nil || o.Offset == nil || o.ErrorCode != nil || o.Error != nil {
			t.Fatalf("record %d: answer %+v, want a partition and offset only", i, o)
		}
		if w.partition >= 0 && *o.Partition != w.partition {
			t.Errorf("record %d: partition %d, want %d", i, *o.Partition, w.partition)
		}
		r := got[at{*o.Partition, *o.Offset}]
		if r == nil {
			t.Fatalf("record %d: nothing at %d/%d", i, *o.Partition, *o.Offset)
		}
		if (r.Key == nil) != (w.key == nil) || string(r.Key) != string(w.key) {
			t.Errorf("record %d: key %q, want %q", i, r.Key, w.key)
		}
		if (r.Value == nil) != (w.value == nil) || string(r.Value) != string(w.value) {
			t.Errorf("record %d: value %q, want %q", i, r.Value, w.value)
		}
	}
}

func TestRESTJSONRoundTrip(t *testing.T) {
	b := startBroker(t)
	url, _ := startIngest(t, Config{Brokers: []string{b.Addr()}})
	createTopic(t, b.Addr(), "rest-json", 3)
	body := `{"records":[
		{"key":"sanity-1","value":"integrity-check"},
		{"value":{"a": 1, "b": [true, null]}},
		{"key":42,"value":3.5,"partition":2},
		{"key":null,"value":null,"partition":0},
		{"key":{"k":"v"},"value":"caf\u00e9 \"q\"","partition":1}
	],"value_schema_id":null}`
	want := []wantRecord{
		{key: []byte(`"sanity-1"`), value: []byte(`"integrity-check"`), partition: -1},
		{value: []byte(`{"a":1,"b":[true,null]}`), partition: -1},
		{key: []byte(`42`), value: []byte(`3.5`), partition: 2},
		{partition: 0},
		{key: []byte(`{"k":"v"}`), value: []byte(`"caf\u00e9 \"q\""`), partition: 1},
	}
	for _, ct := range []string{"application/vnd.kafka.json.v2+json", "application/json; charset=utf-8"} {
		t.Run(ct, func(t *testing.T) {
			topic := "rest-json-" + strings.Fields(strings.NewReplacer("/", "-", ";", " ", "+", "-").Replace(ct))[0]
			createTopic(t, b.Addr(), topic, 3)
			checkRoundTrip(t, b.Addr(), url+"/topics/"+topic, ct, topic, body, want)
		})
	}
}

func TestRESTBinaryRoundTrip(t *testing.T) {
	b := startBroker(t)
	url, _ := startIngest(t, Config{Brokers: []string{b.Addr()}})
	createTopic(t, b.Addr(), "rest-binary", 2)
	bin := []byte{0, 1, 2, 0xff, '"', '\n'}
	enc := base64.StdEncoding.EncodeToString
	body := fmt.Sprintf(`{"records":[{"key":%q,"value":%q},{"value":%q,"partition":1},{"key":null,"value":""}]}`,
		enc([]byte("k1")), enc(bin), enc([]byte("plain")))
	checkRoundTrip(t, b.Addr(), url+"/topics/rest-binary", "application/vnd.kafka.binary.v2+json", "rest-binary", body, []wantRecord{
		{key: []byte("k1"), value: bin, partition: -1},
		{value: []byte("plain"), partition: 1},
		{value: []byte{}, partition: -1},
	})
}

func TestSimpleRoundTrip(t *testing.T) {
	b := startBroker(t)
	url, _ := startIngest(t, Config{Brokers: []string{b.Addr()}})
	createTopic(t, b.Addr(), "simple", 3)
	checkRoundTrip(t, b.Addr(), url+"/ingest/simple", "application/json", "simple",
		`[{"key":"sanity-1","value":"integrity-check"},{"value":"caf\u00e9 \"q\"","partition":2},{"key":null,"value":null},{"value":""}]`,
		[]wantRecord{
			{key: []byte("sanity-1"), value: []byte("integrity-check"), partition: -1},
			{value: []byte(`café "q"`), partition: 2},
			{partition: -1},
			{value: []byte{}, partition: -1},
		})
	// The report's sanity check: one object, not an array.
	createTopic(t, b.Addr(), "simple-one", 3)
	checkRoundTrip(t, b.Addr(), url+"/ingest/simple-one", "", "simple-one",
		`{"key": "sanity-1", "value": "integrity-check"}`,
		[]wantRecord{{key: []byte("sanity-1"), value: []byte("integrity-check"), partition: -1}})
}

// TestKeyedRecordsKeepOrder: records with one key land in one partition in request
// order, across requests, as the load generator's verification relies on.
func TestKeyedRecordsKeepOrder(t *testing.T) {
	b := startBroker(t)
	url, _ := startIngest(t, Config{Brokers: []string{b.Addr()}})
	createTopic(t, b.Addr(), "ordered", 3)
	const requests, per = 5, 40
	for q := range requests {
		var sb strings.Builder
		sb.WriteString("[")
		for i := range per {
			if i > 0 {
				sb.WriteString(",")
			}
			fmt.Fprintf(&sb, `{"key":"k%d","value":"%d"}`, i%4, q*per+i)
		}
		sb.WriteString("]")
		if status, a := postTyped(t, url+"/ingest/ordered", "application/json", sb.String()); status != http.StatusOK {
			t.Fatalf("request %d: %d %+v", q, status, a)
		}
	}
	last := map[string]int{}
	where := map[string]int32{}
	for _, r := range consumeAll(t, b.Addr(), "ordered", requests*per) {
		var v int
		if _, err := fmt.Sscan(string(r.Value), &v); err != nil {
			t.Fatal(err)
		}
		k := string(r.Key)
		if p, ok := where[k]; ok && p != r.Partition {
			t.Errorf("key %s in partitions %d and %d", k, p, r.Partition)
		}
		where[k] = r.Partition
		if prev, ok := last[k]; ok && v <= prev {
			t.Errorf("key %s: value %d after %d", k, v, prev)
		}
		last[k] = v
	}
}
