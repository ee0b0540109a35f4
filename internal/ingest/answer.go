package ingest

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Error codes of the answers: the HTTP status times 100 plus a subcode, as REST Proxy
// numbers them. 40401, 40402, 40301, 50002 and 50003 mean what they mean in REST Proxy;
// the others are Chronik's.
const (
	codeMalformed    = 40001 // the body is not JSON
	codeTopicName    = 40002 // the topic name is not a Kafka topic name, or the broker refuses it
	codeAuthz        = 40301 // the broker refuses access
	codeTopic        = 40401 // the topic does not exist
	codePartition    = 40402 // the partition does not exist
	codeMethod       = 40501 // not POST
	codeBodyTooLarge = 41301 // the body is larger than MaxBodyBytes
	codeTooMany      = 41302 // more records than MaxRecords
	codeRecordLarge  = 41303 // one record is larger than a batch may be
	codeMediaType    = 41501 // the Content-Type is not served
	codeInvalid      = 42200 // JSON, but not the form: a field of the wrong type, unknown or missing
	codeBusy         = 42901 // the in-flight budget stayed full for MaxWait
	codeKafka        = 50002 // the broker or client failed the record for good
	codeRetriable    = 50003 // the record failed, but a retry may succeed
)

// httpError is a request refused before anything was produced.
type httpError struct {
	status, code int
	msg          string
	records      []recordError
	// rejected is the records of the request, when they were counted.
	rejected int
}

// errorResponse is the answer to a refused request.
type errorResponse struct {
	ErrorCode int    `json:"error_code"`
	Message   string `json:"message"`
	// InvalidRecords are the records at fault, by index in the request.
	InvalidRecords []recordError `json:"invalid_records,omitempty"`
}

func (e *httpError) body() errorResponse {
	return errorResponse{ErrorCode: e.code, Message: e.msg, InvalidRecords: e.records}
}

// decodeError is the refusal for an error of decode.
func decodeError(err error) *httpError {
	if ie, ok := errors.AsType[*invalidError](err); ok {
		return &httpError{status: http.StatusUnprocessableEntity, code: codeInvalid, msg: ie.msg, records: ie.records, rejected: ie.total}
	}
	if tm, ok := errors.AsType[*tooManyError](err); ok {
		return &httpError{status: http.StatusRequestEntityTooLarge, code: codeTooMany, msg: err.Error(), rejected: tm.n}
	}
	if errors.Is(err, errMalformed) {
		return &httpError{status: http.StatusBadRequest, code: codeMalformed, msg: err.Error() + "; nothing was written"}
	}
	panic(fmt.Sprintf("ingest: decode error %v of no known kind", err))
}

func tooLarge(max int64) *httpError {
	return &httpError{status: http.StatusRequestEntityTooLarge, code: codeBodyTooLarge,
		msg: fmt.Sprintf("body larger than %d bytes; nothing was written", max)}
}

// partitionError is a record sent to a partition the topic does not have.
type partitionError struct{ partition, count int32 }

func (e *partitionError) Error() string {
	return fmt.Sprintf("partition %d not found: the topic has %d partitions", e.partition, e.count)
}

// classify maps a record's produce error to its error code and HTTP status.
func classify(err error) (code, status int) {
	if _, ok := errors.AsType[*partitionError](err); ok {
		return codePartition, http.StatusNotFound
	}
	switch {
	case errors.Is(err, kerr.UnknownTopicOrPartition):
		return codeTopic, http.StatusNotFound
	case errors.Is(err, kerr.MessageTooLarge), errors.Is(err, kerr.RecordListTooLarge):
		return codeRecordLarge, http.StatusRequestEntityTooLarge
	case errors.Is(err, kerr.InvalidTopicException):
		return codeTopicName, http.StatusBadRequest
	case errors.Is(err, kerr.TopicAuthorizationFailed), errors.Is(err, kerr.ClusterAuthorizationFailed):
		return codeAuthz, http.StatusForbidden
	case kerr.IsRetriable(err), errors.Is(err, kgo.ErrRecordTimeout), errors.Is(err, kgo.ErrRecordRetries),
		errors.Is(err, kgo.ErrClientClosed), errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return codeRetriable, http.StatusServiceUnavailable
	}
	return codeKafka, http.StatusInternalServerError
}

// offsetJSON is one record's place in the answer, REST Proxy's PartitionOffset: either
// partition and offset, or error_code and error; the others are null.
type offsetJSON struct {
	Partition *int32  `json:"partition"`
	Offset    *int64  `json:"offset"`
	ErrorCode *int    `json:"error_code"`
	Error     *string `json:"error"`
}

// produceResponse is the answer to a request whose records were produced. ErrorCode and
// Message are set when not every record was written.
type produceResponse struct {
	ErrorCode     *int         `json:"error_code,omitempty"`
	Message       string       `json:"message,omitempty"`
	Offsets       []offsetJSON `json:"offsets"`
	KeySchemaID   *int         `json:"key_schema_id"`
	ValueSchemaID *int         `json:"value_schema_id"`
}

// answer builds the answer to results: 200 when every record was written; else the
// status the failed records share when every record failed alike; else 207. With acks=0
// offsets are unknown and answered as -1.
func answer(results []result, acks0 bool) (int, produceResponse) {
	resp := produceResponse{Offsets: make([]offsetJSON, len(results))}
	failed, status, code := 0, 0, 0
	for i, r := range results {
		if r.err == nil {
			p, off := r.partition, r.offset
			if acks0 {
				off = -1
			}
			resp.Offsets[i] = offsetJSON{Partition: &p, Offset: &off}
			continue
		}
		c, s := classify(r.err)
		msg := r.err.Error()
		resp.Offsets[i] = offsetJSON{ErrorCode: &c, Error: &msg}
		if failed == 0 {
			status, code = s, c
		} else if s != status || c != code {
			status, code = http.StatusMultiStatus, 0
		}
		failed++
	}
	switch {
	case failed == 0:
		return http.StatusOK, resp
	case failed < len(results):
		status, code = http.StatusMultiStatus, 0
	}
	if code != 0 {
		resp.ErrorCode = &code
	}
	resp.Message = fmt.Sprintf("%d of %d records failed (see offsets); %d were written", failed, len(results), len(results)-failed)
	return status, resp
}
