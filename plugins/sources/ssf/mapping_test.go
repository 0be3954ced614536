package ssf

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/dgryski/go-metro"
	vssf "github.com/stripe/veneur/v14/ssf"
	"google.golang.org/protobuf/proto"

	"github.com/veneurd/veneurd/plugins/sources/ssf/ssfpb"
	"github.com/veneurd/veneurd/sdk"
	"github.com/veneurd/veneurd/sdk/sdktest"
)

func marshal(t testing.TB, sp *ssfpb.SSFSpan) []byte {
	t.Helper()
	b, err := proto.Marshal(sp)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func testConfig() *Config {
	c := defaultConfig()
	c.NamesUniqueRate = 0 // random in Veneur: tested on its own
	c.IndicatorSpanTimerName = "indicator_span.duration_ns"
	c.ObjectiveSpanTimerName = "objective_span.duration_ns"
	return c
}

func setValue(member string) float64 { return sdk.SetValue(metro.Hash64([]byte(member), hashSeed)) }

// TestSampleMapping checks, sample type by sample type, exactly what the
// source writes for hand-built spans, and that Veneur's code makes the same
// of them.
func TestSampleMapping(t *testing.T) {
	tags := map[string]string{"b": "2", "a": "1"}
	cases := []struct {
		name    string
		samples []*ssfpb.SSFSample
		want    []sdktest.Metric
		checks  []sdk.ServiceCheck
		errors  []sdktest.Error
	}{{
		name:    "counter at a rate",
		samples: []*ssfpb.SSFSample{{Metric: ssfpb.SSFSample_COUNTER, Name: "c", Value: 3, SampleRate: 0.5, Tags: tags}},
		want:    []sdktest.Metric{{Type: sdk.Counter, Name: "c", Tags: "a:1,b:2", Value: 3, Rate: 0.5}},
	}, {
		name:    "a rate left out is 1",
		samples: []*ssfpb.SSFSample{{Metric: ssfpb.SSFSample_COUNTER, Name: "c", Value: 2}},
		want:    []sdktest.Metric{{Type: sdk.Counter, Name: "c", Value: 2, Rate: 1}},
	}, {
		name:    "gauge",
		samples: []*ssfpb.SSFSample{{Metric: ssfpb.SSFSample_GAUGE, Name: "g", Value: -1.25, SampleRate: 1}},
		want:    []sdktest.Metric{{Type: sdk.Gauge, Name: "g", Value: -1.25, Rate: 1}},
	}, {
		name: "histogram, its unit ms or not",
		samples: []*ssfpb.SSFSample{
			{Metric: ssfpb.SSFSample_HISTOGRAM, Name: "h", Value: 42, SampleRate: 0.25, Unit: "ms"},
			{Metric: ssfpb.SSFSample_HISTOGRAM, Name: "h", Value: 7, SampleRate: 1},
		},
		want: []sdktest.Metric{
			{Type: sdk.Histogram, Name: "h", Value: 42, Rate: 0.25},
			{Type: sdk.Histogram, Name: "h", Value: 7, Rate: 1},
		},
	}, {
		name:    "set: the member is the message",
		samples: []*ssfpb.SSFSample{{Metric: ssfpb.SSFSample_SET, Name: "s", Message: "alice", SampleRate: 0.5}},
		want:    []sdktest.Metric{{Type: sdk.Set, Name: "s", Value: setValue("alice"), Rate: 1}},
	}, {
		name:    "status: a service check",
		samples: []*ssfpb.SSFSample{{Metric: ssfpb.SSFSample_STATUS, Name: "db.up", Status: ssfpb.SSFSample_CRITICAL, Tags: tags}},
		checks:  []sdk.ServiceCheck{{Name: "db.up", Status: 2, Tags: []string{"a:1", "b:2"}}},
	}, {
		name: "scope field, and the scope keys, which win and are dropped",
		samples: []*ssfpb.SSFSample{
			{Metric: ssfpb.SSFSample_COUNTER, Name: "l", Value: 1, Scope: ssfpb.SSFSample_LOCAL},
			{Metric: ssfpb.SSFSample_HISTOGRAM, Name: "g", Value: 1, Scope: ssfpb.SSFSample_GLOBAL},
			{Metric: ssfpb.SSFSample_COUNTER, Name: "k", Value: 1, Scope: ssfpb.SSFSample_LOCAL, Tags: map[string]string{"veneurglobalonly": "", "x": "y"}},
			{Metric: ssfpb.SSFSample_COUNTER, Name: "both", Value: 1, Tags: map[string]string{"veneurglobalonly": "true", "veneurlocalonly": "true"}},
			{Metric: ssfpb.SSFSample_COUNTER, Name: "unknown", Value: 1, Scope: 7},
		},
		want: []sdktest.Metric{
			{Type: sdk.Counter, Scope: sdk.ScopeLocal, Name: "l", Value: 1, Rate: 1},
			{Type: sdk.Histogram, Scope: sdk.ScopeGlobal, Name: "g", Value: 1, Rate: 1},
			{Type: sdk.Counter, Scope: sdk.ScopeGlobal, Name: "k", Tags: "x:y", Value: 1, Rate: 1},
			{Type: sdk.Counter, Scope: sdk.ScopeLocal, Name: "both", Value: 1, Rate: 1},
			{Type: sdk.Counter, Name: "unknown", Value: 1, Rate: 1},
		},
	}, {
		name: "tags: k:v sorted as strings, an empty value kept as k:",
		samples: []*ssfpb.SSFSample{{Metric: ssfpb.SSFSample_COUNTER, Name: "t", Value: 1,
			Tags: map[string]string{"a": "z", "a.b": "1", "bare": "", "": "", "0": "x"}}},
		want: []sdktest.Metric{{Type: sdk.Counter, Name: "t", Tags: "0:x,:,a.b:1,a:z,bare:", Value: 1, Rate: 1}},
	}, {
		name: "invalid samples are counted, the others kept",
		samples: []*ssfpb.SSFSample{
			{Metric: ssfpb.SSFSample_COUNTER, Name: "", Value: 1},
			{Metric: 9, Name: "x", Value: 1},
			{Metric: ssfpb.SSFSample_COUNTER, Name: "nan", Value: float32(math.NaN())},
			{Metric: ssfpb.SSFSample_HISTOGRAM, Name: "inf", Value: float32(math.Inf(1))},
			{Metric: ssfpb.SSFSample_COUNTER, Name: "rate", Value: 1, SampleRate: 2},
			{Metric: ssfpb.SSFSample_COUNTER, Name: "negrate", Value: 1, SampleRate: -0.5},
			{Metric: ssfpb.SSFSample_STATUS, Name: "st", Status: 4},
			{Metric: ssfpb.SSFSample_COUNTER, Name: "comma", Value: 1, Tags: map[string]string{"a": "1,2"}},
			{Metric: ssfpb.SSFSample_GAUGE, Name: "gauge.rate", Value: 5, SampleRate: 3}, // a gauge ignores its rate
			{Metric: ssfpb.SSFSample_COUNTER, Name: "ok", Value: 4},
		},
		want: []sdktest.Metric{
			{Type: sdk.Gauge, Name: "gauge.rate", Value: 5, Rate: 1},
			{Type: sdk.Counter, Name: "ok", Value: 4, Rate: 1},
		},
		errors: []sdktest.Error{
			sampleErr(ReasonNoName), sampleErr(ReasonBadType), sampleErr(ReasonBadValue),
			sampleErr(ReasonBadValue), sampleErr(ReasonBadRate), sampleErr(ReasonBadRate),
			sampleErr(ReasonBadStatus), sampleErr(ReasonBadTags),
		},
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig()
			packet := marshal(t, &ssfpb.SSFSpan{Service: "svc", Metrics: tc.samples})
			got := ours(t, cfg, packet)
			if d := sameResult(got, result{metrics: tc.want, checks: tc.checks, errors: tc.errors}); d != "" {
				t.Error(d)
			}
			compareWithVeneur(t, cfg, packet)
		})
	}
}

