package receivers

import (
	"fmt"
	"net"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestCarbonName(t *testing.T) {
	for in, want := range map[string]string{
		"a.b.c":              "a.b.c",
		"a;k=v":              "a;k=v",
		"a;z=1;k=v;host=h1":  "a;host=h1;k=v;z=1",
		"a;k=1;k=2":          "a;k=2",
		"a;a=1;a.b=2":        "a;a.b=2;a=1",
		"x;name=y":           "x",
		"~x;k=v":             "x;k=v",
		"a;k=":               "a;k=",
		"a;k!=v;b=1":         "a;k!=v;b=1",
		"a;k=~v":             "a;k=~v",
		";k=v":               ";k=v",
		"a.b;k=v.w;j=with/x": "a.b;j=with/x;k=v.w",
	} {
		if got := CarbonName(in); got != want {
			t.Errorf("CarbonName(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestCarbon writes plaintext lines to a real carbon-cache and reads the
// whisper files back: the findings in CarbonCache's doc comment.
func TestCarbon(t *testing.T) {
	c := Carbon(t)
	now := time.Now().Unix()
	sendTCP(t, c.Line, strings.Join([]string{
		fmt.Sprintf("cb.a.b 1.5 %d", now-1),
		fmt.Sprintf("cb.a.b 2.5 %d.9", now),
		fmt.Sprintf("cb.c-d_e:f 3 %d", now),
		fmt.Sprintf("cb.same 1 %d", now),
		fmt.Sprintf("cb.same 2 %d", now),
		fmt.Sprintf("cb.tagged;z=1;k=v.w;host=h1;z=2 4 %d", now),
		fmt.Sprintf("cb.named;name=other 5 %d", now),
		fmt.Sprintf("cb.bad;k= 6 %d", now),
		fmt.Sprintf("cb.future 7 %d", now+100),
		// Older than the retention, and NaN: dropped.
		fmt.Sprintf("cb.mixed 8 %d", now-retentionSeconds-100),
		fmt.Sprintf("cb.mixed nan %d", now-1),
		fmt.Sprintf("cb.mixed 9 %d", now),
		"cb.notime 9",
		"cb.now 10 -1",
	}, "\n")+"\n")
	checkPoints := func(name string, want ...Point) {
		t.Helper()
		got := c.WaitPoints(t, name, wait, func(p []Point) bool { return len(p) >= len(want) })
		if !slices.Equal(got, want) {
			t.Errorf("%s: got %v, want %v", name, got, want)
		}
	}
	checkPoints("cb.a.b", Point{now - 1, 1.5}, Point{now, 2.5})
	checkPoints("cb.c-d_e:f", Point{now, 3})
	checkPoints("cb.same", Point{now, 2})
	checkPoints("cb.tagged;host=h1;k=v.w;z=2", Point{now, 4})
	checkPoints("cb.tagged;z=2;k=v.w;host=h1", Point{now, 4}) // any order
	checkPoints("cb.named", Point{now, 5})
	checkPoints("cb.bad;k=", Point{now, 6})
	checkPoints("cb.future", Point{now + 100, 7})
	// A series' points are written together or in the order they came: once
	// the newest is there, the others were dealt with.
	checkPoints("cb.mixed", Point{now, 9})
	if p := c.WaitPoints(t, "cb.now", wait, func(p []Point) bool { return len(p) > 0 }); p[0].Timestamp < now || p[0].Timestamp > time.Now().Unix() || p[0].Value != 10 {
		t.Errorf("cb.now: %v", p)
	}
	// Carbon logs a line it drops as it reads it, and cb.now came after.
	if !strings.Contains(c.Output(), "invalid line received") || !strings.Contains(c.Output(), "Error parsing metric cb.bad;k=") {
		t.Errorf("carbon did not log the line without timestamp and the bad tag")
	}
	want := []string{"cb.a.b", "cb.bad;k=", "cb.c-d_e:f", "cb.future", "cb.mixed", "cb.named", "cb.now", "cb.same", "cb.tagged;host=h1;k=v.w;z=2"}
	if got := c.Metrics(t); !slices.Equal(got, want) {
		t.Errorf("metrics: got %q, want %q", got, want)
	}
}

// TestCarbonRestart stops carbon-cache and starts it again: what it had is
// still there, and it takes lines again.
func TestCarbonRestart(t *testing.T) {
	c := Carbon(t)
	now := time.Now().Unix()
	sendTCP(t, c.Line, fmt.Sprintf("restart 1 %d\n", now-1))
	c.WaitPoints(t, "restart", wait, func(p []Point) bool { return len(p) == 1 })
	c.Stop()
	if err := sendErr(c.Line); err == nil {
		t.Fatal("carbon-cache still takes connections after Stop")
	}
	c.Start()
	sendTCP(t, c.Line, fmt.Sprintf("restart 2 %d\n", now))
	p := c.WaitPoints(t, "restart", wait, func(p []Point) bool { return len(p) == 2 })
	if !slices.Equal(p, []Point{{now - 1, 1}, {now, 2}}) {
		t.Errorf("after Start: %v", p)
	}
}

// sendErr reports whether addr takes a TCP connection.
func sendErr(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err == nil {
		c.Close()
	}
	return err
}
