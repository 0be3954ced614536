package sdk

import (
	"runtime"
	"testing"
	"time"
)

// TestProcsFollowTraffic checks that a source runs on one processor, gets
// them all at the first hand-over, and returns to one after narrowAfter
// without another.
func TestProcsFollowTraffic(t *testing.T) {
	max := runtime.GOMAXPROCS(0)
	if max < 2 {
		t.Skip("one processor: nothing to adapt")
	}
	t.Setenv("GOMAXPROCS", "") // as a plugin process is started
	defer runtime.GOMAXPROCS(max)
	p := newProcs()
	if got := runtime.GOMAXPROCS(0); got != 1 {
		t.Fatalf("%d processors at start, want 1", got)
	}
	p.busy()
	if got := runtime.GOMAXPROCS(0); got != max {
		t.Fatalf("%d processors after a hand-over, want %d", got, max)
	}
	p.narrow(time.Now().Add(narrowAfter / 2))
	if got := runtime.GOMAXPROCS(0); got != max {
		t.Fatalf("%d processors %v after a hand-over, want still %d", got, narrowAfter/2, max)
	}
	p.narrow(time.Now().Add(narrowAfter + time.Second))
	if got := runtime.GOMAXPROCS(0); got != 1 {
		t.Fatalf("%d processors %v after the last hand-over, want 1", got, narrowAfter+time.Second)
	}
	p.restore()
	if got := runtime.GOMAXPROCS(0); got != max {
		t.Fatalf("%d processors after restore, want %d", got, max)
	}
}
