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
//
// Each Flush call's lines are written with one write, and a write that fails
// part-way is cut off again, so the file only ever holds whole lines. At each
// flush the sink checks that the path still names the file it has open, and
// opens the path anew when the file was renamed or deleted.
package localfile

import (
	"context"
	"errors"
	"fmt"
	"io"
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

// file is what the sink needs of the file it appends to.
type file interface {
	io.Writer
	Stat() (os.FileInfo, error)
	Truncate(size int64) error
	Close() error
}

// openFile opens path for appending, creating it if missing.
func openFile(path string) (file, error) {
	return os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
}

// maxKeptBuffer is the largest line buffer kept from one flush to the next.
const maxKeptBuffer = 8 << 20

// Sink appends JSON lines to a file.
type Sink struct {
	cfg     Config
	log     hclog.Logger
	skipped atomic.Uint64
	open    func(path string) (file, error)
	mu      sync.Mutex
	f       file
	buf     []byte // the lines of the flush being written
}

// New returns a localfile sink.
func New() *Sink { return &Sink{log: hclog.NewNullLogger(), open: openFile} }

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
	if fi, err := os.Stat(c.Path); err == nil && fi.IsDir() {
		// Start would fail to open it for appending: refuse it here, where
		// validate sees it.
		return &sdk.AttrError{Attribute: "path", Summary: "Invalid path",
			Detail: fmt.Sprintf("%s is a directory; give the path of a file to append to.", c.Path)}
	}
	s.cfg = c
	if env.Logger != nil {
		s.log = env.Logger
	}
	return nil
}

// Start opens the file for appending.
func (s *Sink) Start(context.Context) error {
	f, err := s.open(s.cfg.Path)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.f = f
	s.mu.Unlock()
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

// Flush appends f's points, events and service checks: all of their lines,
// or, when the write fails, none.
func (s *Sink) Flush(_ context.Context, f *sdk.Flush) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f == nil {
		return fmt.Errorf("localfile sink is not started")
	}
	if err := s.reopenIfMoved(); err != nil {
		return err
	}
	b := s.buf[:0]
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
		b = append(l.AppendJSON(b), '\n')
	}
	for i := range f.Events {
		l := EventLine(&f.Events[i], f.Timestamp)
		b = append(l.AppendJSON(b), '\n')
	}
	if cap(b) <= maxKeptBuffer {
		s.buf = b[:0]
	} else {
		s.buf = nil
	}
	if skipped > 0 {
		s.skipped.Add(uint64(skipped))
		s.log.Warn("skipped points whose value is NaN or infinite, which JSON cannot hold", "points", skipped, "first", first)
	}
	if len(b) == 0 {
		return nil
	}
	return s.write(b)
}

// write appends b to the file with one write. When the write fails or is
// short, it cuts the file back to its size before the write, so that the
// file never ends with part of a line, and returns the write's error.
func (s *Sink) write(b []byte) error {
	fi, err := s.f.Stat()
	if err != nil {
		return fmt.Errorf("localfile: %w", err)
	}
	size := fi.Size()
	n, err := s.f.Write(b)
	if err == nil && n < len(b) {
		err = io.ErrShortWrite
	}
	if err == nil {
		return nil
	}
	if terr := s.f.Truncate(size); terr != nil {
		s.log.Error("cannot remove a partly written flush; the file ends with a partial line", "path", s.cfg.Path, "error", terr)
		return errors.Join(err, fmt.Errorf("removing the partial write: %w", terr))
	}
	return err
}

// reopenIfMoved opens the path anew when it no longer names the open file:
// the file was renamed (as logrotate does before creating a new one) or
// deleted. If the path cannot be opened, the flush fails and the next one
// tries again.
func (s *Sink) reopenIfMoved() error {
	if open, err := s.f.Stat(); err == nil {
		if at, err := os.Stat(s.cfg.Path); err == nil && os.SameFile(open, at) {
			return nil
		}
	}
	f, err := s.open(s.cfg.Path)
	if err != nil {
		return fmt.Errorf("reopening the moved or deleted file: %w", err)
	}
	if err := s.f.Close(); err != nil {
		s.log.Warn("closing the moved or deleted file", "path", s.cfg.Path, "error", err)
	}
	s.f = f
	s.log.Info("the file was moved or deleted; writing to a new one at the path", "path", s.cfg.Path)
	return nil
}
