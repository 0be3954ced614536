package sdk

import (
	"fmt"
	"math"
	"sync"
	"testing"
	"testing/synctest"

	"github.com/dgryski/go-metro"

	"github.com/veneurd/veneurd/internal/state"
)

// received is what an output sent, merged as the daemon merges it.
type received struct {
	table     *state.Table
	processed uint64
	lines     map[string]uint64
	errors    map[string]uint64
	events    int
	early     int // cuts the output asked for
}

func newReceived() *received {
	return &received{table: state.New(state.Params{}, 4), lines: map[string]uint64{}, errors: map[string]uint64{}}
}

// drain reads o's Run batches until they end, cutting o at once when it
// asks for it, as the daemon does.
func drain(t *testing.T, o *output, r *received) *received {
	for b := range o.batches {
		r.processed += b.Processed
		if b.Received > 0 {
			r.lines[b.Protocol] += b.Received
		}
		for _, e := range b.Errors {
			r.errors[e.PacketType+"/"+e.Reason] += e.Count
		}
		r.events += len(b.Events)
		if b.CutNow {
			r.early++
			r.cut(t, o)
		}
	}
	return r
}

// cut cuts o and merges the state it hands over.
func (r *received) cut(t *testing.T, o *output) {
	err := o.cut(state.Params{}, true, func(records []byte) error {
		_, err := r.table.MergeRecords(records)
		return err
	})
	if err != nil {
		t.Errorf("cut: %v", err)
	}
}

func (r *received) series() map[string]state.Series {
	out := map[string]state.Series{}
	for i := range r.table.Shards() {
		for _, se := range r.table.Take(i) {
			out[se.Name()+"|"+se.Tags()] = se
		}
	}
	return out
}

// TestOutputShipsExactState writes from four goroutines at once, past full
// frames, and cuts once while it runs and once after: what arrives merges into exact sums, the last gauge,
// exact digest counts and extremes, set sizes within the sketch's error, and
// counts of every line.
func TestOutputShipsExactState(t *testing.T) {
	o := newOutput(state.Params{})
	r := newReceived()
	got := make(chan *received)
	go func() { got <- drain(t, o, r) }()

	const writers, perWriter = 4, 3 * frameSamples // full frames are handed over
	var wg sync.WaitGroup
	for g := range writers {
		wg.Go(func() {
			w := o.Writer("udp")
			for i := range perWriter {
				w.Metric(Counter, ScopeDefault, []byte("hits"), []byte("env:prod"), 1, 0.5)
				w.Metric(Timer, ScopeDefault, []byte("latency"), nil, float64(i%1000), 1)
				w.Metric(Set, ScopeDefault, []byte("users"), nil, SetValue(metro.Hash64(fmt.Appendf(nil, "user-%d", g*perWriter+i), 1337)), 1)
				if i%1000 == 0 {
					w.Error("metric", "bad_value")
					w.Flush()
				}
			}
			w.Event(Event{Title: "deployed"})
			w.Flush()
		})
	}
	wg.Wait()
	r.cut(t, o) // within Run: what was written so far
	w := o.Writer("tcp")
	w.Metric(Gauge, ScopeDefault, []byte("temp"), nil, 21.5, 1)
	w.Metric(MetricType(99), ScopeDefault, []byte("odd"), nil, 1, 1)
	w.Flush()
	o.close()
	<-got
	r.cut(t, o) // the Run stream has ended; the state is still there
	series := r.series()
	if len(series) != 4 {
		t.Fatalf("%d series, want 4: %v", len(series), series)
	}
	total := float64(writers * perWriter)
	if v := series["hits|env:prod"].Value; v != 2*total {
		t.Errorf("counter %v, want %v (1 at rate 0.5, %v times)", v, 2*total, total)
	}
	if v := series["temp|"].Value; v != 21.5 {
		t.Errorf("gauge %v, want 21.5", v)
	}
	d := series["latency|"].Digest
	if d.Count() != total || d.Min() != 0 || d.Max() != 999 {
		t.Errorf("timer count/min/max %v/%v/%v, want %v/0/999", d.Count(), d.Min(), d.Max(), total)
	}
	if est := float64(series["users|"].Set.Estimate()); math.Abs(est-total) > 0.02*total {
		t.Errorf("set of %v members estimated %v, more than 2%% off", total, est)
	}
	wantProcessed := uint64(3*writers*perWriter + 1)
	if r.processed != wantProcessed {
		t.Errorf("processed %d, want %d", r.processed, wantProcessed)
	}
	wantErrors := uint64(writers * (perWriter/1000 + 1))
	wantUDP := uint64(3*writers*perWriter) + wantErrors + writers
	if r.lines["udp"] != wantUDP || r.lines["tcp"] != 2 {
		t.Errorf("lines received %v, want udp:%d tcp:2", r.lines, wantUDP)
	}
	if r.errors["metric/bad_value"] != wantErrors || r.errors["metric/unknown_type"] != 1 {
		t.Errorf("errors %v, want %d bad_value and 1 unknown_type", r.errors, wantErrors)
	}
	if r.events != writers {
		t.Errorf("%d events, want %d", r.events, writers)
	}
}

