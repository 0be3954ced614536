package sdktest

import (
	"context"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	"github.com/veneurd/veneurd/sdk"
	pb "github.com/veneurd/veneurd/sdk/proto"
)

// SinkCase describes how to run one sink through the kit.
type SinkCase struct {
	// Config is the sink's block: attribute names to values, sent as the
	// JSON object veneurd sends (see Configure). Nil means an empty block.
	Config map[string]any

	// AfterConfigure, if set, runs after Configure succeeded and before
	// Start. It checks that Configure had no side effect, for instance that
	// the file the sink writes to was not created.
	AfterConfigure func(t *testing.T)

	// Observe, if set, returns every record the sink has written so far, one
	// per point (service checks included: they are status points), in any
	// order, leaving out whatever the sink writes for events. It is called
	// once, after Stop.
	Observe func(t *testing.T) []string

	// Format renders a point as the record Observe returns for it. It is
	// required when Observe is set. The kit checks that every point it
	// flushed was written exactly once, with the values it had when Flush
	// was called: a sink that keeps points past Flush and reads them later
	// writes the values the kit overwrote them with afterwards.
	//
	// Format returns "" for a point the sink is meant to skip, such as a
	// point whose value is NaN or infinite in a format that cannot hold
	// it; the kit then checks that the sink wrote nothing for it.
	Format func(p sdk.Point) string
}

// Sink runs the sink newPlugin returns through the contract: it checks the
// schema over gRPC, configures the sink with c.Config, runs
// c.AfterConfigure, starts the sink and flushes several batches of points
// and events to it: one sent in several chunks, an empty one, two at the same
// time (veneurd does not wait for a slow sink before the next interval's
// flush), and one passed to the Go method directly, after which the kit
// checks the batch was not mutated and overwrites every point. It then
// flushes once more, flushes what a sink must survive (values that are NaN or
// infinite among finite ones; names, tags, hostnames, messages and events
// holding tabs, newlines, quotes, control characters and invalid UTF-8),
// which must not fail, stops the sink and compares c.Observe with c.Format of
// every point flushed.
//
// Sink returns every point it flushed, in the order it flushed them, for
// further checks of the caller's own.
func Sink(t *testing.T, newPlugin func() sdk.Sink, c SinkCase) []sdk.Point {
	t.Helper()
	if c.Observe != nil && c.Format == nil {
		t.Fatal("sdktest.SinkCase: Observe is set but Format is not")
	}
	p := newPlugin()
	cc, kind := conn(t, p)
	if kind != sdk.KindSink {
		t.Fatalf("%T is served as a %s, not a sink", p, kind)
	}
	pc, sc := pb.NewPluginClient(cc), pb.NewSinkClient(cc)

	checkSchema(t, p, pc)
	mustConfigure(t, pc, SinkAddress, c.Config)
	if c.AfterConfigure != nil {
		c.AfterConfigure(t)
	}

	ctx, cancel := context.WithTimeout(context.Background(), rpcTimeout)
	defer cancel()
	if _, err := sc.Start(ctx, &pb.Empty{}); err != nil {
		t.Fatalf("Start failed: %v", err)
	}
	var flushed []sdk.Point

	// One flush in three chunks, as veneurd splits large flushes.
	a := testFlush(1795300000, "a", 300)
	mustFlushChunks(t, sc, &a, []int{0, 120, 250})
	flushed = append(flushed, clonePoints(a.Points)...)

	// An interval in which nothing happened.
	empty := sdk.Flush{Timestamp: 1795300010}
	mustFlushChunks(t, sc, &empty, nil)

	// Two flushes at once: a slow sink's flush may overlap the next one.
	b1, b2 := testFlush(1795300020, "b1", 50), testFlush(1795300030, "b2", 50)
	failed := t.Failed()
	var wg sync.WaitGroup
	for _, f := range []*sdk.Flush{&b1, &b2} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			mustFlushChunks(t, sc, f, []int{0, 25})
		}()
	}
	wg.Wait()
	if t.Failed() && !failed {
		t.FailNow()
	}
	flushed = append(flushed, clonePoints(b1.Points)...)
	flushed = append(flushed, clonePoints(b2.Points)...)

	// The ownership rules: a sink must not mutate a flush nor keep it.
	direct := testFlush(1795300040, "c", 40)
	want := cloneFlush(direct)
	if err := p.Flush(ctx, &direct); err != nil {
		t.Fatalf("Flush failed: %v", err)
	}
	if diff := diffFlush(want, direct); diff != "" {
		t.Errorf("Flush mutated the flush it was given (sinks share it and must only read it): %s", diff)
	}
	scribble(&direct)
	flushed = append(flushed, want.Points...)

	// A later flush, by which time a sink that kept the previous one's
	// points would see what scribble wrote.
	d := testFlush(1795300050, "d", 10)
	mustFlushChunks(t, sc, &d, []int{0})
	flushed = append(flushed, clonePoints(d.Points)...)

	// What a third-party source, or a bug upstream, may let through: one
	// bad point must cost only itself, never the rest of the flush. Events
	// whose strings are not valid UTF-8 cannot cross the wire (protobuf
	// refuses them), so they go to the Go method.
	odd := oddFlush(1795300060)
	if err := flushChunks(sc, &odd, []int{0, len(odd.Points) / 2}); err != nil {
		t.Errorf("%s: %v", oddFailed, err)
	}
	flushed = append(flushed, clonePoints(odd.Points)...)
	invalid := oddInvalidUTF8(1795300070)
	if err := p.Flush(ctx, &invalid); err != nil {
		t.Errorf("%s (events and points with invalid UTF-8, through the Go method): %v", oddFailed, err)
	}
	flushed = append(flushed, clonePoints(invalid.Points)...)

	if _, err := sc.Stop(ctx, &pb.Empty{}); err != nil {
		t.Fatalf("Stop failed: %v", err)
	}
	if c.Observe != nil {
		compareRecords(t, c.Observe(t), flushed, c.Format)
	}
	return flushed
}

