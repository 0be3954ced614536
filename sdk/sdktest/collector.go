package sdktest

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/veneurd/veneurd/internal/state"
	"github.com/veneurd/veneurd/sdk"
)

// Metric is one sample a source wrote.
type Metric struct {
	// Protocol is the one the Writer was taken for ("udp", "tcp", ...).
	Protocol string
	Type     sdk.MetricType
	Scope    sdk.Scope
	Name     string
	// Tags are as written: sorted and comma-joined, "" when none.
	Tags  string
	Value float64 // for sets, sdk.SetValue of the member's hash
	Rate  float64
}

// String formats m for failure messages.
func (m Metric) String() string {
	return fmt.Sprintf("%s %s %s{%s} = %g @%g scope=%d", m.Protocol, m.Type, m.Name, m.Tags, m.Value, m.Rate, m.Scope)
}

// Error is one line a source rejected, as it reported it with Writer.Error.
type Error struct {
	PacketType string
	Reason     string
}

// Received counts, by protocol, what the Writers taken for it flushed:
// samples, events, service checks and rejected lines, as veneurd counts them.
type Received map[string]uint64

// Collector is an sdk.Output that keeps what a source writes, for tests. As
// in veneurd, what a Writer holds becomes visible only when the Writer is
// flushed, and names or tags longer than the SDK's Writer takes are counted
// as a "metric" "too_long" error, as the SDK does.
//
// A Collector also checks that sources keep the Writer contract: each Writer
// is taken for a protocol and used by one goroutine at a time, tags are
// sorted, rates are in (0, 1], values are finite, and, once Close is called
// after Run returned, no Writer holds unflushed samples and none is used any
// more. Problems lists what was broken.
//
// The zero value is ready to use. A Collector's methods may be called
// concurrently.
type Collector struct {
	mu       sync.Mutex
	metrics  []Metric
	events   []sdk.Event
	checks   []sdk.ServiceCheck
	errors   []Error
	received Received
	problems []string
	writers  []*collectorWriter
	closed   bool
}

// Writer returns a new Writer for one goroutine reading protocol,
// implementing sdk.Output.
func (c *Collector) Writer(protocol string) sdk.Writer {
	w := &collectorWriter{c: c, protocol: protocol}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.writers = append(c.writers, w)
	if c.closed {
		c.problems = append(c.problems, "Output.Writer was called after Run returned")
	}
	if protocol == "" {
		c.problems = append(c.problems, "Output.Writer was called without a protocol")
	}
	return w
}

// Metrics returns the metrics flushed so far, in the order they were.
func (c *Collector) Metrics() []Metric {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.metrics)
}

// Events returns the events flushed so far.
func (c *Collector) Events() []sdk.Event {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.events)
}

// ServiceChecks returns the service checks flushed so far.
func (c *Collector) ServiceChecks() []sdk.ServiceCheck {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.checks)
}

// Errors returns the rejected lines flushed so far, one per Writer.Error call.
func (c *Collector) Errors() []Error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.errors)
}

// Received returns what was flushed so far, counted by protocol.
func (c *Collector) Received() Received {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.received)
}

// Close marks the end of Run: from now on using a Writer is a problem, and so
// is any Writer still holding samples it was not asked to flush.
func (c *Collector) Close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	for i, w := range c.writers {
		if n := w.pending.Load(); n > 0 {
			c.problems = append(c.problems, fmt.Sprintf(
				"Run returned with %d samples written to Writer %d but never flushed: call Writer.Flush before returning", n, i))
		}
	}
}

// Problems lists the ways the source broke the Writer contract.
func (c *Collector) Problems() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.problems)
}

// String summarizes what was collected, for failure messages.
func (c *Collector) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var b strings.Builder
	fmt.Fprintf(&b, "%d metrics, %d events, %d service checks, %d errors", len(c.metrics), len(c.events), len(c.checks), len(c.errors))
	var pending int64
	for _, w := range c.writers {
		pending += w.pending.Load()
	}
	if pending > 0 {
		fmt.Fprintf(&b, " (and %d written but not flushed)", pending)
	}
	for i, m := range c.metrics {
		if i == 20 {
			fmt.Fprintf(&b, "\n\t... and %d more metrics", len(c.metrics)-i)
			break
		}
		fmt.Fprintf(&b, "\n\tmetric %s", m)
	}
	for _, e := range c.events {
		fmt.Fprintf(&b, "\n\tevent %+v", e)
	}
	for _, s := range c.checks {
		fmt.Fprintf(&b, "\n\tservice check %+v", s)
	}
	for _, e := range c.errors {
		fmt.Fprintf(&b, "\n\terror %s %s", e.PacketType, e.Reason)
	}
	return b.String()
}

