package otlp

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"testing"

	colmetricspb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	metricspb "go.opentelemetry.io/proto/otlp/metrics/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/veneurd/veneurd/sdk"
	"github.com/veneurd/veneurd/sdk/sdktest"
)

// The seed corpora live in testdata/fuzz/<FuzzName>/; seedRequests are
// what they were made from (see TestSeedCorpus).

var knownReasons = map[string]bool{
	ReasonTooManyPoints: true, ReasonTooManyMessages: true, ReasonBadProtobuf: true, ReasonBadJSON: true,
	ReasonNoName: true, ReasonNoData: true, ReasonBadTemporality: true, ReasonNoValue: true, ReasonInvalidValue: true,
	ReasonBadHistogram: true, ReasonBadSummary: true, ReasonOutOfOrder: true, ReasonTooManyStreams: true,
}

// fuzzLimits are small, so that the fuzzer reaches them.
var fuzzLimits = limits{maxPoints: 50}

// checkDecoded converts a request that decoded and checks what came out:
// the Collector checks the Writer contract (sorted tags, finite values,
// rates in (0, 1]); every error has a known reason.
func checkDecoded(t *testing.T, req *colmetricspb.ExportMetricsServiceRequest) {
	col := &sdktest.Collector{}
	w := col.Writer("grpc")
	c := newConverter([]string{"service.name", "host.name"}, newStreams(20), started)
	for i := range 2 { // twice: the second time, cumulative points meet their streams
		rejected, msg := c.export(req, w, int64(i))
		if rejected < 0 || (rejected > 0 && msg == "") {
			t.Fatalf("rejected %d, message %q", rejected, msg)
		}
	}
	w.Flush()
	col.Close()
	for _, p := range col.Problems() {
		t.Fatal(p)
	}
	for _, m := range col.Metrics() {
		if m.Type == sdk.Histogram && (m.Rate <= 0 || 1/m.Rate != math.Trunc(1/m.Rate)) {
			t.Fatalf("histogram sample %v: its weight is not a whole number", m)
		}
	}
	for _, e := range col.Errors() {
		if e.PacketType != PacketType || !knownReasons[e.Reason] {
			t.Fatalf("error %v", e)
		}
	}
}

func checkDecodeError(t *testing.T, err error) {
	var le *limitError
	var de *decodeError
	if !errors.As(err, &le) && !errors.As(err, &de) {
		t.Fatalf("error %v (%T) is neither a limit nor a decoding error", err, err)
	}
	if !knownReasons[reasonOf(err)] {
		t.Fatalf("error %v: unknown reason %q", err, reasonOf(err))
	}
}

// FuzzDecodeProtobuf checks the decoder against proto.Unmarshal: both
// refuse the same bodies, and decode the others to equal messages, except
// where the decoder is stricter on purpose (its limits, and attribute values
// nested more than maxDepth deep).
func FuzzDecodeProtobuf(f *testing.F) {
	d := &decoder{}
	f.Fuzz(func(t *testing.T, b []byte) {
		want := &colmetricspb.ExportMetricsServiceRequest{}
		wantErr := proto.UnmarshalOptions{DiscardUnknown: true}.Unmarshal(b, want)
		got, err := d.decode(b, fuzzLimits)
		var le *limitError
		switch {
		case err != nil && (errors.As(err, &le) || errors.Is(err, errDepth)):
			checkDecodeError(t, err)
			return
		case err != nil && wantErr == nil:
			t.Fatalf("decoder: %v; proto.Unmarshal: no error", err)
		case err == nil && wantErr != nil:
			t.Fatalf("decoder: no error; proto.Unmarshal: %v", wantErr)
		case err != nil:
			checkDecodeError(t, err)
			return
		}
		if !proto.Equal(got, want) {
			t.Fatalf("decoded\n%v\nproto.Unmarshal\n%v", got, want)
		}
		if n := countPoints(got); n > fuzzLimits.maxPoints {
			t.Fatalf("%d points decoded, limit %d", n, fuzzLimits.maxPoints)
		}
		checkDecoded(t, got)
		// Decoding again reuses the messages: it must give the same.
		if again, err := d.decode(b, fuzzLimits); err != nil || !proto.Equal(again, want) {
			t.Fatalf("decoding again: %v\n%v", err, again)
		}
	})
}

func FuzzDecodeJSON(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		req := &colmetricspb.ExportMetricsServiceRequest{}
		err := decodeJSON(b, fuzzLimits, req)
		if err != nil {
			checkDecodeError(t, err)
			return
		}
		if n := countPoints(req); n > fuzzLimits.maxPoints {
			t.Fatalf("%d points decoded, limit %d", n, fuzzLimits.maxPoints)
		}
		checkDecoded(t, req)
	})
}

