package loadgen

import (
	"bytes"
	"strings"
	"testing"

	"github.com/veneurd/veneurd/plugins/sources/dogstatsd"
	"github.com/veneurd/veneurd/sdk"
)

func TestBenchParseMix(t *testing.T) {
	m, err := ParseMix(DefaultMix)
	if err != nil {
		t.Fatal(err)
	}
	if want := (Mix{Counter: 40, Gauge: 20, Timer: 30, Set: 10}); m != want {
		t.Fatalf("ParseMix(%q) = %v, want %v", DefaultMix, m, want)
	}
	if m.String() != DefaultMix {
		t.Fatalf("String() = %q", m.String())
	}
	m, err = ParseMix(" histogram = 1, distribution=2 ,")
	if err != nil || m != (Mix{Histogram: 1, Distribution: 2}) {
		t.Fatalf("got %v, %v", m, err)
	}
	for _, bad := range []string{"", "counter=0", "counter", "counter=-1", "counter=x", "meter=1", "counter=1,counter=2"} {
		if _, err := ParseMix(bad); err == nil {
			t.Errorf("ParseMix(%q) accepted", bad)
		}
	}
}

func TestBenchMixSchedule(t *testing.T) {
	m := Mix{Counter: 40, Gauge: 20, Timer: 30, Set: 10}
	s := m.schedule()
	if len(s) != 10 {
		t.Fatalf("period %d, want 10 (the weights divided by their gcd)", len(s))
	}
	// Spread out, not in runs: no type twice in a row when none has more
	// than half the weight.
	for i := range s {
		if s[i] == s[(i+1)%len(s)] && s[i] != Counter {
			t.Errorf("schedule %v repeats %v", s, s[i])
		}
	}
}

// typeOfLetter maps the parser's types back to the workload's.
func typeOfLine(t *testing.T, line []byte) Type {
	_, typ, _ := strings.Cut(string(line), "|")
	typ, _, _ = strings.Cut(typ, "|")
	for i, l := range typeLetter {
		if l == typ {
			return Type(i)
		}
	}
	t.Fatalf("line %q: unknown type %q", line, typ)
	return 0
}

func TestBenchWorkloadRender(t *testing.T) {
	base := Workload{Series: 10000, Mix: Mix{Counter: 40, Gauge: 20, Timer: 30, Set: 10}, Tags: 3,
		LinesPerDatagram: 25, MaxDatagram: 1432, SampleRate: 1}
	cases := map[string]func(w *Workload){
		"default":    func(*Workload) {},
		"every type": func(w *Workload) { w.Mix = Mix{1, 2, 3, 4, 5, 6} },
		"sampled":    func(w *Workload) { w.SampleRate = 0.25 },
		"no tags":    func(w *Workload) { w.Tags = 0 },
		"many tags":  func(w *Workload) { w.Tags = 30; w.Series = 500 },
		"one line":   func(w *Workload) { w.LinesPerDatagram = 1 },
		"small dgrams, many lines": func(w *Workload) {
			w.MaxDatagram = 200
			w.LinesPerDatagram = 1000
		},
		"few series": func(w *Workload) { w.Series = 7; w.MinRingLines = 100 },
	}
	for name, edit := range cases {
		t.Run(name, func(t *testing.T) {
			w := base
			edit(&w)
			r, err := w.Render()
			if err != nil {
				t.Fatal(err)
			}
			checkRing(t, w, r)
		})
	}
}

