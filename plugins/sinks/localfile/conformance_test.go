package localfile

import (
	"bufio"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/veneurd/veneurd/sdk"
	"github.com/veneurd/veneurd/sdk/sdktest"
)

// formatLine is the documented format of a point's line, written out
// independently of the sink's own types: none for a point whose value is not
// finite.
func formatLine(p sdk.Point) string {
	if math.IsNaN(p.Value) || math.IsInf(p.Value, 0) {
		return ""
	}
	var line struct {
		Kind      string   `json:"kind,omitempty"`
		Name      string   `json:"name"`
		Tags      []string `json:"tags"`
		Type      string   `json:"type"`
		Value     float64  `json:"value"`
		Timestamp int64    `json:"timestamp"`
		Hostname  string   `json:"hostname"`
		Message   string   `json:"message,omitempty"`
	}
	if p.Type == sdk.PointStatus {
		line.Kind = "service_check"
	}
	line.Name, line.Tags, line.Type, line.Value = p.Name, p.Tags, p.Type.String(), p.Value
	line.Timestamp, line.Hostname, line.Message = p.Timestamp, p.Hostname, p.Message
	if line.Tags == nil {
		line.Tags = []string{}
	}
	b, err := json.Marshal(line)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// readLines returns the file's lines, events left out.
func readLines(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if !strings.HasPrefix(sc.Text(), `{"kind":"event",`) {
			out = append(out, sc.Text())
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestConformance(t *testing.T) {
	path := filepath.Join(t.TempDir(), "points.jsonl")
	var s *Sink
	points := sdktest.Sink(t, func() sdk.Sink { s = New(); return s }, sdktest.SinkCase{
		Config: map[string]any{"path": path},
		AfterConfigure: func(t *testing.T) {
			if _, err := os.Stat(path); !os.IsNotExist(err) {
				t.Fatalf("Configure created %s (stat: %v); the file must not be opened before Start", path, err)
			}
		},
		Observe: func(t *testing.T) []string { return readLines(t, path) },
		Format:  formatLine,
	})
	var nonFinite uint64
	for _, p := range points {
		if math.IsNaN(p.Value) || math.IsInf(p.Value, 0) {
			nonFinite++
		}
	}
	if got := s.Skipped(); got != nonFinite || got == 0 {
		t.Errorf("the sink counted %d points skipped, %d of those flushed were not finite", got, nonFinite)
	}
}

func TestRejectsPath(t *testing.T) {
	dir := t.TempDir()
	notDir := filepath.Join(dir, "file")
	if err := os.WriteFile(notDir, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for name, path := range map[string]string{
		"empty":             "",
		"missing directory": filepath.Join(dir, "missing", "points.jsonl"),
		"not a directory":   filepath.Join(notDir, "points.jsonl"),
	} {
		t.Run(name, func(t *testing.T) {
			diags := sdktest.Configure(t, New(), map[string]any{"path": path})
			if len(diags) != 1 || diags[0].Attribute != "path" || diags[0].Severity != 1 {
				t.Fatalf("path %q: got diagnostics %v, want one error about the attribute path", path, diags)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(dir, "missing")); !os.IsNotExist(err) {
		t.Fatalf("Configure created the missing directory (stat: %v)", err)
	}
}
