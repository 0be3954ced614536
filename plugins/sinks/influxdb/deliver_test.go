package influxdb_test

import (
	"fmt"
	"testing"

	"github.com/veneurd/veneurd/internal/sinkcheck"
	"github.com/veneurd/veneurd/plugins/sinks/influxdb"
	"github.com/veneurd/veneurd/sdk"
)

// BenchmarkDeliver1M times flushes of 1,000,000 points (see
// sinkcheck.BenchDeliver).
func BenchmarkDeliver1M(b *testing.B) {
	sinkcheck.BenchDeliver(b, func() sdk.Sink { return influxdb.New() }, func(base string) string {
		return fmt.Sprintf(`{"address":%q,"database":"bench","timeout":"60s"}`, base)
	})
}
