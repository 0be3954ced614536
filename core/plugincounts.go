package core

import (
	"strings"
	"sync"

	"github.com/veneurd/veneurd/core/telemetry"
	pb "github.com/veneurd/veneurd/sdk/proto"
)

// maxPluginSeries bounds the self-metric series that one plugin's own
// counts (sdk.Stats) make. A plugin that made up new names or tags in each
// report would otherwise grow the self-metrics without end. Past it, a
// count of a new series is dropped and counted, and the plugin is named in
// the log once.
const maxPluginSeries = 1000

// pluginSeries remembers the series each plugin's counts made, by the tag
// that names the plugin (sink:ADDRESS, source:ADDRESS).
type pluginSeries struct {
	mu      sync.Mutex
	plugins map[string]*madeSeries
}

type madeSeries struct {
	keys   map[string]struct{}
	warned bool
}

// admit reports whether c, counted by the plugin tagged tag, may be kept,
// and whether the plugin has just passed the bound.
func (p *pluginSeries) admit(tag string, c *pb.Count) (ok, first bool) {
	key := c.Name + "\x00" + strings.Join(c.Tags, ",")
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.plugins == nil {
		p.plugins = map[string]*madeSeries{}
	}
	m := p.plugins[tag]
	if m == nil {
		m = &madeSeries{keys: map[string]struct{}{}}
		p.plugins[tag] = m
	}
	if _, ok := m.keys[key]; ok {
		return true, false
	}
	if len(m.keys) < maxPluginSeries {
		m.keys[key] = struct{}{}
		return true, false
	}
	first, m.warned = !m.warned, true
	return false, first
}

// addPluginCounts adds what a plugin counted (sdk.Stats) to the
// self-metrics, with tag, which names the plugin.
func (s *Server) addPluginCounts(counts []*pb.Count, tag string) {
	for _, c := range counts {
		ok, first := s.pluginSeries.admit(tag, c)
		if !ok {
			if first {
				s.log.Warn("a plugin's own counts make too many series: counts of new ones are dropped",
					"plugin", tag, "max", maxPluginSeries, "dropped", c.Name)
			}
			s.tel.Counter(telemetry.PluginCountsDropped, tag).Add(1)
			continue
		}
		s.tel.Counter(c.Name, append(c.Tags, tag)...).Add(c.Value)
	}
}
