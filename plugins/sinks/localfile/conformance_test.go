package localfile

import (
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/veneurd/veneurd/sdk"
	"github.com/veneurd/veneurd/sdk/sdktest"
)

// formatLine is the line of a point, none for a point whose value is not
// finite. TestFormat and TestOddValues pin the format to the byte.
func formatLine(p sdk.Point) string {
	if math.IsNaN(p.Value) || math.IsInf(p.Value, 0) {
		return ""
	}
	l := PointLine(&p)
	return string(l.AppendJSON(nil))
}

// readLines returns the file's lines, events left out, checking that every
// line decodes.
func readLines(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dec := NewDecoder(strings.NewReader(string(b)))
	var out []string
	for _, raw := range strings.SplitAfter(string(b), "\n") {
		var l Line
		if err := dec.Decode(&l); err == io.EOF {
			if raw != "" {
				t.Fatalf("the file ends with a line without its newline: %q", raw)
			}
			break
		} else if err != nil {
			t.Fatal(err)
		}
		if l.Kind != KindEvent {
			out = append(out, strings.TrimSuffix(raw, "\n"))
		}
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
		"a directory":       dir,
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
