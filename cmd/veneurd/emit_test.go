package main

import (
	"bufio"
	"bytes"
	"net"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/veneurd/veneurd/plugins/sources/dogstatsd"
)

// emitWait bounds every wait for a line to arrive.
const emitWait = 10 * time.Second

func TestEmitFormatMetric(t *testing.T) {
	f := func(m emitMetric, want string) {
		t.Helper()
		got, err := formatMetric(m)
		if err != nil {
			t.Fatalf("formatMetric(%+v): %v", m, err)
		}
		if got != want {
			t.Fatalf("formatMetric(%+v)\n got %q\nwant %q", m, got, want)
		}
		var p dogstatsd.Parser
		if _, err := p.ParseMetric([]byte(got)); err != nil {
			t.Fatalf("the dogstatsd source rejects %q: %v", got, err)
		}
	}
	f(emitMetric{Name: "a.b", Type: "c", Value: 1}, "a.b:1|c")
	f(emitMetric{Name: "a.b", Type: "c", Value: 2.5, Rate: 0.5}, "a.b:2.5|c|@0.5")
	f(emitMetric{Name: "a.b", Type: "c", Value: -3, Rate: 1}, "a.b:-3|c")
	f(emitMetric{Name: "g", Type: "g", Value: 0.125, Tags: []string{"a:b", "c:d"}}, "g:0.125|g|#a:b,c:d")
	f(emitMetric{Name: "g", Type: "g", Value: 1e300}, "g:1e+300|g")
	f(emitMetric{Name: "g", Type: "g", Value: 123456789}, "g:123456789|g")
	f(emitMetric{Name: "t", Type: "ms", Value: 12}, "t:12|ms")
	f(emitMetric{Name: "t", Type: "ms", Value: durationMillis(1500 * time.Microsecond), Rate: 0.1, Tags: []string{"x"}}, "t:1.5|ms|@0.1|#x")
	f(emitMetric{Name: "s", Type: "s", Member: "alice"}, "s:alice|s")
	f(emitMetric{Name: "s", Type: "s", Member: "bob smith", Tags: []string{"team:a"}}, "s:bob smith|s|#team:a")
}

func TestEmitFormatMetricErrors(t *testing.T) {
	f := func(m emitMetric, wantErr string) {
		t.Helper()
		got, err := formatMetric(m)
		if err == nil || !strings.Contains(err.Error(), wantErr) {
			t.Fatalf("formatMetric(%+v) = %q, %v; want an error containing %q", m, got, err, wantErr)
		}
	}
	f(emitMetric{Type: "c", Value: 1}, "empty metric name")
	f(emitMetric{Name: "a:b", Type: "c", Value: 1}, `bad metric name "a:b"`)
	f(emitMetric{Name: "a|b", Type: "c", Value: 1}, `bad metric name "a|b"`)
	f(emitMetric{Name: "a\nb", Type: "c", Value: 1}, "one line")
	f(emitMetric{Name: "_e{1,1}", Type: "c", Value: 1}, "read as an event")
	f(emitMetric{Name: "a", Type: "x", Value: 1}, "bad metric type")
	f(emitMetric{Name: "a", Type: "ms", Value: -1}, "negative")
	f(emitMetric{Name: "a", Type: "s", Member: ""}, "empty set member")
	f(emitMetric{Name: "a", Type: "s", Member: "x:y"}, "bad set member")
	f(emitMetric{Name: "a", Type: "c", Value: 1, Rate: 1.5}, "bad sample rate")
	f(emitMetric{Name: "a", Type: "c", Value: 1, Rate: -0.5}, "bad sample rate")
	f(emitMetric{Name: "a", Type: "c", Value: 1, Tags: []string{"a|b"}}, "bad tag")
}

