package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"

	"github.com/veneurd/veneurd/core/status"
	"github.com/veneurd/veneurd/internal/daemontest"
)

func topTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

// topExample is the status of a daemon with a source, a sink that is down
// and two that run, a drop rule and a forward block.
func topExample() *status.Status {
	errAt := topTime("2026-12-01T01:59:58Z")
	return &status.Status{
		Version: "v0.21.0", Hostname: "web-1",
		Time: topTime("2026-12-01T02:00:03Z"), Started: topTime("2026-12-01T01:50:00Z"),
		Ready: true, Healthy: false, Problems: []string{"plugin not running: sink.datadog.dd"},
		Config: status.Config{Hash: "3f2a9c1e0b7d4a11", LoadedAt: topTime("2026-12-01T01:50:00Z"),
			Path: "/etc/veneurd/pipeline.hcl", IntervalSeconds: 10},
		Flush: status.Flush{At: topTime("2026-12-01T02:00:00Z"), DurationSeconds: 0.012,
			TotalDurationSeconds: 0.034, Series: 1200, Points: 2800},
		Sources: []status.Source{{
			Plugin: status.Plugin{Address: "source.dogstatsd.main", Type: "dogstatsd", Name: "main",
				State: "running", Pid: 4242, Running: true},
			Listen: []string{"udp://127.0.0.1:8126"}, Received: 120000, Processed: 119000, Errors: 12,
			ReceivedPerSecond: 1000.5, ProcessedPerSecond: 990.1,
			Dropped: map[string]uint64{"dropped_by_rule": 300, "series_limit": 25},
		}},
		DropRules: []status.DropRule{{Name: "debug_metrics", Dropped: 300, PerSecond: 2.5}},
		Sinks: []status.Sink{
			{Plugin: status.Plugin{Address: "sink.datadog.dd", Type: "datadog", Name: "dd", State: "down",
				Restarts: 2, LastError: "process exited (pid 4250)", LastErrorAt: &errAt},
				Flushed: 5000, FlushErrors: 1, PointsPerSecond: 20, Dropped: map[string]uint64{}},
			{Plugin: status.Plugin{Address: "sink.prometheus_remote_write.prom", Type: "prometheus_remote_write",
				Name: "prom", State: "running", Pid: 4251, Running: true},
				Flushed: 26000, PointsPerSecond: 260, Dropped: map[string]uint64{"too_many_tags": 4}},
			{Plugin: status.Plugin{Address: "sink.localfile.archive", Type: "localfile", Name: "archive",
				State: "running", Pid: 4252, Running: true},
				Flushed: 26000, PointsPerSecond: 260, Dropped: map[string]uint64{}},
		},
		Forward: &status.Forward{Protocol: "veneurd", Members: []string{"10.0.0.5:8128", "10.0.0.6:8128"},
			Errors: map[string]uint64{"unavailable": 1}},
		TopNames: []status.NameCount{
			{Name: "api.request.latency", Series: 600}, {Name: "api.request.count", Series: 400},
			{Name: "c", Series: 30}, {Name: "d", Series: 20}, {Name: "e", Series: 10}, {Name: "f", Series: 5},
		},
	}
}

// checkLines compares lines drawn on width columns with want: the title
// spans the width, no line is wider.
func checkLines(t *testing.T, got []string, width int, want string) {
	t.Helper()
	if runeLen(got[0]) != width {
		t.Errorf("title of %d columns, not %d: %q", runeLen(got[0]), width, got[0])
	}
	for _, l := range got {
		if runeLen(l) > width {
			t.Errorf("%d columns: %q", runeLen(l), l)
		}
	}
	if g := strings.Join(got, "\n"); g != want {
		t.Errorf("got:\n%s\n\nwant:\n%s", g, want)
	}
}

