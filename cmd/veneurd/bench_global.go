package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/veneurd/veneurd/core/aggregate"
	"github.com/veneurd/veneurd/core/config"
	"github.com/veneurd/veneurd/core/discovery"
	"github.com/veneurd/veneurd/core/forward"
	"github.com/veneurd/veneurd/core/telemetry"
	"github.com/veneurd/veneurd/internal/loadgen"
	"github.com/veneurd/veneurd/internal/proc"
	"github.com/veneurd/veneurd/internal/state"
	"github.com/veneurd/veneurd/sdk"
)

// promImported is a veneurd's count of the forwarded series it merged, on
// its admin /metrics.
const promImported = "veneur_worker_metrics_imported_total"

// veneurImported is the count a Veneur global sends to its stats_address at
// each flush, per worker: the metrics it imported in the interval flushed.
const veneurImported = "veneur.worker.metrics_imported_total"

// busyCores is the CPU above which the global counts as still merging, in a
// busyEvery slice of the interval.
const (
	busyCores = 0.25
	busyEvery = 100 * time.Millisecond
)

// benchGlobalCmd plays a fleet of locals forwarding to one global and
// measures what the global merges.
func benchGlobalCmd(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("bench-global", "[flags]",
		"Plays -locals locals forwarding to one running global, and measures what the\n"+
			"global merges. Each local's interval state (-timers timer series of -samples\n"+
			"samples each, and -counters veneurglobalonly counters) is built once, as a\n"+
			"local's aggregator forwards it; then, at the start of each interval (-offset\n"+
			"after a wall-clock multiple of -interval, when the global has just flushed),\n"+
			"every local sends its state at once, through a Forwarder each, in -protocol.\n"+
			"Each interval prints a JSON line, and a last line sums them up:\n"+
			"\n"+
			"  merge_s       = from the first send until every batch was acknowledged\n"+
			"                  (veneurd: merged; veneur: the SendMetricsV2 call returned,\n"+
			"                  which a Veneur global does once its workers' queues took it)\n"+
			"  series_per_s  = series forwarded / merge_s\n"+
			"  busy_s        = from the first send until the end of the last 0.1 s in which\n"+
			"                  the global used 0.25 cores or more, before its flush\n"+
			"  merge_cpu_s   = CPU seconds of the global's process tree over merge_s\n"+
			"  cpu_s, cores  = CPU seconds of the global's process tree over the interval\n"+
			"                  (window_s: its merge and its flush), and those / window_s\n"+
			"  sender_cpu_s  = CPU seconds of bench-global itself over the interval: the\n"+
			"                  locals' splitting, encoding and sending, on the same machine\n"+
			"  imported      = what the global counted as merged over the interval: a\n"+
			"                  veneurd's "+promImported+" (-admin), a Veneur's\n"+
			"                  "+veneurImported+" (-veneur-stats); it must be\n"+
			"                  every series forwarded\n"+
			"  kept_up       = every interval merged within the interval, the global's CPU\n"+
			"                  per interval under the interval times -cores, no forwarding\n"+
			"                  error, and the count right where there is one\n"+
			"\n"+
			"CPU and memory are read from /proc for -pid and its descendants.", stderr)

	target := fs.String("target", "127.0.0.1:8128", "the global's gRPC address (its receive block's grpc_address, or a Veneur's grpc_address)")
	allowRemote := fs.Bool("allow-remote", false, "allow a target that is not on a loopback address")
	protocol := fs.String("protocol", forward.ProtocolVeneurd, "the forward protocol: veneurd, or veneur (to a Veneur global)")
	locals := fs.Int("locals", 8, "locals forwarding, each with its own Forwarder and connection")
	timers := fs.Int("timers", 50000, "timer series each local forwards")
	samples := fs.Int("samples", 10, "samples of each timer series per interval, on each local")
	counters := fs.Int("counters", 50000, "veneurglobalonly counter series each local forwards")
	intervals := fs.Int("intervals", 3, "intervals to run")
	interval := fs.Duration("interval", 10*time.Second, "the global's flush interval: the locals send once per interval")
	offset := fs.Duration("offset", 500*time.Millisecond, "when to send within each interval, after the global's flush on the wall-clock multiple of -interval")
	timeout := fs.Duration("timeout", forward.DefaultTimeout, "timeout of one batch's send")
	pid := fs.Int("pid", 0, "the global's process id, for its CPU and memory; 0 leaves them out")
	adminAddr := fs.String("admin", "", "a veneurd global's admin address, for its count of series merged; \"\" to go without")
	veneurStats := fs.String("veneur-stats", "", "a UDP address to listen on for a Veneur global's own metrics (its stats_address), for its count of metrics imported (its first flush's count is awaited before the first interval); \"\" to go without")
	cores := fs.Float64("cores", float64(runtime.NumCPU()), "cores the global may use: kept_up needs its CPU per interval under the interval times this")

	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	usageErr := usageError(stderr, "bench-global")
	if fs.NArg() > 0 {
		return usageErr("unexpected argument %q", fs.Arg(0))
	}
	switch {
	case *protocol != forward.ProtocolVeneurd && *protocol != forward.ProtocolVeneur:
		return usageErr("-protocol is veneurd or veneur, not %q", *protocol)
	case *locals < 1:
		return usageErr("-locals must be at least 1")
	case *timers < 0 || *counters < 0 || *timers+*counters == 0:
		return usageErr("-timers and -counters must not be negative, and not both 0")
	case *samples < 1:
		return usageErr("-samples must be at least 1")
	case *intervals < 1:
		return usageErr("-intervals must be at least 1")
	case *interval < 100*time.Millisecond:
		return usageErr("-interval must be at least 100ms")
	case *offset < 0 || *offset >= *interval:
		return usageErr("-offset must be within the interval")
	case *timeout <= 0:
		return usageErr("-timeout must be positive")
	case *cores <= 0:
		return usageErr("-cores must be positive")
	}
	host, _, err := net.SplitHostPort(*target)
	if err != nil {
		return usageErr("bad -target %q: host:port", *target)
	}
	if !*allowRemote && !isLoopback(host) {
		return usageErr("target %s is not on this machine; give -allow-remote if that is what you want", *target)
	}
	admin := strings.TrimSpace(*adminAddr)
	if admin != "" && !strings.Contains(admin, "://") {
		admin = "http://" + admin
	}
	if *pid > 0 {
		if _, err := loadgen.ProcessTree(*pid); err != nil {
			fmt.Fprintf(stderr, "veneurd bench-global: %v\n", err)
			return 1
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	g := &globalBench{
		target: *target, protocol: *protocol, interval: *interval, offset: *offset, timeout: *timeout,
		pid: *pid, admin: admin, cores: *cores, stdout: stdout, stderr: stderr,
	}
	if admin != "" {
		if _, err := g.scrapeImported(ctx); err != nil {
			fmt.Fprintf(stderr, "veneurd bench-global: %v\n", err)
			fmt.Fprintln(stderr, "The global's pipeline needs http_address in its veneurd block (or run with -admin \"\" to go without its count).")
			return 1
		}
	}
	if *veneurStats != "" {
		c, err := listenVeneurStats(*veneurStats)
		if err != nil {
			fmt.Fprintf(stderr, "veneurd bench-global: %v\n", err)
			return 1
		}
		defer c.close()
		g.veneur = c
	}

	begin := time.Now()
	frames, series := buildLocals(*locals, *timers, *counters, *samples)
	fmt.Fprintf(stderr, "veneurd bench-global: %s global at %s, pid %s; %d locals, each forwarding %d timer series (%d samples each) and %d global counters: %d series an interval, built in %.1fs\n",
		*protocol, *target, pidString(*pid), *locals, *timers, *samples, *counters, series, time.Since(begin).Seconds())
	g.frames, g.series = frames, series

	res, err := g.run(ctx, *intervals)
	if errors.Is(err, context.Canceled) {
		fmt.Fprintln(stderr, "veneurd bench-global: interrupted")
		return 1
	}
	if len(res) > 0 {
		sum := summarize(res, *protocol, series, *locals, *interval)
		writeJSONLine(stdout, sum)
		fmt.Fprintf(stderr, "veneurd bench-global: %s\n", sum.text())
		if err == nil && sum.Imported != nil && !sum.CountsRight {
			err = fmt.Errorf("the global counted %v series merged, not %d each interval", sum.Imported, series)
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "veneurd bench-global: %v\n", err)
		return 1
	}
	return 0
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// buildLocals builds the interval state each of n locals forwards: the
// frames its aggregator hands to its Forwarder at a flush, for timers timer
// series of samples samples each and counters veneurglobalonly counters.
// The locals share their series (the same services on every host) but not
// their timers' values. It returns the frames of each local and the number
// of series they hold in all.
func buildLocals(n, timers, counters, samples int) ([][][]byte, int) {
	out := make([][][]byte, n)
	total := 0
	var wg sync.WaitGroup
	var mu sync.Mutex
	sem := make(chan struct{}, runtime.GOMAXPROCS(0))
	for l := range n {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			frames := localState(l, timers, counters, samples)
			records := 0
			for _, f := range frames {
				state.EachRecord(f, func(_, _ []byte) bool { records++; return true })
			}
			mu.Lock()
			out[l] = frames
			total += records
			mu.Unlock()
		})
	}
	wg.Wait()
	return out, total
}

// localState is what local l forwards for an interval: the frames of its
// aggregator's forward callback, as in core/forward's BenchmarkGlobalMerge.
func localState(l, timers, counters, samples int) [][]byte {
	a := aggregate.New(aggregate.Config{
		Percentiles: config.DefaultPercentiles,
		Aggregates:  aggregate.ParseAggregates(config.DefaultAggregates),
		Hostname:    fmt.Sprint("local-", l),
	})
	var frames [][]byte
	var mu sync.Mutex
	a.SetForward(func(f []byte) { mu.Lock(); frames = append(frames, f); mu.Unlock() })
	var w state.Samples
	for i := range timers {
		name := fmt.Appendf(nil, "svc.request.latency.%d", i%500)
		tags := fmt.Appendf(nil, "env:prod,route:/r%d", i/500)
		for j := range samples {
			w.Append(uint8(sdk.Timer), uint8(sdk.ScopeDefault), name, tags, float64(10+(j*i+13*l)%97), 1)
		}
	}
	for i := range counters {
		w.Append(uint8(sdk.Counter), uint8(sdk.ScopeGlobal), fmt.Appendf(nil, "svc.requests.%d", i%500),
			fmt.Appendf(nil, "env:prod,route:/r%d", i/500), 1, 1)
	}
	src := state.New(state.Params{}, 4)
	src.AddSamples(&w)
	src.Ship(1<<20, func(f []byte) { a.MergeState(f) })
	a.FlushTo(discardPoints{})
	return frames
}

type discardPoints struct{}

func (discardPoints) Point(string, string, string, sdk.PointType, float64, string, string) {}

// globalBench is one run of bench-global.
type globalBench struct {
	target, protocol string
	interval, offset time.Duration
	timeout          time.Duration
	pid              int
	admin            string
	veneur           *statsCounter
	cores            float64
	stdout, stderr   io.Writer

	frames [][][]byte // of each local
	series int        // in all the frames
}

// globalInterval is one interval of bench-global, as it prints it.
type globalInterval struct {
	Interval      int      `json:"interval"`
	Protocol      string   `json:"protocol"`
	Locals        int      `json:"locals"`
	Series        int      `json:"series"`
	Frames        int      `json:"frames"`            // handed to the Forwarders, of up to 1 MiB each
	MergeS        *float64 `json:"merge_s,omitempty"` // absent: not all acknowledged
	SeriesPerS    *float64 `json:"series_per_s,omitempty"`
	WindowS       float64  `json:"window_s"`
	ForwardErrors uint64   `json:"forward_errors"`
	SenderCPUS    float64  `json:"sender_cpu_s"` // this process's: the locals' splitting, encoding and sending

	BusyS     *float64 `json:"busy_s,omitempty"`
	MergeCPUS *float64 `json:"merge_cpu_s,omitempty"` // the global's, from the first send to the last acknowledgement
	CPUS      *float64 `json:"cpu_s,omitempty"`       // the global's, over window_s
	Cores     *float64 `json:"cores,omitempty"`
	PeakRSS   *uint64  `json:"peak_rss_bytes,omitempty"`

	Imported *uint64 `json:"imported,omitempty"`

	KeptUp bool `json:"kept_up"`
}

// run runs n intervals and prints each.
func (g *globalBench) run(ctx context.Context, n int) ([]globalInterval, error) {
	fwds := make([]*forward.Forwarder, len(g.frames))
	tels := make([]*telemetry.Registry, len(g.frames))
	for l := range fwds {
		tels[l] = telemetry.New()
		f, err := forward.New(forward.Config{
			Members:  discovery.NewStatic([]string{g.target}),
			Hostname: fmt.Sprint("local-", l),
			Protocol: g.protocol,
			Timeout:  g.timeout,
		}, tels[l], nil)
		if err != nil {
			return nil, err
		}
		fwds[l] = f
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		for _, f := range fwds {
			f.Stop(sctx)
		}
	}()
	// forwardErrors counts the Forwarders' errors, whatever their cause,
	// since its last call.
	forwardErrors := func() uint64 {
		var e uint64
		for _, t := range tels {
			for _, p := range t.Points(0, "") {
				if p.Name == forward.ForwardErrors {
					e += uint64(p.Value)
				}
			}
		}
		return e
	}

	// A Veneur flushes first an interval after the first multiple of it
	// past its start: its counts are awaited before the first interval.
	if g.veneur != nil {
		deadline := time.Now().Add(2*g.interval + 5*time.Second)
		for !g.veneur.seen.Load() {
			if time.Now().After(deadline) {
				return nil, fmt.Errorf("no count of %s arrived at -veneur-stats within %s: is it the Veneur's stats_address?",
					veneurImported, 2*g.interval+5*time.Second)
			}
			if err := sleepUntil(ctx, time.Now().Add(50*time.Millisecond)); err != nil {
				return nil, err
			}
		}
	}

	// The first interval starts at the next send time.
	start := nextSend(time.Now(), g.interval, g.offset)
	if err := sleepUntil(ctx, start); err != nil {
		return nil, err
	}
	before, err := g.take(ctx)
	if err != nil {
		return nil, err
	}
	var out []globalInterval
	for i := 1; i <= n; i++ {
		flushAt := start.Truncate(g.interval).Add(g.interval) // the global's next flush
		iv := globalInterval{Interval: i, Protocol: g.protocol, Locals: len(g.frames), Series: g.series}
		for _, fr := range g.frames {
			iv.Frames += len(fr)
		}
		forwardErrors()
		var pids []int
		if g.pid > 0 {
			if pids, err = loadgen.ProcessTree(g.pid); err != nil {
				return out, fmt.Errorf("the global: %w", err)
			}
		}
		stopRSS := (&loadgen.Meter{Pid: g.pid}).WatchRSS()
		busy := watchBusy(pids, flushAt.Add(-busyEvery))

		// Every local sends at once.
		sent, cpuSent := time.Now(), treeCPU(pids)
		var wg sync.WaitGroup
		for l, f := range fwds {
			wg.Go(func() {
				for _, fr := range g.frames[l] {
					f.Add(fr)
				}
				f.EndInterval(flushAt.Unix())
			})
		}
		wg.Wait()
		merged, ok := waitAcknowledged(ctx, fwds, sent.Add(3*g.interval))
		cpuMerged := treeCPU(pids)
		if ctx.Err() != nil {
			stopRSS()
			busy()
			return out, ctx.Err()
		}
		if ok {
			m := round3(merged.Sub(sent).Seconds())
			r := float64(int64(float64(g.series) / merged.Sub(sent).Seconds()))
			iv.MergeS, iv.SeriesPerS = &m, &r
		}

		// The interval ends with the global's flush, at the next send.
		next := nextSend(time.Now(), g.interval, g.offset)
		if err := sleepUntil(ctx, next); err != nil {
			stopRSS()
			busy()
			return out, err
		}
		busyUntil := busy()
		peak := stopRSS()
		after, err := g.take(ctx)
		if err != nil {
			return out, err
		}
		iv.WindowS = round3(after.at.Sub(before.at).Seconds())
		iv.ForwardErrors = forwardErrors()
		iv.SenderCPUS = round3((after.self - before.self).Seconds())
		if g.pid > 0 {
			cpu := round3((after.cpu - before.cpu).Seconds())
			c := round3((after.cpu - before.cpu).Seconds() / after.at.Sub(before.at).Seconds())
			iv.CPUS, iv.Cores, iv.PeakRSS = &cpu, &c, &peak
			if ok {
				m := round3((cpuMerged - cpuSent).Seconds())
				iv.MergeCPUS = &m
			}
			if !busyUntil.IsZero() {
				b := round3(busyUntil.Sub(sent).Seconds())
				iv.BusyS = &b
			} else {
				var zero float64
				iv.BusyS = &zero
			}
		}
		if after.counted {
			imp := after.imported - before.imported
			iv.Imported = &imp
		}
		iv.KeptUp = ok && merged.Sub(sent) < g.interval && iv.ForwardErrors == 0 &&
			(iv.Cores == nil || *iv.Cores < g.cores) &&
			(iv.Imported == nil || *iv.Imported == uint64(g.series))
		writeJSONLine(g.stdout, iv)
		out = append(out, iv)
		if !ok {
			return out, fmt.Errorf("the global did not acknowledge every batch of interval %d within %s (forwarding errors: %d)", i, 3*g.interval, iv.ForwardErrors)
		}
		before, start = after, next
	}
	return out, nil
}

// nextSend returns the first send time after now: offset past a multiple
// of interval.
func nextSend(now time.Time, interval, offset time.Duration) time.Time {
	t := now.Truncate(interval).Add(offset)
	for !t.After(now) {
		t = t.Add(interval)
	}
	return t
}

func sleepUntil(ctx context.Context, t time.Time) error {
	timer := time.NewTimer(time.Until(t))
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// waitAcknowledged waits until no forwarder has a batch pending, and
// returns when the last one was acknowledged; false at the deadline.
func waitAcknowledged(ctx context.Context, fwds []*forward.Forwarder, deadline time.Time) (time.Time, bool) {
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for {
		now := time.Now()
		pending := 0
		for _, f := range fwds {
			pending += f.Pending()
		}
		if pending == 0 {
			return now, true
		}
		if now.After(deadline) {
			return now, false
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return now, false
		}
	}
}

// watchBusy samples the CPU of pids every busyEvery until until, or until
// the returned function is called, which returns the end of the last slice
// in which they used busyCores or more (zero if none).
func watchBusy(pids []int, until time.Time) (stop func() time.Time) {
	if len(pids) == 0 {
		return func() time.Time { return time.Time{} }
	}
	done := make(chan struct{})
	var last time.Time
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(busyEvery)
		defer tick.Stop()
		prev, at := treeCPU(pids), time.Now()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
			}
			now := time.Now()
			if now.After(until) {
				return
			}
			cpu := treeCPU(pids)
			if (cpu - prev).Seconds() >= busyCores*now.Sub(at).Seconds() {
				last = now
			}
			prev, at = cpu, now
		}
	})
	return func() time.Time {
		close(done)
		wg.Wait()
		return last
	}
}