// oddFailed says why a failed flush of odd points breaks the contract.
const oddFailed = "a flush holding points whose value is NaN or infinite, or strings with control characters or invalid UTF-8, failed: " +
	"a sink must skip (or write in its own documented way) what its format cannot hold, and deliver the rest"

// mustFlushChunks is flushChunks, failing the test on an error.
func mustFlushChunks(t *testing.T, sc pb.SinkClient, f *sdk.Flush, cuts []int) {
	t.Helper()
	if err := flushChunks(sc, f, cuts); err != nil {
		t.Error(err)
	}
}

// flushChunks sends f over the Flush stream, cutting its points at the given
// offsets (the first must be 0); events go in a chunk of their own.
func flushChunks(sc pb.SinkClient, f *sdk.Flush, cuts []int) error {
	var chunks []*pb.FlushChunk
	for i, from := range cuts {
		to := len(f.Points)
		if i+1 < len(cuts) {
			to = cuts[i+1]
		}
		var pw sdk.PointPacker
		for j := from; j < to; j++ {
			pw.Append(&f.Points[j])
		}
		chunks = append(chunks, &pb.FlushChunk{Points: pw.Bytes()})
	}
	if len(chunks) == 0 {
		chunks = append(chunks, &pb.FlushChunk{})
	}
	if len(f.Events) > 0 {
		ch := &pb.FlushChunk{}
		for i := range f.Events {
			ch.Events = append(ch.Events, sdk.EventToProto(&f.Events[i]))
		}
		chunks = append(chunks, ch)
	}
	chunks[0].Timestamp = f.Timestamp

	ctx, cancel := context.WithTimeout(context.Background(), rpcTimeout)
	defer cancel()
	stream, err := sc.Flush(ctx)
	if err != nil {
		return fmt.Errorf("Flush RPC failed: %w", err)
	}
	for _, ch := range chunks {
		if err := stream.Send(ch); err != nil {
			break // CloseAndRecv reports why
		}
	}
	res, err := stream.CloseAndRecv()
	if err != nil {
		return fmt.Errorf("Flush of %d points failed: %w", len(f.Points), err)
	}
	if res.Points != uint64(len(f.Points)) {
		return fmt.Errorf("Flush of %d points answered %d", len(f.Points), res.Points)
	}
	return nil
}