// TestTopRenderNarrow draws the example on 80 columns: NAME is cut in the
// type of the address, DROPS at its end, the top names stop at five.
func TestTopRenderNarrow(t *testing.T) {
	got := renderTop(topExample(), topView{Addr: "127.0.0.1:8127", Width: 80, Loc: time.UTC})
	checkLines(t, got, 80, `veneurd v0.21.0 on web-1, up 10m3s                       127.0.0.1:8127 02:00:03
ready, unhealthy
  ! plugin not running: sink.datadog.dd
config 3f2a9c1e0b7d4a11 loaded 01:50:00 (10m3s ago), interval 10s, /etc/veneurd…
flush 02:00:00 (3s ago): 1.2k series, 2.8k points in 12ms, 34ms with sinks

NAME               KIND   STATE     IN/s  OUT/s ERRORS DROPS       RESTARTS  PID
source.dogst….main source running   1.0k    990     12 325 by_rule        0 4242
sink.datadog.dd    sink   down        20      -      1 0                  2    -
sink.prometh….prom sink   running    260      -      0 4 too_many…        0 4251
sink.loca….archive sink   running    260      -      0 0                  0 4252

sink.datadog.dd: process exited (pid 4250) (5s ago)

forward (veneurd) to 2 members: 0 pending, 1 errors (unavailable 1)

DROP RULE      DROPPED  PER SEC
debug_metrics      300      2.5

TOP NAMES            SERIES
api.request.latency     600
api.request.count       400
c                        30
d                        20
e                        10`)
}

// TestTopRenderWide draws the example on a wide terminal: nothing is cut,
// columns take the width of their widest cell.
func TestTopRenderWide(t *testing.T) {
	got := renderTop(topExample(), topView{Addr: "127.0.0.1:8127", Width: 120, Loc: time.UTC})
	table := strings.Join(got[6:11], "\n")
	want := `NAME                              KIND   STATE     IN/s  OUT/s ERRORS DROPS           RESTARTS  PID
source.dogstatsd.main             source running   1.0k    990     12 325 by_rule            0 4242
sink.datadog.dd                   sink   down        20      -      1 0                      2    -
sink.prometheus_remote_write.prom sink   running    260      -      0 4 too_many_tags        0 4251
sink.localfile.archive            sink   running    260      -      0 0                      0 4252`
	if table != want {
		t.Errorf("got:\n%s\n\nwant:\n%s", table, want)
	}
	if got[0] != "veneurd v0.21.0 on web-1, up 10m3s"+strings.Repeat(" ", 63)+"127.0.0.1:8127 02:00:03" {
		t.Errorf("title %q", got[0])
	}
	if got[3] != "config 3f2a9c1e0b7d4a11 loaded 01:50:00 (10m3s ago), interval 10s, /etc/veneurd/pipeline.hcl" {
		t.Errorf("config line %q", got[3])
	}
}

// TestTopRenderStates derives a block's state when the daemon gives none,
// and shows "-" for what is unknown.
func TestTopRenderStates(t *testing.T) {
	now := topTime("2026-12-01T02:00:03Z")
	recent, old := now.Add(-5*time.Second), now.Add(-10*time.Minute)
	st := &status.Status{Time: now, Config: status.Config{IntervalSeconds: 10}}
	st.Sources = []status.Source{
		{Plugin: status.Plugin{Address: "source.a.up", Running: true, Pid: 10}},
		{Plugin: status.Plugin{Address: "source.a.recent", Running: true, Pid: 11, LastError: "late", LastErrorAt: &recent}},
		{Plugin: status.Plugin{Address: "source.a.old", Running: true, Pid: 12, LastError: "late", LastErrorAt: &old}},
		{Plugin: status.Plugin{Address: "source.a.dead", Restarts: 1234}},
	}
	st.Sinks = []status.Sink{
		{Plugin: status.Plugin{Address: "sink.b.fail", Running: true, Pid: 13, LastError: "refused", LastErrorAt: &old}, FlushErrors: 4},
	}
	got := renderTop(st, topView{Addr: "h:1", Width: 80, Loc: time.UTC})
	checkLines(t, got, 80, `veneurd                                                             h:1 02:00:03
not ready, unhealthy
config -, interval 10s
flush: none yet

NAME            KIND   STATE     IN/s  OUT/s ERRORS DROPS RESTARTS PID
source.a.up     source running      0      0      0 0            0  10
source.a.recent source failing      0      0      0 0            0  11
source.a.old    source running      0      0      0 0            0  12
source.a.dead   source down         0      0      0 0         1.2k   -
sink.b.fail     sink   failing      0      -      4 0            0  13

source.a.recent: late (5s ago)
sink.b.fail: refused (10m ago)`)
}