// TestIndicatorTimers checks the timers of an indicator span: the
// duration in nanoseconds as Veneur sends it (a float32), the tags, the
// objective's scope, and that they are made only of valid trace spans.
func TestIndicatorTimers(t *testing.T) {
	start := time.Date(2024, 5, 1, 12, 0, 0, 123, time.UTC)
	const d = 1234567891 * time.Nanosecond // not a float32: rounds to 1234567936
	valid := func() *ssfpb.SSFSpan {
		return &ssfpb.SSFSpan{TraceId: 7, Id: 8, ParentId: 7, StartTimestamp: start.UnixNano(), EndTimestamp: start.Add(d).UnixNano(),
			Service: "api", Name: "GET /charges", Indicator: true,
			Metrics: []*ssfpb.SSFSample{{Metric: ssfpb.SSFSample_COUNTER, Name: "c", Value: 1}}}
	}
	want := float64(float32(d))
	if want != 1234567936 {
		t.Fatalf("float32 rounding: %v", want)
	}
	counter := sdktest.Metric{Type: sdk.Counter, Name: "c", Value: 1, Rate: 1}
	cases := []struct {
		name   string
		edit   func(*ssfpb.SSFSpan)
		cfg    func(*Config)
		want   []sdktest.Metric
		errors []sdktest.Error
	}{{
		name: "both timers",
		want: []sdktest.Metric{counter,
			{Type: sdk.Histogram, Name: "indicator_span.duration_ns", Tags: "error:false,service:api", Value: want, Rate: 1},
			{Type: sdk.Histogram, Scope: sdk.ScopeGlobal, Name: "objective_span.duration_ns", Tags: "error:false,objective:GET /charges,service:api", Value: want, Rate: 1},
		},
	}, {
		name: "an error span, its objective named by its tag",
		edit: func(s *ssfpb.SSFSpan) { s.Error = true; s.Tags = map[string]string{"ssf_objective": "charges"} },
		want: []sdktest.Metric{counter,
			{Type: sdk.Histogram, Name: "indicator_span.duration_ns", Tags: "error:true,service:api", Value: want, Rate: 1},
			{Type: sdk.Histogram, Scope: sdk.ScopeGlobal, Name: "objective_span.duration_ns", Tags: "error:true,objective:charges,service:api", Value: want, Rate: 1},
		},
	}, {
		name: "a name from the tag name",
		edit: func(s *ssfpb.SSFSpan) { s.Name = ""; s.Tags = map[string]string{"name": "from.tag"} },
		cfg:  func(c *Config) { c.IndicatorSpanTimerName = "" },
		want: []sdktest.Metric{counter,
			{Type: sdk.Histogram, Scope: sdk.ScopeGlobal, Name: "objective_span.duration_ns", Tags: "error:false,objective:from.tag,service:api", Value: want, Rate: 1},
		},
	}, {
		name: "no timer names configured",
		cfg:  func(c *Config) { c.IndicatorSpanTimerName, c.ObjectiveSpanTimerName = "", "" },
		want: []sdktest.Metric{counter},
	}, {
		name: "not an indicator",
		edit: func(s *ssfpb.SSFSpan) { s.Indicator = false },
		want: []sdktest.Metric{counter},
	}, {
		name: "not a valid trace span: no id",
		edit: func(s *ssfpb.SSFSpan) { s.Id = 0 },
		want: []sdktest.Metric{counter},
	}, {
		name: "not a valid trace span: no end",
		edit: func(s *ssfpb.SSFSpan) { s.EndTimestamp = 0 },
		want: []sdktest.Metric{counter},
	}, {
		name: "not a valid trace span: no name",
		edit: func(s *ssfpb.SSFSpan) { s.Name = "" },
		want: []sdktest.Metric{counter},
	}, {
		name: "ending before it started: a negative duration, as in Veneur",
		edit: func(s *ssfpb.SSFSpan) { s.StartTimestamp, s.EndTimestamp = s.EndTimestamp, s.StartTimestamp },
		cfg:  func(c *Config) { c.ObjectiveSpanTimerName = "" },
		want: []sdktest.Metric{counter,
			{Type: sdk.Histogram, Name: "indicator_span.duration_ns", Tags: "error:false,service:api", Value: -want, Rate: 1},
		},
	}, {
		name:   "a service holding a comma",
		edit:   func(s *ssfpb.SSFSpan) { s.Service = "a,b" },
		want:   []sdktest.Metric{counter},
		errors: []sdktest.Error{sampleErr(ReasonBadTags), sampleErr(ReasonBadTags)},
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sp := valid()
			if tc.edit != nil {
				tc.edit(sp)
			}
			cfg := testConfig()
			if tc.cfg != nil {
				tc.cfg(cfg)
			}
			packet := marshal(t, sp)
			got := ours(t, cfg, packet)
			if d := sameResult(got, result{metrics: tc.want, errors: tc.errors}); d != "" {
				t.Error(d)
			}
			compareWithVeneur(t, cfg, packet)
		})
	}
}

