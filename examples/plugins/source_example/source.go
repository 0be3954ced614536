package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/veneurd/veneurd/sdk"
)

// Version is the source's version, shown by `veneurd plugins`.
const Version = "0.1.0"

// Connections is the source's own count of the connections it accepted,
// kept in sdk.Stats: veneurd adds it to its self-metrics, tagged with the
// source's address.
const Connections = "veneur.example.connections_total"

// Reasons a line is rejected, counted by veneurd under packet type metric.
const (
	ReasonTooLong = "too_long" // longer than max_line_length
	ReasonBadJSON = "bad_json" // not a JSON object of the fields below
	ReasonNoName  = "no_name"  // no metric
	ReasonBadType = "bad_type" // a type other than counter, gauge, histogram, timer
	ReasonBadTags = "bad_tags" // a tag holding a comma, which separates a series' tags
	ReasonBadRate = "bad_rate" // a sample rate outside (0, 1]
)

// wake bounds how long a reader waits for data: it then flushes what it
// holds and looks at its context again.
const wake = 100 * time.Millisecond

// Config is the source's block. The sockets it reads are not in it: they
// are the block's listen attribute, which veneurd owns, opens and hands to
// Run.
type Config struct {
	MaxLineLength int `hcl:"max_line_length,optional" description:"longest line accepted, in bytes; a longer one is dropped and counted"`
}

// line is one metric as a client sends it.
type line struct {
	Metric string   `json:"metric"`
	Type   string   `json:"type"`
	Value  float64  `json:"value"`
	Tags   []string `json:"tags"`
	Rate   float64  `json:"rate"`
}

var types = map[string]sdk.MetricType{
	"counter": sdk.Counter, "gauge": sdk.Gauge, "histogram": sdk.Histogram, "timer": sdk.Timer,
}

// Source reads JSON lines.
type Source struct {
	cfg         Config
	log         hclog.Logger
	connections *sdk.Count
	readers     sync.WaitGroup // a Run's accept loops and connection readers
}

// New returns a source_example source.
func New() *Source { return &Source{log: hclog.NewNullLogger()} }

// Version implements sdk.Versioned.
func (s *Source) Version() string { return Version }

// Config returns the defaults.
// ReadsSockets implements sdk.SocketReader: the source reads nothing but
// its listen sockets, so a block of it without one is refused.
func (s *Source) ReadsSockets() bool { return true }

func (s *Source) Config() any { return &Config{MaxLineLength: 64 << 10} }

// Configure checks and stores the configuration. It opens nothing.
func (s *Source) Configure(_ context.Context, env sdk.Env, cfg any) error {
	c := cfg.(*Config)
	if c.MaxLineLength < 64 || c.MaxLineLength > 16<<20 {
		return &sdk.AttrError{Attribute: "max_line_length", Summary: "Line length out of range",
			Detail: fmt.Sprintf("max_line_length must be between 64 bytes and 16 MiB, not %d.", c.MaxLineLength)}
	}
	s.cfg = *c
	if env.Logger != nil {
		s.log = env.Logger
	}
	s.connections = env.Stats.Counter(Connections)
	return nil
}

// Run accepts connections on every listener until ctx ends, then returns
// once every connection's reader has flushed what it read.
func (s *Source) Run(ctx context.Context, listeners []sdk.Listener, out sdk.Output) error {
	var lns []net.Listener
	for _, l := range listeners {
		a, err := sdk.ParseAddress(l.Address)
		if err != nil {
			return err
		}
		if a.IsDatagram() {
			return fmt.Errorf("%s: JSON lines come over streams: listen on tcp:// or unix://, not %s://", l.Address, a.Network)
		}
		ln, err := net.FileListener(l.File)
		if err != nil {
			return fmt.Errorf("%s: %w", l.Address, err)
		}
		lns = append(lns, ln)
		protocol := strings.TrimRight(a.Network, "46") // tcp4, tcp6: tcp
		s.readers.Go(func() { s.accept(ctx, ln, protocol, out) })
	}
	<-ctx.Done()
	for _, ln := range lns {
		ln.Close()
	}
	s.readers.Wait()
	return nil
}

// accept serves ln's connections, each with a reader and a Writer of its
// own, until ln is closed.
func (s *Source) accept(ctx context.Context, ln net.Listener, protocol string, out sdk.Output) {
	for {
		c, err := ln.Accept()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				s.log.Warn("accept failed; the listener is no longer served", "listener", ln.Addr(), "error", err)
			}
			return
		}
		s.connections.Add(1)
		s.readers.Go(func() { s.read(ctx, c, out.Writer(protocol)) })
	}
}

// read writes c's lines until it ends or ctx does. It flushes the Writer
// whenever it has read everything sent so far, and at least every wake
// while the client is silent, so that what was read reaches the interval
// in progress.
func (s *Source) read(ctx context.Context, c net.Conn, w sdk.Writer) {
	defer c.Close()
	defer w.Flush()
	r := bufio.NewReaderSize(c, 64<<10)
	var buf []byte // the line read so far
	tooLong := false
	for ctx.Err() == nil {
		if r.Buffered() == 0 {
			w.Flush()
		}
		c.SetReadDeadline(time.Now().Add(wake))
		part, err := r.ReadSlice('\n')
		if !tooLong && len(buf)+len(part) > s.cfg.MaxLineLength {
			tooLong, buf = true, buf[:0]
		}
		if !tooLong {
			buf = append(buf, part...)
		}
		var ne net.Error
		switch {
		case err == nil, errors.Is(err, io.EOF) && (len(buf) > 0 || tooLong):
			if tooLong {
				w.Error("metric", ReasonTooLong)
			} else {
				write(w, buf)
			}
			buf, tooLong = buf[:0], false
			if err != nil {
				return
			}
		case errors.Is(err, bufio.ErrBufferFull), errors.As(err, &ne) && ne.Timeout():
			// The line goes on, or the client is silent.
		default:
			return
		}
	}
}

// write writes one line's metric, or counts why it cannot.
func write(w sdk.Writer, b []byte) {
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return
	}
	var l line
	if err := json.Unmarshal(b, &l); err != nil {
		w.Error("metric", ReasonBadJSON)
		return
	}
	typ, ok := types[l.Type]
	switch {
	case l.Metric == "":
		w.Error("metric", ReasonNoName)
		return
	case !ok:
		w.Error("metric", ReasonBadType)
		return
	case slices.ContainsFunc(l.Tags, func(t string) bool { return strings.Contains(t, ",") }):
		w.Error("metric", ReasonBadTags)
		return
	}
	if l.Rate == 0 {
		l.Rate = 1
	}
	if l.Rate < 0 || l.Rate > 1 {
		w.Error("metric", ReasonBadRate)
		return
	}
	slices.Sort(l.Tags) // the Writer takes tags sorted and comma-joined
	w.Metric(typ, sdk.ScopeDefault, []byte(l.Metric), []byte(strings.Join(l.Tags, ",")), l.Value, l.Rate)
}
