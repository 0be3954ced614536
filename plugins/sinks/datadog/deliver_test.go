package datadog_test

import (
	"fmt"
	"testing"

	"github.com/veneurd/veneurd/internal/sinkcheck"
	"github.com/veneurd/veneurd/plugins/sinks/datadog"
	"github.com/veneurd/veneurd/sdk"
)

// BenchmarkDeliver1M times flushes of 1,000,000 points (see
// sinkcheck.BenchDeliver).
func BenchmarkDeliver1M(b *testing.B) {
	sinkcheck.BenchDeliver(b, func() sdk.Sink { return datadog.New() }, func(base string) string {
		return fmt.Sprintf(`{"address":"%s/datadog","api_key":"bench","timeout":"60s"}`, base)
	})
}
