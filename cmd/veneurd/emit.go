package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/veneurd/veneurd/sdk"
)

// emitTimeout bounds dialing and writing the one line emit sends.
const emitTimeout = 5 * time.Second

// emitDefaultHostport is where emit sends when -hostport is not given: the
// default pipeline's DogStatsD listener.
const emitDefaultHostport = "127.0.0.1:8126"

// The flags of each kind of line, in the order they are reported.
var (
	emitMetricFlags = []string{"name", "count", "gauge", "timing", "set", "command", "rate"}
	emitMetricValue = []string{"count", "gauge", "timing", "set", "command"}
	emitEventFlags  = []string{"e_title", "e_text", "e_time", "e_hostname", "e_aggr_key", "e_priority", "e_source_type", "e_alert_type", "e_event_tags"}
	emitCheckFlags  = []string{"sc_name", "sc_status", "sc_time", "sc_hostname", "sc_tags", "sc_msg"}
)

// emitCmd sends one DogStatsD metric, event or service check, with the flags
// of Veneur's veneur-emit.
func emitCmd(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("emit", "[flags] [-command [--] COMMAND [ARG...]]",
		"Sends one DogStatsD metric, event or service check, like Veneur's veneur-emit.\n"+
			"\n"+
			"  metric:        -name NAME and one of -count, -gauge, -timing or -set\n"+
			"  timed command: -name NAME -command -- COMMAND [ARG...]\n"+
			"                 runs COMMAND, sends its duration as a timer and exits with its\n"+
			"                 exit code; SIGTERM and SIGHUP are passed on to it\n"+
			"  event:         -e_title TITLE [-e_text TEXT] [-e_* ...]\n"+
			"  service check: -sc_name NAME -sc_status STATUS [-sc_* ...]\n"+
			"\n"+
			"-hostport is host:port (UDP), udp://host:port, tcp://host:port, unix:///path\n"+
			"(stream socket) or unixgram:///path (datagram socket).\n"+
			"Exits 2 on a usage error, 1 when the line cannot be sent.", stderr)

	hostport := fs.String("hostport", emitDefaultHostport, "destination: host:port (UDP), udp://, tcp://, unix:// or unixgram:// address")
	mode := fs.String("mode", "", "kind to send: metric, event or sc (optional: the flags given tell it)")
	debug := fs.Bool("debug", false, "print the line sent to standard error")
	command := fs.Bool("command", false, "run the remaining arguments as a command and send its duration as a timer named -name")
	tag := fs.String("tag", "", "tags, comma separated, added to whatever is sent, e.g. service:api,env:prod")

	name := fs.String("name", "", "metric name, e.g. daemontools.service.starts")
	var count, gauge, rate float64
	fs.Func("count", "send a counter incremented by `N`, an integer or a float", floatFlag(&count))
	fs.Func("gauge", "send a gauge set to `VALUE`", floatFlag(&gauge))
	timing := fs.Duration("timing", 0, "send a timer with this Go duration (e.g. 12ms, 1.5s), in milliseconds")
	set := fs.String("set", "", "send a set with this member")
	fs.Func("rate", "sample `RATE` in (0, 1] the value was sampled at, sent as |@RATE", floatFlag(&rate))

	var ev emitEvent
	fs.StringVar(&ev.Title, "e_title", "", "event title (required for an event)")
	fs.StringVar(&ev.Text, "e_text", "", "event text; newlines are sent as \\n")
	fs.StringVar(&ev.Timestamp, "e_time", "", "event time in Unix seconds (default: when received)")
	fs.StringVar(&ev.Hostname, "e_hostname", "", "event hostname")
	fs.StringVar(&ev.AggregationKey, "e_aggr_key", "", "event aggregation key")
	fs.StringVar(&ev.Priority, "e_priority", "", "event priority: normal or low (default normal)")
	fs.StringVar(&ev.SourceType, "e_source_type", "", "event source type")
	fs.StringVar(&ev.AlertType, "e_alert_type", "", "event alert type: error, warning, info or success (default info)")
	eventTags := fs.String("e_event_tags", "", "event tags, comma separated")

	var sc emitServiceCheck
	fs.StringVar(&sc.Name, "sc_name", "", "service check name (required for a service check)")
	scStatus := fs.String("sc_status", "", "service check status: 0 or ok, 1 or warning, 2 or critical, 3 or unknown (required)")
	fs.StringVar(&sc.Timestamp, "sc_time", "", "service check time in Unix seconds (default: when received)")
	fs.StringVar(&sc.Hostname, "sc_hostname", "", "service check hostname")
	scTags := fs.String("sc_tags", "", "service check tags, comma separated")
	fs.StringVar(&sc.Message, "sc_msg", "", "service check message")

	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	usageErr := usageError(stderr, "emit")

	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	if !*command {
		delete(given, "command") // -command=false
	}
	among := func(names []string) []string {
		var out []string
		for _, n := range names {
			if given[n] {
				out = append(out, n)
			}
		}
		return out
	}

	// Tell the kind from the flags given.
	kinds := map[string][]string{
		"metric": among(emitMetricFlags),
		"event":  among(emitEventFlags),
		"sc":     among(emitCheckFlags),
	}
	var kind string
	var first []string
	for _, k := range []string{"metric", "event", "sc"} {
		if len(kinds[k]) > 0 {
			if kind != "" {
				return usageErr("-%s and -%s cannot be used together: send one metric, event or service check per call", first[0], kinds[k][0])
			}
			kind, first = k, kinds[k]
		}
	}
	switch *mode {
	case "", "metric", "event", "sc":
	default:
		return usageErr("bad -mode %q: use metric, event or sc", *mode)
	}
	if *mode != "" {
		if kind != "" && kind != *mode {
			return usageErr("-mode %s does not go with -%s", *mode, first[0])
		}
		kind = *mode
	}
	if kind == "" {
		return usageErr("nothing to send: give -name and one of -count, -gauge, -timing, -set or -command; or -e_title; or -sc_name and -sc_status")
	}
	if fs.NArg() > 0 && !*command {
		return usageErr("unexpected argument %q (use -command to time a command)", fs.Arg(0))
	}

	switch kind {
	case "event":
		if ev.Title == "" {
			return usageErr("missing -e_title: an event needs a title")
		}
		ev.Tags = append(splitTags(*tag), splitTags(*eventTags)...)
		line, err := formatEvent(ev)
		if err != nil {
			return usageErr("%v", err)
		}
		return emitSend(*hostport, line, *debug, stderr)

	case "sc":
		if sc.Name == "" {
			return usageErr("missing -sc_name: a service check needs a name")
		}
		if !given["sc_status"] {
			return usageErr("missing -sc_status: use 0, 1, 2, 3 or ok, warning, critical, unknown")
		}
		status, err := parseCheckStatus(*scStatus)
		if err != nil {
			return usageErr("%v", err)
		}
		sc.Status = status
		sc.Tags = append(splitTags(*tag), splitTags(*scTags)...)
		line, err := formatServiceCheck(sc)
		if err != nil {
			return usageErr("%v", err)
		}
		return emitSend(*hostport, line, *debug, stderr)
	}

	// A metric.
	values := among(emitMetricValue)
	if len(values) > 1 {
		return usageErr("-%s and -%s cannot be used together: give one of -count, -gauge, -timing, -set or -command", values[0], values[1])
	}
	if *name == "" {
		return usageErr("missing -name: a metric needs a name")
	}
	if len(values) == 0 {
		return usageErr("no value for %q: give one of -count, -gauge, -timing, -set or -command", *name)
	}
	if given["rate"] && !(rate > 0 && rate <= 1) {
		return usageErr("bad -rate %v: it must be in (0, 1]", rate)
	}
	m := emitMetric{Name: *name, Rate: rate, Tags: splitTags(*tag)}
	switch values[0] {
	case "count":
		m.Type, m.Value = "c", count
	case "gauge":
		m.Type, m.Value = "g", gauge
	case "timing":
		if *timing < 0 {
			return usageErr("bad -timing %v: it must not be negative", *timing)
		}
		m.Type, m.Value = "ms", durationMillis(*timing)
	case "set":
		m.Type, m.Member = "s", *set
	case "command":
		m.Type = "ms"
	}
	// Check the line before running anything.
	line, err := formatMetric(m)
	if err != nil {
		return usageErr("%v", err)
	}
	if _, err := parseHostport(*hostport); err != nil {
		return usageErr("%v", err)
	}
	if !*command {
		return emitSend(*hostport, line, *debug, stderr)
	}

	if fs.NArg() == 0 {
		return usageErr("-command needs a command to run, as in: veneurd emit -name build.time -command -- make")
	}
	code, took, err := timeCommand(fs.Args(), stdout, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "veneurd emit: %v\n", err)
		return code
	}
	m.Value = durationMillis(took)
	if line, err = formatMetric(m); err == nil {
		// The command's exit code is what scripts look at: a metric that
		// could not be sent is reported but does not change it.
		emitSend(*hostport, line, *debug, stderr)
	} else {
		fmt.Fprintf(stderr, "veneurd emit: %v\n", err)
	}
	return code
}

