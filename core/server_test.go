package core

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/veneurd/veneurd/core/config"
	"github.com/veneurd/veneurd/core/pluginhost"
	"github.com/veneurd/veneurd/core/telemetry"
)

// The tests below run a Server over in-process fakes of its sources and
// sinks, in a synctest bubble: time is the bubble's, which starts at
// 2000-01-01T00:00:00Z and moves only when every goroutine waits, so that
// each flush can be placed to the nanosecond.

// running starts a Server for cfg on fakes and runs it until the test ends;
// stop ends it and returns when Run has returned.
func running(t *testing.T, cfg *config.Config, fp *fakePlugins) (s *Server, stop func()) {
	t.Helper()
	s = New(cfg, Options{Plugins: fp})
	if err := s.Start(); err != nil {
		t.Fatalf("start: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error)
	go func() { ran <- s.Run(ctx) }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-ran; err != nil {
			t.Errorf("run: %v", err)
		}
	}
	t.Cleanup(stop)
	return s, stop
}

// at sleeps until the bubble's clock reads start+d, then waits for every
// goroutine to settle.
func at(start time.Time, d time.Duration) {
	time.Sleep(time.Until(start.Add(d)))
	synctest.Wait()
}

func expectFlush(t *testing.T, got delivered, at time.Time, ts time.Time, points map[string]float64) {
	t.Helper()
	if !got.at.Equal(at) {
		t.Errorf("flush delivered at %v, want %v", got.at, at)
	}
	if got.ts != ts.Unix() {
		t.Errorf("flush stamped %v, want %v", time.Unix(got.ts, 0).UTC(), ts)
	}
	if !maps.Equal(got.points, points) {
		t.Errorf("flush points %v, want %v", got.points, points)
	}
}

// TestFlushesOnIntervalMultiples starts a pipeline between two multiples of
// its interval: flushes come at the multiples of the wall clock, each with
// exactly what the sources held when it was cut.
func TestFlushesOnIntervalMultiples(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		epoch := time.Now()
		time.Sleep(3300 * time.Millisecond)
		fp := newFakePlugins()
		running(t, pipeline(10*time.Second, 5*time.Second, "source.fake.in", "sink.fake.out"), fp)
		src, out := fp.source("source.fake.in"), fp.sink("sink.fake.out")

		at(epoch, 5*time.Second)
		src.count("hits", 1)
		src.count("hits", 2)
		at(epoch, 12*time.Second)
		src.count("hits", 4)
		src.count("misses", 1)
		at(epoch, 25*time.Second)

		got := out.delivered()
		if len(got) != 2 {
			t.Fatalf("%d flushes by 25 s, want 2 (at 10 s and 20 s)", len(got))
		}
		expectFlush(t, got[0], epoch.Add(10*time.Second), epoch.Add(10*time.Second), map[string]float64{"hits{}": 3})
		expectFlush(t, got[1], epoch.Add(20*time.Second), epoch.Add(20*time.Second), map[string]float64{"hits{}": 4, "misses{}": 1})
	})
}

// TestSourceMissingItsCut has a source whose state comes 3 s after a cut:
// the flush waits a quarter of the interval at most (2 s here), goes on
// without it, and the late state is flushed whole with the next interval.
func TestSourceMissingItsCut(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		epoch := time.Now()
		fp := newFakePlugins()
		fp.source("source.fake.slow").cutDelay = 3 * time.Second
		running(t, pipeline(10*time.Second, 5*time.Second, "source.fake.prompt", "source.fake.slow", "sink.fake.out"), fp)
		prompt, slow, out := fp.source("source.fake.prompt"), fp.source("source.fake.slow"), fp.sink("sink.fake.out")

		at(epoch, 5*time.Second)
		prompt.count("a", 1)
		slow.count("b", 10)
		at(epoch, 15*time.Second)
		prompt.count("a", 2)
		at(epoch, 25*time.Second)

		got := out.delivered()
		if len(got) != 2 {
			t.Fatalf("%d flushes by 25 s, want 2", len(got))
		}
		expectFlush(t, got[0], epoch.Add(12*time.Second), epoch.Add(10*time.Second), map[string]float64{"a{}": 1})
		// The next cut of the slow source is late too: it delays that flush
		// by 2 s again, and brings nothing new.
		expectFlush(t, got[1], epoch.Add(22*time.Second), epoch.Add(20*time.Second), map[string]float64{"a{}": 2, "b{}": 10})
	})
}

