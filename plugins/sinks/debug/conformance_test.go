package debug

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/veneurd/veneurd/sdk"
	"github.com/veneurd/veneurd/sdk/sdktest"
)

// captureStdout points os.Stdout, which the sink prints to, at a file for the
// rest of the test and returns a function reading what was printed.
func captureStdout(t *testing.T) func() string {
	f, err := os.Create(t.TempDir() + "/stdout")
	if err != nil {
		t.Fatal(err)
	}
	old := os.Stdout
	os.Stdout = f
	t.Cleanup(func() {
		os.Stdout = old
		f.Close()
	})
	return func() string {
		b, err := os.ReadFile(f.Name())
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
}

// pointLine is how the sink prints a point.
func pointLine(p sdk.Point) string {
	s := fmt.Sprintf("  %-8s %s", p.Type, printable(p.Name))
	if len(p.Tags) > 0 {
		s += "{" + strings.Join(printableAll(p.Tags), ",") + "}"
	}
	s += fmt.Sprintf(" = %g", p.Value)
	if p.Message != "" {
		s += fmt.Sprintf(" %q", p.Message)
	}
	return s
}

func TestConformance(t *testing.T) {
	for _, events := range []bool{true, false} {
		t.Run(fmt.Sprintf("events=%t", events), func(t *testing.T) {
			printed := captureStdout(t)
			lines := func() (headers, points, evs int, pl []string) {
				for _, l := range strings.Split(printed(), "\n") {
					switch {
					case strings.HasPrefix(l, "flush "):
						headers++
					case strings.HasPrefix(l, "  event    "):
						evs++
					case strings.HasPrefix(l, "  "):
						pl = append(pl, l)
					}
				}
				return headers, len(pl), evs, pl
			}
			sdktest.Sink(t, func() sdk.Sink { return New() }, sdktest.SinkCase{
				Config: map[string]any{"events": events},
				AfterConfigure: func(t *testing.T) {
					if out := printed(); out != "" {
						t.Fatalf("Configure printed %q", out)
					}
				},
				Observe: func(t *testing.T) []string {
					headers, _, evs, pl := lines()
					// Five flushes hold points and two events each, one of
					// them in three parts, each part with its header; the
					// empty flush prints nothing. Then the odd values: one
					// flush in three parts (its seven events in the last),
					// one with two events.
					if headers != 17 {
						t.Errorf("printed %d flush headers, want 17", headers)
					}
					if want := map[bool]int{true: 19, false: 0}[events]; evs != want {
						t.Errorf("printed %d events, want %d", evs, want)
					}
					return pl
				},
				Format: pointLine,
			})
		})
	}
}
