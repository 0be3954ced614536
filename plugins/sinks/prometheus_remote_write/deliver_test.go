package remotewrite_test

import (
	"fmt"
	"testing"

	"github.com/veneurd/veneurd/internal/sinkcheck"
	remotewrite "github.com/veneurd/veneurd/plugins/sinks/prometheus_remote_write"
	"github.com/veneurd/veneurd/sdk"
)

// BenchmarkDeliver1M times flushes of 1,000,000 points (see
// sinkcheck.BenchDeliver).
func BenchmarkDeliver1M(b *testing.B) {
	sinkcheck.BenchDeliver(b, func() sdk.Sink { return remotewrite.New() }, func(base string) string {
		return fmt.Sprintf(`{"endpoint":"%s/api/v1/write","timeout":"60s"}`, base)
	})
}