// TestSlowSinkDelaysNoOne has a sink that never finishes a flush: each of
// its flushes ends at its flush_timeout and is counted as an error, while
// the other sink gets every flush on time.
func TestSlowSinkDelaysNoOne(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		epoch := time.Now()
		fp := newFakePlugins()
		fp.sink("sink.fake.slow").delay = time.Hour
		s, _ := running(t, pipeline(10*time.Second, 5*time.Second, "source.fake.in", "sink.fake.fast", "sink.fake.slow=3s"), fp)
		src, fast, slow := fp.source("source.fake.in"), fp.sink("sink.fake.fast"), fp.sink("sink.fake.slow")

		at(epoch, 5*time.Second)
		src.count("x", 1)
		at(epoch, 15*time.Second)
		src.count("x", 1)
		at(epoch, 25*time.Second)

		got := fast.delivered()
		if len(got) != 2 {
			t.Fatalf("fast sink: %d flushes by 25 s, want 2", len(got))
		}
		expectFlush(t, got[0], epoch.Add(10*time.Second), epoch.Add(10*time.Second), map[string]float64{"x{}": 1})
		expectFlush(t, got[1], epoch.Add(20*time.Second), epoch.Add(20*time.Second), map[string]float64{"x{}": 1})
		slow.mu.Lock()
		cancelled := append([]time.Time(nil), slow.cancelled...)
		slow.mu.Unlock()
		want := []time.Time{epoch.Add(13 * time.Second), epoch.Add(23 * time.Second)}
		if len(cancelled) != 2 || !cancelled[0].Equal(want[0]) || !cancelled[1].Equal(want[1]) {
			t.Errorf("slow sink's flushes ended at %v, want %v", cancelled, want)
		}
		if n := s.Telemetry().CounterValue(telemetry.SinkFlushErrors, "sink:sink.fake.slow"); n != 2 {
			t.Errorf("%s{sink.fake.slow} = %d, want 2", telemetry.SinkFlushErrors, n)
		}
		if n := s.Telemetry().CounterValue(telemetry.SinkFlushErrors, "sink:sink.fake.fast"); n != 0 {
			t.Errorf("%s{sink.fake.fast} = %d, want 0", telemetry.SinkFlushErrors, n)
		}
	})
}

// TestReloadFailingHalfWayRollsBack reloads into a pipeline whose last new
// plugin fails to start: the ones started for it are stopped, and the
// running pipeline goes on untouched.
func TestReloadFailingHalfWayRollsBack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		epoch := time.Now()
		fp := newFakePlugins()
		old := pipeline(10*time.Second, 5*time.Second, "source.fake.in", "sink.fake.a")
		s, _ := running(t, old, fp)
		fp.fail["source.fake.broken"] = errStart

		next := pipeline(10*time.Second, 5*time.Second, "source.fake.in", "source.fake.new", "source.fake.broken",
			"sink.fake.a", "sink.fake.b")
		if err := s.Apply(next); err == nil {
			t.Fatal("reload with a plugin that cannot start succeeded")
		}
		if s.Config() != old {
			t.Error("the failed reload changed the config in effect")
		}
		for _, addr := range []string{"sink.fake.b", "source.fake.new"} {
			var starts int
			var up bool
			if k, ok := fp.sinks[addr]; ok {
				starts, up = k.starts, k.Running()
			} else {
				starts, up = fp.sources[addr].starts, fp.sources[addr].Running()
			}
			if starts != 1 || up {
				t.Errorf("%s: started %d times, running %v after the rollback; want started once and stopped", addr, starts, up)
			}
		}
		if a, in := fp.sink("sink.fake.a"), fp.source("source.fake.in"); a.starts != 1 || !a.Running() || in.starts != 1 || !in.Running() {
			t.Errorf("the running pipeline was touched: sink a started %d times, running %v; source in started %d times, running %v",
				a.starts, a.Running(), in.starts, in.Running())
		}

		fp.source("source.fake.in").count("x", 5)
		at(epoch, 15*time.Second)
		if got := fp.sink("sink.fake.a").delivered(); len(got) != 1 || got[0].points["x{}"] != 5 {
			t.Errorf("sink a after the failed reload: %v, want one flush with x = 5", got)
		}
		if got := fp.sink("sink.fake.b").delivered(); len(got) != 0 {
			t.Errorf("sink b, rolled back, was flushed: %v", got)
		}
	})
}

// TestShutdownWithinItsBound stops a pipeline whose sink hangs on every
// flush, with a flush_timeout of an hour: the whole shutdown still ends
// within shutdown_timeout, and the other sink gets the last flush, with
// what the source handed over as it stopped.
func TestShutdownWithinItsBound(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		epoch := time.Now()
		fp := newFakePlugins()
		fp.sink("sink.fake.stuck").delay = 24 * time.Hour
		_, stop := running(t, pipeline(10*time.Second, 5*time.Second, "source.fake.in", "sink.fake.ok", "sink.fake.stuck=1h"), fp)
		src, ok, stuck := fp.source("source.fake.in"), fp.sink("sink.fake.ok"), fp.sink("sink.fake.stuck")

		at(epoch, 5*time.Second)
		src.count("x", 1)
		at(epoch, 12*time.Second) // the stuck sink is in the flush of 10 s
		src.count("x", 2)
		begin := time.Now()
		stop()
		if took := time.Since(begin); took > 5*time.Second {
			t.Errorf("shutdown took %v, want at most its 5s bound", took)
		}
		got := ok.delivered()
		if len(got) != 2 {
			t.Fatalf("%d flushes, want 2 (at 10 s, and the last one)", len(got))
		}
		expectFlush(t, got[1], begin, begin, map[string]float64{"x{}": 2})
		if src.Running() || ok.Running() || stuck.Running() {
			t.Error("a plugin is still running after shutdown")
		}
	})
}

