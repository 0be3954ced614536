// Package localfile is a sink that appends each flushed point to a file as
// one JSON object per line:
//
//	{"name":"x.count","tags":["a:b","env:dev"],"type":"counter","value":3,"timestamp":1795300000,"hostname":"h1"}
//
// Service checks are status points and carry "kind":"service_check" and
// their "message"; events are objects with "kind":"event".
//
// JSON has no NaN or infinity: a point whose value is not finite is skipped,
// counted and logged, and the rest of the flush is written.
package localfile

import (
	"bufio"
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/go-hclog"

	"github.com/veneurd/veneurd/sdk"
)

// Config is the localfile sink's configuration.
type Config struct {
	Path string `hcl:"path" description:"file to append to; created if missing"`
}

// Sink appends JSON lines to a file.
type Sink struct {
	cfg     Config
	log     hclog.Logger
	skipped atomic.Uint64
	mu      sync.Mutex
	f       *os.File
}

// New returns a localfile sink.
func New() *Sink { return &Sink{log: hclog.NewNullLogger()} }

// Skipped returns how many points the sink skipped because their value was
// not finite.
func (s *Sink) Skipped() uint64 { return s.skipped.Load() }

// Config returns the defaults.
func (s *Sink) Config() any { return &Config{} }

// Configure checks and stores cfg.
func (s *Sink) Configure(_ context.Context, env sdk.Env, cfg any) error {
	c := *cfg.(*Config)
	if c.Path == "" {
		return &sdk.AttrError{Attribute: "path", Summary: "Empty path", Detail: "The localfile sink needs a file to write to."}
	}
	dir := filepath.Dir(c.Path)
	if fi, err := os.Stat(dir); err != nil {
		return &sdk.AttrError{Attribute: "path", Summary: "Invalid path", Detail: fmt.Sprintf("The directory %s cannot be used: %v.", dir, err)}
	} else if !fi.IsDir() {
		return &sdk.AttrError{Attribute: "path", Summary: "Invalid path", Detail: fmt.Sprintf("%s is not a directory.", dir)}
	}
	s.cfg = c
	if env.Logger != nil {
		s.log = env.Logger
	}
	return nil
}

// Start opens the file for appending.
func (s *Sink) Start(context.Context) error {
	f, err := os.OpenFile(s.cfg.Path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	s.f = f
	return nil
}

// Stop closes the file.
func (s *Sink) Stop(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f == nil {
		return nil
	}
	err := s.f.Close()
	s.f = nil
	return err
}

// Flush appends f's points, events and service checks.
func (s *Sink) Flush(_ context.Context, f *sdk.Flush) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f == nil {
		return fmt.Errorf("localfile sink is not started")
	}
	// A failed write sticks to w, and w.Flush returns it.
	w := bufio.NewWriterSize(s.f, 256<<10)
	var skipped int
	var first string // the first skipped point's name
	for i := range f.Points {
		p := &f.Points[i]
		if math.IsNaN(p.Value) || math.IsInf(p.Value, 0) {
			// JSON cannot hold the value: this point is lost, not the
			// flush.
			if skipped == 0 {
				first = p.Name
			}
			skipped++
			continue
		}
		l := PointLine(p)
		w.Write(append(l.AppendJSON(w.AvailableBuffer()), '\n'))
	}
	for i := range f.Events {
		l := EventLine(&f.Events[i], f.Timestamp)
		w.Write(append(l.AppendJSON(w.AvailableBuffer()), '\n'))
	}
	if skipped > 0 {
		s.skipped.Add(uint64(skipped))
		s.log.Warn("skipped points whose value is NaN or infinite, which JSON cannot hold", "points", skipped, "first", first)
	}
	return w.Flush()
}