// TestTopRenderUnreachable shows the failure above what was last fetched,
// or alone, and cuts the screen to its height.
func TestTopRenderUnreachable(t *testing.T) {
	err := errors.New("connect: connection refused")
	got := renderTop(nil, topView{Addr: "127.0.0.1:9", Width: 60, Live: true, Err: err})
	checkLines(t, got, 60, `veneurd                                          127.0.0.1:9
cannot reach 127.0.0.1:9: connect: connection refused (retr…

q: quit`)

	got = renderTop(topExample(), topView{Addr: "127.0.0.1:9", Width: 80, Height: 6, Loc: time.UTC, Live: true, Err: err})
	checkLines(t, got, 80, `veneurd v0.21.0 on web-1, up 10m3s                          127.0.0.1:9 02:00:03
cannot reach 127.0.0.1:9: connect: connection refused (retrying)
ready, unhealthy
  ! plugin not running: sink.datadog.dd
config 3f2a9c1e0b7d4a11 loaded 01:50:00 (10m3s ago), interval 10s, /etc/veneurd…
... 23 more lines`)

	got = renderTop(nil, topView{Addr: "127.0.0.1:9", Width: 80, Live: true, Waiting: true})
	checkLines(t, got, 80, "veneurd"+strings.Repeat(" ", 62)+"127.0.0.1:9\nconnecting to 127.0.0.1:9 ...\n\nq: quit")
}

func TestTopHumanize(t *testing.T) {
	durations := map[time.Duration]string{0: "0s", 42 * time.Second: "42s", 10 * time.Minute: "10m",
		603 * time.Second: "10m3s", 2*time.Hour + 5*time.Minute + 9*time.Second: "2h5m", 76 * time.Hour: "3d4h", -time.Second: "0s"}
	for d, want := range durations {
		if got := topAgo(d); got != want {
			t.Errorf("topAgo(%v) = %q, want %q", d, got, want)
		}
	}
	seconds := map[float64]string{0.012: "12ms", 0.0003: "0.3ms", 0.1234: "123ms", 1.5: "1.50s"}
	for s, want := range seconds {
		if got := topSeconds(s); got != want {
			t.Errorf("topSeconds(%v) = %q, want %q", s, got, want)
		}
	}
	drops := map[string]string{"": "0", "a=3,b=3": "6 a", "a=1,b=2000": "2.0k b",
		"dropped_by_rule=300,series_limit=25": "325 by_rule", "dropped_by_rule=1,series_limit=25": "26 series_limit"}
	for in, want := range drops {
		m := map[string]uint64{}
		for kv := range strings.SplitSeq(in, ",") {
			if k, v, ok := strings.Cut(kv, "="); ok {
				m[k], _ = strconv.ParseUint(v, 10, 64)
			}
		}
		if got := dropsText(m); got != want {
			t.Errorf("dropsText(%v) = %q, want %q", m, got, want)
		}
	}
}

func TestTopFitAddress(t *testing.T) {
	for _, c := range []struct {
		in   string
		w    int
		want string
	}{
		{"sink.localfile.out", 18, "sink.localfile.out"},
		{"sink.localfile.out", 17, "sink.localfi….out"},
		{"sink.localfile.out", 10, "sink.….out"},
		{"sink.localfile.out", 9, "sink.loc…"},
		{"nodots", 4, "nod…"},
		{"source.dogstatsd.main", 1, "…"},
		{"source.dogstatsd.main", 0, ""},
	} {
		if got := fitAddress(c.in, c.w); got != c.want {
			t.Errorf("fitAddress(%q, %d) = %q, want %q", c.in, c.w, got, c.want)
		}
	}
}

