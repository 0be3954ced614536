package dogstatsd

import (
	"reflect"
	"strings"
	"testing"

	"github.com/veneurd/veneurd/sdk"
	"github.com/veneurd/veneurd/sdk/sdktest"
)

func TestConformance(t *testing.T) {
	lines := []string{
		"a:1|c|#b:2,a:1",
		"bad line",
		"_e{5,4}:title|text|#env:dev,app:web",
		"_sc|db.up|1|#env:dev|m:slow queries",
	}
	listen := []string{"udp://127.0.0.1:0", "tcp://127.0.0.1:0", "unixgram://", "unix://"}
	n := len(listen)
	got := sdktest.Source(t, func() sdk.Source { return New() }, sdktest.SourceCase{
		Listen: listen,
		Send: func(t *testing.T, addrs []string) {
			for _, a := range addrs {
				c := sdktest.Dial(t, a)
				if strings.HasPrefix(a, "udp") || strings.HasPrefix(a, "unixgram") {
					for _, l := range lines { // one datagram each
						if _, err := c.Write([]byte(l)); err != nil {
							t.Fatal(err)
						}
					}
					continue
				}
				if _, err := c.Write([]byte(strings.Join(lines, "\n") + "\n")); err != nil {
					t.Fatal(err)
				}
			}
		},
		Want: func(t *testing.T, got *sdktest.Collector) bool {
			return len(got.Metrics()) >= n && len(got.Errors()) >= n &&
				len(got.Events()) >= n && len(got.ServiceChecks()) >= n
		},
	})

	if len(got.Metrics()) != n || len(got.Errors()) != n || len(got.Events()) != n || len(got.ServiceChecks()) != n {
		t.Fatalf("want %d of each, got %s", n, got)
	}
	wantMetric := sdktest.Metric{Type: sdk.Counter, Scope: sdk.ScopeDefault, Name: "a", Tags: "a:1,b:2", Value: 1, Rate: 1}
	for _, m := range got.Metrics() {
		m.Protocol = ""
		if m != wantMetric {
			t.Errorf("metric %v, want %v", m, wantMetric)
		}
	}
	// Every line is counted under the protocol it came in by.
	wantReceived := sdktest.Received{"udp": 4, "tcp": 4, "unixgram": 4, "unix": 4}
	if r := got.Received(); !reflect.DeepEqual(r, wantReceived) {
		t.Errorf("received %v, want %v", r, wantReceived)
	}
	for _, e := range got.Errors() {
		if e != (sdktest.Error{PacketType: "metric", Reason: ReasonNoValue}) {
			t.Errorf("error %+v, want a metric rejected for %s", e, ReasonNoValue)
		}
	}
	wantEvent := sdk.Event{Title: "title", Text: "text", Priority: "normal", AlertType: "info", Tags: []string{"app:web", "env:dev"}}
	for _, e := range got.Events() {
		if !reflect.DeepEqual(e, wantEvent) {
			t.Errorf("event %+v, want %+v", e, wantEvent)
		}
	}
	wantCheck := sdk.ServiceCheck{Name: "db.up", Status: 1, Message: "slow queries", Tags: []string{"env:dev"}}
	for _, c := range got.ServiceChecks() {
		if !reflect.DeepEqual(c, wantCheck) {
			t.Errorf("service check %+v, want %+v", c, wantCheck)
		}
	}
}
