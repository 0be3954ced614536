package openmetrics

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/veneurd/veneurd/sdk"
	"github.com/veneurd/veneurd/sdk/sdktest"
)

func TestConformance(t *testing.T) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i := n.Add(1)
		fmt.Fprintf(w, "# TYPE c_total counter\nc_total{b=\"2\",a=\"1\"} %d\n# TYPE g gauge\ng 3\n", 4*i)
	}))
	defer srv.Close()
	got := sdktest.Source(t, func() sdk.Source { return New() }, sdktest.SourceCase{
		Config: map[string]any{"targets": []string{srv.URL + "/metrics"}, "scrape_interval": "100ms"},
		AfterConfigure: func(t *testing.T) {
			if n.Load() != 0 {
				t.Error("Configure scraped")
			}
		},
		Want: func(t *testing.T, got *sdktest.Collector) bool {
			_, c := count(got, "c_total", "a:1,b:2")
			return c >= 2
		},
	})
	for _, m := range got.Metrics() {
		m.Protocol = ""
		switch m.Name {
		case "c_total":
			if m != (sdktest.Metric{Type: sdk.Counter, Name: "c_total", Tags: "a:1,b:2", Value: 4, Rate: 1}) {
				t.Errorf("metric %v, want an increase of 4", m)
			}
		case "g":
			if m != (sdktest.Metric{Type: sdk.Gauge, Name: "g", Value: 3, Rate: 1}) {
				t.Errorf("metric %v", m)
			}
		case Up:
			if m.Value != 1 {
				t.Errorf("metric %v", m)
			}
		default:
			t.Errorf("unexpected metric %v", m)
		}
	}
	if r := got.Received(); len(r) != 1 || r[Protocol] == 0 {
		t.Errorf("received %v, want everything under %q", r, Protocol)
	}
}