// serveStatus serves st at /api/status.
func serveStatus(t *testing.T, st *status.Status) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/status" {
			http.NotFound(w, r)
			return
		}
		json.NewEncoder(w).Encode(st)
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// TestTopSnapshotNotTerminal prints one plain snapshot when standard output
// is not a terminal, -once or not.
func TestTopSnapshotNotTerminal(t *testing.T) {
	addr := serveStatus(t, topExample())
	for _, args := range [][]string{{"-addr", addr}, {"-once", "-addr", "http://" + addr + "/"}} {
		want := strings.Join(renderTop(topExample(), topView{Addr: args[len(args)-1], Width: 80, Loc: time.Local}), "\n") + "\n"
		var out, errb bytes.Buffer
		if code := topCmd(args, &out, &errb); code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, errb.String())
		}
		if strings.ContainsRune(out.String(), 0x1b) {
			t.Errorf("%v: escape codes in %q", args, out.String())
		}
		if out.String() != want {
			t.Errorf("%v: got:\n%s\nwant:\n%s", args, out.String(), want)
		}
		if errb.Len() != 0 {
			t.Errorf("%v: stderr %q", args, errb.String())
		}
	}
}

// TestTopOnceUnreachable exits 1 with one line naming the address.
func TestTopOnceUnreachable(t *testing.T) {
	dead := daemontest.FreePort(t, "tcp")
	var out, errb bytes.Buffer
	if code := topCmd([]string{"-once", "-addr", dead}, &out, &errb); code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	want := "veneurd top: cannot reach " + dead + ": connect: connection refused\n"
	if errb.String() != want {
		t.Errorf("stderr %q, want %q", errb.String(), want)
	}
	if out.Len() != 0 {
		t.Errorf("stdout %q", out.String())
	}

	// Not veneurd, or one without /api/status.
	srv := httptest.NewServer(http.NotFoundHandler())
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	errb.Reset()
	if code := topCmd([]string{"-once", "-addr", addr}, &out, &errb); code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	if want := "veneurd top: cannot reach " + addr + ": GET /api/status: 404 Not Found"; !strings.HasPrefix(errb.String(), want) {
		t.Errorf("stderr %q, want it to start with %q", errb.String(), want)
	}

	for _, args := range [][]string{{"-addr", "nocolon"}, {"-refresh", "10ms"}, {"extra"}} {
		errb.Reset()
		if code := topCmd(args, &out, &errb); code != 2 {
			t.Errorf("%v: exit %d, want 2 (%s)", args, code, errb.String())
		}
	}
}

// topScreen reads what top draws on a pseudo-terminal.
type topScreen struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (s *topScreen) Write(b []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Write(b)
}

func (s *topScreen) raw() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

var ansiSeq = regexp.MustCompile(`\x1b\[[0-9;?]*[A-Za-z]`)

// last returns how many whole frames were drawn and the last one as plain
// lines: the text between the last two homings of the cursor.
func (s *topScreen) last() (int, []string) {
	frames := strings.Split(s.raw(), ansiHome)
	if len(frames) < 3 {
		return 0, nil
	}
	f := ansiSeq.ReplaceAllString(frames[len(frames)-2], "")
	return len(frames) - 2, strings.Split(strings.ReplaceAll(f, "\r", ""), "\n")
}

// topRow finds the block table's row of address and its cells.
func topRow(lines []string, address string) []string {
	for _, l := range lines {
		if f := strings.Fields(l); len(f) == 9 && f[0] == address {
			return f
		}
	}
	return nil
}

var topFlushLine = regexp.MustCompile(`^flush \d\d:\d\d:\d\d \(\d+s ago\): (\S+) series, (\S+) points in \S+, \S+ with sinks$`)

// parseHuman reads back what humanRate wrote.
func parseHuman(s string) (float64, bool) {
	mult := 1.0
	if i := strings.IndexAny(s, "kMGTPE"); i > 0 {
		mult = map[byte]float64{'k': 1e3, 'M': 1e6, 'G': 1e9, 'T': 1e12, 'P': 1e15, 'E': 1e18}[s[i]]
		s = s[:i]
	}
	v, err := strconv.ParseFloat(s, 64)
	return v * mult, err == nil
}

