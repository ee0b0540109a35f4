package ingest

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// maxDepth bounds the nesting of a JSON value, as encoding/json does.
const maxDepth = 10000

// scanner reads a request body in one pass: it checks the JSON syntax, the form and every
// record at once, and hands out the keys and values as slices of the body when they need
// no unescaping. The seed report found JSON decoding the pipeline's first bottleneck;
// encoding/json needs four passes for the same.
//
// A syntax error stops the scan (errMalformed, 400). A fault of form is remembered and
// the scan goes on, so that a syntax error later still wins, as encoding/json reports it.
type scanner struct {
	b    []byte
	i    int
	form Form
	// bad are the records at fault; shape is the first fault outside a record.
	bad   []recordError
	shape string
	// spaced is set when ws skips a byte: a caller clears it to learn whether a value
	// holds whitespace that json.Compact would remove.
	spaced bool
}

// syntaxError is where the body stops being JSON.
type syntaxError struct {
	off int
	msg string
}

func (e *syntaxError) Error() string { return fmt.Sprintf("at byte %d: %s", e.off, e.msg) }

// scanBody decodes body in form f into at most maxRecords records. The returned keys and
// values may alias body, which the caller must not change while they are in use. The
// error wraps errMalformed (400), or is an *invalidError (422) or a *tooManyError (413).
func scanBody(f Form, body []byte, maxRecords int) ([]record, error) {
	s := &scanner{b: body, form: f}
	recs, err := s.body(maxRecords)
	if err != nil {
		return nil, fmt.Errorf("%w %v", errMalformed, err)
	}
	s.ws()
	if s.i < len(s.b) {
		return nil, fmt.Errorf("%w %v", errMalformed, s.errorf("invalid character %q after the top-level value", s.b[s.i]))
	}
	switch {
	case s.shape != "":
		return nil, &invalidError{msg: s.shape}
	case len(recs) == 0 && len(s.bad) == 0:
		return nil, &invalidError{msg: "no records"}
	case len(recs)+len(s.bad) > maxRecords:
		return nil, &tooManyError{n: len(recs) + len(s.bad), max: maxRecords}
	case len(s.bad) > 0:
		return nil, &invalidError{
			msg:     fmt.Sprintf("%d of %d records are invalid; nothing was written", len(s.bad), len(recs)+len(s.bad)),
			records: s.bad,
			total:   len(recs) + len(s.bad),
		}
	}
	return recs, nil
}

func (s *scanner) errorf(format string, args ...any) error {
	return &syntaxError{off: s.i, msg: fmt.Sprintf(format, args...)}
}

// body reads the top-level value.
func (s *scanner) body(maxRecords int) ([]record, error) {
	s.ws()
	if s.i == len(s.b) {
		return nil, s.errorf("unexpected end of JSON input")
	}
	c := s.b[s.i]
	if s.form == FormSimple {
		switch c {
		case '[':
			return s.records(maxRecords)
		case '{':
			r, ok, err := s.record(0)
			if err != nil || !ok {
				return nil, err
			}
			return []record{r}, nil
		}
		s.shape = "body: want an array of records or one record object, got " + kind(s.b[s.i:])
		return nil, s.value(0)
	}
	if c != '{' {
		s.shape = `body: want an object with "records", got ` + kind(s.b[s.i:])
		return nil, s.value(0)
	}
	var recs []record
	found := false
	err := s.object(0, func(name []byte) error {
		switch string(name) {
		case "records":
			found = true // a second "records" replaces the first, as in encoding/json
			s.bad = nil
			if s.b[s.i] != '[' {
				s.shape = `body: "records": want an array, got ` + kind(s.b[s.i:])
				return s.value(1)
			}
			var err error
			recs, err = s.records(maxRecords)
			return err
		case "key_schema", "value_schema", "key_schema_id", "value_schema_id":
			return s.value(1) // accepted and ignored, as REST Proxy does for json and binary
		}
		if s.shape == "" {
			s.shape = fmt.Sprintf("body: unknown field %q", name)
		}
		return s.value(1)
	})
	if err == nil && !found && s.shape == "" {
		s.shape = `body: "records" is required`
	}
	return recs, err
}

