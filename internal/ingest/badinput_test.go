package ingest

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
)

// TestBadInput: each refused request gets its status, its error code and a message, the
// records at fault by index, and nothing is written to the topic.
func TestBadInput(t *testing.T) {
	b := startBroker(t)
	url, _ := startIngest(t, Config{Brokers: []string{b.Addr()}, MaxBodyBytes: 4096, MaxRecords: 50})
	const topic = "bad"
	createTopic(t, b.Addr(), topic, 3)
	rest, simple := url+"/topics/"+topic, url+"/ingest/"+topic
	const restCT, jsonCT = "application/vnd.kafka.json.v2+json", "application/json"
	many := "[" + strings.Repeat(`{"value":"x"},`, 50) + `{"value":"x"}]`

	for _, tc := range []struct {
		name, url, ctype, body string
		status, code           int
		invalid                []int // indexes of records at fault
	}{
		{"malformed rest", rest, restCT, `{"records":[{"value":1}`, 400, codeMalformed, nil},
		{"malformed simple", simple, jsonCT, `[{"value":"a"},]`, 400, codeMalformed, nil},
		{"empty body", simple, jsonCT, ``, 400, codeMalformed, nil},
		{"trailing garbage", simple, jsonCT, `[{"value":"a"}] x`, 400, codeMalformed, nil},
		{"records missing", rest, restCT, `{"recs":[]}`, 422, codeInvalid, nil},
		{"records not an array", rest, restCT, `{"records":{"value":1}}`, 422, codeInvalid, nil},
		{"records empty", rest, restCT, `{"records":[]}`, 422, codeInvalid, nil},
		{"rest body an array", rest, restCT, `[{"value":1}]`, 422, codeInvalid, nil},
		{"simple body a string", simple, jsonCT, `"value"`, 422, codeInvalid, nil},
		{"simple value a number", simple, jsonCT, `[{"value":"ok"},{"value":12},{"value":"ok"},{"key":true,"value":"a"}]`, 422, codeInvalid, []int{1, 3}},
		{"simple value an object", simple, jsonCT, `[{"value":{"a":1}}]`, 422, codeInvalid, []int{0}},
		{"record not an object", rest, restCT, `{"records":[{"value":1},"v",7]}`, 422, codeInvalid, []int{1, 2}},
		{"unknown field", simple, jsonCT, `[{"value":"a"},{"vaule":"a"}]`, 422, codeInvalid, []int{1}},
		{"partition a string", rest, restCT, `{"records":[{"value":1,"partition":"0"}]}`, 422, codeInvalid, []int{0}},
		{"partition negative", rest, restCT, `{"records":[{"value":1,"partition":-1}]}`, 422, codeInvalid, []int{0}},
		{"partition fractional", rest, restCT, `{"records":[{"value":1,"partition":1.5}]}`, 422, codeInvalid, []int{0}},
		{"partition too big", simple, jsonCT, `[{"value":"a","partition":2147483648}]`, 422, codeInvalid, []int{0}},
		{"binary not base64", rest, "application/vnd.kafka.binary.v2+json", `{"records":[{"value":"aGk="},{"value":"***"}]}`, 422, codeInvalid, []int{1}},
		{"binary value a number", rest, "application/vnd.kafka.binary.v2+json", `{"records":[{"value":5}]}`, 422, codeInvalid, []int{0}},
		{"body too large", simple, jsonCT, `[{"value":"` + strings.Repeat("x", 5000) + `"}]`, 413, codeBodyTooLarge, nil},
		{"too many records", simple, jsonCT, many, 413, codeTooMany, nil},
		{"avro", rest, "application/vnd.kafka.avro.v2+json", `{"records":[{"value":1}]}`, 415, codeMediaType, nil},
		{"text", simple, "text/plain", `[{"value":"a"}]`, 415, codeMediaType, nil},
		{"bad topic name", url + "/topics/bad%20name", restCT, `{"records":[{"value":1}]}`, 400, codeTopicName, nil},
		{"topic name too long", url + "/ingest/" + strings.Repeat("t", 250), jsonCT, `[{"value":"a"}]`, 400, codeTopicName, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, a := postTyped(t, tc.url, tc.ctype, tc.body)
			if status != tc.status || a.ErrorCode == nil || *a.ErrorCode != tc.code || a.Message == "" {
				t.Fatalf("status %d, answer %+v; want %d with error_code %d and a message", status, a, tc.status, tc.code)
			}
			var got []int
			for _, r := range a.InvalidRecords {
				got = append(got, r.Index)
				if r.Error == "" {
					t.Errorf("record %d: no error text", r.Index)
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.invalid) && !(len(got) == 0 && len(tc.invalid) == 0) {
				t.Errorf("invalid records %v (%+v), want %v", got, a.InvalidRecords, tc.invalid)
			}
			if a.Offsets != nil {
				t.Errorf("a refused request answered offsets: %+v", a.Offsets)
			}
		})
	}
	for p, end := range endOffsets(t, b.Addr(), topic) {
		if end != 0 {
			t.Errorf("partition %d has %d records after refused requests", p, end)
		}
	}
}