// TestNamesUnique checks the set of span names per service Veneur keeps
// of a share of trace spans, here all of them.
func TestNamesUnique(t *testing.T) {
	cfg := testConfig()
	cfg.IndicatorSpanTimerName, cfg.ObjectiveSpanTimerName = "", ""
	cfg.NamesUniqueRate = 1
	root := &ssfpb.SSFSpan{TraceId: 5, Id: 5, StartTimestamp: 1, EndTimestamp: 2, Service: "api", Name: "root", Indicator: true}
	child := &ssfpb.SSFSpan{TraceId: 5, Id: 6, StartTimestamp: 1, EndTimestamp: 2, Service: "api", Name: "child"}
	noService := &ssfpb.SSFSpan{TraceId: 5, Id: 7, StartTimestamp: 1, EndTimestamp: 2, Name: "x"}
	notTrace := &ssfpb.SSFSpan{Service: "api", Name: "y"}
	got := ours(t, cfg, marshal(t, root), marshal(t, child), marshal(t, noService), marshal(t, notTrace))
	want := result{metrics: []sdktest.Metric{
		{Type: sdk.Set, Name: "veneur.ssf.names_unique", Tags: "indicator:true,root_span:true,service:api", Value: setValue("root"), Rate: 1},
		{Type: sdk.Set, Name: "veneur.ssf.names_unique", Tags: "indicator:false,root_span:false,service:api", Value: setValue("child"), Rate: 1},
	}}
	if d := sameResult(got, want); d != "" {
		t.Error(d)
	}
	cfg.NamesUniqueRate = 0
	if got := ours(t, cfg, marshal(t, root)); len(got.metrics) != 0 {
		t.Errorf("names_unique_rate = 0 wrote %s", got)
	}
}