// records reads an array of records; s.b[s.i] is '['. Past maxRecords it only checks
// the syntax and counts.
func (s *scanner) records(maxRecords int) ([]record, error) {
	var recs []record
	n := 0
	err := s.array(0, func() error {
		idx := n
		n++
		if idx >= maxRecords {
			recs = append(recs, record{}) // counted only: tooManyError follows
			return s.value(1)
		}
		r, ok, err := s.record(idx)
		if ok {
			recs = append(recs, r)
		}
		return err
	})
	return recs, err
}

// record reads one record at index idx of the request. ok is false when it is at fault
// (and added to s.bad).
func (s *scanner) record(idx int) (r record, ok bool, err error) {
	if s.b[s.i] != '{' {
		s.fault(idx, "want a record object, got "+kind(s.b[s.i:]))
		return record{}, false, s.value(1)
	}
	r.partition = -1
	// A field given twice takes its last value, faults included, as in encoding/json.
	var keyErr, valueErr, partErr, fieldErr string
	err = s.object(1, func(name []byte) error {
		var err error
		switch string(name) {
		case "key":
			r.key, keyErr, err = s.data()
		case "value":
			r.value, valueErr, err = s.data()
		case "partition":
			r.partition, partErr, err = s.partition()
		default:
			if fieldErr == "" {
				fieldErr = fmt.Sprintf("unknown field %q", name)
			}
			err = s.value(2)
		}
		return err
	})
	if err != nil {
		return record{}, false, err
	}
	for _, f := range []struct{ what, msg string }{{"", fieldErr}, {"key: ", keyErr}, {"value: ", valueErr}, {"partition: ", partErr}} {
		if f.msg != "" {
			s.fault(idx, f.what+f.msg)
			return record{}, false, nil
		}
	}
	return r, true, nil
}

func (s *scanner) fault(idx int, msg string) {
	s.bad = append(s.bad, recordError{Index: idx, Error: msg})
}

// data reads a key or value in s.form: its Kafka bytes (nil for null), or why it is at
// fault.
func (s *scanner) data() (b []byte, fault string, err error) {
	c := s.b[s.i]
	if c == 'n' {
		return nil, "", s.value(2)
	}
	switch s.form {
	case FormJSON:
		start := s.i
		s.spaced = false
		if err := s.value(2); err != nil {
			return nil, "", err
		}
		if !s.spaced {
			return s.b[start:s.i], "", nil
		}
		var out bytes.Buffer
		if err := json.Compact(&out, s.b[start:s.i]); err != nil {
			panic(fmt.Sprintf("ingest: compact of a value the scanner accepted: %v", err))
		}
		return out.Bytes(), "", nil
	case FormBinary, FormSimple:
		if c != '"' {
			want := "a string or null"
			if s.form == FormBinary {
				want = "a base64 string or null"
			}
			fault := "want " + want + ", got " + kind(s.b[s.i:])
			return nil, fault, s.value(2)
		}
		str, err := s.str()
		if err != nil || s.form == FormSimple {
			return str, "", err
		}
		out := make([]byte, base64.StdEncoding.DecodedLen(len(str)))
		n, derr := base64.StdEncoding.Decode(out, str)
		if derr != nil {
			return nil, "not base64: " + derr.Error(), nil
		}
		return out[:n], "", nil
	}
	panic(fmt.Sprintf("ingest: data in form %v", s.form))
}