// TestBodyTooLargeChunked: a body without Content-Length is cut at the limit.
func TestBodyTooLargeChunked(t *testing.T) {
	b := startBroker(t)
	url, _ := startIngest(t, Config{Brokers: []string{b.Addr()}, MaxBodyBytes: 1024})
	body := io.MultiReader(strings.NewReader(`[{"value":"`), strings.NewReader(strings.Repeat("x", 4096)), strings.NewReader(`"}]`))
	req, err := http.NewRequestWithContext(testCtx(t, 10*time.Second), http.MethodPost, url+"/ingest/chunked", io.NopCloser(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if status, m := do(t, req); status != 413 || m["error_code"] != float64(codeBodyTooLarge) {
		t.Fatalf("status %d, answer %v; want 413", status, m)
	}
}

func TestMethodNotAllowed(t *testing.T) {
	b := startBroker(t)
	url, _ := startIngest(t, Config{Brokers: []string{b.Addr()}})
	req, err := http.NewRequestWithContext(testCtx(t, 10*time.Second), http.MethodGet, url+"/topics/x", nil)
	if err != nil {
		t.Fatal(err)
	}
	if status, m := do(t, req); status != 405 || m["error_code"] != float64(codeMethod) {
		t.Fatalf("status %d, answer %v; want 405", status, m)
	}
}

// TestUnknownTopic: with auto-creation off, a topic that does not exist is answered 404
// with error 40401 for every record, at once, and is not created; once created, it is
// served within a second.
func TestUnknownTopic(t *testing.T) {
	b := startBroker(t)
	url, _ := startIngest(t, Config{Brokers: []string{b.Addr()}})
	for _, tc := range []struct{ url, ctype, body string }{
		{url + "/topics/nope", "application/vnd.kafka.json.v2+json", `{"records":[{"value":1},{"value":2}]}`},
		{url + "/ingest/nope", "application/json", `[{"value":"a"},{"value":"b"}]`},
		{url + "/ingest/nope2", "application/json", `[{"value":"a"},{"value":"b"}]`},
	} {
		start := time.Now()
		status, a := postTyped(t, tc.url, tc.ctype, tc.body)
		if status != 404 || a.ErrorCode == nil || *a.ErrorCode != codeTopic || len(a.Offsets) != 2 {
			t.Fatalf("%s: status %d, answer %+v; want 404, 40401, two offsets", tc.url, status, a)
		}
		if d := time.Since(start); d > time.Second {
			t.Errorf("%s: answered in %v, want at once", tc.url, d)
		}
		for i, o := range a.Offsets {
			if o.ErrorCode == nil || *o.ErrorCode != codeTopic || o.Error == nil || o.Partition != nil || o.Offset != nil {
				t.Errorf("record %d: %+v, want error 40401 and no offset", i, o)
			}
		}
	}
	adm := kadm.NewClient(newClient(t, b.Addr()))
	topics, err := adm.ListTopics(testCtx(t, 10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if topics.Has("nope") || topics.Has("nope2") {
		t.Errorf("an unknown topic was created: %v", topics.Names())
	}

	createTopic(t, b.Addr(), "nope", 1)
	waitFor(t, func() bool {
		status, _ := postTyped(t, url+"/ingest/nope", "application/json", `[{"value":"late"}]`)
		return status == 200
	})
}

// TestAutoCreate: with AutoCreateTopics the broker creates the topic on first use.
func TestAutoCreate(t *testing.T) {
	b := startBroker(t)
	url, _ := startIngest(t, Config{Brokers: []string{b.Addr()}, AutoCreateTopics: true})
	checkRoundTrip(t, b.Addr(), url+"/ingest/fresh", "application/json", "fresh", `[{"value":"a"}]`,
		[]wantRecord{{value: []byte("a"), partition: -1}})
}

// TestMissingPartition: a record for a partition the topic lacks fails alone and the
// answer says so (207); when every record does, the answer is 404 with 40402.
func TestMissingPartition(t *testing.T) {
	b := startBroker(t)
	url, _ := startIngest(t, Config{Brokers: []string{b.Addr()}})
	createTopic(t, b.Addr(), "three", 3)
	status, a := postTyped(t, url+"/ingest/three", "application/json", `[{"value":"a","partition":0},{"value":"b","partition":7},{"value":"c","partition":2}]`)
	if status != http.StatusMultiStatus || a.ErrorCode != nil || !strings.Contains(a.Message, "1 of 3 records failed") {
		t.Fatalf("status %d, answer %+v; want 207 naming one failed record", status, a)
	}
	if o := a.Offsets[1]; o.ErrorCode == nil || *o.ErrorCode != codePartition || !strings.Contains(*o.Error, "partition 7") {
		t.Errorf("record 1: %+v, want 40402 naming partition 7", o)
	}
	for _, i := range []int{0, 2} {
		if o := a.Offsets[i]; o.ErrorCode != nil || o.Offset == nil || *o.Offset != 0 {
			t.Errorf("record %d: %+v, want written at offset 0", i, o)
		}
	}
	if ends := endOffsets(t, b.Addr(), "three"); ends[0] != 1 || ends[1] != 0 || ends[2] != 1 {
		t.Errorf("end offsets %v, want 1, 0, 1", ends)
	}

	status, a = postTyped(t, url+"/ingest/three", "application/json", `[{"value":"a","partition":3}]`)
	if status != 404 || a.ErrorCode == nil || *a.ErrorCode != codePartition {
		t.Fatalf("status %d, answer %+v; want 404 with 40402", status, a)
	}
}

// TestBusy: a request that finds the in-flight budget full waits MaxWait, then gets 429
// with Retry-After; once the budget frees, requests pass again.
func TestBusy(t *testing.T) {
	b := startBroker(t)
	url, _ := startIngest(t, Config{Brokers: []string{b.Addr()}, MaxBodyBytes: 1000, MaxInflightBytes: 1000, MaxWait: 200 * time.Millisecond})
	createTopic(t, b.Addr(), "busy", 1)

	// A slow request announces 1000 bytes and sends them only when told.
	pr, pw := io.Pipe()
	slow, err := http.NewRequestWithContext(testCtx(t, 10*time.Second), http.MethodPost, url+"/ingest/busy", pr)
	if err != nil {
		t.Fatal(err)
	}
	slow.ContentLength = 1000
	slow.Header.Set("Content-Type", "application/json")
	slowDone := make(chan int, 1)
	go func() {
		resp, err := http.DefaultClient.Do(slow)
		if err != nil {
			slowDone <- -1
			return
		}
		resp.Body.Close()
		slowDone <- resp.StatusCode
	}()
	head := `[{"value":"`
	if _, err := pw.Write([]byte(head)); err != nil {
		t.Fatal(err)
	}
	// Wait until the slow request holds the budget.
	waitFor(t, func() bool {
		_, m := getText(t, url+"/metrics")
		return strings.Contains(m, "chronik_ingest_inflight_bytes 1000")
	})

	req, err := http.NewRequestWithContext(testCtx(t, 10*time.Second), http.MethodPost, url+"/ingest/busy", strings.NewReader(`[{"value":"b"}]`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("status %d, Retry-After %q; want 429 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}

	rest := strings.Repeat("x", 1000-len(head)-len(`"}]`)) + `"}]`
	if _, err := pw.Write([]byte(rest)); err != nil {
		t.Fatal(err)
	}
	if err := pw.Close(); err != nil {
		t.Fatal(err)
	}
	if s := <-slowDone; s != http.StatusOK {
		t.Fatalf("slow request: %d", s)
	}
	if status, a := postTyped(t, url+"/ingest/busy", "application/json", `[{"value":"c"}]`); status != 200 {
		t.Fatalf("after the budget freed: %d %+v", status, a)
	}
	if ends := endOffsets(t, b.Addr(), "busy"); ends[0] != 2 {
		t.Errorf("end offset %d, want 2 (the refused request wrote nothing)", ends[0])
	}
}

func TestMetricsAndHealthz(t *testing.T) {
	b := startBroker(t)
	url, _ := startIngest(t, Config{Brokers: []string{b.Addr()}})
	createTopic(t, b.Addr(), "m", 1)
	if status, _ := postTyped(t, url+"/ingest/m", "application/json", `[{"value":"abc"},{"value":"de"}]`); status != 200 {
		t.Fatal(status)
	}
	if status, _ := postTyped(t, url+"/ingest/m", "application/json", `[{"value":"ok"},{"value":1}]`); status != 422 {
		t.Fatal(status)
	}
	status, text := getText(t, url+"/metrics")
	if status != 200 {
		t.Fatal(status)
	}
	for _, want := range []string{
		`chronik_ingest_requests_total{code="200",form="simple"} 1`,
		`chronik_ingest_requests_total{code="422",form="simple"} 1`,
		`chronik_ingest_records_total{result="ok"} 2`,
		`chronik_ingest_records_total{result="rejected"} 2`,
		`chronik_ingest_record_bytes_total 5`,
		`chronik_ingest_request_duration_seconds_count{class="2xx",form="simple"} 1`,
		`chronik_ingest_inflight_bytes 0`,
		`process_cpu_seconds_total`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if status, m := getJSON(t, url+"/healthz"); status != 200 || m["status"] != "ok" {
		t.Errorf("/healthz: %d %v", status, m)
	}

	// An ingestor whose broker is gone is unhealthy.
	b2 := startBroker(t)
	url2, _ := startIngest(t, Config{Brokers: []string{b2.Addr()}})
	if err := b2.Close(); err != nil {
		t.Fatal(err)
	}
	if status, m := getJSON(t, url2+"/healthz"); status != 503 || m["status"] != "unavailable" {
		t.Errorf("/healthz without a broker: %d %v", status, m)
	}
}

func getText(t testing.TB, url string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(testCtx(t, 10*time.Second), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(raw)
}

func getJSON(t testing.TB, url string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequestWithContext(testCtx(t, 10*time.Second), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	return do(t, req)
}

// waitFor polls cond for up to 10 s.
func waitFor(t testing.TB, cond func() bool) {
	t.Helper()
	ctx := testCtx(t, 10*time.Second)
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatal("condition not met in 10s")
		case <-time.After(10 * time.Millisecond):
		}
	}
}
