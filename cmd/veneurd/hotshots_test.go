package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/veneurd/veneurd/internal/daemontest"
)

// hotShots finds the npm client hot-shots that scripts/test-deps.sh
// installs, or skips the test saying why.
func hotShots(t *testing.T) (node, module string) {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("SKIPPED: node is not installed; run scripts/test-deps.sh (make test does) on a machine with npm")
	}
	cache := os.Getenv("VENEURD_TEST_CACHE")
	if cache == "" {
		home, _ := os.UserHomeDir()
		cache = filepath.Join(home, ".cache", "veneurd-test")
	}
	module = filepath.Join(cache, "npm", "node_modules", "hot-shots")
	if _, err := os.Stat(filepath.Join(module, "package.json")); err != nil {
		t.Skipf("SKIPPED: hot-shots is not installed at %s; run scripts/test-deps.sh (make test does)", module)
	}
	return node, module
}

const hotShotsScript = `
const StatsD = require(process.env.HOTSHOTS);
const c = new StatsD({
  host: '127.0.0.1', port: Number(process.env.PORT), protocol: process.env.PROTOCOL,
  errorHandler: (e) => { console.error(e); process.exit(1); },
});
for (let i = 0; i < 500; i++) {
  c.increment('hs.requests', 1, ['env:hs']);
  c.timing('hs.latency', i + 1, ['env:hs']);
  c.gauge('hs.queue', i);
  c.set('hs.users', 'user' + (i % 50));
}
c.increment('hs.sampled', 1, 0.25, ['env:hs']);
c.event('deploy', 'line one\nline two', { alert_type: 'warning' }, ['env:hs']);
c.check('hs.check', c.CHECKS.WARNING, { message: 'slow' }, ['env:hs']);
c.close((err) => process.exit(err ? 1 : 0));
`

// TestHotShots sends with the npm client hot-shots over UDP and TCP.
func TestHotShots(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	node, module := hotShots(t)
	for _, proto := range []string{"udp", "tcp"} {
		t.Run(proto, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "out.jsonl")
			addr := daemontest.FreePort(t, proto)
			d := daemontest.Start(t, fmt.Sprintf(`
veneurd { interval = "1s" }
aggregation { aggregates = ["min", "max", "count", "sum"] }
source "dogstatsd" "in" { listen = ["%s://%s"] }
sink "localfile" "out" { path = %q }
`, proto, addr, out))
			_, port, _ := splitHostPort(addr)
			cmd := exec.Command(node, "-e", hotShotsScript)
			cmd.Env = append(os.Environ(), "HOTSHOTS="+module, "PORT="+port, "PROTOCOL="+proto)
			if b, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("hot-shots: %v\n%s", err, b)
			}
			d.WaitLines(out, 20*time.Second, func(ls []daemontest.Line) bool {
				return daemontest.Sum(ls, "hs.latency.count", "env:hs") >= 500 && daemontest.Sum(ls, "hs.requests", "env:hs") >= 500
			})
			lines := d.WaitFlushed(out, 2, 20*time.Second) // anything extra would show
			if got := daemontest.Sum(lines, "hs.requests", "env:hs"); got != 500 {
				t.Errorf("hs.requests = %v, want 500", got)
			}
			if got := daemontest.Sum(lines, "hs.latency.count", "env:hs"); got != 500 {
				t.Errorf("hs.latency.count = %v, want 500", got)
			}
			if got := daemontest.Sum(lines, "hs.latency.sum", "env:hs"); got != 500*501/2 {
				t.Errorf("hs.latency.sum = %v, want %v", got, 500*501/2)
			}
			if got := daemontest.Sum(lines, "hs.sampled", "env:hs"); got != 0 && got != 4 {
				t.Errorf("a counter at rate 0.25 counted %v, want 4 (or 0 if the client sampled it out)", got)
			}
			var gauge, set float64 = -1, 0
			var event, check bool
			for _, l := range lines {
				switch {
				case l.Name == "hs.queue":
					gauge = l.Value
				case l.Name == "hs.users":
					set = max(set, l.Value)
				case l.Kind == "event" && l.Title == "deploy":
					event = l.Text == "line one\nline two" && l.AlertType == "warning"
				case l.Kind == "service_check" && l.Name == "hs.check":
					check = l.Value == 1 && l.Message == "slow"
				}
			}
			if gauge != 499 {
				t.Errorf("hs.queue = %v, want 499", gauge)
			}
			if set != 50 {
				t.Errorf("hs.users = %v, want 50", set)
			}
			if !event {
				t.Error("the event did not arrive intact")
			}
			if !check {
				t.Error("the service check did not arrive intact")
			}
		})
	}
}
