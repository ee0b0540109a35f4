package ingest

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"mime"
	"strings"
)

// Form is the shape of a request body.
type Form int

// The request forms.
const (
	// FormJSON is the REST Proxy v2 form with JSON embedded data: a key or value is any
	// JSON, written to Kafka as its compact JSON text (a string keeps its quotes).
	FormJSON Form = iota + 1
	// FormBinary is the REST Proxy v2 form with binary embedded data: a key or value is
	// a base64 string, written as the bytes it encodes.
	FormBinary
	// FormSimple is the plain batch form: a JSON array of {"key", "value", "partition"}
	// objects (or one such object), where key and value are strings written as their
	// UTF-8 bytes.
	FormSimple
)

// String is the form's name as it appears in metrics labels.
func (f Form) String() string {
	switch f {
	case FormJSON:
		return "rest-json"
	case FormBinary:
		return "rest-binary"
	case FormSimple:
		return "simple"
	}
	return fmt.Sprintf("form(%d)", int(f))
}

// record is one decoded record of a request. A nil key or value is a Kafka null.
type record struct {
	key, value []byte
	// partition is the partition asked for, or -1 to let the partitioner choose.
	partition int32
}

// recordError says why the record at index was refused.
type recordError struct {
	Index int    `json:"index"`
	Error string `json:"error"`
}

// errMalformed marks a body that is not one JSON document: 400.
var errMalformed = errors.New("malformed JSON")

// invalidError is a body that is JSON but not of the form: 422. Records lists the records
// at fault, when the fault is in records.
type invalidError struct {
	msg     string
	records []recordError
}

func (e *invalidError) Error() string { return e.msg }

// restContentTypes maps the Content-Type media types of POST /topics/{topic} to forms.
// Types naming an embedded format Chronik does not serve (avro, protobuf, jsonschema)
// are refused with 415.
var restContentTypes = map[string]Form{
	"application/vnd.kafka.json.v2+json":   FormJSON,
	"application/vnd.kafka.binary.v2+json": FormBinary,
	"application/vnd.kafka.v2+json":        FormJSON,
	"application/vnd.kafka+json":           FormJSON,
	"application/json":                     FormJSON,
}

// restForm is the form of a POST /topics/{topic} with Content-Type ct; ok is false when
// the type is not served. A missing Content-Type is taken as application/json.
func restForm(ct string) (Form, bool) {
	if ct == "" {
		return FormJSON, true
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return 0, false
	}
	f, ok := restContentTypes[strings.ToLower(mt)]
	return f, ok
}

// simpleContentType reports whether ct is served by POST /ingest/{topic}.
func simpleContentType(ct string) bool {
	if ct == "" {
		return true
	}
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && strings.EqualFold(mt, "application/json")
}

// wireRecord is one element of "records" (REST) or of the array (simple). A field that
// is absent stays nil; one that is null is the four bytes "null".
type wireRecord struct {
	Key       json.RawMessage `json:"key"`
	Value     json.RawMessage `json:"value"`
	Partition json.RawMessage `json:"partition"`
}

// restBody is a REST Proxy v2 produce request. The schema fields are accepted and
// ignored, as REST Proxy does for the json and binary embedded formats.
type restBody struct {
	Records       *[]json.RawMessage `json:"records"`
	KeySchema     json.RawMessage    `json:"key_schema"`
	ValueSchema   json.RawMessage    `json:"value_schema"`
	KeySchemaID   json.RawMessage    `json:"key_schema_id"`
	ValueSchemaID json.RawMessage    `json:"value_schema_id"`
}

// decode parses body in form f into at most maxRecords records. The error wraps
// errMalformed (400), is an *invalidError (422), or is a *tooManyError (413); on error
// no record is returned, so nothing of a refused request is produced.
func decode(f Form, body []byte, maxRecords int) ([]record, error) {
	raws, err := split(f, body)
	if err != nil {
		return nil, err
	}
	if len(raws) == 0 {
		return nil, &invalidError{msg: "no records"}
	}
	if len(raws) > maxRecords {
		return nil, &tooManyError{n: len(raws), max: maxRecords}
	}
	recs := make([]record, len(raws))
	var bad []recordError
	for i, raw := range raws {
		r, err := decodeRecord(f, raw)
		if err != nil {
			bad = append(bad, recordError{Index: i, Error: err.Error()})
			continue
		}
		recs[i] = r
	}
	if len(bad) > 0 {
		return nil, &invalidError{
			msg:     fmt.Sprintf("%d of %d records are invalid; nothing was written", len(bad), len(raws)),
			records: bad,
		}
	}
	return recs, nil
}

// tooManyError is a request with more records than the limit: 413.
type tooManyError struct{ n, max int }

