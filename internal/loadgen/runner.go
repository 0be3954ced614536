package loadgen

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"
)

// Step is the result of sending at one rate for one duration.
type Step struct {
	N int
	// Offered is the rate asked for in lines per second; 0 means as fast as
	// the sockets take them.
	Offered float64
	// Elapsed is how long the sending took; Wall runs from the snapshot
	// before it to the one where the target's count last grew (the tail
	// included, the idle wait for lines that never came not).
	Elapsed, Wall time.Duration
	// Sent, Datagrams and SendErrors are what the sender wrote.
	Sent, Datagrams, SendErrors uint64
	// Batched tells whether sendmmsg was used.
	Batched bool

	// Counted: the admin counters below are known.
	Counted bool
	// Processed and Errors are the growth of the target's counters over the
	// step, the tail included.
	Processed, Errors uint64
	// Dropped is the growth of the samples the target's drop rules took.
	Dropped uint64
	// Lost is Sent - Processed - Errors - Dropped; negative when more was counted
	// than bench sent (other traffic).
	Lost int64
	// TailWait is how long after sending the target's count last grew:
	// when the last line arrived, or the last that did.
	TailWait time.Duration

	// Metered: the /proc figures below are known.
	Metered bool
	Pid     int
	// SocketDrops are the datagrams the kernel dropped on the target's UDP
	// sockets; RcvbufErrors the growth of the namespace-wide counter,
	// which also counts other sockets.
	SocketDrops, RcvbufErrors uint64
	// CPU is what the target's process tree used over Wall.
	CPU time.Duration
	// PeakRSS is the highest sum of the tree's RSS seen.
	PeakRSS uint64

	// MaxDrop is the drop percentage below which the step kept up.
	MaxDrop float64
}

// SentRate is the achieved send rate in lines per second.
func (s Step) SentRate() float64 { return perSecond(s.Sent, s.Elapsed) }

// DatagramRate is the achieved send rate in datagrams per second.
func (s Step) DatagramRate() float64 { return perSecond(s.Datagrams, s.Elapsed) }

