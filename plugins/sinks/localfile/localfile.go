// Package localfile is a sink that appends each flushed point to a file as
// one JSON object per line:
//
//	{"name":"x.count","tags":["a:b","env:dev"],"type":"counter","value":3,"timestamp":1795300000,"hostname":"h1"}
//
// Events and service checks are written as objects with "kind":"event" and
// "kind":"service_check".
package localfile

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/veneurd/veneurd/sdk"
)

// Config is the localfile sink's configuration.
type Config struct {
	Path string `hcl:"path" description:"file to append to; created if missing"`
}

// Sink appends JSON lines to a file.
type Sink struct {
	cfg Config
	mu  sync.Mutex
	f   *os.File
}

// New returns a localfile sink.
func New() *Sink { return &Sink{} }

// Config returns the defaults.
func (s *Sink) Config() any { return &Config{} }

// Configure checks and stores cfg.
func (s *Sink) Configure(_ context.Context, _ sdk.Env, cfg any) error {
	c := *cfg.(*Config)
	if c.Path == "" {
		return &sdk.AttrError{Attribute: "path", Summary: "Empty path", Detail: "The localfile sink needs a file to write to."}
	}
	if dir := filepath.Dir(c.Path); dir != "" {
		if fi, err := os.Stat(dir); err == nil && !fi.IsDir() {
			return &sdk.AttrError{Attribute: "path", Summary: "Invalid path", Detail: fmt.Sprintf("%s is not a directory.", dir)}
		}
	}
	s.cfg = c
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

// Line is one point as written; the field order is the format's.
type Line struct {
	Name      string   `json:"name"`
	Tags      []string `json:"tags"`
	Type      string   `json:"type"`
	Value     float64  `json:"value"`
	Timestamp int64    `json:"timestamp"`
	Hostname  string   `json:"hostname"`
	Message   string   `json:"message,omitempty"`
}

type eventLine struct {
	Kind string `json:"kind"`
	sdk.Event
}

type checkLine struct {
	Kind string `json:"kind"`
	sdk.ServiceCheck
}

// Flush appends f's points, events and service checks.
func (s *Sink) Flush(_ context.Context, f *sdk.Flush) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f == nil {
		return fmt.Errorf("localfile sink is not started")
	}
	w := bufio.NewWriterSize(s.f, 256<<10)
	enc := json.NewEncoder(w)
	for _, p := range f.Points {
		tags := p.Tags
		if tags == nil {
			tags = []string{}
		}
		if err := enc.Encode(Line{p.Name, tags, p.Type.String(), p.Value, p.Timestamp, p.Hostname, p.Message}); err != nil {
			return err
		}
	}
	for _, e := range f.Events {
		if err := enc.Encode(eventLine{"event", e}); err != nil {
			return err
		}
	}
	for _, c := range f.ServiceChecks {
		if err := enc.Encode(checkLine{"service_check", c}); err != nil {
			return err
		}
	}
	return w.Flush()
}