// partition reads an optional partition: -1 for null.
func (s *scanner) partition() (p int32, fault string, err error) {
	start := s.i
	c := s.b[s.i]
	if err := s.value(2); err != nil {
		return 0, "", err
	}
	if c == 'n' {
		return -1, "", nil
	}
	lit := s.b[start:s.i]
	x, perr := strconv.ParseFloat(string(lit), 64)
	if (c != '-' && (c < '0' || c > '9')) || perr != nil || x != math.Trunc(x) || x < 0 || x > math.MaxInt32 {
		return 0, fmt.Sprintf("want an integer from 0 to %d or null, got %s", math.MaxInt32, clip(lit)), nil
	}
	return int32(x), "", nil
}

// object reads an object; s.b[s.i] is '{'. member is called for each name with s.i at
// the member's value, and must consume it.
func (s *scanner) object(depth int, member func(name []byte) error) error {
	if depth >= maxDepth {
		return s.errorf("exceeded max depth")
	}
	s.i++ // {
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == '}' {
		s.i++
		return nil
	}
	for {
		if s.i == len(s.b) || s.b[s.i] != '"' {
			return s.unexpected("looking for beginning of object key string")
		}
		name, err := s.str()
		if err != nil {
			return err
		}
		s.ws()
		if s.i == len(s.b) || s.b[s.i] != ':' {
			return s.unexpected("after object key")
		}
		s.i++
		s.ws()
		if s.i == len(s.b) {
			return s.unexpected("looking for beginning of value")
		}
		if err := member(name); err != nil {
			return err
		}
		s.ws()
		if s.i == len(s.b) {
			return s.unexpected("after object key:value pair")
		}
		switch s.b[s.i] {
		case ',':
			s.i++
			s.ws()
		case '}':
			s.i++
			return nil
		default:
			return s.unexpected("after object key:value pair")
		}
	}
}

// array reads an array; s.b[s.i] is '['. elem is called with s.i at each element, and
// must consume it.
func (s *scanner) array(depth int, elem func() error) error {
	if depth >= maxDepth {
		return s.errorf("exceeded max depth")
	}
	s.i++ // [
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == ']' {
		s.i++
		return nil
	}
	for {
		if s.i == len(s.b) {
			return s.unexpected("looking for beginning of value")
		}
		if err := elem(); err != nil {
			return err
		}
		s.ws()
		if s.i == len(s.b) {
			return s.unexpected("after array element")
		}
		switch s.b[s.i] {
		case ',':
			s.i++
			s.ws()
		case ']':
			s.i++
			return nil
		default:
			return s.unexpected("after array element")
		}
	}
}

// value checks one JSON value at s.i and moves past it.
func (s *scanner) value(depth int) error {
	if s.i == len(s.b) {
		return s.unexpected("looking for beginning of value")
	}
	switch c := s.b[s.i]; {
	case c == '{':
		return s.object(depth, func([]byte) error { return s.value(depth + 1) })
	case c == '[':
		return s.array(depth, func() error { return s.value(depth + 1) })
	case c == '"':
		_, err := s.str()
		return err
	case c == '-' || '0' <= c && c <= '9':
		return s.number()
	case c == 't':
		return s.literal("true")
	case c == 'f':
		return s.literal("false")
	case c == 'n':
		return s.literal("null")
	}
	return s.unexpected("looking for beginning of value")
}

// ws skips JSON whitespace.
func (s *scanner) ws() {
	start := s.i
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
			continue
		}
		break
	}
	if s.i > start {
		s.spaced = true
	}
}

func (s *scanner) unexpected(context string) error {
	if s.i == len(s.b) {
		return s.errorf("unexpected end of JSON input")
	}
	return s.errorf("invalid character %q %s", s.b[s.i], context)
}

func (s *scanner) literal(lit string) error {
	for j := range len(lit) {
		if s.i == len(s.b) || s.b[s.i] != lit[j] {
			return s.unexpected("in literal " + lit)
		}
		s.i++
	}
	return nil
}