func perSecond(n uint64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

// Cores is the CPU the target used divided by the wall time: 1.5 is one and
// a half cores kept busy.
func (s Step) Cores() float64 {
	if s.Wall <= 0 {
		return 0
	}
	return s.CPU.Seconds() / s.Wall.Seconds()
}

// DropPct is the percentage of the datagrams sent that the kernel dropped
// on the target's sockets (0 when nothing was sent).
func (s Step) DropPct() float64 {
	if s.Datagrams == 0 {
		return 0
	}
	return 100 * float64(s.SocketDrops) / float64(s.Datagrams)
}

// Accounted tells whether every line sent was processed or rejected.
func (s Step) Accounted() bool { return s.Counted && s.Lost == 0 }

// KeptUp tells whether the target kept up: the kernel dropped less than
// MaxDrop percent of the datagrams, and every line is accounted for. Either
// test is skipped when its figures are unknown; with neither, nothing is
// known and KeptUp is false.
func (s Step) KeptUp() bool {
	if !s.Counted && !s.Metered {
		return false
	}
	if s.Metered && s.DropPct() >= s.MaxDrop {
		return false
	}
	if s.Counted && s.Lost != 0 {
		return false
	}
	return s.Sent > 0
}

// senderShortfall is how far below the offered rate the achieved one may be
// before the step counts as limited by the sender rather than the target.
const senderShortfall = 0.97

// SenderLimited tells whether the sender fell short of the offered rate,
// so that the step says nothing about the target at that rate.
func (s Step) SenderLimited() bool {
	return s.Offered > 0 && s.SentRate() < senderShortfall*s.Offered
}

// Runner runs steps: a Sender sends, a Meter measures before and after.
type Runner struct {
	Sender *Sender
	Meter  *Meter
	// Duration is how long each step sends.
	Duration time.Duration
	// Settle bounds the wait, after sending, for the target to count the
	// last lines (with an admin address) or to empty its sockets' queues
	// (without).
	Settle time.Duration
	// MaxDrop is the drop percentage at which a step no longer keeps up.
	MaxDrop float64

	steps int
}

// pollEvery is how often the tail is polled for.
const pollEvery = 50 * time.Millisecond

// sourceLinger bounds how long the dogstatsd source holds lines it has read
// before handing them on: it flushes its batch every 20 ms while packets
// come, and wakes every 100 ms when they stop.
const sourceLinger = 200 * time.Millisecond

// Step sends at rate lines per second for Duration and measures the target.
// When ctx ends during sending, the step ends early and is measured all the
// same; its result comes with ctx's error.
func (r *Runner) Step(ctx context.Context, rate float64) (Step, error) {
	r.steps++
	st := Step{N: r.steps, Offered: rate, Pid: r.Meter.Pid, MaxDrop: r.MaxDrop}
	// The snapshots and the tail wait go on when ctx ends, so that an
	// interrupted step still reports.
	mctx := context.WithoutCancel(ctx)
	before, err := r.Meter.Snapshot(mctx)
	if err != nil {
		return st, err
	}
	stopRSS := r.Meter.WatchRSS()
	res, err := r.Sender.Run(ctx, rate, r.Duration)
	if err != nil {
		stopRSS()
		return st, err
	}
	sentAt := time.Now()
	st.Elapsed, st.Sent, st.Datagrams, st.SendErrors, st.Batched = res.Elapsed, res.Lines, res.Datagrams, res.Errors, res.Batched

	after, busy, err := r.waitTail(mctx, before, res.Lines, sentAt.Add(r.Settle))
	peak := stopRSS()
	if err != nil {
		return st, err
	}
	st.TailWait = max(busy.At.Sub(sentAt), 0)
	st.Wall = busy.At.Sub(before.At)
	if after.Counted {
		st.Counted = true
		st.Processed = after.Counts.Processed - min(before.Counts.Processed, after.Counts.Processed)
		st.Errors = after.Counts.Errors - min(before.Counts.Errors, after.Counts.Errors)
		st.Dropped = after.Counts.Dropped - min(before.Counts.Dropped, after.Counts.Dropped)
		st.Lost = int64(st.Sent) - int64(st.Processed) - int64(st.Errors) - int64(st.Dropped)
	}
	if after.Metered {
		st.Metered = true
		st.CPU = busy.CPU - min(before.CPU, busy.CPU)
		st.SocketDrops = dropsSince(before.Drops, after.Drops)
		st.RcvbufErrors = after.RcvbufErrors - min(before.RcvbufErrors, after.RcvbufErrors)
		st.PeakRSS = peak
	}
	return st, ctx.Err()
}

// waitTail polls until the target has counted sent lines since before (or,
// without counters, until its sockets' queues have been empty for
// sourceLinger), or until the deadline. It returns the last snapshot, and the one taken when the count
// last grew: when lines went missing, the target was busy until then, not
// until the deadline, and its CPU cores are reckoned over that time.
func (r *Runner) waitTail(ctx context.Context, before Snapshot, sent uint64, deadline time.Time) (last, busy Snapshot, err error) {
	counted := func(s Snapshot) uint64 {
		return (s.Counts.Processed - min(before.Counts.Processed, s.Counts.Processed)) +
			(s.Counts.Errors - min(before.Counts.Errors, s.Counts.Errors)) +
			(s.Counts.Dropped - min(before.Counts.Dropped, s.Counts.Dropped))
	}
	var emptySince time.Time
	for {
		s, err := r.Meter.Snapshot(ctx)
		if err != nil {
			return s, s, err
		}
		if !s.Counted {
			// Without counters, the tail is in when the sockets' queues
			// have stayed empty long enough for the source to hand on
			// what it read.
			switch {
			case s.Queued > 0:
				emptySince = time.Time{}
			case emptySince.IsZero():
				emptySince = s.At
			}
			if !s.Metered || (!emptySince.IsZero() && s.At.Sub(emptySince) >= sourceLinger) ||
				!time.Now().Add(pollEvery).Before(deadline) {
				return s, s, nil
			}
			time.Sleep(pollEvery)
			continue
		}
		got := counted(s)
		if got >= sent {
			return s, s, nil
		}
		if busy.At.IsZero() || got != counted(busy) {
			busy = s
		}
		if !time.Now().Add(pollEvery).Before(deadline) {
			time.Sleep(time.Until(deadline))
			s, err := r.Meter.Snapshot(ctx)
			if err == nil && counted(s) != counted(busy) {
				busy = s
			}
			return s, busy, err
		}
		time.Sleep(pollEvery)
	}
}

// MaxResult is the outcome of FindMax.
type MaxResult struct {
	// Rate is the highest offered rate that kept up; 0 when none did.
	Rate float64
	// Best is the step run at Rate.
	Best *Step
	// Steps is how many steps were run.
	Steps int
	// Reason tells why the search ended.
	Reason string
}

// searchPrecision ends the search once the highest good rate and the lowest
// bad one are this close, relative to the good one.
const searchPrecision = 0.05

// minSearchRate is the rate below which FindMax gives up halving.
const minSearchRate = 100

// FindMax searches for the highest rate the target keeps up with: from
// start it multiplies the rate by 1.5 while steps keep up, then bisects
// between the last good and the first bad rate until they are within 5%. A
// first step that fails halves the rate instead. It stops after maxSteps
// steps, or when the sender cannot reach a rate the target kept up with
// (more senders are needed to go on). Each step is passed to onStep.
func (r *Runner) FindMax(ctx context.Context, start float64, maxSteps int, onStep func(Step)) (MaxResult, error) {
	return findMax(ctx, start, maxSteps, r.Step, onStep)
}

// findMax is FindMax with the step to run as a function.
func findMax(ctx context.Context, start float64, maxSteps int, step func(context.Context, float64) (Step, error), onStep func(Step)) (MaxResult, error) {
	if start <= 0 {
		return MaxResult{}, errors.New("find-max needs a starting rate above 0")
	}
	var res MaxResult
	good, bad := 0.0, math.Inf(1)
	rate := start
	for {
		if res.Steps >= maxSteps {
			res.Reason = fmt.Sprintf("stopped after %d steps", maxSteps)
			return res, nil
		}
		st, err := step(ctx, rate)
		res.Steps++
		if st.Sent > 0 || err == nil {
			onStep(st)
		}
		if err != nil {
			res.Reason = "interrupted"
			return res, err
		}
		kept := st.KeptUp()
		if kept && rate > good {
			good = rate
			s := st
			res.Rate, res.Best = rate, &s
		}
		if !kept {
			bad = min(bad, rate)
		}
		if kept && st.SenderLimited() {
			res.Reason = fmt.Sprintf("the sender reached only %.0f of %.0f lines/s; add -senders to go higher", st.SentRate(), rate)
			return res, nil
		}
		switch {
		case !math.IsInf(bad, 1) && good > 0:
			if (bad-good)/good <= searchPrecision {
				res.Reason = fmt.Sprintf("kept up at %.0f lines/s, not at %.0f", good, bad)
				return res, nil
			}
			rate = math.Round((good + bad) / 2)
		case kept:
			rate = math.Round(rate * 1.5)
		default:
			rate = math.Round(rate / 2)
			if rate < minSearchRate {
				res.Reason = fmt.Sprintf("did not keep up even at %.0f lines/s", bad)
				return res, nil
			}
		}
	}
}
