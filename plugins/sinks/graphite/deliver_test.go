package graphite_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/veneurd/veneurd/internal/receivers"
	"github.com/veneurd/veneurd/internal/sinkcheck"
	"github.com/veneurd/veneurd/plugins/sinks/graphite"
	"github.com/veneurd/veneurd/sdk"
)

// BenchmarkDeliver1M times a flush of 1,000,000 points to VictoriaMetrics'
// Graphite listener (see sinkcheck.Deliver). Plaintext has no
// acknowledgment: the time is until the last line is written.
func BenchmarkDeliver1M(b *testing.B) {
	vm := receivers.VictoriaMetrics(b)
	config := fmt.Sprintf(`{"address":%q,"timeout":"60s"}`, vm.Graphite)
	ts := time.Now().Unix() - 3600
	points := sinkcheck.BenchPoints(1_000_000, ts)
	for b.Loop() {
		took, _ := sinkcheck.Deliver(b, func() sdk.Sink { return graphite.New() }, config, points)
		b.ReportMetric(took.Seconds(), "s/flush")
	}
}
