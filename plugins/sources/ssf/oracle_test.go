package ssf

import (
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/dgryski/go-metro"
	"github.com/hashicorp/go-hclog"
	vprotocol "github.com/stripe/veneur/v14/protocol"
	"github.com/stripe/veneur/v14/samplers"
	vssf "github.com/stripe/veneur/v14/ssf"

	"github.com/veneurd/veneurd/sdk"
	"github.com/veneurd/veneurd/sdk/sdktest"
)

// The oracle is Veneur v14.2.0's own code, linked into the tests: its
// protocol.ParseSSF decodes and normalizes a packet, and its
// samplers.Parser's ConvertMetrics and ConvertIndicatorMetrics make the
// metrics its workers aggregate. What the source writes must be exactly
// what those make, except the samples it refuses on purpose (see
// wantRejected), which Veneur would aggregate.

// result is what came of one packet: written metrics (rate set to 1 for
// gauges and sets, which ignore it), service checks and errors.
type result struct {
	metrics []sdktest.Metric
	checks  []sdk.ServiceCheck
	errors  []sdktest.Error
}

func (r result) String() string {
	var b strings.Builder
	for _, m := range r.metrics {
		fmt.Fprintf(&b, "\n\tmetric %s", m)
	}
	for _, c := range r.checks {
		fmt.Fprintf(&b, "\n\tcheck %+v", c)
	}
	for _, e := range r.errors {
		fmt.Fprintf(&b, "\n\terror %+v", e)
	}
	return b.String()
}

// ours runs packets through a handler configured by cfg.
func ours(t testing.TB, cfg *Config, packets ...[]byte) result {
	t.Helper()
	if err := cfg.validate(); err != nil {
		t.Fatal(err)
	}
	c := &sdktest.Collector{}
	w := c.Writer("test")
	h := newHandler(cfg, w, hclog.NewNullLogger())
	for _, p := range packets {
		h.packet(p)
	}
	w.Flush()
	c.Close()
	for _, p := range c.Problems() {
		t.Errorf("Writer contract: %s", p)
	}
	r := result{checks: c.ServiceChecks(), errors: c.Errors()}
	for _, m := range c.Metrics() {
		m.Protocol = ""
		r.metrics = append(r.metrics, m)
	}
	return r
}

// veneur runs a packet through Veneur's code: its error, if ParseSSF
// refuses the packet, else the metrics its workers would get.
func veneur(t testing.TB, indicator, objective string, packet []byte) (result, error) {
	t.Helper()
	span, err := vprotocol.ParseSSF(packet)
	if err != nil {
		return result{}, err
	}
	// With both scope keys in a sample's tags, Veneur's scope depends on
	// map order; the source's local wins, which this makes Veneur do.
	for _, s := range span.Metrics {
		if _, ok := s.Tags[tagLocalOnly]; ok {
			delete(s.Tags, tagGlobalOnly)
		}
	}
	var r result
	// ConvertMetrics leaves out the samples it finds invalid, which the
	// source counts: those without a name, and those of an unknown type.
	for _, s := range span.Metrics {
		switch {
		case s.Name == "":
			r.errors = append(r.errors, sdktest.Error{PacketType: PacketSample, Reason: ReasonNoName})
		case s.Metric < 0 || s.Metric > vssf.SSFSample_STATUS:
			r.errors = append(r.errors, sdktest.Error{PacketType: PacketSample, Reason: ReasonBadType})
		}
	}
	p := samplers.NewParser(nil)
	metrics, _ := p.ConvertMetrics(span)
	for _, m := range metrics {
		r.add(m)
	}
	// What ssfmetrics' Ingest does next, uniqueness sets aside (random).
	if vprotocol.ValidTrace(span) {
		ind, err := p.ConvertIndicatorMetrics(span, indicator, objective)
		if err != nil {
			t.Fatalf("ConvertIndicatorMetrics: %v", err)
		}
		for _, m := range ind {
			r.add(m)
		}
	}
	return r, nil
}