// number checks a JSON number: -? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?
func (s *scanner) number() error {
	if s.b[s.i] == '-' {
		s.i++
	}
	switch {
	case s.i < len(s.b) && s.b[s.i] == '0':
		s.i++
	case s.i < len(s.b) && '1' <= s.b[s.i] && s.b[s.i] <= '9':
		s.digits()
	default:
		return s.unexpected("in numeric literal")
	}
	if s.i < len(s.b) && s.b[s.i] == '.' {
		s.i++
		if s.i == len(s.b) || s.b[s.i] < '0' || s.b[s.i] > '9' {
			return s.unexpected("after decimal point in numeric literal")
		}
		s.digits()
	}
	if s.i < len(s.b) && (s.b[s.i] == 'e' || s.b[s.i] == 'E') {
		s.i++
		if s.i < len(s.b) && (s.b[s.i] == '+' || s.b[s.i] == '-') {
			s.i++
		}
		if s.i == len(s.b) || s.b[s.i] < '0' || s.b[s.i] > '9' {
			return s.unexpected("in exponent of numeric literal")
		}
		s.digits()
	}
	return nil
}

func (s *scanner) digits() {
	for s.i < len(s.b) && '0' <= s.b[s.i] && s.b[s.i] <= '9' {
		s.i++
	}
}

// str reads a string; s.b[s.i] is '"'. Its bytes are a slice of the body when it has no
// escapes and is valid UTF-8; else a new slice, unescaped, with invalid UTF-8 replaced by
// U+FFFD, as encoding/json decodes a string.
func (s *scanner) str() ([]byte, error) {
	s.i++ // "
	start := s.i
	ascii := true
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			str := s.b[start:s.i]
			s.i++
			if ascii || utf8.Valid(str) {
				return str, nil
			}
			s.i = start
			return s.unquote()
		case c == '\\':
			s.i = start
			return s.unquote()
		case c < 0x20:
			return nil, s.errorf("invalid character %q in string literal", c)
		case c >= utf8.RuneSelf:
			ascii = false
		}
		s.i++
	}
	return nil, s.errorf("unexpected end of JSON input")
}

// unquote decodes the rest of a string from s.i, just past its opening quote.
func (s *scanner) unquote() ([]byte, error) {
	out := make([]byte, 0, 64)
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			s.i++
			return out, nil
		case c < 0x20:
			return nil, s.errorf("invalid character %q in string literal", c)
		case c == '\\':
			s.i++
			if s.i == len(s.b) {
				return nil, s.errorf("unexpected end of JSON input")
			}
			e := s.b[s.i]
			s.i++
			switch e {
			case '"', '\\', '/':
				out = append(out, e)
			case 'b':
				out = append(out, '\b')
			case 'f':
				out = append(out, '\f')
			case 'n':
				out = append(out, '\n')
			case 'r':
				out = append(out, '\r')
			case 't':
				out = append(out, '\t')
			case 'u':
				r, ok := s.hex4()
				if !ok {
					return nil, s.errorf("invalid character in \\u hexadecimal character escape")
				}
				if utf16.IsSurrogate(r) {
					save := s.i
					if s.i+1 < len(s.b) && s.b[s.i] == '\\' && s.b[s.i+1] == 'u' {
						s.i += 2
						if r2, ok := s.hex4(); ok {
							if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
								out = utf8.AppendRune(out, dec)
								continue
							}
						}
					}
					s.i = save
					r = utf8.RuneError
				}
				out = utf8.AppendRune(out, r)
			default:
				s.i--
				return nil, s.errorf("invalid character %q in string escape code", e)
			}
		case c < utf8.RuneSelf:
			out = append(out, c)
			s.i++
		default:
			r, size := utf8.DecodeRune(s.b[s.i:])
			s.i += size
			out = utf8.AppendRune(out, r)
		}
	}
	return nil, s.errorf("unexpected end of JSON input")
}

// hex4 reads four hex digits at s.i.
func (s *scanner) hex4() (rune, bool) {
	if s.i+4 > len(s.b) {
		return 0, false
	}
	var r rune
	for _, c := range s.b[s.i : s.i+4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			c = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	s.i += 4
	return r, true
}