func TestEmitFormatEvent(t *testing.T) {
	f := func(e emitEvent, want string) {
		t.Helper()
		got, err := formatEvent(e)
		if err != nil {
			t.Fatalf("formatEvent(%+v): %v", e, err)
		}
		if got != want {
			t.Fatalf("formatEvent(%+v)\n got %q\nwant %q", e, got, want)
		}
		var p dogstatsd.Parser
		parsed, err := p.ParseEvent([]byte(got))
		if err != nil {
			t.Fatalf("the dogstatsd source rejects %q: %v", got, err)
		}
		if parsed.Title != e.Title || parsed.Text != strings.ReplaceAll(e.Text, "\r\n", "\n") {
			t.Fatalf("%q parses back as title %q, text %q", got, parsed.Title, parsed.Text)
		}
	}
	f(emitEvent{Title: "deploy"}, "_e{6,0}:deploy|")
	f(emitEvent{Title: "deploy", Text: "v1.2 out"}, "_e{6,8}:deploy|v1.2 out")
	f(emitEvent{Title: "a|b", Text: "x|y"}, "_e{3,3}:a|b|x|y")
	f(emitEvent{Title: "oops", Text: "line one\nline two"}, `_e{4,18}:oops|line one\nline two`)
	f(emitEvent{Title: "oops", Text: "a\r\nb"}, `_e{4,4}:oops|a\nb`)
	f(emitEvent{Title: "héllo", Text: "wörld"}, "_e{6,6}:héllo|wörld")
	f(emitEvent{
		Title: "An exception occurred", Text: "Cannot parse CSV file",
		Timestamp: "1501002564", Hostname: "tester.host", AggregationKey: "testEvents",
		Priority: "low", SourceType: "tester", AlertType: "warning",
		Tags: []string{"err_type:bad", "env:qa"},
	}, "_e{21,21}:An exception occurred|Cannot parse CSV file|d:1501002564|h:tester.host|k:testEvents|p:low|s:tester|t:warning|#err_type:bad,env:qa")
}

func TestEmitFormatEventErrors(t *testing.T) {
	f := func(e emitEvent, wantErr string) {
		t.Helper()
		got, err := formatEvent(e)
		if err == nil || !strings.Contains(err.Error(), wantErr) {
			t.Fatalf("formatEvent(%+v) = %q, %v; want an error containing %q", e, got, err, wantErr)
		}
	}
	f(emitEvent{}, "needs a title")
	f(emitEvent{Title: "a\nb"}, "bad event title")
	f(emitEvent{Title: "a", Timestamp: "yesterday"}, "bad event time")
	f(emitEvent{Title: "a", Timestamp: "-5"}, "bad event time")
	f(emitEvent{Title: "a", Priority: "urgent"}, "bad event priority")
	f(emitEvent{Title: "a", AlertType: "fatal"}, "bad event alert type")
	f(emitEvent{Title: "a", Hostname: "h|x"}, "bad event hostname")
	f(emitEvent{Title: "a", Tags: []string{"a,b"}}, "bad tag")
}

func TestEmitFormatServiceCheck(t *testing.T) {
	f := func(sc emitServiceCheck, want string) {
		t.Helper()
		got, err := formatServiceCheck(sc)
		if err != nil {
			t.Fatalf("formatServiceCheck(%+v): %v", sc, err)
		}
		if got != want {
			t.Fatalf("formatServiceCheck(%+v)\n got %q\nwant %q", sc, got, want)
		}
		var p dogstatsd.Parser
		parsed, err := p.ParseServiceCheck([]byte(got))
		if err != nil {
			t.Fatalf("the dogstatsd source rejects %q: %v", got, err)
		}
		if parsed.Name != sc.Name || parsed.Status != sc.Status || parsed.Message != sc.Message {
			t.Fatalf("%q parses back as %+v", got, parsed)
		}
	}
	f(emitServiceCheck{Name: "db.up", Status: 0}, "_sc|db.up|0")
	f(emitServiceCheck{Name: "db.up", Status: 2, Message: "down"}, "_sc|db.up|2|m:down")
	f(emitServiceCheck{Name: "db.up", Status: 1, Message: "slow\nvery: m:3 | x"}, `_sc|db.up|1|m:slow\nvery: m\:3 | x`)
	f(emitServiceCheck{
		Name: "db.up", Status: 3, Timestamp: "1700000000", Hostname: "db1",
		Tags: []string{"env:prod", "role:primary"}, Message: "no answer",
	}, "_sc|db.up|3|d:1700000000|h:db1|#env:prod,role:primary|m:no answer")
}

func TestEmitFormatServiceCheckErrors(t *testing.T) {
	f := func(sc emitServiceCheck, wantErr string) {
		t.Helper()
		got, err := formatServiceCheck(sc)
		if err == nil || !strings.Contains(err.Error(), wantErr) {
			t.Fatalf("formatServiceCheck(%+v) = %q, %v; want an error containing %q", sc, got, err, wantErr)
		}
	}
	f(emitServiceCheck{Status: 0}, "empty service check name")
	f(emitServiceCheck{Name: "a|b"}, "bad service check name")
	f(emitServiceCheck{Name: "a", Status: 4}, "bad service check status")
	f(emitServiceCheck{Name: "a", Status: -1}, "bad service check status")
	f(emitServiceCheck{Name: "a", Timestamp: "1.5"}, "bad service check time")
	f(emitServiceCheck{Name: "a", Hostname: "h\n"}, "bad service check hostname")
}

