package localfile

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"

	"github.com/veneurd/veneurd/sdk"
)

// run configures a sink writing to path, starts it, flushes each flush and
// stops it.
func run(t *testing.T, path string, flushes ...sdk.Flush) {
	t.Helper()
	ctx := context.Background()
	s := New()
	cfg := s.Config().(*Config)
	cfg.Path = path
	if err := s.Configure(ctx, sdk.Env{Address: "sink.localfile.test", Logger: hclog.NewNullLogger()}, cfg); err != nil {
		t.Fatal(err)
	}
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	for i := range flushes {
		if err := s.Flush(ctx, &flushes[i]); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Stop(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestFormat(t *testing.T) {
	path := filepath.Join(t.TempDir(), "points.jsonl")
	const ts = 1795300000
	run(t, path, sdk.Flush{
		Timestamp: ts,
		Points: []sdk.Point{
			{Name: "x.count", Tags: []string{"a:b", "env:dev"}, Type: sdk.PointCounter, Value: 3, Timestamp: ts, Hostname: "h1"},
			{Name: "x.max", Type: sdk.PointGauge, Value: -2.5, Timestamp: ts, Hostname: "h1"},
			{Name: "x.min", Tags: []string{}, Type: sdk.PointGauge, Value: 0.125, Timestamp: ts},
			{Name: "db.up", Tags: []string{"env:dev"}, Type: sdk.PointStatus, Value: 2, Timestamp: ts, Hostname: "h1", Message: "connection refused"},
			{Name: "web.up", Type: sdk.PointStatus, Value: 0, Timestamp: ts, Hostname: "h2"},
		},
		Events: []sdk.Event{
			{Title: "deploy", Text: "v2", Tags: []string{"env:dev"}, Hostname: "h1", Priority: "normal", AlertType: "info"},
		},
	})
	// A second run appends to the file.
	run(t, path, sdk.Flush{Timestamp: ts + 10, Points: []sdk.Point{
		{Name: "x.count", Tags: []string{"a:b", "env:dev"}, Type: sdk.PointCounter, Value: 1e21, Timestamp: ts + 10, Hostname: "h1"},
	}})

	want := strings.Join([]string{
		`{"name":"x.count","tags":["a:b","env:dev"],"type":"counter","value":3,"timestamp":1795300000,"hostname":"h1"}`,
		`{"name":"x.max","tags":[],"type":"gauge","value":-2.5,"timestamp":1795300000,"hostname":"h1"}`,
		`{"name":"x.min","tags":[],"type":"gauge","value":0.125,"timestamp":1795300000,"hostname":""}`,
		`{"kind":"service_check","name":"db.up","tags":["env:dev"],"type":"status","value":2,"timestamp":1795300000,"hostname":"h1","message":"connection refused"}`,
		`{"kind":"service_check","name":"web.up","tags":[],"type":"status","value":0,"timestamp":1795300000,"hostname":"h2"}`,
		`{"kind":"event","title":"deploy","text":"v2","tags":["env:dev"],"timestamp":1795300000,"hostname":"h1","priority":"normal","alert_type":"info"}`,
		`{"name":"x.count","tags":["a:b","env:dev"],"type":"counter","value":1e+21,"timestamp":1795300010,"hostname":"h1"}`,
	}, "\n") + "\n"
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
}
