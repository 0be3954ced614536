package openmetrics

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/veneurd/veneurd/internal/daemontest"
)

// flushes groups a localfile sink's lines by flush (timestamp), leaving
// out the newest flush, which may still be being written: each flush
// returned is whole.
func flushes(lines []daemontest.Line) (stamps []int64, by map[int64][]daemontest.Line) {
	by = map[int64][]daemontest.Line{}
	for _, l := range lines {
		if _, ok := by[l.Timestamp]; !ok {
			stamps = append(stamps, l.Timestamp)
		}
		by[l.Timestamp] = append(by[l.Timestamp], l)
	}
	slices.Sort(stamps)
	if len(stamps) > 0 {
		delete(by, stamps[len(stamps)-1])
		stamps = stamps[:len(stamps)-1]
	}
	return stamps, by
}

// value returns the value of the line named name with tags, and whether
// there is one.
func value(lines []daemontest.Line, name string, tags ...string) (float64, bool) {
	for _, l := range lines {
		if l.Name == name && slices.Equal(l.Tags, tags) {
			return l.Value, true
		}
	}
	return 0, false
}

// standalone builds the source's own binary and returns the plugin block
// that pins it, as the type openmetrics_standalone.
func standalone(t *testing.T) string {
	t.Helper()
	bin := daemontest.BuildPlugin(t, "./plugins/sources/openmetrics/cmd/veneurd-source-openmetrics", t.TempDir())
	b, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return fmt.Sprintf("plugin \"source\" \"openmetrics_standalone\" {\n  path   = %q\n  sha256 = %q\n}\n", bin, hex.EncodeToString(sum[:]))
}

