package localfile

import (
	"bytes"
	"context"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"

	"github.com/veneurd/veneurd/sdk"
)

// run configures a sink writing to path, starts it, flushes each flush and
// stops it. It returns the sink and what it logged.
func run(t *testing.T, path string, flushes ...sdk.Flush) (*Sink, string) {
	t.Helper()
	ctx := context.Background()
	s := New()
	cfg := s.Config().(*Config)
	cfg.Path = path
	var logs bytes.Buffer
	log := hclog.New(&hclog.LoggerOptions{Output: &logs, DisableTime: true})
	if err := s.Configure(ctx, sdk.Env{Address: "sink.localfile.test", Logger: log}, cfg); err != nil {
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
	return s, logs.String()
}

// readFile returns the file's content.
func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
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
	if got := readFile(t, path); got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
}

// TestOddValues flushes points whose value JSON cannot hold among good ones,
// and strings that need escaping or are not valid UTF-8: the bad points are
// skipped, counted and logged, and everything else is written, escaped.
func TestOddValues(t *testing.T) {
	path := filepath.Join(t.TempDir(), "points.jsonl")
	const ts = 1795300000
	s, logs := run(t, path, sdk.Flush{
		Timestamp: ts,
		Points: []sdk.Point{
			{Name: "odd.tab\tname", Tags: []string{"nl:a\nb", `q:"x"`}, Type: sdk.PointCounter, Value: 1, Timestamp: ts, Hostname: "h1"},
			{Name: "odd.nan", Type: sdk.PointGauge, Value: math.NaN(), Timestamp: ts, Hostname: "h1"},
			{Name: "odd.invalid\xff\xfe", Tags: []string{"cut:\xe2\x82"}, Type: sdk.PointGauge, Value: -0.5, Timestamp: ts, Hostname: "h\x00"},
			{Name: "odd.inf", Tags: []string{"a:b"}, Type: sdk.PointCounter, Value: math.Inf(1), Timestamp: ts, Hostname: "h1"},
			{Name: "odd.check", Type: sdk.PointStatus, Value: 2, Timestamp: ts, Hostname: "h1", Message: "one\ntwo\t\"quoted\" \\ <b>&\r"},
			{Name: "odd.neginf", Type: sdk.PointStatus, Value: math.Inf(-1), Timestamp: ts, Hostname: "h1", Message: "x"},
			{Name: "odd.separators\u2028\u2029", Type: sdk.PointGauge, Value: 3, Timestamp: ts},
		},
		Events: []sdk.Event{
			{Title: "deploy\tv2", Text: "one\ntwo\r\n\xff", Tags: []string{`env:"dev"`}, Hostname: "h1", AlertType: "info"},
		},
	})
	want := strings.Join([]string{
		`{"name":"odd.tab\tname","tags":["nl:a\nb","q:\"x\""],"type":"counter","value":1,"timestamp":1795300000,"hostname":"h1"}`,
		`{"name":"odd.invalid\ufffd\ufffd","tags":["cut:\ufffd\ufffd"],"type":"gauge","value":-0.5,"timestamp":1795300000,"hostname":"h\u0000"}`,
		`{"kind":"service_check","name":"odd.check","tags":[],"type":"status","value":2,"timestamp":1795300000,"hostname":"h1","message":"one\ntwo\t\"quoted\" \\ \u003cb\u003e\u0026\r"}`,
		`{"name":"odd.separators\u2028\u2029","tags":[],"type":"gauge","value":3,"timestamp":1795300000,"hostname":""}`,
		`{"kind":"event","title":"deploy\tv2","text":"one\ntwo\r\n\ufffd","tags":["env:\"dev\""],"timestamp":1795300000,"hostname":"h1","alert_type":"info"}`,
	}, "\n") + "\n"
	if got := readFile(t, path); got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
	if got := s.Skipped(); got != 3 {
		t.Errorf("Skipped() = %d, want 3", got)
	}
	if want := "[WARN]  skipped points whose value is NaN or infinite, which JSON cannot hold: points=3 first=odd.nan\n"; logs != want {
		t.Errorf("logged %q, want %q", logs, want)
	}
}