// TestTopPseudoTerminal runs veneurd top on a pseudo-terminal against a
// daemon under a known load: the source's row shows the rate sent, the
// sink's the points flushed; q leaves the alternate screen, restores the
// terminal and exits 0.
func TestTopPseudoTerminal(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	dir := t.TempDir()
	udp := daemontest.FreePort(t, "udp")
	admin := daemontest.FreePort(t, "tcp")
	daemontest.Start(t, fmt.Sprintf(`
veneurd {
  hostname     = "top-test"
  interval     = "1s"
  http_address = %q
  self_metrics = false
}
source "dogstatsd" "in" { listen = ["udp://%s"] }
sink "localfile" "out" { path = %q }
`, admin, udp, filepath.Join(dir, "out.jsonl")))

	top := startTop(t, "-addr", admin)

	// 500 distinct counters every 100 ms, in datagrams of up to 1,400
	// bytes, until the screen shows what is expected.
	const perTick, tick = 500, 100 * time.Millisecond
	const rate = perTick * float64(time.Second/tick)
	stop := make(chan struct{})
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		c, err := net.Dial("udp", udp)
		if err != nil {
			t.Error(err)
			return
		}
		defer c.Close()
		ticker := time.NewTicker(tick)
		defer ticker.Stop()
		var dgram []byte
		for n, end := 0, time.Now().Add(30*time.Second); time.Now().Before(end); {
			for range perTick {
				line := fmt.Appendf(nil, "top.load.c%d:1|c\n", n%int(rate))
				if len(dgram)+len(line) > 1400 {
					c.Write(dgram)
					dgram = dgram[:0]
				}
				dgram = append(dgram, line...)
				n++
			}
			c.Write(dgram)
			dgram = dgram[:0]
			select {
			case <-stop:
				return
			case <-ticker.C:
			}
		}
	}()

	within := func(cell string) bool {
		v, ok := parseHuman(cell)
		return ok && v >= rate*0.85 && v <= rate*1.15
	}
	// Rates that climb as the load starts pass through the range: they
	// must stay in it for three frames, three seconds.
	var lines []string
	var frame, inRange int
	ok := daemontest.Until(20*time.Second, func() bool {
		n, l := top.screen.last()
		if n == frame {
			return false
		}
		frame, lines = n, l
		src, sink := topRow(lines, "source.dogstatsd.in"), topRow(lines, "sink.localfile.out")
		if src != nil && sink != nil &&
			src[1] == "source" && src[2] == "running" && within(src[3]) && within(src[4]) && src[5] == "0" &&
			sink[1] == "sink" && sink[2] == "running" && within(sink[3]) && sink[4] == "-" && sink[5] == "0" {
			inRange++
		} else {
			inRange = 0
		}
		return inRange == 3
	})
	close(stop)
	<-sent
	screenText := strings.Join(lines, "\n")
	t.Logf("screen under %v lines/s:\n%s", rate, screenText)
	if !ok {
		t.Fatalf("the source's and the sink's rows do not show %v/s within 15%%", rate)
	}
	if title := strings.Fields(lines[0]); !strings.HasPrefix(lines[0], "veneurd dev on top-test, up ") || title[len(title)-2] != admin {
		t.Errorf("title %q lacks the version, the hostname or the address", lines[0])
	}
	// Each interval of a second held the 5,000 counters of its ticks.
	if m := topFlushLine.FindStringSubmatch(lines[3]); m == nil || !within(m[1]) || !within(m[2]) {
		t.Errorf("flush line %q: not %v series and points within 15%%", lines[3], rate)
	}
	for _, l := range lines {
		if runeLen(l) > 80 {
			t.Errorf("wider than the terminal: %q", l)
		}
	}

	top.quit(t, func() {
		if _, err := top.ptmx.Write([]byte("q")); err != nil {
			t.Fatal(err)
		}
	})
}

// ptyTop is veneurd top running on a pseudo-terminal of 80 columns and 30
// rows.
type ptyTop struct {
	ptmx, tty *os.File
	cmd       *exec.Cmd
	screen    topScreen
	exited    chan struct{}
	waitErr   error
	copied    chan struct{}
}

