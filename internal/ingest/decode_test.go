package ingest

import (
	"errors"
	"fmt"
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
