// Package blackhole is a sink that discards what it receives, for measuring
// the rest of the pipeline.
package blackhole

import (
	"context"
	"sync/atomic"

	"github.com/veneurd/veneurd/sdk"
)

// Config is empty: a blackhole takes no settings.
type Config struct{}

// Sink discards points and counts them.
type Sink struct {
	points atomic.Uint64
}

// New returns a blackhole sink.
func New() *Sink { return &Sink{} }

// Config returns the empty config.
func (s *Sink) Config() any { return &Config{} }

// Configure accepts anything the schema allows.
func (s *Sink) Configure(context.Context, sdk.Env, any) error { return nil }

// Start does nothing.
func (s *Sink) Start(context.Context) error { return nil }

// Stop does nothing.
func (s *Sink) Stop(context.Context) error { return nil }

// Flush counts f's points.
func (s *Sink) Flush(_ context.Context, f *sdk.Flush) error {
	s.points.Add(uint64(len(f.Points)))
	return nil
}

// Points returns how many points the sink has discarded.
func (s *Sink) Points() uint64 { return s.points.Load() }