func (e *tooManyError) Error() string {
	return fmt.Sprintf("%d records, more than the limit of %d per request; nothing was written", e.n, e.max)
}

// split checks that body is one JSON document of form f and returns its records, still
// encoded.
func split(f Form, body []byte) ([]json.RawMessage, error) {
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	if !json.Valid(trimmed) {
		return nil, malformed(body)
	}
	if f == FormSimple {
		switch trimmed[0] {
		case '[':
			var raws []json.RawMessage
			if err := json.Unmarshal(trimmed, &raws); err != nil {
				return nil, fmt.Errorf("%w: %v", errMalformed, err)
			}
			return raws, nil
		case '{':
			return []json.RawMessage{trimmed}, nil
		}
		return nil, &invalidError{msg: "body: want an array of records or one record object, got " + kind(trimmed)}
	}
	if trimmed[0] != '{' {
		return nil, &invalidError{msg: `body: want an object with "records", got ` + kind(trimmed)}
	}
	var rb restBody
	if err := strictUnmarshal(trimmed, &rb); err != nil {
		return nil, &invalidError{msg: "body: " + err.Error()}
	}
	if rb.Records == nil {
		return nil, &invalidError{msg: `body: "records" is required`}
	}
	return *rb.Records, nil
}

// malformed describes where body stops being JSON.
func malformed(body []byte) error {
	var v any
	err := json.Unmarshal(body, &v)
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Errorf("%w at byte %d: %v", errMalformed, se.Offset, se)
	}
	if err == nil {
		err = errors.New("empty body")
	}
	return fmt.Errorf("%w: %v", errMalformed, err)
}

// strictUnmarshal decodes data into v, refusing unknown fields and type mismatches.
func strictUnmarshal(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

// decodeRecord decodes one record object of form f.
func decodeRecord(f Form, raw json.RawMessage) (record, error) {
	if len(raw) == 0 || raw[0] != '{' {
		return record{}, fmt.Errorf("want a record object, got %s", kind(raw))
	}
	var w wireRecord
	if err := strictUnmarshal(raw, &w); err != nil {
		return record{}, err
	}
	r := record{partition: -1}
	var err error
	if r.key, err = decodeData(f, w.Key); err != nil {
		return record{}, fmt.Errorf("key: %w", err)
	}
	if r.value, err = decodeData(f, w.Value); err != nil {
		return record{}, fmt.Errorf("value: %w", err)
	}
	if r.partition, err = decodePartition(w.Partition); err != nil {
		return record{}, fmt.Errorf("partition: %w", err)
	}
	return r, nil
}

// decodeData turns a key or value of form f into its Kafka bytes; nil for absent or null.
func decodeData(f Form, raw json.RawMessage) ([]byte, error) {
	if raw == nil || isNull(raw) {
		return nil, nil
	}
	switch f {
	case FormJSON:
		var b bytes.Buffer
		if err := json.Compact(&b, raw); err != nil {
			return nil, err
		}
		return b.Bytes(), nil
	case FormBinary:
		var s string
		if raw[0] != '"' || json.Unmarshal(raw, &s) != nil {
			return nil, fmt.Errorf("want a base64 string or null, got %s", kind(raw))
		}
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return nil, fmt.Errorf("not base64: %v", err)
		}
		return b, nil
	case FormSimple:
		var s string
		if raw[0] != '"' || json.Unmarshal(raw, &s) != nil {
			return nil, fmt.Errorf("want a string or null, got %s", kind(raw))
		}
		return []byte(s), nil
	}
	panic(fmt.Sprintf("ingest: decodeData of %v", f))
}

// decodePartition reads an optional partition: -1 when absent or null.
func decodePartition(raw json.RawMessage) (int32, error) {
	if raw == nil || isNull(raw) {
		return -1, nil
	}
	var x float64
	if raw[0] == '"' || json.Unmarshal(raw, &x) != nil || x != math.Trunc(x) || x < 0 || x > math.MaxInt32 {
		return 0, fmt.Errorf("want an integer from 0 to %d or null, got %s", math.MaxInt32, clip(raw))
	}
	return int32(x), nil
}

func isNull(raw json.RawMessage) bool { return string(raw) == "null" }

// kind names the JSON type of raw, for error messages.
func kind(raw []byte) string {
	if len(raw) == 0 {
		return "nothing"
	}
	switch raw[0] {
	case '{':
		return "an object"
	case '[':
		return "an array"
	case '"':
		return "a string"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	return "a number"
}

// clip is raw shortened for an error message.
func clip(raw []byte) string {
	const max = 32
	if len(raw) > max {
		return string(raw[:max]) + "..."
	}
	return string(raw)
}
