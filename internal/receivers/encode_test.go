package receivers

import (
	"bytes"
	"encoding/binary"
	"io"
	"math"
	"net"
	"net/http"
	"slices"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
)

// The tests write to the receivers the way the sinks will: plain HTTP
// requests and TCP lines, and for Prometheus remote write and OpenTelemetry
// protobuf encoded here by hand with protowire, so that the package needs no
// client library of either.

// post sends body to url with the given headers and fails the test unless
// the receiver answers with status want.
func post(t *testing.T, url, contentType string, body []byte, want int, headers ...string) {
	t.Helper()
	req, err := http.NewRequest("POST", url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("POST %s: %s (want %d): %s", url, resp.Status, want, b)
	}
}

// sendTCP writes lines to addr over one TCP connection and closes it.
func sendTCP(t *testing.T, addr, lines string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, lines); err != nil {
		t.Fatal(err)
	}
}

// snappyBlock encodes b in Snappy's block format with literals only: valid
// Snappy that any decoder reads, without compressing (which remote write
// does not require).
func snappyBlock(b []byte) []byte {
	out := binary.AppendUvarint(nil, uint64(len(b)))
	for len(b) > 0 {
		n := min(len(b), 1<<16)
		switch {
		case n <= 60:
			out = append(out, byte(n-1)<<2)
		case n <= 1<<8:
			out = append(out, 60<<2, byte(n-1))
		default:
			out = append(out, 61<<2, byte(n-1), byte((n-1)>>8))
		}
		out = append(out, b[:n]...)
		b = b[n:]
	}
	return out
}

// rwSample is one sample of a remote-write series.
type rwSample struct {
	Value float64
	Ms    int64
}

// rwSeries is a remote-write series: labels (with __name__) and samples.
type rwSeries struct {
	Labels  map[string]string
	Samples []rwSample
}

// remoteWrite encodes a Prometheus remote-write WriteRequest (v1):
// timeseries = 1 {labels = 1 {name = 1, value = 2}, samples = 2 {value = 1
// double, timestamp = 2 int64 ms}}, labels sorted by name, snappy-framed.
func remoteWrite(series ...rwSeries) []byte {
	var req []byte
	for _, s := range series {
		var ts []byte
		names := make([]string, 0, len(s.Labels))
		for k := range s.Labels {
			names = append(names, k)
		}
		slices.Sort(names)
		for _, k := range names {
			var l []byte
			l = protowire.AppendTag(l, 1, protowire.BytesType)
			l = protowire.AppendString(l, k)
			l = protowire.AppendTag(l, 2, protowire.BytesType)
			l = protowire.AppendString(l, s.Labels[k])
			ts = protowire.AppendTag(ts, 1, protowire.BytesType)
			ts = protowire.AppendBytes(ts, l)
		}
		for _, p := range s.Samples {
			var sm []byte
			sm = protowire.AppendTag(sm, 1, protowire.Fixed64Type)
			sm = protowire.AppendFixed64(sm, math.Float64bits(p.Value))
			sm = protowire.AppendTag(sm, 2, protowire.VarintType)
			sm = protowire.AppendVarint(sm, uint64(p.Ms))
			ts = protowire.AppendTag(ts, 2, protowire.BytesType)
			ts = protowire.AppendBytes(ts, sm)
		}
		req = protowire.AppendTag(req, 1, protowire.BytesType)
		req = protowire.AppendBytes(req, ts)
	}
	return snappyBlock(req)
}

// postRemoteWrite sends a remote-write request with the headers that
// Prometheus' receiver checks.
func postRemoteWrite(t *testing.T, url string, want int, series ...rwSeries) {
	t.Helper()
	post(t, url, "application/x-protobuf", remoteWrite(series...), want,
		"Content-Encoding", "snappy", "X-Prometheus-Remote-Write-Version", "0.1.0")
}

// otlpKV encodes an OpenTelemetry KeyValue with a string value.
func otlpKV(k, v string) []byte {
	var any []byte
	any = protowire.AppendTag(any, 1, protowire.BytesType) // AnyValue.string_value
	any = protowire.AppendString(any, v)
	var kv []byte
	kv = protowire.AppendTag(kv, 1, protowire.BytesType)
	kv = protowire.AppendString(kv, k)
	kv = protowire.AppendTag(kv, 2, protowire.BytesType)
	kv = protowire.AppendBytes(kv, any)
	return kv
}

// otlpMetric is one metric of an OTLP request with one data point: a gauge,
// or a cumulative monotonic sum.
type otlpMetric struct {
	Name  string
	Unit  string
	Sum   bool
	Attrs [][2]string
	Value float64
	Time  time.Time
}

// otlpRequest encodes an ExportMetricsServiceRequest: one ResourceMetrics
// with resource attributes, one ScopeMetrics, the metrics with one
// NumberDataPoint each (attributes = 7, time_unix_nano = 3 fixed64,
// as_double = 4).
func otlpRequest(resource [][2]string, metrics ...otlpMetric) []byte {
	var res []byte
	for _, a := range resource {
		res = protowire.AppendTag(res, 1, protowire.BytesType)
		res = protowire.AppendBytes(res, otlpKV(a[0], a[1]))
	}
	var scope []byte
	var sc []byte
	sc = protowire.AppendTag(sc, 1, protowire.BytesType)
	sc = protowire.AppendString(sc, "veneurd")
	scope = protowire.AppendTag(scope, 1, protowire.BytesType)
	scope = protowire.AppendBytes(scope, sc)
	for _, m := range metrics {
		var dp []byte
		for _, a := range m.Attrs {
			dp = protowire.AppendTag(dp, 7, protowire.BytesType)
			dp = protowire.AppendBytes(dp, otlpKV(a[0], a[1]))
		}
		dp = protowire.AppendTag(dp, 3, protowire.Fixed64Type)
		dp = protowire.AppendFixed64(dp, uint64(m.Time.UnixNano()))
		dp = protowire.AppendTag(dp, 4, protowire.Fixed64Type)
		dp = protowire.AppendFixed64(dp, math.Float64bits(m.Value))
		var data []byte
		data = protowire.AppendTag(data, 1, protowire.BytesType)
		data = protowire.AppendBytes(data, dp)
		var mm []byte
		mm = protowire.AppendTag(mm, 1, protowire.BytesType)
		mm = protowire.AppendString(mm, m.Name)
		if m.Unit != "" {
			mm = protowire.AppendTag(mm, 3, protowire.BytesType)
			mm = protowire.AppendString(mm, m.Unit)
		}
		if m.Sum {
			data = protowire.AppendTag(data, 2, protowire.VarintType) // CUMULATIVE
			data = protowire.AppendVarint(data, 2)
			data = protowire.AppendTag(data, 3, protowire.VarintType) // monotonic
			data = protowire.AppendVarint(data, 1)
			mm = protowire.AppendTag(mm, 7, protowire.BytesType)
		} else {
			mm = protowire.AppendTag(mm, 5, protowire.BytesType)
		}
		mm = protowire.AppendBytes(mm, data)
		scope = protowire.AppendTag(scope, 2, protowire.BytesType)
		scope = protowire.AppendBytes(scope, mm)
	}
	var r []byte
	r = protowire.AppendTag(r, 1, protowire.BytesType)
	r = protowire.AppendBytes(r, res)
	r = protowire.AppendTag(r, 2, protowire.BytesType)
	r = protowire.AppendBytes(r, scope)
	var req []byte
	req = protowire.AppendTag(req, 1, protowire.BytesType)
	req = protowire.AppendBytes(req, r)
	return req
}