// seedRequests cover every kind of metric and attribute value.
func seedRequests() []*colmetricspb.ExportMetricsServiceRequest {
	arr := &commonpb.KeyValue{Key: "arr", Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_ArrayValue{ArrayValue: &commonpb.ArrayValue{
		Values: []*commonpb.AnyValue{{Value: &commonpb.AnyValue_IntValue{IntValue: 1}}, {Value: &commonpb.AnyValue_DoubleValue{DoubleValue: 1.5}}}}}}}
	summary := &metricspb.Metric{Name: "s", Data: &metricspb.Metric_Summary{Summary: &metricspb.Summary{DataPoints: []*metricspb.SummaryDataPoint{{
		StartTimeUnixNano: 1, TimeUnixNano: 2, Count: 3, Sum: 4,
		QuantileValues: []*metricspb.SummaryDataPoint_ValueAtQuantile{{Quantile: 0.5, Value: 1}, {Quantile: 1, Value: 2}}}}}}}
	return []*colmetricspb.ExportMetricsServiceRequest{
		request(attrs("service.name", "api", "host.name", "h"), gauge("g", integer(1, 0, 1, str("a", "b")), dbl(2.5, 0, 1, arr))),
		request(nil, sum("d", deltaT, true, integer(3, 0, 1)), sum("c", cumulT, true, integer(5, started+1, 2)), sum("u", cumulT, false, dbl(-1, 1, 2))),
		request(nil, histogram("h", deltaT, explicitPoint([]float64{1, 7, 30, 200}, []float64{5, 10, 100})),
			histogram("hc", cumulT, &metricspb.HistogramDataPoint{StartTimeUnixNano: 1, TimeUnixNano: 2, Count: 2, BucketCounts: []uint64{1, 1}, ExplicitBounds: []float64{3}})),
		request(nil, expHistogram("e", deltaT, exponentialPoint([]float64{0.5, 3, 9, 100}, 2)),
			expHistogram("ec", cumulT, &metricspb.ExponentialHistogramDataPoint{StartTimeUnixNano: started + 1, TimeUnixNano: 2, Count: 3, ZeroCount: 1, Scale: 1,
				Negative: &metricspb.ExponentialHistogramDataPoint_Buckets{Offset: -2, BucketCounts: []uint64{1, 1}}})),
		request(nil, summary),
		func() *colmetricspb.ExportMetricsServiceRequest {
			// The fields the source does not use, which the decoder decodes
			// all the same.
			p := dbl(1, 0, 1, &commonpb.KeyValue{Key: "kv", Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_KvlistValue{
				KvlistValue: &commonpb.KeyValueList{Values: attrs("x", "y")}}}},
				&commonpb.KeyValue{Key: "b", Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_BytesValue{BytesValue: []byte{1, 2}}}})
			p.Exemplars = []*metricspb.Exemplar{{TimeUnixNano: 1, Value: &metricspb.Exemplar_AsInt{AsInt: 3},
				SpanId: []byte{1, 2, 3, 4, 5, 6, 7, 8}, TraceId: make([]byte, 16), FilteredAttributes: attrs("user", "u1")}}
			m := gauge("g", p)
			m.Description, m.Unit, m.Metadata = "a gauge", "ms", attrs("m", "d")
			r := request(attrs("service.name", "api"), m)
			r.ResourceMetrics[0].Resource.EntityRefs = []*commonpb.EntityRef{{Type: "service", IdKeys: []string{"service.name"}}}
			r.ResourceMetrics[0].SchemaUrl = "https://opentelemetry.io/schemas/1.26.0"
			r.ResourceMetrics[0].ScopeMetrics[0].Scope.Attributes = attrs("s", "t")
			return r
		}(),
	}
}

// TestSeedCorpus checks that the seed corpora hold the seed requests, and
// writes them when run with -update-corpus.
func TestSeedCorpus(t *testing.T) {
	for i, r := range seedRequests() {
		b, err := proto.MarshalOptions{Deterministic: true}.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		checkCorpus(t, "FuzzDecodeProtobuf", i, b)
		js := jsonOf(t, r)
		checkCorpus(t, "FuzzDecodeJSON", i, js)
	}
}

var updateCorpus = flag.Bool("update-corpus", false, "write the seed corpora of the fuzz tests")

// checkCorpus checks, or writes, seed i of fuzz test name.
func checkCorpus(t *testing.T, name string, i int, b []byte) {
	t.Helper()
	path := filepath.Join("testdata", "fuzz", name, fmt.Sprintf("seed-%d", i))
	want := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", b)
	if *updateCorpus {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	got, err := os.ReadFile(path)
	if err != nil || string(got) != want {
		t.Errorf("%s is not seed %d (%v): run go test -run TestSeedCorpus -update-corpus", path, i, err)
	}
}

// jsonOf is r in OTLP's JSON, without the random spaces protojson adds.
func jsonOf(t *testing.T, r proto.Message) []byte {
	b, err := protojson.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