// treeCPU sums the CPU time of pids; those gone count nothing.
func treeCPU(pids []int) time.Duration {
	var cpu time.Duration
	for _, p := range pids {
		if s, err := proc.Stat(p); err == nil {
			cpu += s.CPU
		}
	}
	return cpu
}

// globalSnapshot is what bench-global reads at each interval's boundary.
type globalSnapshot struct {
	at       time.Time
	cpu      time.Duration // the global's tree
	self     time.Duration // this process
	counted  bool
	imported uint64
}

func (g *globalBench) take(ctx context.Context) (globalSnapshot, error) {
	s := globalSnapshot{at: time.Now()}
	if g.pid > 0 {
		cpu, err := loadgen.TreeCPU(g.pid)
		if err != nil {
			return s, fmt.Errorf("the global: %w", err)
		}
		s.cpu = cpu
	}
	if me, err := proc.Stat(os.Getpid()); err == nil {
		s.self = me.CPU
	}
	switch {
	case g.admin != "":
		n, err := g.scrapeImported(ctx)
		if err != nil {
			return s, err
		}
		s.counted, s.imported = true, n
	case g.veneur != nil:
		s.counted, s.imported = true, g.veneur.value()
	}
	return s, nil
}

// scrapeImported reads a veneurd's count of series merged from its admin
// /metrics.
func (g *globalBench) scrapeImported(ctx context.Context) (uint64, error) {
	url := strings.TrimSuffix(g.admin, "/") + "/metrics"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return parseImported(resp.Body)
}