// floatFlag parses a finite float into *p.
func floatFlag(p *float64) func(string) error {
	return func(s string) error {
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return errors.New("not a number")
		}
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return errors.New("not a finite number")
		}
		*p = f
		return nil
	}
}

// durationMillis converts d to milliseconds, the unit of |ms timers.
func durationMillis(d time.Duration) float64 {
	return float64(d) / float64(time.Millisecond)
}

// emitSend sends line to hostport and returns the exit code: 0, or 1 with a
// message on stderr when it cannot be sent, 2 for a bad address.
func emitSend(hostport, line string, debug bool, stderr io.Writer) int {
	dst, err := parseHostport(hostport)
	if err != nil {
		fmt.Fprintf(stderr, "veneurd emit: %v\n", err)
		return 2
	}
	if debug {
		fmt.Fprintf(stderr, "veneurd emit: %s %s <- %s\n", dst.Network, dst.Addr(), line)
	}
	if err := sendLine(dst, line, emitTimeout); err != nil {
		fmt.Fprintf(stderr, "veneurd emit: cannot send to %s: %v\n", hostport, err)
		return 1
	}
	return 0
}

// stream reports whether lines to dst need a '\n' terminator.
func stream(dst sdk.Address) bool {
	return !dst.IsDatagram()
}

