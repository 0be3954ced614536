// Package loadgen drives `veneurd bench`: it renders a DogStatsD workload
// once into a ring of datagrams (Workload), writes that ring at a paced rate
// (Sender), and measures what the target veneurd made of it (Meter): the
// lines its admin /metrics counted, the kernel's drops on its sockets, and the
// CPU and memory of its process tree. Runner ties them into steps and a
// search for the highest sustainable rate; Printer shows the steps as a
// table or as JSON lines.
package loadgen

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Type is a DogStatsD metric type the workload sends.
type Type int

// The metric types, in the order a Mix lists them.
const (
	Counter Type = iota
	Gauge
	Timer
	Set
	Histogram
	Distribution
	numTypes
)

var (
	typeNames  = [numTypes]string{"counter", "gauge", "timer", "set", "histogram", "distribution"}
	typeLetter = [numTypes]string{"c", "g", "ms", "s", "h", "d"}
)

// String returns the type's name as -mix spells it.
func (t Type) String() string {
	if t >= 0 && t < numTypes {
		return typeNames[t]
	}
	return "Type(" + strconv.Itoa(int(t)) + ")"
}

// Mix is the relative weight of each metric type; the lines of a rendered
// ring follow it exactly.
type Mix [numTypes]int

// DefaultMix is the mix `veneurd bench` uses unless told otherwise.
const DefaultMix = "counter=40,gauge=20,timer=30,set=10"

// ParseMix parses "counter=40,gauge=20,timer=30,set=10"; the types are
// counter, gauge, timer, set, histogram and distribution, and a type left out
// has weight 0.
func ParseMix(s string) (Mix, error) {
	var m Mix
	seen := [numTypes]bool{}
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		name, val, ok := strings.Cut(part, "=")
		if !ok {
			return m, fmt.Errorf("mix: %q is not type=weight", part)
		}
		t := Type(-1)
		for i, n := range typeNames {
			if strings.TrimSpace(name) == n {
				t = Type(i)
			}
		}
		if t < 0 {
			return m, fmt.Errorf("mix: unknown type %q (use %s)", name, strings.Join(typeNames[:], ", "))
		}
		if seen[t] {
			return m, fmt.Errorf("mix: %s given twice", t)
		}
		seen[t] = true
		w, err := strconv.Atoi(strings.TrimSpace(val))
		if err != nil || w < 0 {
			return m, fmt.Errorf("mix: weight of %s must be a non-negative integer, not %q", t, val)
		}
		m[t] = w
	}
	if m.total() == 0 {
		return m, errors.New("mix: every weight is zero")
	}
	return m, nil
}

// String renders the mix as ParseMix reads it, without zero weights.
func (m Mix) String() string {
	var parts []string
	for t, w := range m {
		if w > 0 {
			parts = append(parts, fmt.Sprintf("%s=%d", Type(t), w))
		}
	}
	return strings.Join(parts, ",")
}

func (m Mix) total() int {
	n := 0
	for _, w := range m {
		n += w
	}
	return n
}