func TestEmitParseCheckStatus(t *testing.T) {
	f := func(s string, want int) {
		t.Helper()
		got, err := parseCheckStatus(s)
		if err != nil || got != want {
			t.Fatalf("parseCheckStatus(%q) = %d, %v; want %d", s, got, err, want)
		}
	}
	f("0", 0)
	f("ok", 0)
	f("OK", 0)
	f("1", 1)
	f("warning", 1)
	f("2", 2)
	f("critical", 2)
	f("3", 3)
	f("unknown", 3)
	for _, bad := range []string{"", "4", "-1", "fine", "01"} {
		if _, err := parseCheckStatus(bad); err == nil {
			t.Errorf("parseCheckStatus(%q) accepted", bad)
		}
	}
}

func TestEmitParseHostport(t *testing.T) {
	f := func(s, network, addr string) {
		t.Helper()
		got, err := parseHostport(s)
		if err != nil || got.Network != network || got.Addr() != addr {
			t.Fatalf("parseHostport(%q) = %+v, %v; want %s %s", s, got, err, network, addr)
		}
	}
	f("127.0.0.1:8126", "udp", "127.0.0.1:8126")
	f("localhost:8126", "udp", "localhost:8126")
	f("[::1]:8126", "udp", "[::1]:8126")
	f("udp://127.0.0.1:8126", "udp", "127.0.0.1:8126")
	f("tcp://127.0.0.1:8126", "tcp", "127.0.0.1:8126")
	f("unix:///run/dsd.sock", "unix", "/run/dsd.sock")
	f("unixgram:///run/dsd.sock", "unixgram", "/run/dsd.sock")
	for bad, want := range map[string]string{
		"":                      `bad -hostport "", read as udp://: "udp://" has no host or port: write it as udp://127.0.0.1:8126`,
		"127.0.0.1":             `bad -hostport "127.0.0.1", read as udp://127.0.0.1: "udp://127.0.0.1" has no port: write it as udp://127.0.0.1:8126`,
		"http://127.0.0.1:80":   `bad -hostport: "http://127.0.0.1:80" has an unknown scheme "http": use udp, udp4, udp6, tcp, tcp4, tcp6, unix, unixgram`,
		"tcp://":                `bad -hostport: "tcp://" has no host or port: write it as tcp://127.0.0.1:8126`,
		"unix://":               `bad -hostport: "unix://" has no socket path: write it as unix:///run/veneurd/dsd.sock`,
		"udp://host":            `bad -hostport: "udp://host" has no port: write it as udp://host:8126`,
		"udp://127.0.0.1:99999": `bad -hostport: "udp://127.0.0.1:99999": the port 99999 is out of range: a port is 1 to 65535`,
	} {
		if _, err := parseHostport(bad); err == nil || err.Error() != want {
			t.Errorf("parseHostport(%q): %v\nwant %s", bad, err, want)
		}
	}
}

func TestEmitSplitTags(t *testing.T) {
	f := func(s string, want ...string) {
		t.Helper()
		got := splitTags(s)
		if strings.Join(got, "|") != strings.Join(want, "|") || len(got) != len(want) {
			t.Fatalf("splitTags(%q) = %q, want %q", s, got, want)
		}
	}
	f("")
	f("a:b", "a:b")
	f("a:b,c:d", "a:b", "c:d")
	f(" a:b , ,c ", "a:b", "c")
}

// listenUDP starts a UDP listener and returns its -hostport value and a
// function returning the next datagram.
func listenUDP(t *testing.T) (string, func() string) {
	t.Helper()
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn.LocalAddr().String(), func() string { return readDatagram(t, conn) }
}

// listenUnixgram starts a unix datagram listener under a temporary
// directory.
func listenUnixgram(t *testing.T) (string, func() string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "dsd.sock")
	conn, err := net.ListenPacket("unixgram", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return "unixgram://" + path, func() string { return readDatagram(t, conn) }
}

