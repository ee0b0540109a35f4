package ingest

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestDecode(t *testing.T) {
	for _, tc := range []struct {
		form Form
		body string
		want []record // nil when an error is expected
	}{
		{FormJSON, `{"records":[{"value":{"a" : 1}}]}`, []record{{value: []byte(`{"a":1}`), partition: -1}}},
		{FormJSON, `{"records":[{"key":"k","value":null,"partition":3}]}`, []record{{key: []byte(`"k"`), partition: 3}}},
		{FormJSON, ` {"records":[{}], "key_schema":"x", "value_schema_id":7} `, []record{{partition: -1}}},
		{FormBinary, `{"records":[{"key":"AAE=","value":""}]}`, []record{{key: []byte{0, 1}, value: []byte{}, partition: -1}}},
		{FormSimple, `[{"key":"k","value":"v"},{"value":"w","partition":1e1}]`, []record{{key: []byte("k"), value: []byte("v"), partition: -1}, {value: []byte("w"), partition: 10}}},
		{FormSimple, `{"value":"one"}`, []record{{value: []byte("one"), partition: -1}}},
		{FormSimple, `[{"value":"\u00e9\n"}]`, []record{{value: []byte("é\n"), partition: -1}}},
		{FormSimple, `[]`, nil},
		{FormSimple, `[{"value":"a"}`, nil},
		{FormSimple, `[{"value":"a","value":5}]`, nil}, // the last duplicate wins, and is a number
		{FormSimple, `[{"value":"a","partition":null}]`, []record{{value: []byte("a"), partition: -1}}},
		{FormJSON, `{"records":null}`, nil},
		{FormJSON, `{"records":[{"value":1}], "extra":1}`, nil},
	} {
		got, err := decode(tc.form, []byte(tc.body), 100)
		if tc.want == nil {
			if err == nil {
				t.Errorf("%v %s: decoded %+v, want an error", tc.form, tc.body, got)
			}
			continue
		}
		if err != nil || fmt.Sprintf("%q", got) != fmt.Sprintf("%q", tc.want) {
			t.Errorf("%v %s: decode = %q, %v; want %q", tc.form, tc.body, got, err, tc.want)
		}
		for i := range got {
			if (got[i].key == nil) != (tc.want[i].key == nil) || (got[i].value == nil) != (tc.want[i].value == nil) {
				t.Errorf("%v %s: record %d: null-ness of key/value differs", tc.form, tc.body, i)
			}
		}
	}
}

// FuzzDecode: decode never panics; on success it returns one record per element and
// every partition is -1 or a valid one; on failure its error is of a known kind.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{`{"records":[{"key":1,"value":{"a":[1]}}]}`, `[{"value":"x","partition":2}]`, `{"value":"y"}`, `[1,"a",{}]`} {
		f.Add(uint8(FormJSON), []byte(s))
		f.Add(uint8(FormSimple), []byte(s))
		f.Add(uint8(FormBinary), []byte(s))
	}
	f.Fuzz(func(t *testing.T, form uint8, body []byte) {
		fm := Form(form%3 + 1)
		recs, err := decode(fm, body, 1000)
		if err != nil {
			if _, ok := errors.AsType[*invalidError](err); !ok && !errors.Is(err, errMalformed) {
				if _, ok := errors.AsType[*tooManyError](err); !ok {
					t.Fatalf("error of no known kind: %v", err)
				}
			}
			if recs != nil {
				t.Fatalf("records returned with an error")
			}
			return
		}
		if len(recs) == 0 {
			t.Fatalf("success with no records")
		}
		for _, r := range recs {
			if r.partition < -1 {
				t.Fatalf("partition %d", r.partition)
			}
		}
	})
}

// errClass names the kind of a decode error, for comparing two decoders.
func errClass(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, errMalformed):
		return "malformed"
	}
	if _, ok := errors.AsType[*tooManyError](err); ok {
		return "too many"
	}
	if ie, ok := errors.AsType[*invalidError](err); ok {
		idx := make([]int, len(ie.records))
		for i, r := range ie.records {
			idx[i] = r.Index
		}
		return fmt.Sprintf("invalid %v", idx)
	}
	return "unknown: " + err.Error()
}

// caseVariant reports whether body names a field in another case than its own, which
// encoding/json matches and the scanner, like Jackson in REST Proxy, does not.
func caseVariant(body []byte) bool {
	lower := bytes.ToLower(body)
	for _, f := range []string{"key", "value", "partition", "records", "key_schema", "value_schema", "key_schema_id", "value_schema_id"} {
		q := []byte(`"` + f + `"`)
		if bytes.Count(lower, q) != bytes.Count(body, q) {
			return true
		}
	}
	// An escaped letter (\u0041 to \u007a) could spell a field in another case.
	for _, esc := range []string{`\u004`, `\u005`, `\u006`, `\u007`} {
		if bytes.Contains(lower, []byte(esc)) {
			return true
		}
	}
	return false
}

// FuzzScanMatchesReference: the one-pass scanner gives the answer of the encoding/json
// reference model: the same records, or an error of the same kind naming the same
// records.
func FuzzScanMatchesReference(f *testing.F) {
	for _, s := range []string{
		`{"records":[{"key":1,"value":{"a" : [1, 2.5e3, "x\"y"]}},{"value":null,"partition":2}]}`,
		`[{"value":"x","partition":2},{"key":"k\u00e9\ud83d\ude00","value":"\ud800"}]`,
		`{"value":"y"}`, `[1,"a",{}]`, `{"records":[{"value":"aGk="},{"value":"***"}]}`,
		`[{"value":"a","value":5}]`, "[{\"value\":\"\xff\xfe\"}]", `{"records":5,"records":[]}`,
		` [ { "key" : null , "value" : "v" } ] `, `[{"value":"a"}] x`, `[-0.0e+1]`,
	} {
		for form := range 3 {
			f.Add(uint8(form), []byte(s))
		}
	}
	f.Fuzz(func(t *testing.T, form uint8, body []byte) {
		if caseVariant(body) {
			t.Skip()
		}
		fm := Form(form%3 + 1)
		want, werr := decodeRef(fm, body, 20)
		got, gerr := scanBody(fm, body, 20)
		if wc, gc := errClass(werr), errClass(gerr); wc != gc {
			t.Fatalf("%v %q: reference %s (%v), scanner %s (%v)", fm, body, wc, werr, gc, gerr)
		}
		if len(got) != len(want) {
			t.Fatalf("%v %q: %d records, reference %d", fm, body, len(got), len(want))
		}
		for i := range got {
			g, w := got[i], want[i]
			if !bytes.Equal(g.key, w.key) || (g.key == nil) != (w.key == nil) ||
				!bytes.Equal(g.value, w.value) || (g.value == nil) != (w.value == nil) || g.partition != w.partition {
				t.Fatalf("%v %q: record %d = %q/%q/%d, reference %q/%q/%d", fm, body, i, g.key, g.value, g.partition, w.key, w.value, w.partition)
			}
		}
	})
}

func BenchmarkDecode(b *testing.B) {
	var sb strings.Builder
	sb.WriteString("[")
	for i := range 100 {
		if i > 0 {
			sb.WriteString(",")
		}
		sb.WriteString(`{"key":"0123456789abcdef","value":"` + strings.Repeat("a", 256) + `"}`)
	}
	sb.WriteString("]")
	body := []byte(sb.String())
	for _, d := range []struct {
		name string
		fn   func(Form, []byte, int) ([]record, error)
	}{{"scanner", scanBody}, {"encoding-json", decodeRef}} {
		b.Run(d.name, func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				if _, err := d.fn(FormSimple, body, 1000); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
