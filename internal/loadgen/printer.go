package loadgen

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"
)

// StepJSON is a Step as `veneurd bench -json` prints it, one object per
// line. Fields whose figures are unknown (no admin address, no pid) are left
// out.
type StepJSON struct {
	Step          int     `json:"step"`
	OfferedRate   float64 `json:"offered_rate"` // lines/s; 0: as fast as possible
	DurationS     float64 `json:"duration_s"`
	WallS         float64 `json:"wall_s"`
	Sent          uint64  `json:"sent"`
	Datagrams     uint64  `json:"datagrams"`
	SendErrors    uint64  `json:"send_errors"`
	SentRate      float64 `json:"sent_rate"`
	DatagramRate  float64 `json:"datagram_rate"`
	Sendmmsg      bool    `json:"sendmmsg"`
	SenderLimited bool    `json:"sender_limited"`

	Processed *uint64  `json:"processed,omitempty"`
	Errors    *uint64  `json:"errors,omitempty"`
	Dropped   *uint64  `json:"dropped_by_rule,omitempty"`
	Lost      *int64   `json:"lost,omitempty"`
	TailWaitS *float64 `json:"tail_wait_s,omitempty"`

	Pid          *int     `json:"pid,omitempty"`
	SocketDrops  *uint64  `json:"socket_drops,omitempty"`
	RcvbufErrors *uint64  `json:"rcvbuf_errors,omitempty"`
	CPUSeconds   *float64 `json:"cpu_seconds,omitempty"`
	CPUCores     *float64 `json:"cpu_cores,omitempty"`
	PeakRSSBytes *uint64  `json:"peak_rss_bytes,omitempty"`
	DropPct      *float64 `json:"drop_pct,omitempty"`

	KeptUp bool `json:"kept_up"`
}

// JSON returns the step's JSON form.
func (s Step) JSON() StepJSON {
	j := StepJSON{
		Step:          s.N,
		OfferedRate:   s.Offered,
		DurationS:     round(s.Elapsed.Seconds(), 3),
		WallS:         round(s.Wall.Seconds(), 3),
		Sent:          s.Sent,
		Datagrams:     s.Datagrams,
		SendErrors:    s.SendErrors,
		SentRate:      round(s.SentRate(), 0),
		DatagramRate:  round(s.DatagramRate(), 0),
		Sendmmsg:      s.Batched,
		SenderLimited: s.SenderLimited(),
		KeptUp:        s.KeptUp(),
	}
	if s.Counted {
		p, e, d, l, w := s.Processed, s.Errors, s.Dropped, s.Lost, round(s.TailWait.Seconds(), 3)
		j.Processed, j.Errors, j.Dropped, j.Lost, j.TailWaitS = &p, &e, &d, &l, &w
	}
	if s.Metered {
		pid, d, rb, rss := s.Pid, s.SocketDrops, s.RcvbufErrors, s.PeakRSS
		cpu, cores, pct := round(s.CPU.Seconds(), 3), round(s.Cores(), 3), round(s.DropPct(), 4)
		j.Pid, j.SocketDrops, j.RcvbufErrors, j.PeakRSSBytes = &pid, &d, &rb, &rss
		j.CPUSeconds, j.CPUCores, j.DropPct = &cpu, &cores, &pct
	}
	return j
}

func round(v float64, digits int) float64 {
	p := math.Pow(10, float64(digits))
	return math.Round(v*p) / p
}

// MaxJSON is the last line of `veneurd bench -find-max -json`.
type MaxJSON struct {
	MaxRate float64 `json:"max_rate"` // 0: no rate kept up
	Step    int     `json:"max_rate_step,omitempty"`
	Steps   int     `json:"steps"`
	Reason  string  `json:"reason"`
}

// Printer prints steps as a table, or as JSON lines.
type Printer struct {
	W    io.Writer
	JSON bool

	header bool
}

const tableHeader = "%4s %10s %10s %9s %11s %11s %8s %9s %9s %8s %7s %6s %9s %7s %s\n"
const tableRow = "%4d %10s %10.0f %9.0f %11d %11s %8s %9s %9s %8s %7s %6s %9s %7s %s\n"

// Step prints one step.
func (p *Printer) Step(s Step) {
	if p.JSON {
		b, _ := json.Marshal(s.JSON())
		fmt.Fprintf(p.W, "%s\n", b)
		return
	}
	if !p.header {
		fmt.Fprintf(p.W, tableHeader, "step", "offered/s", "sent/s", "dgrams/s", "sent", "processed", "errors", "lost",
			"sockdrop", "rcvbuf", "cpu_s", "cores", "peak_rss", "drop%", "kept_up")
		p.header = true
	}
	offered := "max"
	if s.Offered > 0 {
		offered = strconv.FormatFloat(s.Offered, 'f', 0, 64)
	}
	processed, errs, lost := "-", "-", "-"
	if s.Counted {
		processed = strconv.FormatUint(s.Processed, 10)
		errs = strconv.FormatUint(s.Errors, 10)
		lost = strconv.FormatInt(s.Lost, 10)
	}
	drops, rcvbuf, cpu, cores, rss, pct := "-", "-", "-", "-", "-", "-"
	if s.Metered {
		drops = strconv.FormatUint(s.SocketDrops, 10)
		rcvbuf = strconv.FormatUint(s.RcvbufErrors, 10)
		cpu = strconv.FormatFloat(s.CPU.Seconds(), 'f', 2, 64)
		cores = strconv.FormatFloat(s.Cores(), 'f', 2, 64)
		rss = fmt.Sprintf("%.1fMiB", float64(s.PeakRSS)/(1<<20))
		pct = strconv.FormatFloat(s.DropPct(), 'f', 3, 64)
	}
	kept := "no"
	switch {
	case !s.Counted && !s.Metered:
		kept = "?"
	case s.KeptUp() && s.SenderLimited():
		kept = "yes (sender-limited)"
	case s.KeptUp():
		kept = "yes"
	case s.SenderLimited():
		kept = "no (sender-limited)"
	}
	fmt.Fprintf(p.W, tableRow, s.N, offered, s.SentRate(), s.DatagramRate(), s.Sent, processed, errs, lost,
		drops, rcvbuf, cpu, cores, rss, pct, kept)
}

// Max prints the outcome of a search.
func (p *Printer) Max(m MaxResult) {
	if p.JSON {
		j := MaxJSON{MaxRate: m.Rate, Steps: m.Steps, Reason: m.Reason}
		if m.Best != nil {
			j.Step = m.Best.N
		}
		b, _ := json.Marshal(j)
		fmt.Fprintf(p.W, "%s\n", b)
		return
	}
	if m.Best == nil {
		fmt.Fprintf(p.W, "\nno rate kept up (%s)\n", m.Reason)
		return
	}
	b := m.Best
	fmt.Fprintf(p.W, "\nmax: %.0f lines/s (%.0f datagrams/s) kept up, step %d", m.Rate, b.DatagramRate(), b.N)
	if b.Metered {
		fmt.Fprintf(p.W, ": %.2f cores, peak RSS %.1f MiB", b.Cores(), float64(b.PeakRSS)/(1<<20))
	}
	fmt.Fprintf(p.W, " (%s)\n", m.Reason)
}
