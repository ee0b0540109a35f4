package ingest

import (
	"errors"
	"fmt"
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
	// total is the records in the request, when they could be counted.
	total int
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

// decode parses body in form f into at most maxRecords records. The error wraps
// errMalformed (400), is an *invalidError (422), or is a *tooManyError (413); on error
// no record is returned, so nothing of a refused request is produced. The records' keys
// and values may alias body.
func decode(f Form, body []byte, maxRecords int) ([]record, error) {
	return scanBody(f, body, maxRecords)
}

// tooManyError is a request with more records than the limit: 413.
type tooManyError struct{ n, max int }

func (e *tooManyError) Error() string {
	return fmt.Sprintf("%d records, more than the limit of %d per request; nothing was written", e.n, e.max)
}

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
