// Package sdk is the surface plugin authors build against: the Source and
// Sink interfaces, the types that cross the plugin boundary, and Serve, which
// a plugin's main calls. It never imports veneurd's core.
//
// A plugin is a Go value implementing Source or Sink. Its configuration is a
// struct whose `hcl` tags are the schema: veneurd decodes the user's block
// against that schema (so every config mistake is reported with its
// file:line:column), sends the values, and the plugin validates them in
// Configure.
package sdk

import (
	"context"
	"errors"
	"os"
	"time"

	"github.com/hashicorp/go-hclog"
)

// Plugin is what every plugin implements.
type Plugin interface {
	// Config returns a pointer to a new configuration struct holding the
	// defaults. Its fields' `hcl:"name,optional"` or `hcl:"name"` tags declare
	// the schema; a field tagged `sensitive:"true"` is redacted when the
	// effective config is shown.
	Config() any
	// Configure receives the pointer Config returned, filled in from the
	// user's block. It validates and stores the values and must have no other
	// side effect: nothing is opened before Start or Run. Problems with a
	// value are returned as *AttrError (several joined with errors.Join) so
	// that veneurd can point at the attribute.
	Configure(ctx context.Context, env Env, config any) error
}

// Versioned is implemented by plugins that report their own version, which
// `veneurd plugins` shows.
type Versioned interface {
	Version() string
}

// Env describes where a plugin runs.
type Env struct {
	// Address is the block address, e.g. "sink.localfile.archive".
	Address  string
	Hostname string
	Logger   hclog.Logger
	// Stats keeps the plugin's counts under veneurd's self-metric names;
	// veneurd adds a sink's counts to its own after each flush, and a
	// source's as it runs.
	Stats *Stats
}

// SocketReader is implemented by a source that reads nothing but the
// sockets of its block's listen attribute. veneurd refuses a block of such
// a source without a listen address, since it would read nothing; a
// source that finds its input elsewhere (a scraper) does not implement it.
type SocketReader interface {
	ReadsSockets() bool
}

// Sink receives flushed points.
type Sink interface {
	Plugin
	Start(ctx context.Context) error
	// Flush delivers an interval's points in parts: a large interval comes
	// as several calls, in order, each with the same Timestamp and a part of
	// at most a few megabytes; a small one as one call. Calls for one
	// interval do not overlap, but those of different intervals may. The
	// Flush and everything it holds are owned by the caller and may be
	// shared with other sinks: a sink must not mutate them or keep them
	// after Flush returns (the memory is reused for the next part).
	Flush(ctx context.Context, f *Flush) error
	Stop(ctx context.Context) error
}

// Flush is one interval's output, or a part of it (see Sink.Flush).
type Flush struct {
	Timestamp int64 // Unix seconds
	// Interval is the length of the interval the flush ends: what a sink
	// that sends counters as rates divides by.
	Interval time.Duration
	// Points holds metrics and, as points of type PointStatus, the service
	// checks of the interval (the last status, message and host of each).
	Points []Point
	Events []Event
}

// Source reads client traffic from sockets veneurd opened and emits samples.
type Source interface {
	Plugin
	// Run reads from listeners until ctx is done, then returns after writing
	// what it read. Each goroutine that emits samples takes its own Writer
	// from out.
	Run(ctx context.Context, listeners []Listener, out Output) error
}

// Listener is a socket the host opened and handed over.
type Listener struct {
	// Address as configured in the block's listen attribute, in its
	// canonical form, e.g. "udp://127.0.0.1:8126" or
	// "unixgram:///run/dsd.sock"; ParseAddress reads it.
	Address string
	// File is the inherited socket; the source may wrap it with
	// net.FilePacketConn or net.FileListener.
	File *os.File
}

// Output hands out Writers.
type Output interface {
	// Writer returns a new Writer for one goroutine reading protocol
	// ("udp", "tcp", "unixgram", ...): what it writes is counted in
	// veneur.listen.received_per_protocol_total under that protocol.
	Writer(protocol string) Writer
}

// Writer takes what a source emits. Not safe for concurrent use: each
// reading goroutine takes its own. Samples are aggregated at once, in the
// source's process, into the state of the interval in progress, which
// veneurd collects when it flushes. Events, service checks and the counts of
// lines read and rejected wait for Flush, which a source calls when it has
// nothing more to read for now.
type Writer interface {
	// Metric adds one sample. name and tags are copied. tags must be sorted
	// and comma-joined. rate is in (0, 1]. For sets, value is SetValue(hash
	// of the member); for the other types, a value that is not a finite
	// number (NaN, ±Inf, or a counter's value past float64's range at its
	// rate) is not aggregated but counted as a rejected metric, reason
	// invalid_value, and a rate out of range as invalid_rate. A sample that
	// one of the pipeline's drop rules takes is discarded and counted under
	// its rule (veneur.worker.metrics_dropped_total), and so is a sample of
	// a series new in the interval past the source's series limits (reason
	// series_limit). A tap (veneurd tap -source) gets a copy of the sample
	// as written. A source gets all of this from the Writer: it does
	// nothing for it.
	Metric(typ MetricType, scope Scope, name, tags []byte, value, rate float64)
	Event(e Event)
	ServiceCheck(c ServiceCheck)
	// Error counts one rejected line.
	Error(packetType, reason string)
	// Flush aggregates the samples the Writer holds into the interval's
	// state and passes on its counts, events and service checks. It is
	// cheap when nothing is pending. Samples never flushed are lost.
	Flush()
}

// AttrError is a problem with one configuration attribute.
type AttrError struct {
	Attribute string
	Summary   string
	Detail    string
}

func (e *AttrError) Error() string {
	if e.Attribute == "" {
		return e.Summary + ": " + e.Detail
	}
	return e.Attribute + ": " + e.Summary + ": " + e.Detail
}

// AttrErrors unpacks err (possibly joined) into AttrErrors; errors of other
// types become AttrErrors with no attribute.
func AttrErrors(err error) []*AttrError {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []*AttrError
		for _, e := range j.Unwrap() {
			out = append(out, AttrErrors(e)...)
		}
		return out
	}
	var ae *AttrError
	if errors.As(err, &ae) {
		return []*AttrError{ae}
	}
	return []*AttrError{{Summary: "Invalid configuration", Detail: err.Error()}}
}
