package otlp

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/klauspost/compress/gzip"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// MetricsPath is OTLP/HTTP's path for metrics.
const MetricsPath = "/v1/metrics"

const (
	contentProtobuf = "application/x-protobuf"
	contentJSON     = "application/json"
)

// serveHTTP serves OTLP/HTTP: POST /v1/metrics, a protobuf or JSON
// ExportMetricsServiceRequest, possibly gzip-compressed. Errors are
// answered with a google.rpc.Status in the request's encoding, as OTLP/HTTP
// says.
func (s *server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != MetricsPath {
		http.NotFound(w, r)
		return
	}
	if !s.enter() {
		httpError(w, false, http.StatusServiceUnavailable, codes.Unavailable, "the source is stopping")
		return
	}
	defer s.leave()
	isJSON := false
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		httpError(w, isJSON, http.StatusMethodNotAllowed, codes.Unimplemented, "OTLP/HTTP takes POST "+MetricsPath)
		return
	}
	switch mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt {
	case contentProtobuf, "application/protobuf":
	case contentJSON:
		isJSON = true
	default:
		s.countAlone("http", ReasonUnsupportedMedia)
		httpError(w, false, http.StatusUnsupportedMediaType, codes.InvalidArgument,
			fmt.Sprintf("Content-Type %q: OTLP/HTTP takes %s or %s", r.Header.Get("Content-Type"), contentProtobuf, contentJSON))
		return
	}
	gzipped := false
	switch enc := r.Header.Get("Content-Encoding"); enc {
	case "", "identity":
	case "gzip":
		gzipped = true
	default:
		s.countAlone("http", ReasonUnsupportedMedia)
		httpError(w, isJSON, http.StatusUnsupportedMediaType, codes.InvalidArgument,
			fmt.Sprintf("Content-Encoding %q: gzip or none", enc))
		return
	}
	max := s.cfg.MaxRequestBytes
	if r.ContentLength > int64(max) {
		s.countAlone("http", ReasonTooLarge)
		httpError(w, isJSON, http.StatusRequestEntityTooLarge, codes.ResourceExhausted, tooLarge(max))
		return
	}

	// The body is read before a worker is taken, within bodyTimeout: a
	// slow client holds its buffer, not a worker.
	http.NewResponseController(w).SetReadDeadline(time.Now().Add(bodyTimeout))
	buf := getBuffer()
	defer putBuffer(buf)
	body, err := readAll(r.Body, (*buf)[:0], max)
	*buf = body[:0]
	if err != nil {
		if errors.Is(err, errTooLarge) {
			s.countAlone("http", ReasonTooLarge)
			httpError(w, isJSON, http.StatusRequestEntityTooLarge, codes.ResourceExhausted, tooLarge(max))
		}
		return // otherwise the client is gone, too slow, or broke the framing
	}
	if gzipped {
		zr, _ := gzipReaders.Get().(*gzip.Reader)
		if zr == nil {
			zr = new(gzip.Reader)
		}
		defer gzipReaders.Put(zr)
		unzipped := getBuffer()
		defer putBuffer(unzipped)
		var raw []byte
		err := zr.Reset(bytes.NewReader(body))
		if err == nil {
			raw, err = readAll(zr, (*unzipped)[:0], max)
			*unzipped = raw[:0]
		}
		switch {
		case errors.Is(err, errTooLarge):
			s.countAlone("http", ReasonTooLarge)
			httpError(w, isJSON, http.StatusRequestEntityTooLarge, codes.ResourceExhausted, tooLarge(max)+" once decompressed")
			return
		case err != nil:
			s.countAlone("http", ReasonBadGzip)
			httpError(w, isJSON, http.StatusBadRequest, codes.InvalidArgument, "Content-Encoding gzip: "+err.Error())
			return
		}
		body = raw
	}

	wk, err := s.pool.acquire(r.Context())
	if err != nil {
		return // the client is gone
	}
	defer s.pool.release(wk)
	resp, err := s.process(wk, "http", body, isJSON)
	if err != nil {
		code, st := codes.InvalidArgument, http.StatusBadRequest
		var le *limitError
		if errors.As(err, &le) {
			code, st = codes.ResourceExhausted, http.StatusRequestEntityTooLarge
		}
		httpError(w, isJSON, st, code, err.Error())
		return
	}
	var out []byte
	if isJSON {
		out, _ = protojson.Marshal(resp)
		w.Header().Set("Content-Type", contentJSON)
	} else {
		out, _ = proto.Marshal(resp)
		w.Header().Set("Content-Type", contentProtobuf)
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(out)))
	w.WriteHeader(http.StatusOK)
	w.Write(out)
}

func tooLarge(max int) string {
	return fmt.Sprintf("the request is larger than %d bytes (max_request_bytes)", max)
}

// httpError answers with a google.rpc.Status.
func httpError(w http.ResponseWriter, isJSON bool, httpStatus int, code codes.Code, msg string) {
	st := status.New(code, msg).Proto()
	var out []byte
	if isJSON {
		out, _ = protojson.Marshal(st)
		w.Header().Set("Content-Type", contentJSON)
	} else {
		out, _ = proto.Marshal(st)
		w.Header().Set("Content-Type", contentProtobuf)
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(out)))
	w.WriteHeader(httpStatus)
	w.Write(out)
}

var errTooLarge = errors.New("too large")

// bodyTimeout bounds the reading of a request's body.
const bodyTimeout = time.Minute

var gzipReaders sync.Pool

// buffers holds request buffers between requests.
var buffers sync.Pool

// keepBuffer is the largest request buffer kept between requests: larger
// ones are rare, and let go.
const keepBuffer = 4 << 20

func getBuffer() *[]byte {
	if b, ok := buffers.Get().(*[]byte); ok {
		return b
	}
	return new([]byte)
}

func putBuffer(b *[]byte) {
	if cap(*b) <= keepBuffer {
		buffers.Put(b)
	}
}

// readAll reads r into buf, failing with errTooLarge past max bytes.
func readAll(r io.Reader, buf []byte, max int) ([]byte, error) {
	for {
		if len(buf) == cap(buf) {
			if len(buf) > max {
				return buf, errTooLarge
			}
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Read(buf[len(buf):min(cap(buf), max+1)])
		buf = buf[:len(buf)+n]
		if len(buf) > max {
			return buf, errTooLarge
		}
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}
