package core

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/veneurd/veneurd/core/config"
	"github.com/veneurd/veneurd/core/pluginhost"
	"github.com/veneurd/veneurd/internal/state"
	"github.com/veneurd/veneurd/sdk"
	pb "github.com/veneurd/veneurd/sdk/proto"
)

// fakePlugins starts in-process fakes of sources and sinks, made by address
// when first started; a test may make them beforehand to set them up, and
// name addresses whose start fails.
type fakePlugins struct {
	mu      sync.Mutex
	sinks   map[string]*fakeSink
	sources map[string]*fakeSource
	fail    map[string]error
}

func newFakePlugins() *fakePlugins {
	return &fakePlugins{sinks: map[string]*fakeSink{}, sources: map[string]*fakeSource{}, fail: map[string]error{}}
}

func (f *fakePlugins) sink(addr string) *fakeSink {
	f.mu.Lock()
	defer f.mu.Unlock()
	k, ok := f.sinks[addr]
	if !ok {
		k = &fakeSink{addr: addr}
		f.sinks[addr] = k
	}
	return k
}

func (f *fakePlugins) source(addr string) *fakeSource {
	f.mu.Lock()
	defer f.mu.Unlock()
	src, ok := f.sources[addr]
	if !ok {
		src = &fakeSource{addr: addr, held: map[string]float64{}}
		f.sources[addr] = src
	}
	return src
}

func (f *fakePlugins) StartSink(b *config.PluginBlock, _ *pb.ConfigureRequest) (SinkProcess, error) {
	if err := f.fail[b.Address()]; err != nil {
		return nil, err
	}
	k := f.sink(b.Address())
	k.mu.Lock()
	k.starts++
	k.running = true
	k.mu.Unlock()
	return k, nil
}

func (f *fakePlugins) StartSource(b *config.PluginBlock, _ []*os.File, _ []string, _ *pb.ConfigureRequest,
	_ *pb.StateParams, h pluginhost.SourceHandlers) (SourceProcess, error) {
	if err := f.fail[b.Address()]; err != nil {
		return nil, err
	}
	src := f.source(b.Address())
	src.mu.Lock()
	src.h = h
	src.starts++
	src.running = true
	src.mu.Unlock()
	return src, nil
}

// fakeSink records each flush it delivers: when, and its points as
// "name{tags}" -> value. A flush takes delay, or until its context ends;
// while fail is set, every flush fails with it.
type fakeSink struct {
	addr  string
	delay time.Duration

	mu        sync.Mutex
	fail      error
	starts    int
	running   bool
	flushes   []delivered
	cancelled []time.Time
}

type delivered struct {
	at     time.Time
	ts     int64
	points map[string]float64
}

func (k *fakeSink) Address() string { return k.addr }

func (k *fakeSink) Running() bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.running
}

func (k *fakeSink) Flush(ctx context.Context, b *pluginhost.FlushBatch) ([]*pb.Count, error) {
	return nil, k.flush(ctx, b)
}

func (k *fakeSink) flush(ctx context.Context, b *pluginhost.FlushBatch) error {
	if k.delay > 0 {
		select {
		case <-time.After(k.delay):
		case <-ctx.Done():
			k.mu.Lock()
			k.cancelled = append(k.cancelled, time.Now())
			k.mu.Unlock()
			return ctx.Err()
		}
	}
	k.mu.Lock()
	fail := k.fail
	k.mu.Unlock()
	if fail != nil {
		return fail
	}
	chunks, _, err := b.Wait(ctx)
	if err != nil {
		return err
	}
	d := delivered{at: time.Now(), points: map[string]float64{}}
	var points []sdk.Point
	for _, c := range chunks {
		if c.Timestamp != 0 {
			d.ts = c.Timestamp
		}
		var err error
		if points, err = sdk.UnpackPoints(c.Points, points[:0]); err != nil {
			return err
		}
		for _, p := range points {
			d.points[p.Name+"{"+strings.Join(p.Tags, ",")+"}"] = p.Value
		}
	}
	k.mu.Lock()
	k.flushes = append(k.flushes, d)
	k.mu.Unlock()
	return nil
}