func checkRing(t *testing.T, w Workload, r *Ring) {
	t.Helper()
	sched := w.Mix.schedule()
	period := len(sched)
	if r.TotalLines%period != 0 {
		t.Fatalf("%d lines: not a whole number of %d-line periods", r.TotalLines, period)
	}
	if r.TotalLines < w.Series {
		t.Fatalf("%d lines for %d series", r.TotalLines, w.Series)
	}
	var p dogstatsd.Parser
	var all [][]byte
	var byType [numTypes]int
	var bytesTotal, linesTotal int
	series := map[string]bool{}
	members := map[string]bool{}
	for i, d := range r.Datagrams {
		if len(d) > w.MaxDatagram {
			t.Fatalf("datagram %d is %d bytes, over %d", i, len(d), w.MaxDatagram)
		}
		lines := bytes.Split(d, []byte{'\n'})
		if len(lines) != r.Lines[i] || len(lines) > w.LinesPerDatagram {
			t.Fatalf("datagram %d: %d lines, ring says %d, limit %d", i, len(lines), r.Lines[i], w.LinesPerDatagram)
		}
		// Packing is greedy: the next datagram's first line would not
		// have fit.
		if i+1 < len(r.Datagrams) && len(lines) < w.LinesPerDatagram {
			next, _, _ := bytes.Cut(r.Datagrams[i+1], []byte{'\n'})
			if len(d)+1+len(next) <= w.MaxDatagram {
				t.Fatalf("datagram %d closed with %d lines though the next fits", i, len(lines))
			}
		}
		bytesTotal += len(d)
		linesTotal += len(lines)
		for _, line := range lines {
			m, err := p.ParseMetric(line)
			if err != nil {
				t.Fatalf("the dogstatsd parser rejects %q: %v", line, err)
			}
			typ := typeOfLine(t, line)
			byType[typ]++
			all = append(all, line)
			if want := "bench." + typ.String() + "."; !strings.HasPrefix(string(m.Name), want) {
				t.Fatalf("%q: name does not start with %q", line, want)
			}
			wantType := map[Type]sdk.MetricType{Counter: sdk.Counter, Gauge: sdk.Gauge, Timer: sdk.Timer,
				Set: sdk.Set, Histogram: sdk.Histogram, Distribution: sdk.Histogram}[typ]
			if m.Type != wantType {
				t.Fatalf("%q parsed as type %v", line, m.Type)
			}
			ntags := 0
			if len(m.Tags) > 0 {
				ntags = bytes.Count(m.Tags, []byte{','}) + 1
			}
			if ntags != w.Tags {
				t.Fatalf("%q: %d tags, want %d", line, ntags, w.Tags)
			}
			if m.Rate != w.SampleRate {
				t.Fatalf("%q: rate %v, want %v", line, m.Rate, w.SampleRate)
			}
			if typ == Set {
				members[string(m.Members[0])] = true
			} else if len(m.Values) != 1 {
				t.Fatalf("%q: %d values", line, len(m.Values))
			}
			series[string(m.Name)+"|"+string(m.Tags)] = true
		}
	}
	if linesTotal != r.TotalLines || bytesTotal != r.TotalBytes || byType != r.ByType {
		t.Fatalf("ring says %d lines %d bytes %v; counted %d, %d, %v", r.TotalLines, r.TotalBytes, r.ByType, linesTotal, bytesTotal, byType)
	}
	// The mix is exact over the ring and over every whole period of it.
	total := w.Mix.total()
	for typ, weight := range w.Mix {
		if byType[typ]*total != r.TotalLines*weight {
			t.Errorf("%v: %d of %d lines, want weight %d/%d", Type(typ), byType[typ], r.TotalLines, weight, total)
		}
	}
	for start := 0; start+period <= len(all); start += period {
		var n [numTypes]int
		for _, line := range all[start : start+period] {
			n[typeOfLine(t, line)]++
		}
		if reduced := w.Mix.reduced(); n != [numTypes]int(reduced) {
			t.Fatalf("lines %d..%d: %v, want %v", start, start+period, n, reduced)
		}
	}
	wantSeries := 0
	for _, n := range w.seriesPerType() {
		wantSeries += n
	}
	if len(series) != wantSeries || wantSeries < w.Series {
		t.Errorf("%d distinct series, want %d (asked for %d)", len(series), wantSeries, w.Series)
	}
	if w.Mix[Set] > 0 && len(members) != r.ByType[Set] {
		t.Errorf("%d distinct set members over %d set lines", len(members), r.ByType[Set])
	}
}

func TestBenchWorkloadErrors(t *testing.T) {
	w := Workload{Series: 10, Mix: Mix{Counter: 1}, Tags: 200, LinesPerDatagram: 25, MaxDatagram: 100, SampleRate: 1}
	if _, err := w.Render(); err == nil || !strings.Contains(err.Error(), "datagram limit") {
		t.Fatalf("a line longer than the datagram: %v", err)
	}
	bad := []Workload{
		{Series: 0, Mix: Mix{1}, LinesPerDatagram: 1, MaxDatagram: 1432, SampleRate: 1},
		{Series: 1, LinesPerDatagram: 1, MaxDatagram: 1432, SampleRate: 1},
		{Series: 1, Mix: Mix{1}, LinesPerDatagram: 0, MaxDatagram: 1432, SampleRate: 1},
		{Series: 1, Mix: Mix{1}, LinesPerDatagram: 1, MaxDatagram: 70000, SampleRate: 1},
		{Series: 1, Mix: Mix{1}, LinesPerDatagram: 1, MaxDatagram: 1432, SampleRate: 0},
		{Series: 1, Mix: Mix{1}, LinesPerDatagram: 1, MaxDatagram: 1432, SampleRate: 1.5},
		{Series: 1, Mix: Mix{1}, Tags: -1, LinesPerDatagram: 1, MaxDatagram: 1432, SampleRate: 1},
	}
	for _, w := range bad {
		if err := w.Validate(); err == nil {
			t.Errorf("%+v accepted", w)
		}
	}
}

func TestBenchTargets(t *testing.T) {
	for in, want := range map[string]Target{
		"udp://127.0.0.1:8126":     {"udp", "127.0.0.1:8126"},
		"127.0.0.1:8126":           {"udp", "127.0.0.1:8126"},
		":8126":                    {"udp", "127.0.0.1:8126"},
		"udp://[::1]:9":            {"udp", "[::1]:9"},
		"unixgram:///tmp/x.sock":   {"unixgram", "/tmp/x.sock"},
		"udp://localhost:8126":     {"udp", "localhost:8126"},
		"udp://192.0.2.1:8126":     {"udp", "192.0.2.1:8126"},
		"unixgram://relative/sock": {"unixgram", "relative/sock"},
	} {
		got, err := ParseTarget(in)
		if err != nil || got != want {
			t.Errorf("ParseTarget(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"tcp://127.0.0.1:1", "unix:///x", "127.0.0.1", "udp://127.0.0.1:0", "udp://h:99999", "unixgram://"} {
		if _, err := ParseTarget(bad); err == nil {
			t.Errorf("ParseTarget(%q) accepted", bad)
		}
	}
	for in, local := range map[string]bool{"udp://127.0.0.1:1": true, "udp://127.1.2.3:1": true, "udp://[::1]:1": true,
		"udp://localhost:1": true, "unixgram:///x": true, "udp://192.0.2.1:1": false, "udp://[2001:db8::1]:1": false} {
		tg, _ := ParseTarget(in)
		if tg.IsLocal() != local {
			t.Errorf("%s: IsLocal = %v", in, !local)
		}
	}
}