// add converts one of Veneur's UDPMetrics, as its worker takes it, or
// records the error the source reports for it instead.
func (r *result) add(m samplers.UDPMetric) {
	if reason := wantRejected(m); reason != "" {
		r.errors = append(r.errors, sdktest.Error{PacketType: PacketSample, Reason: reason})
		return
	}
	scope := sdk.ScopeDefault
	switch m.Scope {
	case samplers.LocalOnly:
		scope = sdk.ScopeLocal
	case samplers.GlobalOnly:
		scope = sdk.ScopeGlobal
	}
	out := sdktest.Metric{Scope: scope, Name: m.Name, Tags: strings.Join(m.Tags, ","), Rate: float64(m.SampleRate)}
	switch m.Type {
	case "counter":
		out.Type, out.Value = sdk.Counter, m.Value.(float64)
	case "gauge":
		out.Type, out.Value, out.Rate = sdk.Gauge, m.Value.(float64), 1
	case "histogram":
		out.Type, out.Value = sdk.Histogram, m.Value.(float64)
	case "set":
		out.Type, out.Rate = sdk.Set, 1
		out.Value = sdk.SetValue(metro.Hash64([]byte(m.Value.(string)), hashSeed))
	case "status":
		// Veneur keeps no message (ParseMetricSSF leaves it out); the
		// source keeps the sample's, which the packets here leave empty.
		r.checks = append(r.checks, sdk.ServiceCheck{Name: m.Name, Status: int(m.Value.(vssf.SSFSample_Status)), Tags: nilIfEmpty(m.Tags)})
		return
	default:
		panic("Veneur made a " + m.Type)
	}
	r.metrics = append(r.metrics, out)
}

func nilIfEmpty(tags []string) []string {
	if len(tags) == 0 {
		return nil
	}
	return tags
}

// wantRejected says why the source refuses a metric Veneur takes, or "".
// These are the deliberate differences: values that are not finite, rates
// outside (0, 1], statuses past UNKNOWN, tags holding a comma, and names or
// tags too long for a series.
func wantRejected(m samplers.UDPMetric) string {
	if len(m.Name) > maxLen {
		return ReasonTooLongMetric
	}
	for _, t := range m.Tags {
		if strings.Contains(t, ",") {
			return ReasonBadTags
		}
	}
	if len(m.JoinedTags) > maxLen {
		return ReasonTooLongMetric
	}
	switch m.Type {
	case "status":
		if s := m.Value.(vssf.SSFSample_Status); s < 0 || s > 3 {
			return ReasonBadStatus
		}
	case "counter", "gauge", "histogram":
		if v := m.Value.(float64); math.IsNaN(v) || math.IsInf(v, 0) {
			return ReasonBadValue
		}
		if r := m.SampleRate; m.Type != "gauge" && !(r > 0 && r <= 1) {
			return ReasonBadRate
		}
	}
	return ""
}

// sameResult reports how got differs from want, metrics and errors
// compared as multisets (a sample's rejection is reported where Veneur's
// list had it).
func sameResult(got, want result) string {
	var diffs []string
	cmpM := func(a, b sdktest.Metric) int { return strings.Compare(a.String(), b.String()) }
	g, w := slices.Clone(got.metrics), slices.Clone(want.metrics)
	slices.SortFunc(g, cmpM)
	slices.SortFunc(w, cmpM)
	if !slices.EqualFunc(g, w, func(a, b sdktest.Metric) bool {
		return a.Type == b.Type && a.Scope == b.Scope && a.Name == b.Name && a.Tags == b.Tags &&
			math.Float64bits(a.Value) == math.Float64bits(b.Value) && a.Rate == b.Rate
	}) {
		diffs = append(diffs, "metrics differ")
	}
	cmpE := func(a, b sdktest.Error) int { return strings.Compare(a.PacketType+a.Reason, b.PacketType+b.Reason) }
	ge, we := slices.Clone(got.errors), slices.Clone(want.errors)
	slices.SortFunc(ge, cmpE)
	slices.SortFunc(we, cmpE)
	if !slices.Equal(ge, we) {
		diffs = append(diffs, "errors differ")
	}
	cmpC := func(a, b sdk.ServiceCheck) int { return strings.Compare(fmt.Sprint(a), fmt.Sprint(b)) }
	gc, wc := slices.Clone(got.checks), slices.Clone(want.checks)
	slices.SortFunc(gc, cmpC)
	slices.SortFunc(wc, cmpC)
	if fmt.Sprint(gc) != fmt.Sprint(wc) {
		diffs = append(diffs, "service checks differ")
	}
	if len(diffs) == 0 {
		return ""
	}
	return strings.Join(diffs, ", ") + "\ngot:" + got.String() + "\nwant:" + want.String()
}

// compareWithVeneur runs packet through both and fails on any difference.
func compareWithVeneur(t *testing.T, cfg *Config, packet []byte) {
	t.Helper()
	got := ours(t, cfg, packet)
	want, err := veneur(t, cfg.IndicatorSpanTimerName, cfg.ObjectiveSpanTimerName, packet)
	if err != nil {
		reason := ReasonInvalid
		if errors.Is(err, io.ErrUnexpectedEOF) {
			reason = ReasonTruncated
		}
		want = result{errors: []sdktest.Error{{PacketType: PacketSpan, Reason: reason}}}
	}
	if d := sameResult(got, want); d != "" {
		t.Errorf("packet %x: %s", packet, d)
	}
}
