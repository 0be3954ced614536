package otlp

import (
	"bytes"
	"errors"
	"fmt"

	colmetricspb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	"google.golang.org/protobuf/encoding/protojson"
)

// Requests are decoded into the generated types of go.opentelemetry.io/proto/otlp,
// which hold a request whole: a few hundred bytes per data point, and up
// to about forty times the wire size for requests made of tiny messages (an
// empty attribute is two bytes on the wire and a hundred decoded). So data
// points and messages are counted as they are decoded (protobuf) or before
// (JSON, by its braces), and a request over the limits is refused whole
// before it costs more. A request is decoded whole before any of it is
// aggregated, so a truncated or corrupt body is refused whole too.

// Reasons a request or a data point is refused, counted as
// veneur.packet.error_total{packet_type:otlp,reason:...}.
const (
	// The whole request.
	ReasonTooLarge         = "too_large"         // body over max_request_bytes (compressed or not)
	ReasonTooManyPoints    = "too_many_points"   // over max_request_data_points
	ReasonTooManyMessages  = "too_many_messages" // over messagesPerPoint × max_request_data_points messages
	ReasonBadProtobuf      = "bad_protobuf"      // not an ExportMetricsServiceRequest
	ReasonBadJSON          = "bad_json"          // not one in OTLP's JSON
	ReasonBadGzip          = "bad_gzip"          // Content-Encoding gzip, and not gzip
	ReasonUnsupportedMedia = "unsupported_media" // HTTP Content-Type or Content-Encoding not OTLP's
	ReasonBadRequest       = "bad_request"       // any other refusal: wrong path or method, gRPC errors
	ReasonConnections      = "too_many_connections"
	ReasonTLSHandshake     = "tls_handshake" // a TLS client refused at the handshake

	// One data point (or metric).
	ReasonNoName         = "no_name"          // metric without a name
	ReasonNoData         = "no_data"          // metric without gauge, sum, histogram or summary
	ReasonBadTemporality = "bad_temporality"  // sum or histogram of unspecified temporality
	ReasonNoValue        = "no_value"         // number data point without a value
	ReasonInvalidValue   = "invalid_value"    // NaN or infinite value
	ReasonBadHistogram   = "bad_histogram"    // buckets and bounds that do not fit together
	ReasonBadSummary     = "bad_summary"      // quantile outside [0, 1], or a value not finite
	ReasonOutOfOrder     = "out_of_order"     // a cumulative point older than the stream's last
	ReasonTooManyStreams = "too_many_streams" // a new cumulative stream past max_streams
)

// messagesPerPoint bounds the messages of a request (data points,
// attributes and their values, exemplars, quantiles...) to this many times
// max_request_data_points: enough for data points with many attributes, and
// a bound on what a request of tiny messages decodes to.
const messagesPerPoint = 20

// limitError is a request refused for its size.
type limitError struct {
	reason string
	msg    string
}

func (e *limitError) Error() string { return e.msg }

// decodeError is a request that is not what its content type says.
type decodeError struct {
	reason string
	err    error
}

func (e *decodeError) Error() string { return e.err.Error() }
func (e *decodeError) Unwrap() error { return e.err }

// reasonOf returns the reason a decode error is counted under.
func reasonOf(err error) string {
	var le *limitError
	if errors.As(err, &le) {
		return le.reason
	}
	var de *decodeError
	if errors.As(err, &de) {
		return de.reason
	}
	return ReasonBadRequest
}

// maxDepth bounds the nesting of attribute values (arrays and key-value
// lists within each other).
const maxDepth = 32

var errDepth = errors.New("attribute values nested too deeply")

// counts is what a request holds.
type counts struct {
	points, messages int
}

// limits are a request's bounds.
type limits struct {
	maxPoints int
}

func (l limits) maxMessages() int { return l.maxPoints * messagesPerPoint }

func (l limits) check(c counts) error {
	if c.points > l.maxPoints {
		return &limitError{ReasonTooManyPoints, fmt.Sprintf(
			"the request holds more than %d data points (max_request_data_points): send smaller batches", l.maxPoints)}
	}
	if c.messages > l.maxMessages() {
		return &limitError{ReasonTooManyMessages, fmt.Sprintf(
			"the request holds more than %d messages (data points, attributes, exemplars...; %d times max_request_data_points): send smaller batches",
			l.maxMessages(), messagesPerPoint)}
	}
	return nil
}

var jsonUnmarshal = protojson.UnmarshalOptions{DiscardUnknown: true}

// decodeJSON checks b against the limits and decodes it into req. Each
// message of a JSON body is an object, so its braces bound the messages
// before anything is decoded; data points are counted once decoded.
func decodeJSON(b []byte, l limits, req *colmetricspb.ExportMetricsServiceRequest) error {
	if n := bytes.Count(b, []byte{'{'}); n > l.maxMessages()+1 {
		return l.check(counts{messages: n})
	}
	if err := jsonUnmarshal.Unmarshal(b, req); err != nil {
		return &decodeError{ReasonBadJSON, fmt.Errorf("not an OTLP ExportMetricsServiceRequest in JSON: %w", err)}
	}
	return l.check(counts{points: countPoints(req)})
}

// countPoints counts the data points of a decoded request.
func countPoints(req *colmetricspb.ExportMetricsServiceRequest) int {
	n := 0
	for _, rm := range req.ResourceMetrics {
		for _, sm := range rm.ScopeMetrics {
			for _, m := range sm.Metrics {
				switch {
				case m.GetGauge() != nil:
					n += len(m.GetGauge().DataPoints)
				case m.GetSum() != nil:
					n += len(m.GetSum().DataPoints)
				case m.GetHistogram() != nil:
					n += len(m.GetHistogram().DataPoints)
				case m.GetExponentialHistogram() != nil:
					n += len(m.GetExponentialHistogram().DataPoints)
				case m.GetSummary() != nil:
					n += len(m.GetSummary().DataPoints)
				}
			}
		}
	}
	return n
}
