package delivery

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/veneurd/veneurd/sdk"
)

// receiver is a fake Transport: down, it fails every request as retryable;
// up, it takes them, in the order they arrive.
type receiver struct {
	mu       sync.Mutex
	down     bool
	reject   bool
	got      []int // the Points of each payload taken, which tests make unique
	attempts int
}

func (r *receiver) Send(ctx context.Context, p *Payload) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.attempts++
	switch {
	case r.reject:
		return errors.New("400 Bad Request: no")
	case r.down:
		return Retry(errors.New("connection refused"), 0)
	}
	r.got = append(r.got, p.Points)
	return nil
}

func (r *receiver) set(down bool) {
	r.mu.Lock()
	r.down = down
	r.mu.Unlock()
}

func (r *receiver) taken() []int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.got)
}

func newTestQueue(r *receiver, maxPoints, inFlight int) (*Queue, *sdk.Stats) {
	stats := sdk.NewStats()
	q := NewQueue(r, QueueConfig{Settings: Settings{MaxBufferedPoints: maxPoints, MaxInFlight: inFlight,
		MaxRetryBackoff: 2 * time.Second}, Stats: stats})
	return q, stats
}

func count(s *sdk.Stats, name string, tags ...string) uint64 { return s.Counter(name, tags...).Value() }

// TestQueueWaitsOutAnOutage checks that payloads added while the receiver
// is down all arrive once it is back, in the order they were added, and
// that the retries are counted and nothing is dropped.
func TestQueueWaitsOutAnOutage(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := &receiver{down: true}
		q, stats := newTestQueue(r, 1000, 1)
		want := []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
		for _, n := range want {
			q.Add(&Payload{Points: n})
			time.Sleep(time.Second) // an interval of outage per payload
		}
		r.set(false)
		time.Sleep(3 * time.Second) // past the longest backoff
		synctest.Wait()
		if got := r.taken(); !slices.Equal(got, want) {
			t.Fatalf("delivered %v, want %v", got, want)
		}
		if n := count(stats, Retries); n == 0 || n != uint64(r.attempts-len(want)) {
			t.Errorf("%s = %d, want the %d failed attempts", Retries, n, r.attempts-len(want))
		}
		for _, reason := range []string{ReasonBufferFull, ReasonRejected, ReasonShutdown} {
			if n := count(stats, MetricsDropped, "reason:"+reason); n != 0 {
				t.Errorf("dropped %d points (%s) in an outage the buffer held", n, reason)
			}
		}
		if q.Buffered() != 0 {
			t.Errorf("after delivery: %s", q)
		}
		q.Stop(context.Background())
	})
}

// TestQueueOverflowDropsTheOldest checks that past MaxBufferedPoints the
// oldest payloads are dropped, exactly their points counted, and the rest
// delivered in order once the receiver is back.
func TestQueueOverflowDropsTheOldest(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := &receiver{down: true}
		q, stats := newTestQueue(r, 100, 4)
		var sent []int
		for i := range 15 {
			n := 10 + i // unique sizes, 10..24
			sent = append(sent, n)
			q.Add(&Payload{Points: n})
			synctest.Wait()
		}
		r.set(false)
		time.Sleep(3 * time.Second)
		synctest.Wait()
		got := r.taken()
		// The newest that fit in 100 points: 24+23+22+21 = 90, and 20 more
		// would make 110.
		if want := sent[11:]; !slices.Equal(got, want) {
			t.Fatalf("delivered %v, want %v", got, want)
		}
		var lost uint64
		for _, n := range sent[:11] {
			lost += uint64(n)
		}
		if n := count(stats, MetricsDropped, "reason:"+ReasonBufferFull); n != lost {
			t.Errorf("counted %d points dropped, want %d", n, lost)
		}
		q.Stop(context.Background())
	})
}

// TestQueueRejectionIsNotRetried checks that a request the receiver refuses
// is dropped at once, counted, and not retried.
func TestQueueRejectionIsNotRetried(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := &receiver{reject: true}
		q, stats := newTestQueue(r, 1000, 2)
		q.Add(&Payload{Points: 7})
		q.Add(&Payload{Points: 5})
		time.Sleep(time.Minute)
		synctest.Wait()
		if r.attempts != 2 {
			t.Errorf("%d attempts at 2 rejected payloads", r.attempts)
		}
		if n := count(stats, MetricsDropped, "reason:"+ReasonRejected); n != 12 {
			t.Errorf("counted %d rejected points, want 12", n)
		}
		if n := count(stats, Retries); n != 0 {
			t.Errorf("%d retries of rejected payloads", n)
		}
		q.Stop(context.Background())
	})
}

// TestQueueStopDrainsThenCounts checks that Stop delivers what is buffered
// while the receiver takes it, and counts what is left when it cannot.
func TestQueueStopDrainsThenCounts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := &receiver{}
		q, _ := newTestQueue(r, 1000, 1)
		q.Add(&Payload{Points: 3})
		q.Add(&Payload{Points: 4})
		q.Stop(context.Background())
		if got := r.taken(); !slices.Equal(got, []int{3, 4}) {
			t.Fatalf("Stop delivered %v, want [3 4]", got)
		}

		r = &receiver{down: true}
		q, stats := newTestQueue(r, 1000, 1)
		q.Add(&Payload{Points: 3})
		q.Add(&Payload{Points: 4})
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		q.Stop(ctx)
		if n := count(stats, MetricsDropped, "reason:"+ReasonShutdown); n != 7 {
			t.Errorf("counted %d points dropped at shutdown, want 7", n)
		}
		q.Add(&Payload{Points: 2}) // after Stop: counted, not kept
		if n := count(stats, MetricsDropped, "reason:"+ReasonShutdown); n != 9 {
			t.Errorf("counted %d points dropped at shutdown, want 9", n)
		}
	})
}

// TestQueueBacksOffExponentially checks the waits between retries: doubling
// from firstBackoff, jittered by up to a half, capped by MaxRetryBackoff.
func TestQueueBacksOffExponentially(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var at []time.Time
		var mu sync.Mutex
		tr := transportFunc(func(ctx context.Context, p *Payload) error {
			mu.Lock()
			defer mu.Unlock()
			at = append(at, time.Now())
			return Retry(errors.New("503"), 0)
		})
		q := NewQueue(tr, QueueConfig{Settings: Settings{MaxBufferedPoints: 10, MaxInFlight: 1, MaxRetryBackoff: time.Second}})
		q.Add(&Payload{Points: 1})
		time.Sleep(10 * time.Second)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		q.Stop(ctx)
		mu.Lock()
		defer mu.Unlock()
		for i := 1; i < len(at); i++ {
			base := min(firstBackoff<<(i-1), time.Second)
			if d := at[i].Sub(at[i-1]); d < base || d > base+base/2 {
				t.Errorf("wait %d was %s, want from %s to %s", i, d, base, base+base/2)
			}
		}
		if len(at) < 8 {
			t.Errorf("only %d attempts in 10s", len(at))
		}
	})
}

type transportFunc func(ctx context.Context, p *Payload) error

func (f transportFunc) Send(ctx context.Context, p *Payload) error { return f(ctx, p) }