// parseHostport parses -hostport: a bare host:port is UDP; otherwise an
// address as a source's listen attribute writes it (sdk.ParseAddress).
func parseHostport(s string) (sdk.Address, error) {
	if !strings.Contains(s, "://") {
		a, err := sdk.ParseAddress("udp://" + s)
		if err != nil {
			return sdk.Address{}, fmt.Errorf("bad -hostport %q, read as udp://%s: %v", s, s, err)
		}
		return a, nil
	}
	a, err := sdk.ParseAddress(s)
	if err != nil {
		return sdk.Address{}, fmt.Errorf("bad -hostport: %v", err)
	}
	return a, nil
}

// sendLine sends one line: as one datagram, or '\n'-terminated on a stream
// connection that it then closes.
func sendLine(dst sdk.Address, line string, timeout time.Duration) error {
	conn, err := net.DialTimeout(dst.Network, dst.Addr(), timeout)
	if err != nil {
		return err
	}
	if err := conn.SetWriteDeadline(time.Now().Add(timeout)); err != nil {
		conn.Close()
		return err
	}
	data := line
	if stream(dst) {
		data += "\n"
	}
	if _, err := io.WriteString(conn, data); err != nil {
		conn.Close()
		return err
	}
	return conn.Close()
}

// timeCommand runs argv with the given output and os.Stdin, and returns its
// exit code and how long it ran. While it runs, SIGTERM and SIGHUP are
// passed on to it and SIGINT and SIGQUIT, which a terminal sends to the
// command too, are ignored so that the duration is still sent. A command
// killed by a signal gives 128+signal, as in shells. When the command cannot
// be started, it returns 127 (not found) or 126 and an error.
func timeCommand(argv []string, stdout, stderr io.Writer) (int, time.Duration, error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, stdout, stderr
	// Output copied through pipes: do not hang on a background process that
	// keeps them open after the command exits.
	cmd.WaitDelay = time.Second

	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, os.Interrupt, syscall.SIGQUIT, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sigs)

	start := time.Now()
	if err := cmd.Start(); err != nil {
		code := 126
		if errors.Is(err, exec.ErrNotFound) || errors.Is(err, os.ErrNotExist) {
			code = 127
		}
		return code, 0, fmt.Errorf("cannot run %q: %w", argv[0], err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var err error
wait:
	for {
		select {
		case err = <-done:
			break wait
		case sig := <-sigs:
			if sig == syscall.SIGTERM || sig == syscall.SIGHUP {
				cmd.Process.Signal(sig)
			}
		}
	}
	took := time.Since(start)

	var exitErr *exec.ExitError
	if err != nil && !errors.As(err, &exitErr) && !errors.Is(err, exec.ErrWaitDelay) {
		return 1, took, fmt.Errorf("running %q: %w", argv[0], err)
	}
	ps := cmd.ProcessState
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal()), took, nil
	}
	return ps.ExitCode(), took, nil
}