// parseImported sums promImported over its labels; a veneurd that has
// merged nothing yet may not show it.
func parseImported(r io.Reader) (uint64, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(r)
	if err != nil {
		return 0, fmt.Errorf("bad metrics: %v", err)
	}
	var n uint64
	if f, ok := fams[promImported]; ok {
		for _, m := range f.Metric {
			n += uint64(m.GetCounter().GetValue() + m.GetUntyped().GetValue())
		}
	}
	return n, nil
}

// statsCounter sums the veneurImported counts a Veneur sends to its
// stats_address (DogStatsD over UDP).
type statsCounter struct {
	conn net.PacketConn
	n    atomic.Uint64
	seen atomic.Bool // a count arrived: the Veneur has flushed
	done chan struct{}
}

func listenVeneurStats(addr string) (*statsCounter, error) {
	conn, err := net.ListenPacket("udp", addr)
	if err != nil {
		return nil, fmt.Errorf("-veneur-stats: %w", err)
	}
	c := &statsCounter{conn: conn, done: make(chan struct{})}
	go c.read()
	return c, nil
}

func (c *statsCounter) read() {
	defer close(c.done)
	buf := make([]byte, 1<<16)
	for {
		n, _, err := c.conn.ReadFrom(buf)
		if err != nil {
			return
		}
		if v, ok := countIn(buf[:n], veneurImported); ok {
			c.n.Add(v)
			c.seen.Store(true)
		}
	}
}

