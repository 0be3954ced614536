package sdk

import (
	"os"
	"runtime"
	"sync/atomic"
	"time"
)

// procs adapts a source process's parallelism to its traffic. At ordinary
// rates one core reads, parses and aggregates with time to spare, and a
// second runtime processor only costs: every wake-up of the reader also
// wakes an idle processor's thread to look for work, which doubles the
// context switches and costs about a tenth of the process's CPU (measured at
// 200,000 lines/s). So a source runs on one processor until a Writer hands a
// full frame to the aggregating goroutine, the sign of traffic one core may
// not keep up with; it then gets every processor at once, and returns to one
// after narrowAfter without a hand-over. A GOMAXPROCS set in the environment
// is left alone.
type procs struct {
	adapt    bool
	max      int
	wide     atomic.Bool
	lastWide atomic.Int64 // Unix nanoseconds of the last hand-over
}

const narrowAfter = 10 * time.Second

// newProcs starts the process on one processor, unless it is not to adapt.
func newProcs() *procs {
	p := &procs{max: runtime.GOMAXPROCS(0)}
	p.adapt = os.Getenv("GOMAXPROCS") == "" && p.max > 1
	if p.adapt {
		runtime.GOMAXPROCS(1)
	} else {
		p.wide.Store(true)
	}
	return p
}

// busy records a hand-over, widening at once.
func (p *procs) busy() {
	if !p.adapt {
		return
	}
	p.lastWide.Store(time.Now().UnixNano())
	if !p.wide.Load() && p.wide.CompareAndSwap(false, true) {
		runtime.GOMAXPROCS(p.max)
	}
}

// narrow returns to one processor if nothing was handed over for
// narrowAfter before now.
func (p *procs) narrow(now time.Time) {
	if !p.adapt || now.UnixNano()-p.lastWide.Load() < int64(narrowAfter) {
		return
	}
	if p.wide.Load() && p.wide.CompareAndSwap(true, false) {
		runtime.GOMAXPROCS(1)
	}
}

// restore gives the process back every processor.
func (p *procs) restore() {
	if p.adapt && p.wide.CompareAndSwap(false, true) {
		runtime.GOMAXPROCS(p.max)
	}
}