// TestRejectedSpans checks that a packet that does not decode is counted
// under its reason, and costs nothing to the packets around it.
func TestRejectedSpans(t *testing.T) {
	good := marshal(t, &ssfpb.SSFSpan{Metrics: []*ssfpb.SSFSample{
		{Metric: ssfpb.SSFSample_COUNTER, Name: "good", Value: 1, Tags: map[string]string{"k": "v"}},
		{Metric: ssfpb.SSFSample_GAUGE, Name: "g", Value: 2},
	}})
	cases := []struct {
		name   string
		packet []byte
		reason string
	}{
		{"empty", nil, ReasonEmpty},
		{"truncated", good[:len(good)-3], ReasonTruncated},
		{"a length past the end", []byte{0x52, 0x7f, 0x08}, ReasonTruncated},
		{"garbage", []byte("hello, world"), ReasonInvalid},
		{"a field number 0", []byte{0x00, 0x01}, ReasonInvalid},
		{"a known field of the wrong wire type: service as a varint", []byte{0x40, 0x01}, ReasonInvalid},
		{"an end group alone", []byte{0x0c}, ReasonInvalid},
		{"a varint of eleven bytes", []byte{0x10, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, ReasonInvalid},
		{"a sample's fixed32 cut", []byte{0x52, 0x03, 0x1d, 0x00, 0x00}, ReasonTruncated},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig()
			got := ours(t, cfg, good, tc.packet, good)
			if len(got.errors) != 1 || got.errors[0] != (sdktest.Error{PacketType: PacketSpan, Reason: tc.reason}) {
				t.Errorf("errors %v, want one %s", got.errors, tc.reason)
			}
			if n := len(got.metrics); n != 4 {
				t.Errorf("%d metrics, want the 4 of the good packets around: %s", n, got)
			}
			if tc.reason != ReasonEmpty { // Veneur refuses an empty datagram before decoding it
				compareWithVeneur(t, cfg, tc.packet)
			}
		})
	}
	// Every cut of a good packet is refused or decodes to what Veneur
	// decodes it to.
	for i := range len(good) {
		if i > 0 {
			compareWithVeneur(t, testConfig(), good[:i])
		}
	}
}