// TestDaemonExactIncreases runs veneurd with a target whose every answer
// the test knows: at its i-th request it serves a counter at 3i, a gauge
// at i, a histogram and a summary that move with i, and garbage at the
// third. Each flush must hold exactly the increase between the last good
// scrapes of it and of the flush before, which the gauge tells. Beside
// it, a second source block (the standalone plugin binary) scrapes a
// target that refuses connections and one that sends 11 MB: each is
// counted by reason and logged once, and costs the good target nothing.
func TestDaemonExactIncreases(t *testing.T) {
	var n atomic.Int64
	good := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i := n.Add(1)
		if i == 3 {
			fmt.Fprintln(w, "# TYPE c_total counter\nc_total{k=\"v\"} 1e99\n}}} garbage")
			return
		}
		fmt.Fprintf(w, `# TYPE c_total counter
c_total{k="v"} %d
# TYPE g gauge
g %d
# TYPE h histogram
h_bucket{le="0.5"} %d
h_bucket{le="1"} %d
h_bucket{le="+Inf"} %d
h_sum %g
h_count %d
# TYPE s summary
s{quantile="0.5"} %g
s_sum %d
s_count %d
`, 3*i, i, i, 2*i, 3*i, 1.5*float64(i), 3*i, float64(i)/10, i, 2*i)
	}))
	defer good.Close()
	big := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		line := []byte("# padding, to make a body larger than max_body_bytes\n")
		for written := 0; written <= DefaultMaxBodyBytes; written += len(line) {
			if _, err := w.Write(line); err != nil {
				return
			}
		}
	}))
	defer big.Close()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := "http://" + l.Addr().String() + "/metrics"
	l.Close()

	out := filepath.Join(t.TempDir(), "out.jsonl")
	d := daemontest.Start(t, fmt.Sprintf(`
veneurd {
  hostname     = "om"
  interval     = "1s"
  http_address = %q
}
source "openmetrics" "good" {
  targets         = [%q]
  scrape_interval = "1s" # and as long a timeout: a loaded machine's stall must not fail a scrape
}
source "openmetrics_standalone" "bad" {
  targets         = [%q, %q]
  scrape_interval = "1s"
}
sink "localfile" "out" {
  path = %q
}
%s`, daemontest.FreePort(t, "tcp"), good.URL, refused, big.URL, out, standalone(t)))

	var stamps []int64
	var by map[int64][]daemontest.Line
	d.WaitLines(out, 30*time.Second, func(lines []daemontest.Line) bool {
		stamps, by = flushes(lines)
		withGauge, bigErrs := 0, 0.0
		for _, s := range stamps {
			if _, ok := value(by[s], "g"); ok {
				withGauge++
			}
			v, _ := value(by[s], ScrapeErrors, "reason:"+ReasonTooLarge, "target:"+big.URL, "veneurd:self")
			bigErrs += v
		}
		return withGauge >= 5 && bigErrs >= 2
	})

	prev := 1.0 // the first good scrape, i = 1, is only remembered
	var counted, connectErrs, bigErrs, parseErrs float64
	checked := 0
	for _, s := range stamps {
		f := by[s]
		v, _ := value(f, ScrapeErrors, "reason:"+ReasonParse, "target:"+good.URL, "veneurd:self")
		parseErrs += v
		v, _ = value(f, ScrapeErrors, "reason:"+ReasonConnect, "target:"+refused, "veneurd:self")
		connectErrs += v
		v, _ = value(f, ScrapeErrors, "reason:"+ReasonTooLarge, "target:"+big.URL, "veneurd:self")
		bigErrs += v
		g, ok := value(f, "g")
		if !ok {
			// No good scrape in this interval: nothing of the target.
			for _, l := range f {
				if !strings.HasPrefix(l.Name, "veneur.") {
					t.Errorf("flush %d: %s %v = %g without the gauge", s, l.Name, l.Tags, l.Value)
				}
			}
			continue
		}
		delta := g - prev
		want := map[string]float64{
			"c_total k:v": 3 * delta, "h.bucket le:0.5": delta, "h.bucket le:1": 2 * delta, "h.bucket le:+Inf": 3 * delta,
			"h.count": 3 * delta, "h.sum": 1.5 * g, "s.50percentile": g / 10, "s.sum": g, "s.count": 2 * delta,
		}
		for k, w := range want {
			name, tag, _ := strings.Cut(k, " ")
			var tags []string
			if tag != "" {
				tags = []string{tag}
			}
			v, ok := value(f, name, tags...)
			if w == 0 && !ok {
				continue // no increase, nothing sent
			}
			if !ok || v != w {
				t.Errorf("flush %d (gauge %g, previous %g): %s = %g (present %v), want %g", s, g, prev, k, v, ok, w)
			}
		}
		counted += 3 * delta
		prev = g
		checked++
	}
	if checked < 5 {
		t.Errorf("%d flushes had the target's data, want 5", checked)
	}
	// The garbage was counted once, and the counter's increase across it
	// was not lost: the sum is the last good value less the first.
	if sum := sumOf(by, stamps, "c_total", "k:v"); sum != 3*(prev-1) || sum != counted {
		t.Errorf("c_total sums to %g, want %g", sum, 3*(prev-1))
	}
	if parseErrs != 1 || connectErrs < 2 || bigErrs < 2 {
		t.Errorf("scrape errors: parse %g (want 1), connect %g, too_large %g (want 2 or more each)", parseErrs, connectErrs, bigErrs)
	}
	if v, _ := d.Metric(`veneur_packet_error_total{packet_type="scrape",reason="parse"}`); v != 1 {
		t.Errorf("veneur.packet.error_total{packet_type:scrape,reason:parse} = %g, want 1", v)
	}
	// Each down target is logged once, however many scrapes failed; the
	// good one went down once (the garbage) and came back once.
	for _, target := range []string{refused, big.URL, good.URL} {
		if n := logged(d.Logs(), "target is down", target); n != 1 {
			t.Errorf("%s logged down %d times, want once", target, n)
		}
	}
	if n := logged(d.Logs(), "target is up again", good.URL); n != 1 {
		t.Errorf("logged up again %d times, want once", n)
	}
}

// logged counts the log lines holding msg about target.
func logged(logs, msg, target string) int {
	n := 0
	for _, l := range strings.Split(logs, "\n") {
		if strings.Contains(l, msg) && strings.Contains(l, " target="+target+" ") {
			n++
		}
	}
	return n
}

// sumOf sums the values of name with tags over the flushes.
func sumOf(by map[int64][]daemontest.Line, stamps []int64, name string, tags ...string) float64 {
	var sum float64
	for _, s := range stamps {
		for _, l := range by[s] {
			if l.Name == name && slices.Equal(l.Tags, tags) {
				sum += l.Value
			}
		}
	}
	return sum
}