// testFlush returns a flush of n points named after prefix, and two events.
// The points cover each point type (status points are service checks), no
// tags, one and
// several, tags and messages that need escaping, negative, fractional, very
// small and very large values, and points with and without a hostname.
func testFlush(ts int64, prefix string, n int) sdk.Flush {
	f := sdk.Flush{Timestamp: ts}
	values := []float64{3, -2.5, 1e-7, 123456789.125, 0, 42}
	for i := range n {
		p := sdk.Point{
			Name:      fmt.Sprintf("sdktest.%s.m%d", prefix, i),
			Type:      sdk.PointCounter,
			Value:     values[i%len(values)],
			Timestamp: ts,
		}
		switch i % 3 {
		case 1:
			p.Type = sdk.PointGauge
		case 2:
			p.Type = sdk.PointStatus
			p.Value = float64(i % 4)
			p.Message = fmt.Sprintf("status %d: \"quoted\", ünïcödé & <html>", i)
		}
		switch i % 4 {
		case 1:
			p.Tags = []string{"env:dev"}
		case 2:
			p.Tags = []string{"a:b", "env:dev", "q:\"x\"", "z:é"}
		case 3:
			p.Tags = []string{fmt.Sprintf("i:%d", i), "k:v"}
		}
		if i%5 != 4 {
			p.Hostname = "h1"
		}
		if i == 7 {
			p.Name = "sdktest." + prefix + ".ünïcödé.\"name\""
		}
		f.Points = append(f.Points, p)
	}
	f.Events = []sdk.Event{
		{Title: prefix + " deployed", Text: "line one\nline two", Timestamp: ts, Hostname: "h1",
			AggregationKey: "deploy", Priority: "normal", SourceType: "sdktest", AlertType: "info", Tags: []string{"env:dev"}},
		{Title: prefix + " failed", Priority: "low", AlertType: "error"},
	}
	return f
}

