package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
)

// kcat (the librdkafka command-line client) is an external tool: scripts/install-test-deps.sh
// installs it. Without it these tests skip, or fail when the CI environment variable is set.

const (
	// kcatTimeout bounds every kcat invocation.
	kcatTimeout = 60 * time.Second
	// kcatPartitions is the partition count of every topic the kcat tests create.
	kcatPartitions = 3
	// kcatRecords is how many records one kcat -P invocation produces.
	kcatRecords = 200
)

// kcatCodecs are the values of kcat's -z (librdkafka's compression.codec).
var kcatCodecs = []string{"none", "gzip", "snappy", "lz4", "zstd"}

// kcatPath returns kcat's path. When kcat is not installed it fails the test under CI
// (environment variable CI set) and skips it elsewhere.
func kcatPath(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("kcat")
	if err != nil {
		msg := "kcat is not on PATH; run scripts/install-test-deps.sh (as root) to install it"
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return p
}

// kcatEnv is the environment kcat runs in: without any kcat config file of the user's,
// so that only the test's flags apply.
func kcatEnv(t testing.TB) []string {
	t.Helper()
	env := []string{"HOME=" + t.TempDir()}
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		switch name {
		case "HOME", "KCAT_CONFIG", "KAFKACAT_CONFIG":
			continue
		}
		env = append(env, kv)
	}
	return env
}

// kcat runs the kcat binary with args (after the common ones: broker addr, no config
// file, quiet) and stdin, bounded by kcatTimeout, and returns its standard output. A
// non-zero exit or anything on standard error fails the test.
func kcat(t testing.TB, bin, addr, stdin string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), kcatTimeout)
	defer cancel()
	args = append([]string{"-b", addr, "-F", "none", "-q", "-m", "10"}, args...)
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = kcatEnv(t)
	cmd.Stdin = strings.NewReader(stdin)
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("kcat %s: timed out after %v\nstderr:\n%s", strings.Join(args, " "), kcatTimeout, stderr.String())
	}
	if err != nil || stderr.Len() > 0 {
		t.Fatalf("kcat %s: %v\nstderr:\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String()
}

// kcatCreateTopic creates topic with kcatPartitions partitions (kcat cannot create one).
func kcatCreateTopic(t testing.TB, addr, topic string) {
	t.Helper()
	adm := kadm.NewClient(newClient(t, addr))
	resp, err := adm.CreateTopic(testCtx(t, 30*time.Second), kcatPartitions, 1, nil, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		t.Fatalf("create topic %s: %v", topic, err)
	}
}

// kcatInput is n records for kcat -P -K: as "key:value" lines. Record i of batch tag has
// key <tag>-key-<i> and a distinct value; neither holds the ':' that separates fields in
// the consumer's output.
func kcatInput(tag string, n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "%s-key-%04d:%s-value-%04d-%s\n", tag, i, tag, i, strings.Repeat("chronik ", 8))
	}
	return b.String()
}

// kcatRecord is one line of the consumer's '%k:%s:%p:%o' output.
type kcatRecord struct {
	key, value string
	partition  int32
	offset     int64
}

// kcatConsume reads topic from the beginning of every partition to its end.
func kcatConsume(t testing.TB, bin, addr, topic string) []kcatRecord {
	t.Helper()
	out := kcat(t, bin, addr, "", "-C", "-t", topic, "-o", "beginning", "-e", "-f", `%k:%s:%p:%o\n`)
	var recs []kcatRecord
	for line := range strings.Lines(out) {
		f := strings.Split(strings.TrimSuffix(line, "\n"), ":")
		if len(f) != 4 {
			t.Fatalf("consumer output line %q: want key:value:partition:offset", line)
		}
		p, err := strconv.ParseInt(f[2], 10, 32)
		if err != nil {
			t.Fatalf("consumer output line %q: %v", line, err)
		}
		o, err := strconv.ParseInt(f[3], 10, 64)
		if err != nil {
			t.Fatalf("consumer output line %q: %v", line, err)
		}
		recs = append(recs, kcatRecord{f[0], f[1], int32(p), o})
	}
	return recs
}

// checkKcatRecords verifies that read holds every line of input exactly once with its
// value, that each partition's offsets run 0, 1, 2, ... without a gap in the order kcat
// printed them, and that records keep their input order within a partition.
func checkKcatRecords(t testing.TB, input string, read []kcatRecord) {
	t.Helper()
	checkKcatRecordsGaps(t, input, read, false)
}

