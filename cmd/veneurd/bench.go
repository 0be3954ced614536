package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/veneurd/veneurd/internal/loadgen"
)

// benchCmd loads a veneurd with DogStatsD traffic and measures what it keeps
// up with.
func benchCmd(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("bench", "[flags]",
		"Sends DogStatsD traffic to a running veneurd and measures what it makes of it.\n"+
			"Each step prints one row: the rate offered and achieved, the lines the target\n"+
			"counted (from its admin /metrics: give its pipeline http_address), the lines\n"+
			"lost, the kernel's drops on its sockets, and the CPU and peak memory of its\n"+
			"process tree (read from /proc; the target must run as the same user).\n"+
			"\n"+
			"  lost      = sent - processed - errors - dropped_by_rule, counted once the tail has arrived\n"+
			"  sockdrop  = datagrams the kernel dropped on the target's UDP sockets\n"+
			"  rcvbuf    = growth of the system-wide UDP RcvbufErrors (other sockets too)\n"+
			"  cores     = CPU seconds of the target's tree / wall seconds of the step\n"+
			"  drop%     = 100 * sockdrop / datagrams sent\n"+
			"  kept_up   = drop% < -max-drop and every line accounted for (lost = 0)\n"+
			"\n"+
			"The workload is rendered once, max(series, 50000) lines of about 60 bytes, and\n"+
			"written over and over. A sender-limited row means bench, not the target, was\n"+
			"the limit: add -senders.", stderr)

	target := fs.String("target", "udp://127.0.0.1:8126", "where to send: udp://host:port or unixgram:///path")
	allowRemote := fs.Bool("allow-remote", false, "allow a target that is not on a loopback address")
	duration := fs.Duration("duration", 10*time.Second, "how long each step sends")
	rates := fs.String("rate", "0", "lines per second to offer, open-loop; 0 sends as fast as possible; a comma-separated `list` runs one step per rate; with -find-max, the rate to start from (0: 50000)")
	senders := fs.Int("senders", 1, "sending goroutines, each with its own socket; the rate is shared among them")

	series := fs.Int("series", 10000, "distinct series (name and tags), shared among the types by weight")
	mix := fs.String("mix", loadgen.DefaultMix, "weights of the metric types: counter, gauge, timer, set, histogram, distribution")
	tags := fs.Int("tags", 3, "tags per line: t1:v<i%7>,t2:v<i%11>,... for series i")
	linesPer := fs.Int("lines-per-datagram", 25, "lines packed into each datagram, at most")
	maxDgram := fs.Int("max-datagram", 1432, "datagram size limit in bytes; fewer lines are packed where they would not fit")
	sampleRate := fs.Float64("sample-rate", 1, "sample rate in (0, 1] written into every line as |@RATE, as a sampling client sends it; 1 writes none (the target scales counters by 1/RATE; the line counts do not change)")

	pid := fs.Int("pid", 0, "the target veneurd's process id (default: the process holding the target's socket)")
	adminAddr := fs.String("admin", "http://127.0.0.1:8127", "the target's admin address, for its line counters; \"\" to go without them")
	settle := fs.Duration("settle", 3*time.Second, "after sending, how long to wait at most for the target to count the last lines")
	findMax := fs.Bool("find-max", false, "search for the highest rate the target keeps up with: step up from -rate by x1.5, then bisect")
	maxDrop := fs.Float64("max-drop", 0.1, "drop percentage at which a step no longer keeps up")
	maxSteps := fs.Int("max-steps", 20, "with -find-max, the most steps to run")
	asJSON := fs.Bool("json", false, "print each step as a JSON line (and, with -find-max, the result as a last line)")

	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	usageErr := usageError(stderr, "bench")
	if fs.NArg() > 0 {
		return usageErr("unexpected argument %q", fs.Arg(0))
	}
	tgt, err := loadgen.ParseTarget(*target)
	if err != nil {
		return usageErr("%v", err)
	}
	if !*allowRemote && !tgt.IsLocal() {
		return usageErr("target %s is not on this machine; bench floods what it targets, give -allow-remote if that is what you want", tgt)
	}
	var rateList []float64
	for r := range strings.SplitSeq(*rates, ",") {
		v, err := strconv.ParseFloat(strings.TrimSpace(r), 64)
		if err != nil || v < 0 || math.IsNaN(v) || math.IsInf(v, 0) {
			return usageErr("bad -rate %q: lines per second, 0 or more", r)
		}
		rateList = append(rateList, v)
	}
	switch {
	case *duration <= 0:
		return usageErr("-duration must be positive")
	case *senders < 1:
		return usageErr("-senders must be at least 1")
	case *settle < 0:
		return usageErr("-settle must not be negative")
	case *maxDrop <= 0:
		return usageErr("-max-drop must be positive")
	case *findMax && len(rateList) > 1:
		return usageErr("-find-max takes one starting -rate")
	case *findMax && *maxSteps < 1:
		return usageErr("-max-steps must be at least 1")
	}
	m, err := loadgen.ParseMix(*mix)
	if err != nil {
		return usageErr("%v", err)
	}
	w := loadgen.Workload{
		Series: *series, Mix: m, Tags: *tags,
		LinesPerDatagram: *linesPer, MaxDatagram: *maxDgram, SampleRate: *sampleRate,
	}
	if err := w.Validate(); err != nil {
		return usageErr("%v", err)
	}
	admin := strings.TrimSpace(*adminAddr)
	if admin != "" && !strings.Contains(admin, "://") {
		admin = "http://" + admin
	}

	ring, err := w.Render()
	if err != nil {
		return usageErr("%v", err)
	}
	meter := &loadgen.Meter{Pid: *pid, Admin: admin}
	if meter.Pid == 0 && tgt.IsLocal() {
		p, err := loadgen.FindListener(tgt)
		if err != nil {
			fmt.Fprintf(stderr, "veneurd bench: cannot find the target's process: %v; CPU, memory and drops are left out\n", err)
		}
		meter.Pid = p
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	// One look before sending anything: a wrong admin address or pid
	// should fail now, not after the first step.
	if _, err := meter.Snapshot(ctx); err != nil {
		fmt.Fprintf(stderr, "veneurd bench: %v\n", err)
		if admin != "" {
			fmt.Fprintln(stderr, "The target's pipeline needs http_address in its veneurd block (or run with -admin \"\" to go without line counts).")
		}
		return 1
	}
	if *findMax && meter.Pid == 0 && admin == "" {
		return usageErr("-find-max needs the target's line counters (-admin) or its process (-pid) to judge a step")
	}
	fmt.Fprintf(stderr, "veneurd bench: %s, pid %s, admin %s; %d lines in %d datagrams (%d bytes) rendered, mix %s, %d series, %d tags\n",
		tgt, pidString(meter.Pid), orNone(admin), ring.TotalLines, len(ring.Datagrams), ring.TotalBytes, m, *series, *tags)

	r := &loadgen.Runner{
		Sender:   &loadgen.Sender{Target: tgt, Ring: ring, Senders: *senders},
		Meter:    meter,
		Duration: *duration,
		Settle:   *settle,
		MaxDrop:  *maxDrop,
	}
	p := &loadgen.Printer{W: stdout, JSON: *asJSON}
	fail := func(err error) int {
		if errors.Is(err, context.Canceled) {
			fmt.Fprintln(stderr, "veneurd bench: interrupted")
			return 1
		}
		fmt.Fprintf(stderr, "veneurd bench: %v\n", err)
		return 1
	}
	if *findMax {
		start := rateList[0]
		if start == 0 {
			start = 50000
		}
		res, err := r.FindMax(ctx, start, *maxSteps, p.Step)
		if err != nil {
			return fail(err)
		}
		p.Max(res)
		return 0
	}
	for _, rate := range rateList {
		st, err := r.Step(ctx, rate)
		if st.Sent > 0 || err == nil {
			p.Step(st)
		}
		if err != nil {
			return fail(err)
		}
		if st.SendErrors > 0 && st.Sent == 0 {
			fmt.Fprintf(stderr, "veneurd bench: every datagram was refused: is anything listening on %s?\n", tgt)
			return 1
		}
	}
	return 0
}

func pidString(pid int) string {
	if pid == 0 {
		return "unknown"
	}
	return strconv.Itoa(pid)
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}
