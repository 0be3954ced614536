package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sync"

	"github.com/hashicorp/go-hclog"

	"github.com/veneurd/veneurd/sdk"
)

// Config is the sink block's configuration. Its `hcl` tags are the block's
// schema: path is required because its tag has no ",optional".
type Config struct {
	Path string `hcl:"path" description:"file to append points to, one JSON object per line"`
}

// Sink appends points to a file.
type Sink struct {
	log  hclog.Logger
	path string

	mu sync.Mutex // guards f; flushes may overlap
	f  *os.File
}

// version is what `veneurd plugins` shows for this plugin.
const version = "0.1.0"

// Version implements sdk.Versioned.
func (s *Sink) Version() string { return version }

// New returns an unconfigured sink.
func New() *Sink { return &Sink{log: hclog.NewNullLogger()} }

// Config returns a new Config holding the defaults; there are none.
func (s *Sink) Config() any { return &Config{} }

// Configure checks the path and keeps it. It opens nothing: that waits for
// Start.
func (s *Sink) Configure(_ context.Context, env sdk.Env, config any) error {
	c := config.(*Config)
	if c.Path == "" {
		return &sdk.AttrError{Attribute: "path", Summary: "Empty path",
			Detail: "Give the file to append points to."}
	}
	dir := filepath.Dir(c.Path)
	fi, err := os.Stat(dir)
	switch {
	case err != nil:
		return &sdk.AttrError{Attribute: "path", Summary: "Missing directory",
			Detail: fmt.Sprintf("The directory %s does not exist.", dir)}
	case !fi.IsDir():
		return &sdk.AttrError{Attribute: "path", Summary: "Invalid path",
			Detail: fmt.Sprintf("%s is not a directory.", dir)}
	}
	s.path = c.Path
	if env.Logger != nil {
		s.log = env.Logger
	}
	return nil
}

// Start opens the file for appending, creating it if needed.
func (s *Sink) Start(context.Context) error {
	f, err := os.OpenFile(s.path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.f = f
	s.mu.Unlock()
	s.log.Info("appending points", "path", s.path)
	return nil
}

// Flush appends f's points in one write, so that a failed flush leaves no
// partial line. Events are not written. The points are only read, never
// changed or kept: the flush belongs to veneurd.
func (s *Sink) Flush(_ context.Context, f *sdk.Flush) error {
	var buf bytes.Buffer
	for _, p := range f.Points {
		if math.IsNaN(p.Value) || math.IsInf(p.Value, 0) {
			continue // JSON cannot hold it: skip the point, not the flush
		}
		b, err := formatPoint(p)
		if err != nil {
			return fmt.Errorf("point %s: %w", p.Name, err)
		}
		buf.Write(b)
		buf.WriteByte('\n')
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f == nil {
		return fmt.Errorf("the sink is not started")
	}
	_, err := s.f.Write(buf.Bytes())
	return err
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

// line is one point as written; the field order is the format's.
type line struct {
	Kind      string   `json:"kind,omitempty"` // "service_check" for status points
	Name      string   `json:"name"`
	Tags      []string `json:"tags"`
	Type      string   `json:"type"`
	Value     float64  `json:"value"`
	Timestamp int64    `json:"timestamp"`
	Hostname  string   `json:"hostname"`
	Message   string   `json:"message,omitempty"`
}

// formatPoint encodes p as one JSON object, without a newline.
func formatPoint(p sdk.Point) ([]byte, error) {
	l := line{Name: p.Name, Tags: p.Tags, Type: p.Type.String(), Value: p.Value,
		Timestamp: p.Timestamp, Hostname: p.Hostname, Message: p.Message}
	if l.Tags == nil {
		l.Tags = []string{}
	}
	if p.Type == sdk.PointStatus {
		l.Kind = "service_check"
	}
	return json.Marshal(l)
}