// TestFailingSinkIsUnhealthy has a sink whose flushes fail: from its first
// failed flush Health names it and its error, and after a flush that
// succeeds the pipeline is healthy again.
func TestFailingSinkIsUnhealthy(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		epoch := time.Now()
		fp := newFakePlugins()
		fp.sink("sink.fake.bad").failWith(errors.New("write points.jsonl: no space left on device"))
		s, _ := running(t, pipeline(10*time.Second, 5*time.Second, "source.fake.in", "sink.fake.ok", "sink.fake.bad"), fp)
		src, bad := fp.source("source.fake.in"), fp.sink("sink.fake.bad")

		at(epoch, 5*time.Second)
		if err := s.Health(); err != nil {
			t.Fatalf("before any flush: Health() = %v, want nil", err)
		}
		src.count("x", 1)
		at(epoch, 15*time.Second)
		err := s.Health()
		if err == nil || !strings.Contains(err.Error(), "sink.fake.bad") || !strings.Contains(err.Error(), "no space left on device") ||
			strings.Contains(err.Error(), "sink.fake.ok") {
			t.Fatalf("after a failed flush: Health() = %v, want an error naming sink.fake.bad and its error, and only it", err)
		}
		at(epoch, 25*time.Second)
		if err := s.Health(); err == nil {
			t.Fatal("after a second failed flush: Health() = nil, want an error")
		}

		bad.failWith(nil)
		at(epoch, 35*time.Second)
		if err := s.Health(); err != nil {
			t.Fatalf("after a flush that succeeded: Health() = %v, want nil", err)
		}

		bad.failWith(errors.New(strings.Repeat("e", 10000)))
		at(epoch, 45*time.Second)
		if err := s.Health(); err == nil || len(err.Error()) > 300 {
			t.Fatalf("after a flush that failed with a long error: Health() = %.400v (%d bytes), want an error of at most 300 bytes",
				err, len(fmt.Sprint(err)))
		}
	})
}

// TestSinkDownHeldForItsReturn has a sink whose process is down for two
// flushes, longer than its flush_timeout (as after a second crash in a
// row, whose restart backoff doubles): both flushes are held and delivered,
// in order and exactly, before the next one once it is back.
func TestSinkDownHeldForItsReturn(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		epoch := time.Now()
		fp := newFakePlugins()
		s, _ := running(t, pipeline(10*time.Second, 5*time.Second, "source.fake.in", "sink.fake.out"), fp)
		src, out := fp.source("source.fake.in"), fp.sink("sink.fake.out")
		out.failWith(fmt.Errorf("sink.fake.out: plugin is restarting: %w", pluginhost.ErrSinkDown))

		at(epoch, 5*time.Second)
		src.count("x", 1)
		at(epoch, 15*time.Second)
		src.count("x", 2)
		at(epoch, 25*time.Second)
		out.failWith(nil) // back
		src.count("x", 4)
		at(epoch, 35*time.Second)

		got := out.delivered()
		if len(got) != 3 {
			t.Fatalf("%d flushes delivered, want the 2 held and the one of 30 s: %v", len(got), got)
		}
		at30 := epoch.Add(30 * time.Second)
		expectFlush(t, got[0], at30, epoch.Add(10*time.Second), map[string]float64{"x{}": 1})
		expectFlush(t, got[1], at30, epoch.Add(20*time.Second), map[string]float64{"x{}": 2})
		expectFlush(t, got[2], at30, at30, map[string]float64{"x{}": 4})
		if err := s.Health(); err != nil {
			t.Errorf("health after the sink came back: %v", err)
		}
	})
}

// TestReadiness follows Ready through a daemon's life: not ready before
// Start, ready once every plugin runs, and not ready from the moment a
// shutdown begins, while it waits for a sink stuck in its last flush.
func TestReadiness(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		epoch := time.Now()
		fp := newFakePlugins()
		fp.sink("sink.fake.stuck").delay = 24 * time.Hour
		s := New(pipeline(10*time.Second, 5*time.Second, "source.fake.in", "sink.fake.stuck=1h"), Options{Plugins: fp})
		if err := s.Ready(); err == nil || err.Error() != "pipeline starting" {
			t.Fatalf("before Start: Ready() = %v, want pipeline starting", err)
		}
		if err := s.Start(); err != nil {
			t.Fatal(err)
		}
		if err := s.Ready(); err != nil {
			t.Fatalf("after Start: Ready() = %v, want nil", err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		ran := make(chan error)
		go func() { ran <- s.Run(ctx) }()
		at(epoch, 2*time.Second)
		cancel()
		at(epoch, 3*time.Second) // the shutdown waits on the stuck sink until 7 s
		select {
		case <-ran:
			t.Fatal("the shutdown did not wait for the stuck sink")
		default:
		}
		if err := s.Ready(); err == nil || err.Error() != "shutting down" {
			t.Errorf("during shutdown: Ready() = %v, want shutting down", err)
		}
		if err := <-ran; err != nil {
			t.Fatal(err)
		}
		if err := s.Ready(); err == nil {
			t.Error("after shutdown: Ready() = nil")
		}
	})
}