// splitTags splits a comma-separated tag list, trimming spaces and dropping
// empty tags.
func splitTags(s string) []string {
	var tags []string
	for t := range strings.SplitSeq(s, ",") {
		if t = strings.TrimSpace(t); t != "" {
			tags = append(tags, t)
		}
	}
	return tags
}

// parseCheckStatus parses a service check status: 0-3 or its name.
func parseCheckStatus(s string) (int, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "0", "ok":
		return 0, nil
	case "1", "warning", "warn":
		return 1, nil
	case "2", "critical", "crit":
		return 2, nil
	case "3", "unknown":
		return 3, nil
	}
	return 0, fmt.Errorf("bad -sc_status %q: use 0, 1, 2, 3 or ok, warning, critical, unknown", s)
}

// emitMetric is one DogStatsD metric line.
type emitMetric struct {
	Name   string
	Type   string  // c, g, ms or s
	Value  float64 // for c, g and ms
	Member string  // for s
	Rate   float64 // 0 or 1: not sampled
	Tags   []string
}

// emitEvent is one DogStatsD event line. Empty fields are left out.
type emitEvent struct {
	Title, Text    string
	Timestamp      string // Unix seconds
	Hostname       string
	AggregationKey string
	Priority       string // normal or low
	SourceType     string
	AlertType      string // error, warning, info or success
	Tags           []string
}

// emitServiceCheck is one DogStatsD service check line. Empty fields are
// left out.
type emitServiceCheck struct {
	Name      string
	Status    int    // 0 ok, 1 warning, 2 critical, 3 unknown
	Timestamp string // Unix seconds
	Hostname  string
	Tags      []string
	Message   string
}

// formatMetric renders name:value|type[|@rate][|#tags].
func formatMetric(m emitMetric) (string, error) {
	if err := checkField("metric name", m.Name, ":|"); err != nil {
		return "", err
	}
	if strings.HasPrefix(m.Name, "_e{") {
		return "", fmt.Errorf("bad metric name %q: it would be read as an event", m.Name)
	}
	var value string
	switch m.Type {
	case "c", "g", "ms":
		if math.IsNaN(m.Value) || math.IsInf(m.Value, 0) {
			return "", fmt.Errorf("bad value %v for %q: not a finite number", m.Value, m.Name)
		}
		if m.Type == "ms" && m.Value < 0 {
			return "", fmt.Errorf("bad timing %v for %q: it must not be negative", m.Value, m.Name)
		}
		value = formatFloat(m.Value)
	case "s":
		if err := checkField("set member", m.Member, ":|"); err != nil {
			return "", err
		}
		value = m.Member
	default:
		return "", fmt.Errorf("bad metric type %q: want c, g, ms or s", m.Type)
	}
	var b strings.Builder
	b.WriteString(m.Name)
	b.WriteByte(':')
	b.WriteString(value)
	b.WriteByte('|')
	b.WriteString(m.Type)
	if m.Rate != 0 && m.Rate != 1 {
		if !(m.Rate > 0 && m.Rate < 1) {
			return "", fmt.Errorf("bad sample rate %v: it must be in (0, 1]", m.Rate)
		}
		b.WriteString("|@")
		b.WriteString(formatFloat(m.Rate))
	}
	if err := writeTags(&b, m.Tags); err != nil {
		return "", err
	}
	return b.String(), nil
}