// countIn sums the values of counter name in a DogStatsD datagram; false
// if it holds none.
func countIn(dgram []byte, name string) (uint64, bool) {
	var n uint64
	found := false
	for line := range bytes.SplitSeq(dgram, []byte("\n")) {
		v, ok := bytes.CutPrefix(line, []byte(name+":"))
		if !ok {
			continue
		}
		v, rest, _ := bytes.Cut(v, []byte("|"))
		if !bytes.HasPrefix(rest, []byte("c")) {
			continue
		}
		if f, err := strconv.ParseFloat(string(v), 64); err == nil && f >= 0 {
			n += uint64(f)
			found = true
		}
	}
	return n, found
}

func (c *statsCounter) value() uint64 { return c.n.Load() }

func (c *statsCounter) close() {
	c.conn.Close()
	<-c.done
}

// globalSummary is bench-global's last line.
type globalSummary struct {
	Summary     bool     `json:"summary"`
	Protocol    string   `json:"protocol"`
	Locals      int      `json:"locals"`
	Series      int      `json:"series"` // an interval
	Intervals   int      `json:"intervals"`
	Merged      int      `json:"merged"` // intervals all acknowledged
	SeriesPerS  *span    `json:"series_per_s,omitempty"`
	MergeS      *span    `json:"merge_s,omitempty"`
	BusyS       *span    `json:"busy_s,omitempty"`
	MergeCPUS   *span    `json:"merge_cpu_s,omitempty"`
	CPUS        *span    `json:"cpu_s,omitempty"` // per interval: an interval's cpu_s over its window_s
	Cores       *float64 `json:"cores,omitempty"`
	PeakRSS     *uint64  `json:"peak_rss_bytes,omitempty"`
	SenderCPUS  span     `json:"sender_cpu_s"`
	Imported    []uint64 `json:"imported,omitempty"`
	CountsRight bool     `json:"counts_right"`
	KeptUp      bool     `json:"kept_up"`
}

