package debug

import (
	"context"
	"math"
	"strings"
	"testing"

	"github.com/veneurd/veneurd/sdk"
)

// TestOddValues prints values that are not finite and strings that would
// break a line: every point is still one line.
func TestOddValues(t *testing.T) {
	printed := captureStdout(t)
	s := New()
	if err := s.Configure(context.Background(), sdk.Env{}, s.Config()); err != nil {
		t.Fatal(err)
	}
	const ts = 1795300000
	err := s.Flush(context.Background(), &sdk.Flush{
		Timestamp: ts,
		Points: []sdk.Point{
			{Name: "odd.nan", Type: sdk.PointGauge, Value: math.NaN(), Timestamp: ts},
			{Name: "odd.two\nlines", Tags: []string{"a:b", "tab:\t", `q:"x"`}, Type: sdk.PointCounter, Value: 1, Timestamp: ts},
			{Name: "odd.inf", Tags: []string{"bad:\xff"}, Type: sdk.PointCounter, Value: math.Inf(1), Timestamp: ts},
			{Name: "odd.check", Type: sdk.PointStatus, Value: 2, Timestamp: ts, Message: "one\ntwo"},
			{Name: "odd.neginf ünïcödé", Type: sdk.PointGauge, Value: math.Inf(-1), Timestamp: ts},
		},
		Events: []sdk.Event{{Title: "deploy\tv2", Text: "one\ntwo\xff", Tags: []string{"env:dev", "nl:\n"}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Join([]string{
		"flush 2026-11-21T22:26:40Z: 5 points",
		`  gauge    odd.nan = NaN`,
		`  counter  "odd.two\nlines"{a:b,"tab:\t",q:"x"} = 1`,
		`  counter  odd.inf{"bad:\xff"} = +Inf`,
		`  status   odd.check = 2 "one\ntwo"`,
		`  gauge    odd.neginf ünïcödé = -Inf`,
		`  event    "deploy\tv2" "one\ntwo\xff" tags=[env:dev "nl:\n"]`,
	}, "\n") + "\n"
	if got := printed(); got != want {
		t.Fatalf("printed\n%s\nwant\n%s", got, want)
	}
}