func readDatagram(t *testing.T, conn net.PacketConn) string {
	t.Helper()
	if err := conn.SetReadDeadline(time.Now().Add(emitWait)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 65536)
	n, _, err := conn.ReadFrom(buf)
	if err != nil {
		t.Fatalf("no datagram arrived: %v", err)
	}
	return string(buf[:n])
}

// listenStream starts a stream listener (tcp or unix) and returns a
// function returning the first line of the first connection, with the
// connection's remaining bytes, which must be none.
func listenStream(t *testing.T, network, addr string) (net.Listener, func() (line, rest string)) {
	t.Helper()
	ln, err := net.Listen(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	type result struct {
		line, rest string
		err        error
	}
	got := make(chan result, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- result{err: err}
			return
		}
		defer c.Close()
		c.SetReadDeadline(time.Now().Add(emitWait))
		r := bufio.NewReader(c)
		line, err := r.ReadString('\n')
		if err != nil {
			got <- result{err: err}
			return
		}
		var rest bytes.Buffer
		_, err = rest.ReadFrom(r) // until the sender closes
		got <- result{line: line, rest: rest.String(), err: err}
	}()
	return ln, func() (string, string) {
		t.Helper()
		select {
		case r := <-got:
			if r.err != nil {
				t.Fatalf("reading the stream: %v", r.err)
			}
			return r.line, r.rest
		case <-time.After(emitWait):
			t.Fatal("no line arrived")
		}
		return "", ""
	}
}

// runEmit runs `veneurd emit args...` and fails the test unless it exits
// with wantCode.
func runEmit(t *testing.T, wantCode int, args ...string) (stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := dispatch(append([]string{"emit"}, args...), &out, &errOut)
	if code != wantCode {
		t.Fatalf("veneurd emit %q: exit %d, want %d\nstdout: %s\nstderr: %s", args, code, wantCode, out.String(), errOut.String())
	}
	return out.String(), errOut.String()
}

func TestEmitUDPRoundTrip(t *testing.T) {
	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"counter", []string{"-name", "jobs.done", "-count", "3", "-tag", "a:b,c:d"}, "jobs.done:3|c|#a:b,c:d"},
		{"counter float rate", []string{"-name", "jobs.done", "-count", "1.5", "-rate", "0.5"}, "jobs.done:1.5|c|@0.5"},
		{"gauge", []string{"-name", "queue.depth", "-gauge", "-2.25", "-tag", "q:mail"}, "queue.depth:-2.25|g|#q:mail"},
		{"timing", []string{"-name", "req.time", "-timing", "12ms"}, "req.time:12|ms"},
		{"timing fraction", []string{"-name", "req.time", "-timing", "1.5s", "-tag", "path:/"}, "req.time:1500|ms|#path:/"},
		{"set", []string{"-name", "users", "-set", "alice"}, "users:alice|s"},
		{"event", []string{
			"-e_title", "Deploy", "-e_text", "v2 is out\nall good", "-e_time", "1700000000",
			"-e_hostname", "web1", "-e_aggr_key", "deploys", "-e_priority", "low",
			"-e_source_type", "ci", "-e_alert_type", "success", "-e_event_tags", "env:prod,team:a",
		}, `_e{6,19}:Deploy|v2 is out\nall good|d:1700000000|h:web1|k:deploys|p:low|s:ci|t:success|#env:prod,team:a`},
		{"event minimal", []string{"-e_title", "hello"}, "_e{5,0}:hello|"},
		{"event with -tag", []string{"-e_title", "hi", "-e_text", "x", "-tag", "svc:a", "-e_event_tags", "env:b"}, "_e{2,1}:hi|x|#svc:a,env:b"},
		{"service check", []string{
			"-sc_name", "db.up", "-sc_status", "critical", "-sc_time", "1700000001",
			"-sc_hostname", "db1", "-sc_tags", "env:prod", "-sc_msg", "no answer\nretrying",
		}, `_sc|db.up|2|d:1700000001|h:db1|#env:prod|m:no answer\nretrying`},
		{"service check numeric", []string{"-sc_name", "db.up", "-sc_status", "0"}, "_sc|db.up|0"},
		{"mode flag", []string{"-mode", "metric", "-name", "x", "-gauge", "1"}, "x:1|g"},
	} {
		t.Run(c.name, func(t *testing.T) {
			hostport, read := listenUDP(t)
			runEmit(t, 0, append([]string{"-hostport", hostport}, c.args...)...)
			if got := read(); got != c.want {
				t.Fatalf("got  %q\nwant %q", got, c.want)
			}
		})
	}
}

