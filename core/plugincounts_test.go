package core

import (
	"strconv"
	"testing"
	"time"

	"github.com/veneurd/veneurd/core/telemetry"
	pb "github.com/veneurd/veneurd/sdk/proto"
)

// TestPluginCountsBounded: a plugin's own counts make at most
// maxPluginSeries self-metric series. Counts of new series past that are
// dropped and counted, those of series it made still add, and another
// plugin has a bound of its own.
func TestPluginCountsBounded(t *testing.T) {
	s := New(pipeline(time.Second, time.Second), Options{Plugins: newFakePlugins()})
	const tag = "source:source.made_up.in"
	var counts []*pb.Count
	for i := range maxPluginSeries + 5 {
		counts = append(counts, &pb.Count{Name: "made_up.count", Tags: []string{"id:" + strconv.Itoa(i)}, Value: 2})
	}
	s.addPluginCounts(counts, tag)
	s.addPluginCounts(counts[:1], tag)
	s.addPluginCounts(counts[:1], "sink:sink.other.out")

	if v := s.tel.CounterValue("made_up.count", "id:0", tag); v != 4 {
		t.Errorf("the first series = %d, want 4", v)
	}
	if v := s.tel.CounterValue("made_up.count", "id:"+strconv.Itoa(maxPluginSeries-1), tag); v != 2 {
		t.Errorf("the last series within the bound = %d, want 2", v)
	}
	if n := len(s.tel.Counters("made_up.count", "id", tag)); n != maxPluginSeries {
		t.Errorf("%d series made, want %d", n, maxPluginSeries)
	}
	if v := s.tel.CounterValue(telemetry.PluginCountsDropped, tag); v != 5 {
		t.Errorf("%s = %d, want 5", telemetry.PluginCountsDropped, v)
	}
	if v := s.tel.CounterValue("made_up.count", "id:0", "sink:sink.other.out"); v != 2 {
		t.Errorf("another plugin's series = %d, want 2", v)
	}
}
