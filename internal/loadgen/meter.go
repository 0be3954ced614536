package loadgen

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/veneurd/veneurd/internal/proc"
)

// The self-metrics bench reads from the target's admin /metrics, as
// core/telemetry names them in the Prometheus format.
const (
	promProcessed    = "veneur_worker_metrics_processed_total"
	promPacketErrors = "veneur_packet_error_total"
	promDropped      = "veneur_worker_metrics_dropped_total"
)

// AdminCounts are the target's line counters.
type AdminCounts struct {
	// Processed counts the samples the target aggregated: one per line of
	// a bench workload (its lines carry one value or member each).
	Processed uint64
	// Errors counts the lines the target rejected, over every reason.
	Errors uint64
	// Dropped counts the samples the target's drop rules discarded.
	Dropped uint64
}

// ParseMetrics reads the counters bench needs from the Prometheus text
// format, with expfmt's parser: the samples of each metric are summed,
// whatever their labels.
func ParseMetrics(r io.Reader) (AdminCounts, error) {
	var c AdminCounts
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(r)
	if err != nil {
		return c, fmt.Errorf("bad metrics: %v", err)
	}
	sum := func(name string) (uint64, bool, error) {
		f, ok := fams[name]
		if !ok {
			return 0, false, nil
		}
		var n uint64
		for _, m := range f.Metric {
			v := m.GetCounter().GetValue() + m.GetUntyped().GetValue() + m.GetGauge().GetValue()
			if v < 0 {
				return 0, true, fmt.Errorf("bad metrics: %s is negative", name)
			}
			n += uint64(v)
		}
		return n, true, nil
	}
	var ok bool
	if c.Processed, ok, err = sum(promProcessed); err != nil {
		return c, err
	}
	if !ok {
		return c, fmt.Errorf("no %s in the metrics: is this a veneurd admin address?", promProcessed)
	}
	if c.Errors, _, err = sum(promPacketErrors); err != nil {
		return c, err
	}
	if c.Dropped, _, err = sum(promDropped); err != nil {
		return c, err
	}
	return c, nil
}

// Meter measures a target veneurd: its line counters through the admin
// address, and through /proc the CPU and memory of its process tree and the
// kernel's drops on its UDP sockets.
type Meter struct {
	// Pid is the target's process; 0 leaves out the /proc figures.
	Pid int
	// Admin is the target's admin base URL (http://host:port); "" leaves
	// out the line counts.
	Admin string
	// Client scrapes Admin; nil means a client with a 5 s timeout.
	Client *http.Client
	// RSSEvery is how often the tree's RSS is sampled; 0 means 100 ms.
	RSSEvery time.Duration
}

// Scrape reads the target's counters from Admin + "/metrics".
func (m *Meter) Scrape(ctx context.Context) (AdminCounts, error) {
	client := m.Client
	if client == nil {
		client = &http.Client{Timeout: 5 * time.Second}
	}
	url := strings.TrimSuffix(m.Admin, "/") + "/metrics"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return AdminCounts{}, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return AdminCounts{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return AdminCounts{}, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	c, err := ParseMetrics(resp.Body)
	if err != nil {
		return c, fmt.Errorf("GET %s: %w", url, err)
	}
	return c, nil
}

// Snapshot is the target's state at one moment.
type Snapshot struct {
	At time.Time
	// Counts are valid when Counted (an admin address was given).
	Counted bool
	Counts  AdminCounts
	// The rest is valid when Metered (a pid was given).
	Metered bool
	// CPU is what the tree used since it started (see TreeCPU).
	CPU time.Duration
	// Drops holds the kernel's drop count of each UDP socket of the tree,
	// by inode.
	Drops map[uint64]uint64
	// Queued is what waits in those sockets' receive queues, in bytes.
	Queued uint64
	// RcvbufErrors is the namespace-wide UDP counter (RcvbufErrors).
	RcvbufErrors uint64
}

// Snapshot reads the target's counters and /proc figures now.
func (m *Meter) Snapshot(ctx context.Context) (Snapshot, error) {
	s := Snapshot{At: time.Now()}
	if m.Pid > 0 {
		stats := allStats()
		pids, err := tree(m.Pid, stats)
		if err != nil {
			return s, fmt.Errorf("target process: %w", err)
		}
		s.CPU = treeCPU(pids, stats)
		socks, err := proc.UDPSockets(m.Pid)
		if err != nil {
			return s, err
		}
		inodes := SocketInodes(pids)
		s.Drops = map[uint64]uint64{}
		for _, sk := range socks {
			if inodes[sk.Inode] {
				s.Drops[sk.Inode] = sk.Drops
				s.Queued += sk.RxQueue
			}
		}
		if s.RcvbufErrors, err = RcvbufErrors(m.Pid); err != nil {
			return s, err
		}
		s.Metered = true
	}
	if m.Admin != "" {
		c, err := m.Scrape(ctx)
		if err != nil {
			return s, err
		}
		s.Counts, s.Counted = c, true
	}
	return s, nil
}

// dropsSince returns the drops on the tree's sockets between two snapshots.
// A socket seen only in the later one (opened in between, such as by a
// reload) counts whole; one seen only in the earlier one is left out.
func dropsSince(before, after map[uint64]uint64) uint64 {
	var n uint64
	for ino, d := range after {
		if b, ok := before[ino]; ok && b <= d {
			n += d - b
		} else if !ok {
			n += d
		}
	}
	return n
}

// WatchRSS samples the RSS of the target's tree every RSSEvery until the
// returned function is called; that function returns the highest sum seen.
// The tree is listed anew every second (processes may come and go).
func (m *Meter) WatchRSS() (stop func() uint64) {
	if m.Pid <= 0 {
		return func() uint64 { return 0 }
	}
	every := m.RSSEvery
	if every <= 0 {
		every = 100 * time.Millisecond
	}
	done := make(chan struct{})
	var mu sync.Mutex
	var peak uint64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(every)
		defer tick.Stop()
		var pids []int
		var listed time.Time
		for {
			if time.Since(listed) >= time.Second {
				if p, err := ProcessTree(m.Pid); err == nil {
					pids = p
				}
				listed = time.Now()
			}
			if rss := TreeRSS(pids); rss > 0 {
				mu.Lock()
				peak = max(peak, rss)
				mu.Unlock()
			}
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	}()
	return func() uint64 {
		close(done)
		wg.Wait()
		mu.Lock()
		defer mu.Unlock()
		return peak
	}
}
