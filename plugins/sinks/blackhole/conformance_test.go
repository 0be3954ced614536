package blackhole

import (
	"testing"

	"github.com/veneurd/veneurd/sdk"
	"github.com/veneurd/veneurd/sdk/sdktest"
)

func TestConformance(t *testing.T) {
	var s *Sink
	points := sdktest.Sink(t, func() sdk.Sink { s = New(); return s }, sdktest.SinkCase{})
	if got := s.Points(); got != uint64(len(points)) {
		t.Fatalf("the blackhole counted %d points, %d were flushed", got, len(points))
	}
}