// startTop runs veneurd top with args on a pseudo-terminal, and returns
// once it has put the terminal in cbreak mode.
func startTop(t *testing.T, args ...string) *ptyTop {
	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ptmx.Close(); tty.Close() })
	if err := pty.Setsize(ptmx, &pty.Winsize{Rows: 30, Cols: 80}); err != nil {
		t.Fatal(err)
	}
	p := &ptyTop{ptmx: ptmx, tty: tty, exited: make(chan struct{}), copied: make(chan struct{})}
	p.cmd = exec.Command(daemontest.Binary(t), append([]string{"top"}, args...)...)
	p.cmd.Stdin, p.cmd.Stdout, p.cmd.Stderr = tty, tty, tty
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(p.copied)
		// Ends with EIO once top and the test have closed the terminal.
		buf := make([]byte, 4096)
		for {
			n, err := ptmx.Read(buf)
			p.screen.Write(buf[:n])
			if err != nil {
				return
			}
		}
	}()
	go func() { p.waitErr = p.cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			p.cmd.Process.Kill()
			<-p.exited
		}
	})
	if !daemontest.Until(5*time.Second, func() bool {
		tio, err := unix.IoctlGetTermios(int(tty.Fd()), unix.TCGETS)
		return err == nil && tio.Lflag&(unix.ICANON|unix.ECHO|unix.ISIG) == 0 &&
			len(p.screen.raw()) >= len(ansiEnterScreen)
	}) {
		t.Fatalf("top did not put the terminal in cbreak mode and draw; screen:\n%q", p.screen.raw())
	}
	if raw := p.screen.raw(); !strings.HasPrefix(raw, ansiEnterScreen) {
		t.Errorf("top did not start on the alternate screen: %q", raw[:min(40, len(raw))])
	}
	return p
}

// quit does what should make top quit, and checks that it exits 0 within
// 3 s, with the terminal as it found it and the alternate screen left.
func (p *ptyTop) quit(t *testing.T, do func()) {
	t.Helper()
	do()
	select {
	case <-p.exited:
		if p.waitErr != nil {
			t.Fatalf("top exited: %v\n%q", p.waitErr, p.screen.raw())
		}
	case <-time.After(3 * time.Second):
		t.Fatal("top did not exit within 3s")
	}
	tio, err := unix.IoctlGetTermios(int(p.tty.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	if want := uint32(unix.ICANON | unix.ECHO | unix.ISIG); tio.Lflag&want != want {
		t.Errorf("terminal left with lflag %#x: not canonical with echo and signals", tio.Lflag)
	}
	p.tty.Close()
	<-p.copied
	if raw := p.screen.raw(); !strings.HasSuffix(raw, ansiLeaveScreen) {
		t.Errorf("top did not leave the alternate screen last: ...%q", raw[max(0, len(raw)-80):])
	}
}

// TestTopPseudoTerminalQuits runs top on a pseudo-terminal against an
// address where nothing listens: the live screen says so and retries, and
// Ctrl-C or SIGTERM restore the terminal and exit 0.
func TestTopPseudoTerminalQuits(t *testing.T) {
	if testing.Short() {
		t.Skip("runs veneurd")
	}
	dead := daemontest.FreePort(t, "tcp")
	for _, how := range []string{"ctrl-c", "sigterm"} {
		t.Run(how, func(t *testing.T) {
			top := startTop(t, "-addr", dead)
			want := "cannot reach " + dead + ": connect: connection refused (retrying)"
			var lines []string
			if !daemontest.Until(5*time.Second, func() bool {
				_, lines = top.screen.last()
				return len(lines) > 1 && lines[1] == want
			}) {
				t.Fatalf("the screen does not say %q:\n%s", want, strings.Join(lines, "\n"))
			}
			top.quit(t, func() {
				if how == "sigterm" {
					top.cmd.Process.Signal(syscall.SIGTERM)
				} else if _, err := top.ptmx.Write([]byte{0x03}); err != nil {
					t.Fatal(err)
				}
			})
		})
	}
}