// TestVeneurEncoding decodes spans as Veneur's own client encodes them
// (gogo/protobuf), tags in map order, and checks they make what the same
// spans encoded by this package's generated code make.
func TestVeneurEncoding(t *testing.T) {
	tags := map[string]string{"z": "1", "a": "2", "m": "", "veneurlocalonly": "x"}
	v := &vssf.SSFSpan{TraceId: 1, Id: 2, StartTimestamp: 100, EndTimestamp: 350, Service: "s", Name: "n", Indicator: true,
		Tags: map[string]string{"ssf_objective": "obj"},
		Metrics: []*vssf.SSFSample{
			vssf.Count("c", 5, tags, vssf.SampleRate(0.5)),
			vssf.Gauge("g", 1.5, tags),
			vssf.Timing("t", 1500*time.Microsecond, time.Millisecond, tags),
			vssf.Set("s", "member", tags),
			vssf.Status("st", vssf.SSFSample_WARNING, tags),
		}}
	vb, err := v.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	ourTags := map[string]string{"z": "1", "a": "2", "m": "", "veneurlocalonly": "x"}
	o := &ssfpb.SSFSpan{TraceId: 1, Id: 2, StartTimestamp: 100, EndTimestamp: 350, Service: "s", Name: "n", Indicator: true,
		Tags: map[string]string{"ssf_objective": "obj"},
		Metrics: []*ssfpb.SSFSample{
			{Metric: ssfpb.SSFSample_COUNTER, Name: "c", Value: 5, SampleRate: 0.5, Tags: ourTags},
			{Metric: ssfpb.SSFSample_GAUGE, Name: "g", Value: 1.5, SampleRate: 1, Tags: ourTags},
			{Metric: ssfpb.SSFSample_HISTOGRAM, Name: "t", Value: 1, SampleRate: 1, Tags: ourTags, Unit: "ms"},
			{Metric: ssfpb.SSFSample_SET, Name: "s", Message: "member", SampleRate: 1, Tags: ourTags},
			{Metric: ssfpb.SSFSample_STATUS, Name: "st", Status: ssfpb.SSFSample_WARNING, SampleRate: 1, Tags: ourTags},
		}}
	cfg := testConfig()
	fromVeneur := ours(t, cfg, vb)
	fromOurs := ours(t, cfg, marshal(t, o))
	if d := sameResult(fromVeneur, fromOurs); d != "" {
		t.Error(d)
	}
	if len(fromVeneur.metrics) != 6 || len(fromVeneur.checks) != 1 {
		t.Errorf("want 4 samples, 2 timers and a check: %s", fromVeneur)
	}
	for _, m := range fromVeneur.metrics {
		if m.Name != "indicator_span.duration_ns" && m.Name != "objective_span.duration_ns" &&
			(m.Tags != "a:2,m:,z:1" || m.Scope != sdk.ScopeLocal) {
			t.Errorf("%s: want tags a:2,m:,z:1, local", m)
		}
		if strings.HasSuffix(m.Name, "duration_ns") && m.Value != 250 {
			t.Errorf("%s: want 250 ns", m)
		}
	}
	compareWithVeneur(t, cfg, vb)
}

func spanWithCounter(name string, v float32) *ssfpb.SSFSpan {
	return &ssfpb.SSFSpan{Metrics: []*ssfpb.SSFSample{{Metric: ssfpb.SSFSample_COUNTER, Name: name, Value: v}}}
}

func sampleErr(reason string) sdktest.Error {
	return sdktest.Error{PacketType: PacketSample, Reason: reason}
}