// checkKcatRecordsGaps is checkKcatRecords; with gaps, offsets may skip (a cluster's
// partitions hold a control batch per leader change, which consumers skip).
func checkKcatRecordsGaps(t testing.TB, input string, read []kcatRecord, gaps bool) {
	t.Helper()
	type want struct {
		value string
		index int
	}
	wants := map[string]want{}
	i := 0
	for line := range strings.Lines(input) {
		k, v, _ := strings.Cut(strings.TrimSuffix(line, "\n"), ":")
		wants[k] = want{v, i}
		i++
	}
	seen := map[string]bool{}
	next := map[int32]int64{}
	lastIndex := map[int32]int{}
	for _, r := range read {
		if r.partition < 0 || r.partition >= kcatPartitions {
			t.Fatalf("record %s read from partition %d", r.key, r.partition)
		}
		if r.offset != next[r.partition] && !(gaps && r.offset > next[r.partition]) {
			t.Fatalf("partition %d: read offset %d, want %d (records are read in order, each once, without gaps)", r.partition, r.offset, next[r.partition])
		}
		next[r.partition] = r.offset + 1
		w, ok := wants[r.key]
		if !ok {
			t.Fatalf("record %d/%d has key %q, which was never produced", r.partition, r.offset, r.key)
		}
		if seen[r.key] {
			t.Fatalf("record %s read twice, again at %d/%d", r.key, r.partition, r.offset)
		}
		seen[r.key] = true
		if w.value != r.value {
			t.Fatalf("record %s at %d/%d: value %q, produced %q", r.key, r.partition, r.offset, r.value, w.value)
		}
		if prev, ok := lastIndex[r.partition]; ok && w.index < prev {
			t.Fatalf("partition %d: input line %d stored after line %d", r.partition, w.index, prev)
		}
		lastIndex[r.partition] = w.index
	}
	if len(seen) != len(wants) {
		t.Fatalf("read %d of %d produced records", len(seen), len(wants))
	}
}

// kcatProduce produces input to topic with kcat -P, keys split off at ':', compressed
// with codec, acknowledged by all in-sync replicas. Extra args are appended.
func kcatProduce(t testing.TB, bin, addr, topic, codec, input string, extra ...string) {
	t.Helper()
	args := append([]string{"-P", "-t", topic, "-z", codec, "-K:", "-X", "acks=all", "-X", "linger.ms=5",
		"-X", "message.timeout.ms=30000"}, extra...)
	if out := kcat(t, bin, addr, input, args...); out != "" {
		t.Fatalf("kcat -P wrote %q", out)
	}
}

func TestKcatProduceConsumeEveryCodec(t *testing.T) {
	bin := kcatPath(t)
	b := startBroker(t)
	for _, codec := range kcatCodecs {
		t.Run(codec, func(t *testing.T) {
			topic := "kcat-" + codec
			kcatCreateTopic(t, b.Addr(), topic)
			input := kcatInput(codec, kcatRecords)
			kcatProduce(t, bin, b.Addr(), topic, codec, input)
			checkKcatRecords(t, input, kcatConsume(t, bin, b.Addr(), topic))
		})
	}
	t.Run("idempotent", func(t *testing.T) {
		const topic = "kcat-idempotent"
		kcatCreateTopic(t, b.Addr(), topic)
		input := kcatInput("idem", kcatRecords)
		kcatProduce(t, bin, b.Addr(), topic, "zstd", input, "-X", "enable.idempotence=true")
		checkKcatRecords(t, input, kcatConsume(t, bin, b.Addr(), topic))
	})
}

// kcatMetadata is the part of kcat -L -J output the tests check.
type kcatMetadata struct {
	ControllerID int32 `json:"controllerid"`
	Brokers      []struct {
		ID   int32  `json:"id"`
		Name string `json:"name"`
	} `json:"brokers"`
	Topics []struct {
		Topic      string `json:"topic"`
		Error      string `json:"error"`
		Partitions []struct {
			Partition int32  `json:"partition"`
			Leader    int32  `json:"leader"`
			Error     string `json:"error"`
			Replicas  []struct {
				ID int32 `json:"id"`
			} `json:"replicas"`
			ISRs []struct {
				ID int32 `json:"id"`
			} `json:"isrs"`
		} `json:"partitions"`
	} `json:"topics"`
}