// oddStrings need escaping or replacing in most formats: a sink that writes
// them as they are breaks its lines or its encoding.
var oddStrings = []string{
	"tab\tseparated",
	"two\nlines",
	"carriage\rreturn",
	`quote " and backslash \`,
	"nul \x00, bell \x07, escape \x1b, delete \x7f",
	"line\u2028and paragraph\u2029separators",
	"<html> & ünïcödé",
	"invalid \xff\xfe utf-8",
	"cut short \xe2\x82",
}

// oddFlush returns a flush whose points carry oddStrings in their names, tags,
// hostnames and messages, with finite values, and, among them, points whose
// value is NaN, +Inf or -Inf. Its events carry the oddStrings that are valid
// UTF-8, which are all that can cross the wire.
func oddFlush(ts int64) sdk.Flush {
	f := sdk.Flush{Timestamp: ts}
	types := []sdk.PointType{sdk.PointCounter, sdk.PointGauge, sdk.PointStatus}
	bad := []float64{math.NaN(), math.Inf(1), math.Inf(-1)}
	var nbad int
	for i, s := range oddStrings {
		p := sdk.Point{Name: "sdktest.odd." + s, Tags: []string{"a:" + s, "z:1"}, Type: types[i%3],
			Value: float64(i) + 0.5, Timestamp: ts, Hostname: s}
		if p.Type == sdk.PointStatus {
			p.Value, p.Message = float64(i%4), s
		}
		f.Points = append(f.Points, p)
		if i%3 == 1 {
			// Two bad points for every three good ones, of every type.
			for range 2 {
				v := bad[nbad%3]
				q := sdk.Point{Name: fmt.Sprintf("sdktest.odd.%g.%s", v, s), Tags: []string{"v:" + s},
					Type: types[nbad%3], Value: v, Timestamp: ts, Hostname: "h1"}
				if q.Type == sdk.PointStatus {
					q.Message = s
				}
				f.Points = append(f.Points, q)
				nbad++
			}
		}
	}
	for _, s := range oddStrings {
		if utf8.ValidString(s) {
			f.Events = append(f.Events, sdk.Event{Title: "odd " + s, Text: s + "\n" + s, Timestamp: ts, Hostname: s,
				AggregationKey: s, Priority: "normal", SourceType: s, AlertType: "info", Tags: []string{"a:" + s}})
		}
	}
	return f
}

// oddInvalidUTF8 returns a flush of events whose every string is invalid
// UTF-8, and of two points whose strings are too, a service check and a
// gauge whose value is NaN.
func oddInvalidUTF8(ts int64) sdk.Flush {
	const bad = "\xffbad\xe2\x82"
	return sdk.Flush{
		Timestamp: ts,
		Points: []sdk.Point{
			{Name: "sdktest.invalid." + bad, Tags: []string{bad}, Type: sdk.PointStatus, Value: 1, Timestamp: ts, Hostname: bad, Message: bad},
			{Name: "sdktest.invalid.nan." + bad, Tags: []string{bad}, Type: sdk.PointGauge, Value: math.NaN(), Timestamp: ts, Hostname: bad},
		},
		Events: []sdk.Event{
			{Title: bad, Text: bad + "\n" + bad, Timestamp: ts, Hostname: bad, AggregationKey: bad,
				Priority: bad, SourceType: bad, AlertType: bad, Tags: []string{bad, "z:" + bad}},
			{Title: "no timestamp " + bad, Text: bad},
		},
	}
}

func clonePoints(ps []sdk.Point) []sdk.Point {
	out := slices.Clone(ps)
	for i := range out {
		out[i].Tags = slices.Clone(out[i].Tags)
	}
	return out
}

func cloneFlush(f sdk.Flush) sdk.Flush {
	c := sdk.Flush{Timestamp: f.Timestamp, Points: clonePoints(f.Points), Events: slices.Clone(f.Events)}
	for i := range c.Events {
		c.Events[i].Tags = slices.Clone(c.Events[i].Tags)
	}
	return c
}

// diffFlush describes the first difference between two flushes, or returns
// "" if they are equal.
func diffFlush(want, got sdk.Flush) string {
	if want.Timestamp != got.Timestamp {
		return fmt.Sprintf("Timestamp %d became %d", want.Timestamp, got.Timestamp)
	}
	if len(want.Points) != len(got.Points) {
		return fmt.Sprintf("%d points became %d", len(want.Points), len(got.Points))
	}
	for i := range want.Points {
		if !reflect.DeepEqual(want.Points[i], got.Points[i]) {
			return fmt.Sprintf("Points[%d] %+v became %+v", i, want.Points[i], got.Points[i])
		}
	}
	if !reflect.DeepEqual(want.Events, got.Events) {
		return fmt.Sprintf("Events %+v became %+v", want.Events, got.Events)
	}
	return ""
}

// scribble overwrites everything f holds, in place, as a caller reusing its
// buffers would.
func scribble(f *sdk.Flush) {
	for i := range f.Points {
		p := &f.Points[i]
		for j := range p.Tags {
			p.Tags[j] = "sdktest:overwritten"
		}
		*p = sdk.Point{Name: "sdktest.overwritten", Tags: p.Tags, Type: sdk.PointGauge, Value: -1, Timestamp: 1, Hostname: "overwritten"}
	}
	for i := range f.Events {
		for j := range f.Events[i].Tags {
			f.Events[i].Tags[j] = "sdktest:overwritten"
		}
		f.Events[i] = sdk.Event{Title: "overwritten", Tags: f.Events[i].Tags}
	}
	f.Timestamp = 1
}

// compareRecords checks that got holds format(p) for every p in points,
// as many times as points does, and nothing else.
func compareRecords(t *testing.T, got []string, points []sdk.Point, format func(sdk.Point) string) {
	t.Helper()
	want := map[string]int{}
	skipped := map[string]bool{} // the records of points whose value is not finite
	for _, p := range points {
		r := format(p)
		if r == "" {
			continue
		}
		want[r]++
		if math.IsNaN(p.Value) || math.IsInf(p.Value, 0) {
			skipped[r] = true
		}
	}
	have := map[string]int{}
	for _, r := range got {
		have[r]++
	}
	var missing, extra []string
	for r, n := range want {
		if have[r] < n {
			missing = append(missing, r)
		}
	}
	for r, n := range have {
		if want[r] < n {
			extra = append(extra, r)
		}
	}
	if len(missing) == 0 && len(extra) == 0 {
		return
	}
	slices.Sort(missing)
	slices.Sort(extra)
	var hint string
	for _, r := range extra {
		if strings.Contains(r, "overwritten") {
			hint = "\n(records saying \"overwritten\" come from points the sink kept after Flush returned, read after the kit reused them)"
			break
		}
	}
	for _, r := range missing {
		if skipped[r] {
			hint += "\n(some missing records are of points whose value is NaN or infinite: a sink that skips such points by design has Format return \"\" for them)"
			break
		}
	}
	t.Errorf("the sink wrote %d records for %d points flushed\nmissing (%d):\n%s\nunexpected (%d):\n%s%s",
		len(got), len(points), len(missing), sample(missing), len(extra), sample(extra), hint)
}

// sample lists up to ten records.
func sample(rs []string) string {
	const most = 10
	var b strings.Builder
	for i, r := range rs {
		if i == most {
			fmt.Fprintf(&b, "\t... and %d more\n", len(rs)-most)
			break
		}
		fmt.Fprintf(&b, "\t%s\n", r)
	}
	return b.String()
}