func (k *fakeSink) Stop(context.Context) {
	k.mu.Lock()
	k.running = false
	k.mu.Unlock()
}

// failWith makes every flush from now on fail with err, or succeed again
// when err is nil.
func (k *fakeSink) failWith(err error) {
	k.mu.Lock()
	k.fail = err
	k.mu.Unlock()
}

// delivered returns the flushes delivered so far.
func (k *fakeSink) delivered() []delivered {
	k.mu.Lock()
	defer k.mu.Unlock()
	return append([]delivered(nil), k.flushes...)
}

// fakeSource holds counters as a source process holds its state, and hands
// them over at a cut after cutDelay, or at Stop.
type fakeSource struct {
	addr     string
	cutDelay time.Duration

	mu      sync.Mutex
	h       pluginhost.SourceHandlers
	starts  int
	running bool
	held    map[string]float64
}

// count adds v to the counter name, as if a client had sent it.
func (src *fakeSource) count(name string, v float64) {
	src.mu.Lock()
	src.held[name] += v
	src.mu.Unlock()
}

// take empties the source's state into packed records.
func (src *fakeSource) take() []byte {
	src.mu.Lock()
	defer src.mu.Unlock()
	names := make([]string, 0, len(src.held))
	for name := range src.held {
		names = append(names, name)
	}
	sort.Strings(names)
	var records []byte
	for _, name := range names {
		records = state.AppendRecord(records, &state.Series{Key: state.Key(state.ScopeDefault, state.Counter, name, ""), Value: src.held[name]})
	}
	clear(src.held)
	return records
}

func (src *fakeSource) Address() string { return src.addr }

func (src *fakeSource) Running() bool {
	src.mu.Lock()
	defer src.mu.Unlock()
	return src.running
}

// Cut takes the state at once and hands it over after cutDelay, as a
// source whose state is slow to arrive: late state is merged when it
// comes, as pluginhost does.
func (src *fakeSource) Cut(ctx context.Context, _ *pb.StateParams) error {
	records := src.take()
	done := make(chan struct{})
	go func() {
		time.Sleep(src.cutDelay)
		if len(records) > 0 {
			src.h.State(records)
		}
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (src *fakeSource) Stop(time.Duration) {
	if records := src.take(); len(records) > 0 {
		src.h.State(records)
	}
	src.mu.Lock()
	src.running = false
	src.mu.Unlock()
}

var errStart = errors.New("plugin refused to start")

// pipeline is a config of fake sources and sinks, named by address
// ("sink.fake.a"), with flush timeouts set per sink ("sink.fake.slow=3s").
func pipeline(interval, shutdown time.Duration, blocks ...string) *config.Config {
	cfg := &config.Config{
		Daemon: config.Daemon{Hostname: "h", Interval: interval, ShutdownTimeout: shutdown},
		Aggregation: config.Aggregation{
			Percentiles: config.DefaultPercentiles, Aggregates: config.DefaultAggregates,
			TDigestCompression: 100, HLLPrecision: 14,
		},
	}
	for _, b := range blocks {
		addr, timeout, _ := strings.Cut(b, "=")
		parts := strings.Split(addr, ".")
		pb := &config.PluginBlock{Kind: parts[0], Type: parts[1], Name: parts[2], FlushTimeout: interval, Hash: b}
		if timeout != "" {
			d, err := time.ParseDuration(timeout)
			if err != nil {
				panic(fmt.Sprintf("block %q: %v", b, err))
			}
			pb.FlushTimeout = d
		}
		if pb.Kind == "source" {
			cfg.Sources = append(cfg.Sources, pb)
		} else {
			cfg.Sinks = append(cfg.Sinks, pb)
		}
	}
	return cfg
}