// span is the median of some figures, and their range.
type span struct {
	Median float64 `json:"median"`
	Min    float64 `json:"min"`
	Max    float64 `json:"max"`
}

func spanOf(v []float64) *span {
	if len(v) == 0 {
		return nil
	}
	s := slices.Clone(v)
	slices.Sort(s)
	return &span{Median: s[(len(s)-1)/2], Min: s[0], Max: s[len(s)-1]}
}

func summarize(res []globalInterval, protocol string, series, locals int, interval time.Duration) globalSummary {
	s := globalSummary{Summary: true, Protocol: protocol, Locals: locals, Series: series, Intervals: len(res),
		KeptUp: len(res) > 0, CountsRight: true}
	var rates, merges, busy, mergeCPU, cpus, sender []float64
	var cpu, wall float64
	for _, iv := range res {
		s.KeptUp = s.KeptUp && iv.KeptUp
		sender = append(sender, iv.SenderCPUS)
		if iv.MergeS != nil {
			s.Merged++
			merges = append(merges, *iv.MergeS)
			rates = append(rates, *iv.SeriesPerS)
		}
		if iv.BusyS != nil {
			busy = append(busy, *iv.BusyS)
		}
		if iv.MergeCPUS != nil {
			mergeCPU = append(mergeCPU, *iv.MergeCPUS)
		}
		if iv.CPUS != nil && iv.WindowS > 0 {
			cpus = append(cpus, round3(*iv.CPUS*interval.Seconds()/iv.WindowS))
			cpu += *iv.CPUS
			wall += iv.WindowS
		}
		if iv.PeakRSS != nil {
			p := max(*iv.PeakRSS, ptrOr(s.PeakRSS))
			s.PeakRSS = &p
		}
		if iv.Imported != nil {
			s.Imported = append(s.Imported, *iv.Imported)
			s.CountsRight = s.CountsRight && *iv.Imported == uint64(series)
		}
	}
	s.SeriesPerS, s.MergeS, s.BusyS, s.CPUS = spanOf(rates), spanOf(merges), spanOf(busy), spanOf(cpus)
	s.MergeCPUS = spanOf(mergeCPU)
	if ss := spanOf(sender); ss != nil {
		s.SenderCPUS = *ss
	}
	if wall > 0 {
		c := round3(cpu / wall)
		s.Cores = &c
	}
	return s
}