func TestKcatMetadata(t *testing.T) {
	bin := kcatPath(t)
	b := startBroker(t)
	const topic = "kcat-metadata"
	kcatCreateTopic(t, b.Addr(), topic)
	out := kcat(t, bin, b.Addr(), "", "-L", "-J")
	var md kcatMetadata
	if err := json.Unmarshal([]byte(out), &md); err != nil {
		t.Fatalf("kcat -L -J output %q: %v", out, err)
	}
	if len(md.Brokers) != 1 || md.Brokers[0].ID != 1 || md.Brokers[0].Name != b.Addr() || md.ControllerID != 1 {
		t.Fatalf("brokers %+v, controller %d; want broker 1 at %s, controller 1", md.Brokers, md.ControllerID, b.Addr())
	}
	found := false
	for _, tp := range md.Topics {
		if tp.Topic != topic {
			continue
		}
		found = true
		if tp.Error != "" || len(tp.Partitions) != kcatPartitions {
			t.Fatalf("topic %s: error %q, %d partitions; want none, %d", topic, tp.Error, len(tp.Partitions), kcatPartitions)
		}
		for _, p := range tp.Partitions {
			if p.Leader != 1 || len(p.Replicas) != 1 || p.Replicas[0].ID != 1 || len(p.ISRs) != 1 || p.ISRs[0].ID != 1 {
				t.Fatalf("partition %+v: want leader 1, replicas [1], isrs [1]", p)
			}
		}
	}
	if !found {
		t.Fatalf("topic %s missing from kcat -L -J: %s", topic, out)
	}
}

// kcatOffsetLine is one line of kcat -Q output: "<topic> [<partition>] offset <offset>".
var kcatOffsetLine = regexp.MustCompile(`^(\S+) \[(\d+)\] offset (-?\d+)$`)

// kcatQuery asks kcat -Q for the offset of timestamp tsMs (or -1 latest, -2 earliest) on
// every partition of topic, and returns the offsets by partition.
func kcatQuery(t testing.TB, bin, addr, topic string, tsMs int64) map[int32]int64 {
	t.Helper()
	args := []string{"-Q"}
	for p := range kcatPartitions {
		args = append(args, "-t", fmt.Sprintf("%s:%d:%d", topic, p, tsMs))
	}
	out := kcat(t, bin, addr, "", args...)
	offsets := map[int32]int64{}
	for line := range strings.Lines(out) {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		m := kcatOffsetLine.FindStringSubmatch(line)
		if m == nil || m[1] != topic {
			t.Fatalf("kcat -Q output line %q: want %q [<partition>] offset <offset>", line, topic)
		}
		p, err := strconv.ParseInt(m[2], 10, 32)
		if err != nil {
			t.Fatal(err)
		}
		o, err := strconv.ParseInt(m[3], 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		offsets[int32(p)] = o
	}
	if len(offsets) != kcatPartitions {
		t.Fatalf("kcat -Q answered for %d partitions, want %d:\n%s", len(offsets), kcatPartitions, out)
	}
	return offsets
}

func TestKcatQueryOffsets(t *testing.T) {
	bin := kcatPath(t)
	b := startBroker(t)
	const topic = "kcat-offsets"
	kcatCreateTopic(t, b.Addr(), topic)

	// Two batches with a gap between them: every record of the first has a timestamp
	// before mid, every record of the second one at or after it (kcat stamps records with
	// the wall clock when it reads them).
	start := time.Now().Add(-time.Second).UnixMilli()
	first, second := kcatInput("first", kcatRecords), kcatInput("second", kcatRecords)
	kcatProduce(t, bin, b.Addr(), topic, "lz4", first)
	time.Sleep(20 * time.Millisecond)
	mid := time.Now().UnixMilli()
	time.Sleep(20 * time.Millisecond)
	kcatProduce(t, bin, b.Addr(), topic, "lz4", second)

	read := kcatConsume(t, bin, b.Addr(), topic)
	checkKcatRecords(t, first+second, read)
	end := map[int32]int64{}
	firstOfSecond := map[int32]int64{}
	for _, r := range read {
		end[r.partition] = r.offset + 1
		if _, ok := firstOfSecond[r.partition]; !ok && strings.HasPrefix(r.key, "second-") {
			firstOfSecond[r.partition] = r.offset
		}
	}

	for _, q := range []struct {
		name string
		tsMs int64
		want func(p int32) int64
	}{
		{"earliest", -2, func(int32) int64 { return 0 }},
		{"latest", -1, func(p int32) int64 { return end[p] }},
		{"before the records", start, func(p int32) int64 {
			if end[p] == 0 {
				return -1
			}
			return 0
		}},
		{"between the batches", mid, func(p int32) int64 {
			if o, ok := firstOfSecond[p]; ok {
				return o
			}
			return -1
		}},
		{"in the future", time.Now().Add(time.Hour).UnixMilli(), func(int32) int64 { return -1 }},
	} {
		got := kcatQuery(t, bin, b.Addr(), topic, q.tsMs)
		for p := range int32(kcatPartitions) {
			if want := q.want(p); got[p] != want {
				t.Errorf("%s (%d): partition %d at offset %d, want %d", q.name, q.tsMs, p, got[p], want)
			}
		}
	}
}
