package otlp_test

import (
	"fmt"
	"testing"

	"github.com/veneurd/veneurd/internal/sinkcheck"
	"github.com/veneurd/veneurd/plugins/sinks/otlp"
	"github.com/veneurd/veneurd/sdk"
)

// BenchmarkDeliver1M times flushes of 1,000,000 points over OTLP/HTTP (see
// sinkcheck.BenchDeliver).
func BenchmarkDeliver1M(b *testing.B) {
	sinkcheck.BenchDeliver(b, func() sdk.Sink { return otlp.New() }, func(base string) string {
		return fmt.Sprintf(`{"endpoint":"%s/opentelemetry/v1/metrics","timeout":"60s"}`, base)
	})
}