func ptrOr[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

// text is the summary for people.
func (s globalSummary) text() string {
	var parts []string
	add := func(format string, a ...any) { parts = append(parts, fmt.Sprintf(format, a...)) }
	if s.SeriesPerS != nil {
		add("%.0f series/s [%.0f-%.0f], merged in %.2f s [%.2f-%.2f]", s.SeriesPerS.Median, s.SeriesPerS.Min, s.SeriesPerS.Max,
			s.MergeS.Median, s.MergeS.Min, s.MergeS.Max)
	}
	if s.CPUS != nil {
		add("busy %.2f s [%.2f-%.2f]", s.BusyS.Median, s.BusyS.Min, s.BusyS.Max)
		if s.MergeCPUS != nil {
			add("%.2f CPU s merging [%.2f-%.2f]", s.MergeCPUS.Median, s.MergeCPUS.Min, s.MergeCPUS.Max)
		}
		add("%.2f CPU s an interval [%.2f-%.2f], %.3f cores", s.CPUS.Median, s.CPUS.Min, s.CPUS.Max, *s.Cores)
		add("peak RSS %d MB", *s.PeakRSS>>20)
	}
	if s.Imported != nil {
		add("imported %v", s.Imported)
	}
	add("kept up: %v", s.KeptUp)
	return fmt.Sprintf("%s global, %d series from %d locals an interval, %d intervals (%d merged): %s",
		s.Protocol, s.Series, s.Locals, s.Intervals, s.Merged, strings.Join(parts, "; "))
}

func round3(v float64) float64 { return float64(int64(v*1000+0.5)) / 1000 }

func writeJSONLine(w io.Writer, v any) {
	b, _ := json.Marshal(v)
	fmt.Fprintf(w, "%s\n", b)
}