// reduced divides the weights by their greatest common divisor, so that
// 40/20/30/10 repeats every 10 lines instead of every 100.
func (m Mix) reduced() Mix {
	g := 0
	for _, w := range m {
		g = gcd(g, w)
	}
	if g > 1 {
		for i := range m {
			m[i] /= g
		}
	}
	return m
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// schedule returns one period of the mix: the types of consecutive lines,
// each type exactly its weight times, spread out (smooth weighted
// round-robin) rather than in runs.
func (m Mix) schedule() []Type {
	m = m.reduced()
	total := m.total()
	out := make([]Type, 0, total)
	var current [numTypes]int
	for range total {
		best := Type(-1)
		for t := range numTypes {
			if m[t] == 0 {
				continue
			}
			current[t] += m[t]
			if best < 0 || current[t] > current[best] {
				best = t
			}
		}
		current[best] -= total
		out = append(out, best)
	}
	return out
}

// Workload describes the traffic: how many series, which types, how many
// tags, how lines are packed into datagrams and their sample rate.
type Workload struct {
	// Series is the number of distinct series (name and tags), shared out
	// among the types by weight.
	Series int
	// Mix weighs the metric types.
	Mix Mix
	// Tags is the number of tags on each line.
	Tags int
	// LinesPerDatagram is the most lines packed into one datagram.
	LinesPerDatagram int
	// MaxDatagram bounds a datagram's size in bytes.
	MaxDatagram int
	// SampleRate, below 1, is written into every line as |@rate, as a
	// client sampling at that rate does. 1 leaves the section out.
	SampleRate float64
	// MinRingLines is the least number of lines the ring holds (so that
	// set members and values vary even with few series); 0 means 50,000.
	MinRingLines int
}

// MaxUDPPayload is the largest UDP payload over IPv4.
const MaxUDPPayload = 65507

// Validate reports the first bad setting.
func (w Workload) Validate() error {
	switch {
	case w.Series < 1:
		return errors.New("series must be at least 1")
	case w.Mix.total() == 0:
		return errors.New("the mix has no weight")
	case w.Tags < 0:
		return errors.New("tags must not be negative")
	case w.LinesPerDatagram < 1:
		return errors.New("lines per datagram must be at least 1")
	case w.MaxDatagram < 64 || w.MaxDatagram > MaxUDPPayload:
		return fmt.Errorf("max datagram must be within 64..%d bytes", MaxUDPPayload)
	case !(w.SampleRate > 0 && w.SampleRate <= 1):
		return errors.New("sample rate must be in (0, 1]")
	}
	for _, x := range w.Mix {
		if x < 0 {
			return errors.New("the mix has a negative weight")
		}
	}
	return nil
}

// seriesPerType shares Series among the types with weight, by largest
// remainder, each such type getting at least one.
func (w Workload) seriesPerType() [numTypes]int {
	var out [numTypes]int
	total := w.Mix.total()
	type rem struct {
		t Type
		r int
	}
	var rems []rem
	sum := 0
	for t, x := range w.Mix {
		if x == 0 {
			continue
		}
		out[t] = w.Series * x / total
		rems = append(rems, rem{Type(t), w.Series * x % total})
		sum += out[t]
	}
	for sum < w.Series {
		best := 0
		for i := range rems {
			if rems[i].r > rems[best].r {
				best = i
			}
		}
		out[rems[best].t]++
		rems[best].r = -1
		sum++
	}
	for t, x := range w.Mix {
		if x > 0 && out[t] == 0 {
			out[t] = 1
		}
	}
	return out
}

// tagModuli are the moduli of the tags' values: tag k of series i is
// "t<k>:v<i mod tagModuli[k-1]>". Primes, so that combinations vary.
var tagModuli = []int{7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61, 67, 71, 73, 79, 83, 89, 97}

func tagModulus(k int) int {
	if k < len(tagModuli) {
		return tagModuli[k]
	}
	return 101 + 2*(k-len(tagModuli))
}

// Ring is a rendered workload: datagrams to be written in turn, over and
// over. Its slices are read-only once rendered and may be shared by senders.
type Ring struct {
	Datagrams [][]byte
	// Lines is how many lines each datagram holds.
	Lines []int
	// TotalLines and TotalBytes are the sums over the ring.
	TotalLines int
	TotalBytes int
	// ByType counts the ring's lines of each type.
	ByType [numTypes]int
}

// appendLine appends line k of the ring, of type t and series number
// series, to b without a newline.
func (w Workload) appendLine(b []byte, t Type, series, k int) []byte {
	b = append(b, "bench."...)
	b = append(b, typeNames[t]...)
	b = append(b, '.')
	b = strconv.AppendInt(b, int64(series), 10)
	b = append(b, ':')
	switch t {
	case Counter:
		b = append(b, '1')
	case Gauge:
		b = strconv.AppendInt(b, int64(k%1000), 10)
	case Set:
		b = append(b, 'm')
		b = strconv.AppendInt(b, int64(k), 10)
	default: // timings: 0.1 .. 999.9 ms, spread over the ring
		v := (k * 7919) % 10000
		b = strconv.AppendInt(b, int64(v/10), 10)
		b = append(b, '.')
		b = strconv.AppendInt(b, int64(v%10), 10)
	}
	b = append(b, '|')
	b = append(b, typeLetter[t]...)
	if w.SampleRate < 1 {
		b = append(b, "|@"...)
		b = strconv.AppendFloat(b, w.SampleRate, 'g', -1, 64)
	}
	if w.Tags > 0 {
		b = append(b, "|#"...)
		for j := range w.Tags {
			if j > 0 {
				b = append(b, ',')
			}
			b = append(b, 't')
			b = strconv.AppendInt(b, int64(j+1), 10)
			b = append(b, ":v"...)
			b = strconv.AppendInt(b, int64(series%tagModulus(j)), 10)
		}
	}
	return b
}

// Render renders the ring: at least max(Series, MinRingLines) lines, a whole
// number of the mix's periods, so that one pass over the ring sends every
// series and the mix exactly. Lines are packed in order, up to
// LinesPerDatagram of them and MaxDatagram bytes per datagram, separated by
// '\n'.
func (w Workload) Render() (*Ring, error) {
	if err := w.Validate(); err != nil {
		return nil, err
	}
	sched := w.Mix.schedule()
	perType := w.seriesPerType()
	minLines := w.MinRingLines
	if minLines <= 0 {
		minLines = 50000
	}
	n := max(w.Series, minLines)
	n = (n + len(sched) - 1) / len(sched) * len(sched)

	arena := make([]byte, 0, n*(48+12*w.Tags))
	var ends []int // end offset in arena of each datagram
	var lines []int
	r := &Ring{}
	var countOf [numTypes]int
	start, inDgram := 0, 0
	var line []byte
	for k := range n {
		t := sched[k%len(sched)]
		series := countOf[t] % perType[t]
		line = w.appendLine(line[:0], t, series, k)
		countOf[t]++
		if len(line) > w.MaxDatagram {
			return nil, fmt.Errorf("a line is %d bytes, more than the %d-byte datagram limit: %q", len(line), w.MaxDatagram, line)
		}
		if inDgram > 0 && (inDgram == w.LinesPerDatagram || len(arena)-start+1+len(line) > w.MaxDatagram) {
			ends = append(ends, len(arena))
			lines = append(lines, inDgram)
			start, inDgram = len(arena), 0
		}
		if inDgram > 0 {
			arena = append(arena, '\n')
		}
		arena = append(arena, line...)
		inDgram++
		r.ByType[t]++
	}
	ends = append(ends, len(arena))
	lines = append(lines, inDgram)

	r.Datagrams = make([][]byte, len(ends))
	prev := 0
	for i, e := range ends {
		r.Datagrams[i] = arena[prev:e:e]
		prev = e
	}
	r.Lines = lines
	r.TotalLines = n
	r.TotalBytes = len(arena)
	return r, nil
}

// MaxLines is the most lines a datagram of the ring holds.
func (r *Ring) MaxLines() int {
	m := 0
	for _, n := range r.Lines {
		m = max(m, n)
	}
	return m
}
