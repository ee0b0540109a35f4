package ingest

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
)

// The reference model of scanBody: the same forms decoded with encoding/json, in several
// passes. FuzzScanMatchesReference holds the two to the same answers.

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

// decodeRef parses body in form f with encoding/json: the reference model of scanBody into at most maxRecords records. The error wraps
// errMalformed (400), is an *invalidError (422), or is a *tooManyError (413); on error
// no record is returned, so nothing of a refused request is produced.
func decodeRef(f Form, body []byte, maxRecords int) ([]record, error) {
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