func TestEmitUDPScheme(t *testing.T) {
	hostport, read := listenUDP(t)
	runEmit(t, 0, "-hostport", "udp://"+hostport, "-name", "a", "-count", "1")
	if got := read(); got != "a:1|c" {
		t.Fatalf("got %q", got)
	}
}

func TestEmitTCP(t *testing.T) {
	ln, read := listenStream(t, "tcp", "127.0.0.1:0")
	runEmit(t, 0, "-hostport", "tcp://"+ln.Addr().String(), "-name", "queue.depth", "-gauge", "7", "-tag", "q:a")
	line, rest := read()
	if line != "queue.depth:7|g|#q:a\n" || rest != "" {
		t.Fatalf("got %q then %q", line, rest)
	}
}

func TestEmitUnixStream(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dsd.sock")
	_, read := listenStream(t, "unix", path)
	runEmit(t, 0, "-hostport", "unix://"+path, "-sc_name", "db.up", "-sc_status", "ok", "-sc_msg", "fine")
	line, rest := read()
	if line != "_sc|db.up|0|m:fine\n" || rest != "" {
		t.Fatalf("got %q then %q", line, rest)
	}
}

func TestEmitUnixgram(t *testing.T) {
	hostport, read := listenUnixgram(t)
	runEmit(t, 0, "-hostport", hostport, "-name", "users", "-set", "bob", "-tag", "team:x")
	if got := read(); got != "users:bob|s|#team:x" {
		t.Fatalf("got %q", got)
	}
}

func TestEmitDebug(t *testing.T) {
	hostport, read := listenUDP(t)
	_, stderr := runEmit(t, 0, "-hostport", hostport, "-debug", "-name", "a", "-count", "2")
	if got := read(); got != "a:2|c" {
		t.Fatalf("got %q", got)
	}
	if !strings.Contains(stderr, "udp "+hostport+" <- a:2|c") {
		t.Fatalf("-debug did not print the line:\n%s", stderr)
	}
}

var timerLine = regexp.MustCompile(`^build\.time:([0-9.]+)\|ms\|#step:test$`)

// timerValue checks a -command timer line and returns its milliseconds.
func timerValue(t *testing.T, line string) float64 {
	t.Helper()
	m := timerLine.FindStringSubmatch(line)
	if m == nil {
		t.Fatalf("not a timer line: %q", line)
	}
	ms, err := strconv.ParseFloat(m[1], 64)
	if err != nil || ms < 0 {
		t.Fatalf("bad timing in %q", line)
	}
	return ms
}

func TestEmitCommand(t *testing.T) {
	if _, err := exec.LookPath("sh"); err != nil {
		t.Skip("no sh")
	}
	t.Run("exit code", func(t *testing.T) {
		hostport, read := listenUDP(t)
		stdout, stderr := runEmit(t, 3, "-hostport", hostport, "-name", "build.time", "-tag", "step:test",
			"-command", "--", "sh", "-c", "echo out; echo err >&2; exit 3")
		timerValue(t, read())
		if stdout != "out\n" || stderr != "err\n" {
			t.Fatalf("output not passed through: stdout %q, stderr %q", stdout, stderr)
		}
	})
	t.Run("true", func(t *testing.T) {
		if _, err := exec.LookPath("true"); err != nil {
			t.Skip("no true")
		}
		hostport, read := listenUDP(t)
		runEmit(t, 0, "-hostport", hostport, "-name", "build.time", "-tag", "step:test", "-command", "true")
		timerValue(t, read())
	})
	t.Run("duration", func(t *testing.T) {
		hostport, read := listenUDP(t)
		runEmit(t, 0, "-hostport", hostport, "-name", "build.time", "-tag", "step:test", "-command", "sh", "-c", "sleep 0.2")
		if ms := timerValue(t, read()); ms < 200 {
			t.Fatalf("a 200ms command timed at %vms", ms)
		}
	})
	t.Run("not found", func(t *testing.T) {
		_, stderr := runEmit(t, 127, "-name", "build.time", "-command", "--", "veneurd-emit-test-no-such-command")
		if !strings.Contains(stderr, "cannot run") {
			t.Fatalf("stderr: %s", stderr)
		}
	})
}