// TestOutputAsksToBeCutPastBudget checks that a source holding more state
// than its budget asks to be cut within the interval, and that nothing is
// lost by it.
func TestOutputAsksToBeCutPastBudget(t *testing.T) {
	o := newOutput(state.Params{})
	o.cutAbove = 64 << 10
	r := newReceived()
	got := make(chan *received)
	go func() { got <- drain(t, o, r) }()
	w := o.Writer("udp")
	const n = 20_000
	for i := range n {
		w.Metric(Counter, ScopeDefault, fmt.Appendf(nil, "c.%d", i%5000), nil, 1, 1)
		if i%500 == 0 {
			w.Flush()
		}
	}
	w.Flush()
	o.close()
	<-got
	r.cut(t, o)
	if r.early == 0 {
		t.Fatalf("no cut asked for within the interval, with a budget of %d bytes", o.cutAbove)
	}
	var sum float64
	series := r.series()
	for _, se := range series {
		sum += se.Value
	}
	if len(series) != 5000 || sum != n {
		t.Fatalf("%d series summing to %v, want 5000 summing to %d", len(series), sum, n)
	}
	t.Logf("%d cuts asked for within the interval", r.early)
}

// discardingWriter returns a Writer of an output whose batches go nowhere,
// closed when tb ends.
func discardingWriter(tb testing.TB) Writer {
	o := newOutput(state.Params{})
	go func() {
		for range o.batches {
		}
	}()
	tb.Cleanup(o.close)
	return o.Writer("udp")
}

// TestWriterDoesNotAllocate checks the steady state of the packet path's
// end in a source: samples of known series cost no allocation. Bursts that
// fill frames hand them to the aggregating goroutine, and may then take a
// new buffer while the old ones are in flight: at most one per frame.
func TestWriterDoesNotAllocate(t *testing.T) {
	w := discardingWriter(t)
	names := make([][]byte, 100)
	for i := range names {
		names[i] = fmt.Appendf(nil, "metric.%d", i)
	}
	tags := []byte("env:prod,host:a")
	write := func(n int) func() {
		return func() {
			for i := range n {
				w.Metric(Counter, ScopeDefault, names[i%len(names)], tags, 1, 1)
			}
			w.Flush()
		}
	}
	for range 10 { // as many buffers as are in flight at once are made
		write(4 * frameSamples)()
	}
	if n := testing.AllocsPerRun(50, write(frameSamples-1)); n > 0 {
		t.Errorf("%v allocations per %d samples aggregated at Flush", n, frameSamples-1)
	}
	if n := testing.AllocsPerRun(20, write(4*frameSamples)); n > 4 {
		t.Errorf("%v allocations per 4 full frames handed over", n)
	}
}

// BenchmarkWriter is a source's side of the boundary per sample: the Writer
// packs it and aggregates it into the interval's state (10,000 series of
// workload W's mix, aggregated at Flush as at ordinary rates).
func BenchmarkWriter(b *testing.B) {
	w := discardingWriter(b)
	types := []MetricType{Counter, Counter, Counter, Counter, Gauge, Gauge, Timer, Timer, Timer, Set}
	names := make([][]byte, 10_000)
	for i := range names {
		names[i] = fmt.Appendf(nil, "bench.metric.%d", i)
	}
	tags := []byte("env:prod,host:web-01,region:us-east-1")
	const burst = 1000
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		for j := range burst {
			k := (i*burst + j) * 7919 % len(names)
			w.Metric(types[k%len(types)], ScopeDefault, names[k], tags, float64(j), 1)
		}
		w.Flush()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*burst), "ns/sample")
}

// TestWriterWaitsWhileStateIsHandedOver fills an output past its budget
// while a cut is handing its state over: the writer waits until the cut
// has handed it all over, so that the source's memory is not left to grow
// with the host's delay; with no cut under way it never waits.
func TestWriterWaitsWhileStateIsHandedOver(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		o := newOutput(state.Params{})
		o.cutAbove = 4 << 10
		go func() {
			for range o.batches {
			}
		}()
		defer o.close()
		w := o.Writer("udp")
		fill := func(prefix string) {
			for i := range 200 {
				w.Metric(Counter, ScopeDefault, fmt.Appendf(nil, "%s.%d", prefix, i), nil, 1, 1)
			}
			w.Flush()
		}
		fill("a") // past the budget, with no cut under way: asks, and goes on
		if !o.askedCut.Load() {
			t.Fatal("no cut asked for past the budget")
		}

		release := make(chan struct{})
		parts := 0
		go o.cut(state.Params{}, true, func([]byte) error {
			if parts++; parts == 1 {
				<-release // the host is slow to take the first part
			}
			return nil
		})
		synctest.Wait()
		if o.shipping.Load() == nil {
			t.Fatal("the cut is not handing its state over")
		}

		filled := make(chan struct{})
		go func() {
			fill("b") // past the budget again, while the cut ships
			close(filled)
		}()
		synctest.Wait()
		select {
		case <-filled:
			t.Fatal("the writer went on while the cut was handing the state over")
		default:
		}
		close(release)
		synctest.Wait()
		select {
		case <-filled:
		default:
			t.Fatal("the writer still waits after the cut handed the state over")
		}
	})
}