func (c *Collector) problem(format string, args ...any) {
	c.mu.Lock()
	c.problems = append(c.problems, fmt.Sprintf(format, args...))
	c.mu.Unlock()
}

// collectorWriter batches like the SDK's writer: metrics, events, service
// checks and errors wait for Flush.
type collectorWriter struct {
	c        *Collector
	protocol string
	busy     atomic.Bool
	pending  atomic.Int64 // samples, events, checks and errors not yet flushed

	metrics []Metric
	events  []sdk.Event
	checks  []sdk.ServiceCheck
	errors  []Error
}

// enter flags a Writer used by two goroutines at once or after Run returned.
func (w *collectorWriter) enter(method string) {
	if !w.busy.CompareAndSwap(false, true) {
		w.c.problem("Writer.%s was called while another goroutine was using the same Writer: take one Writer per goroutine", method)
	}
	w.c.mu.Lock()
	closed := w.c.closed
	w.c.mu.Unlock()
	if closed {
		w.c.problem("Writer.%s was called after Run returned", method)
	}
}

func (w *collectorWriter) exit() { w.busy.Store(false) }

func (w *collectorWriter) Metric(typ sdk.MetricType, scope sdk.Scope, name, tags []byte, value, rate float64) {
	w.enter("Metric")
	defer w.exit()
	switch {
	case typ < sdk.Counter || typ > sdk.Status:
		w.c.problem("metric %q has unknown type %d", name, typ)
	case scope > sdk.ScopeGlobal:
		w.c.problem("metric %q has unknown scope %d", name, scope)
	case len(name) == 0:
		w.c.problem("a metric was written without a name")
	case !(rate > 0 && rate <= 1):
		w.c.problem("metric %q has rate %g, outside (0, 1]", name, rate)
	case typ != sdk.Set && (math.IsNaN(value) || math.IsInf(value, 0)):
		w.c.problem("metric %q has value %g", name, value)
	case len(tags) > 0 && !slices.IsSorted(strings.Split(string(tags), ",")):
		w.c.problem("metric %q has tags %q, which are not sorted", name, tags)
	}
	if len(name) > state.MaxNameLen || len(tags) > state.MaxTagsLen {
		w.errors = append(w.errors, Error{"metric", "too_long"})
	} else {
		w.metrics = append(w.metrics, Metric{Protocol: w.protocol, Type: typ, Scope: scope,
			Name: string(name), Tags: string(tags), Value: value, Rate: rate})
	}
	w.pending.Add(1)
}

func (w *collectorWriter) Event(e sdk.Event) {
	w.enter("Event")
	defer w.exit()
	e.Tags = slices.Clone(e.Tags)
	w.events = append(w.events, e)
	w.pending.Add(1)
}

func (w *collectorWriter) ServiceCheck(s sdk.ServiceCheck) {
	w.enter("ServiceCheck")
	defer w.exit()
	s.Tags = slices.Clone(s.Tags)
	w.checks = append(w.checks, s)
	w.pending.Add(1)
}

func (w *collectorWriter) Error(packetType, reason string) {
	w.enter("Error")
	defer w.exit()
	w.errors = append(w.errors, Error{packetType, reason})
	w.pending.Add(1)
}

func (w *collectorWriter) Flush() {
	w.enter("Flush")
	defer w.exit()
	w.c.mu.Lock()
	w.c.metrics = append(w.c.metrics, w.metrics...)
	w.c.events = append(w.c.events, w.events...)
	w.c.checks = append(w.c.checks, w.checks...)
	w.c.errors = append(w.c.errors, w.errors...)
	if n := w.pending.Load(); n > 0 {
		if w.c.received == nil {
			w.c.received = Received{}
		}
		w.c.received[w.protocol] += uint64(n)
	}
	w.c.mu.Unlock()
	w.metrics, w.events, w.checks, w.errors = nil, nil, nil, nil
	w.pending.Store(0)
}