func TestEmitErrors(t *testing.T) {
	for _, c := range []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"nothing", nil, "nothing to send"},
		{"missing name", []string{"-count", "1"}, "missing -name"},
		{"missing value", []string{"-name", "a"}, "no value"},
		{"count and gauge", []string{"-name", "a", "-count", "1", "-gauge", "2"}, "-count and -gauge cannot be used together"},
		{"timing and command", []string{"-name", "a", "-timing", "1s", "-command", "true"}, "-timing and -command cannot be used together"},
		{"bad count", []string{"-name", "a", "-count", "lots"}, `invalid value "lots" for flag -count`},
		{"bad rate", []string{"-name", "a", "-count", "1", "-rate", "2"}, "bad -rate"},
		{"negative timing", []string{"-name", "a", "-timing", "-1s"}, "negative"},
		{"bad name", []string{"-name", "a:b", "-count", "1"}, "bad metric name"},
		{"metric and event", []string{"-name", "a", "-count", "1", "-e_title", "x"}, "-name and -e_title cannot be used together"},
		{"event and check", []string{"-e_title", "x", "-sc_name", "y"}, "-e_title and -sc_name cannot be used together"},
		{"event without title", []string{"-e_text", "x"}, "missing -e_title"},
		{"bad priority", []string{"-e_title", "x", "-e_priority", "high"}, "bad event priority"},
		{"bad alert type", []string{"-e_title", "x", "-e_alert_type", "fatal"}, "bad event alert type"},
		{"bad event time", []string{"-e_title", "x", "-e_time", "now"}, "bad event time"},
		{"check without status", []string{"-sc_name", "db"}, "missing -sc_status"},
		{"check without name", []string{"-sc_status", "0"}, "missing -sc_name"},
		{"bad status", []string{"-sc_name", "db", "-sc_status", "5"}, "bad -sc_status"},
		{"bad status word", []string{"-sc_name", "db", "-sc_status", "fine"}, "bad -sc_status"},
		{"bad mode", []string{"-mode", "span", "-name", "a", "-count", "1"}, "bad -mode"},
		{"mode mismatch", []string{"-mode", "event", "-name", "a", "-count", "1"}, "-mode event does not go with -name"},
		{"stray argument", []string{"-name", "a", "-count", "1", "extra"}, `unexpected argument "extra"`},
		{"command without command", []string{"-name", "a", "-command"}, "-command needs a command"},
		{"bad hostport", []string{"-hostport", "http://x:1", "-name", "a", "-count", "1"}, "bad -hostport"},
		{"unknown flag", []string{"-ssf", "-name", "a", "-count", "1"}, "flag provided but not defined: -ssf"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, stderr := runEmit(t, 2, c.args...)
			if !strings.Contains(stderr, c.wantErr) {
				t.Fatalf("stderr lacks %q:\n%s", c.wantErr, stderr)
			}
		})
	}
}

func TestEmitSendFailure(t *testing.T) {
	// A unix socket path nobody listens on: the dial fails at once.
	path := filepath.Join(t.TempDir(), "nobody.sock")
	_, stderr := runEmit(t, 1, "-hostport", "unix://"+path, "-name", "a", "-count", "1")
	if !strings.Contains(stderr, "cannot send") {
		t.Fatalf("stderr: %s", stderr)
	}
}

func TestEmitHelp(t *testing.T) {
	_, stderr := runEmit(t, 0, "-h")
	if !strings.Contains(stderr, "Usage: veneurd emit") {
		t.Fatalf("no usage line:\n%s", stderr)
	}
	for _, f := range []string{"hostport", "mode", "debug", "command", "tag", "name", "count", "gauge", "timing", "set", "rate"} {
		if !strings.Contains(stderr, "\n  -"+f+" ") && !strings.Contains(stderr, "\n  -"+f+"\n") {
			t.Errorf("help lacks -%s", f)
		}
	}
	for _, f := range append(append([]string{}, emitEventFlags...), emitCheckFlags...) {
		if !strings.Contains(stderr, "\n  -"+f+" ") && !strings.Contains(stderr, "\n  -"+f+"\n") {
			t.Errorf("help lacks -%s", f)
		}
	}
	var out bytes.Buffer
	if dispatch([]string{"-h"}, &out, &out); !strings.Contains(out.String(), "  emit ") {
		t.Errorf("veneurd -h does not list emit:\n%s", out.String())
	}
}
