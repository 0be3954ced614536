package otlp

import (
	"os"
	"runtime"
	"sync/atomic"
	"time"
)

// The SDK runs a source's process on one processor until one of its Writers
// fills a frame (see sdk/procs.go): at ordinary rates a second processor
// only adds wake-ups. Its sign of heavy traffic never shows here, as each
// request is flushed on its own, a thousand samples or so. So the source
// watches its own load the same way: the time its workers spend on
// requests. Past busyWide of one processor's time over a second, the
// process gets every processor; it goes back to one after narrowAfter
// below busyNarrow. Measured with 1,000-point requests: one processor takes
// 1.4 million points/s, all of this machine's two 1.7 million; at 100,000
// points/s two cost 10 to 50% more CPU than one. A GOMAXPROCS set in the
// environment is left alone.

// defaultProcs is the runtime's processors before the SDK narrowed them.
var defaultProcs = runtime.GOMAXPROCS(0)

const (
	busyWide    = 0.8
	busyNarrow  = 0.4
	narrowAfter = 10 * time.Second
)

// procs adapts the process's processors to the time workers are busy.
type procs struct {
	adapt bool
	busy  atomic.Int64 // nanoseconds spent on requests since the last tick
	wide  bool
	quiet time.Duration // how long the load has been below busyNarrow
}

func newProcs() *procs {
	return &procs{adapt: os.Getenv("GOMAXPROCS") == "" && defaultProcs > 1}
}

// add records time spent on a request.
func (p *procs) add(d time.Duration) { p.busy.Add(int64(d)) }

// tick decides, every period, from the time spent since the last tick;
// it returns the processors it set, or 0.
func (p *procs) tick(period time.Duration) int {
	if !p.adapt {
		return 0
	}
	load := float64(p.busy.Swap(0)) / float64(period)
	switch {
	case !p.wide && load > busyWide:
		p.wide, p.quiet = true, 0
		runtime.GOMAXPROCS(defaultProcs)
		return defaultProcs
	case p.wide && load < busyNarrow:
		p.quiet += period
		if p.quiet >= narrowAfter {
			p.wide = false
			runtime.GOMAXPROCS(1)
			return 1
		}
	case p.wide:
		p.quiet = 0
	}
	return 0
}