// formatEvent renders
// _e{<title bytes>,<text bytes>}:title|text[|d:..][|h:..][|k:..][|p:..][|s:..][|t:..][|#tags]
// with the newlines of the text sent as the two characters `\n`.
func formatEvent(e emitEvent) (string, error) {
	if e.Title == "" {
		return "", errors.New("an event needs a title")
	}
	if strings.ContainsAny(e.Title, "\r\n") {
		return "", fmt.Errorf("bad event title %q: it must fit on one line", e.Title)
	}
	text := escapeNewlines(e.Text)
	var b strings.Builder
	fmt.Fprintf(&b, "_e{%d,%d}:%s|%s", len(e.Title), len(text), e.Title, text)
	if e.Timestamp != "" {
		if !isUnixSeconds(e.Timestamp) {
			return "", fmt.Errorf("bad event time %q: want Unix seconds", e.Timestamp)
		}
		b.WriteString("|d:" + e.Timestamp)
	}
	for _, f := range []struct{ what, key, val string }{
		{"event hostname", "h", e.Hostname},
		{"event aggregation key", "k", e.AggregationKey},
		{"event priority", "p", e.Priority},
		{"event source type", "s", e.SourceType},
		{"event alert type", "t", e.AlertType},
	} {
		if f.val == "" {
			continue
		}
		if err := checkField(f.what, f.val, "|"); err != nil {
			return "", err
		}
		b.WriteString("|" + f.key + ":" + f.val)
	}
	switch e.Priority {
	case "", "normal", "low":
	default:
		return "", fmt.Errorf("bad event priority %q: use normal or low", e.Priority)
	}
	switch e.AlertType {
	case "", "error", "warning", "info", "success":
	default:
		return "", fmt.Errorf("bad event alert type %q: use error, warning, info or success", e.AlertType)
	}
	if err := writeTags(&b, e.Tags); err != nil {
		return "", err
	}
	return b.String(), nil
}

// formatServiceCheck renders _sc|name|status[|d:..][|h:..][|#tags][|m:message].
// The message comes last, with newlines sent as `\n` and "m:" as `m\:`.
func formatServiceCheck(sc emitServiceCheck) (string, error) {
	if err := checkField("service check name", sc.Name, "|"); err != nil {
		return "", err
	}
	if sc.Status < 0 || sc.Status > 3 {
		return "", fmt.Errorf("bad service check status %d: use 0, 1, 2 or 3", sc.Status)
	}
	var b strings.Builder
	b.WriteString("_sc|" + sc.Name + "|" + strconv.Itoa(sc.Status))
	if sc.Timestamp != "" {
		if !isUnixSeconds(sc.Timestamp) {
			return "", fmt.Errorf("bad service check time %q: want Unix seconds", sc.Timestamp)
		}
		b.WriteString("|d:" + sc.Timestamp)
	}
	if sc.Hostname != "" {
		if err := checkField("service check hostname", sc.Hostname, "|"); err != nil {
			return "", err
		}
		b.WriteString("|h:" + sc.Hostname)
	}
	if err := writeTags(&b, sc.Tags); err != nil {
		return "", err
	}
	if sc.Message != "" {
		b.WriteString("|m:" + strings.ReplaceAll(escapeNewlines(sc.Message), "m:", `m\:`))
	}
	return b.String(), nil
}

// writeTags appends |#tag,tag when there are tags.
func writeTags(b *strings.Builder, tags []string) error {
	for i, t := range tags {
		if err := checkField("tag", t, ",|"); err != nil {
			return err
		}
		if i == 0 {
			b.WriteString("|#")
		} else {
			b.WriteByte(',')
		}
		b.WriteString(t)
	}
	return nil
}

// checkField rejects an empty value, line breaks and the characters of bad.
func checkField(what, v, bad string) error {
	if v == "" {
		return fmt.Errorf("empty %s", what)
	}
	if strings.ContainsAny(v, "\r\n") {
		return fmt.Errorf("bad %s %q: it must fit on one line", what, v)
	}
	if i := strings.IndexAny(v, bad); i >= 0 {
		return fmt.Errorf("bad %s %q: it must not contain %q", what, v, v[i])
	}
	return nil
}

// escapeNewlines writes line breaks as the two characters `\n`.
func escapeNewlines(s string) string {
	s = strings.ReplaceAll(s, "\r\n", "\n")
	return strings.ReplaceAll(s, "\n", `\n`)
}

// isUnixSeconds reports whether s is a non-negative decimal int64.
func isUnixSeconds(s string) bool {
	if s == "" || strings.TrimLeft(s, "0123456789") != "" {
		return false
	}
	_, err := strconv.ParseInt(s, 10, 64)
	return err == nil
}

// formatFloat renders v as short as it parses back exactly, without an
// exponent for everyday magnitudes.
func formatFloat(v float64) string {
	if a := math.Abs(v); a != 0 && (a >= 1e21 || a < 1e-6) {
		return strconv.FormatFloat(v, 'g', -1, 64)
	}
	return strconv.FormatFloat(v, 'f', -1, 64)
}
