package sdk

import (
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	pb "github.com/veneurd/veneurd/sdk/proto"
)

// Stats holds the counts a plugin keeps under veneurd's self-metric names,
// such as veneur.sink.metrics_dropped_total. A sink's counts travel back
// with each flush's result, a source's with the counts of lines it reports
// every 200 ms, and veneurd adds them to its own self-metrics, tagged with
// the plugin's address (sink:ADDRESS or source:ADDRESS), so that a plugin
// never needs a metrics client of its own. Safe for concurrent use; a nil *Stats
// counts nothing.
type Stats struct {
	mu     sync.Mutex
	counts map[string]*Count
}

// Count is one counter of a Stats. Look it up once and keep it: Add is an
// atomic add.
type Count struct {
	name string
	tags []string
	v    atomic.Uint64
	sent uint64 // the value at the last report; guarded by Stats.mu
}

// NewStats returns an empty Stats.
func NewStats() *Stats { return &Stats{counts: map[string]*Count{}} }

// Counter returns the counter name with tags ("key:value"), creating it at
// zero.
func (s *Stats) Counter(name string, tags ...string) *Count {
	if s == nil {
		return &Count{}
	}
	tags = slices.Clone(tags)
	slices.Sort(tags)
	key := name + "\x00" + strings.Join(tags, ",")
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.counts[key]
	if !ok {
		c = &Count{name: name, tags: tags}
		s.counts[key] = c
	}
	return c
}

// Add adds n.
func (c *Count) Add(n uint64) { c.v.Add(n) }

// Value returns the count.
func (c *Count) Value() uint64 { return c.v.Load() }

// Take returns what each counter gained since the last Take, leaving out
// those that did not change.
func (s *Stats) Take() []*pb.Count {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*pb.Count
	for _, c := range s.counts {
		v := c.v.Load()
		if v == c.sent {
			continue
		}
		out = append(out, &pb.Count{Name: c.name, Tags: c.tags, Value: v - c.sent})
		c.sent = v
	}
	slices.SortFunc(out, func(a, b *pb.Count) int {
		return strings.Compare(a.Name+strings.Join(a.Tags, ","), b.Name+strings.Join(b.Tags, ","))
	})
	return out
}
