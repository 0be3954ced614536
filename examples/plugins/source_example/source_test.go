package main

import (
	"context"
	"net"
	"strings"
	"testing"

	"github.com/veneurd/veneurd/sdk"
	"github.com/veneurd/veneurd/sdk/sdktest"
)

// TestSource runs the source through the SDK's kit on a TCP and a UNIX
// stream socket: every good line arrives once, as sent (a last line without
// its newline included), and every bad one is counted under its reason.
func TestSource(t *testing.T) {
	good := []string{
		`{"metric":"ex.requests","type":"counter","value":2,"tags":["env:dev","a:b"]}`,
		`{"metric":"ex.temp","type":"gauge","value":21.5}`,
		`{"metric":"ex.latency","type":"timer","value":12,"rate":0.5,"tags":["route:/a"]}`,
	}
	bad := map[string]string{
		`not json`:                                ReasonBadJSON,
		`{"type":"counter","value":1}`:            ReasonNoName,
		`{"metric":"x","type":"meter","value":1}`: ReasonBadType,
		`{"metric":"x","type":"counter","value":1,"tags":["a,b"]}`: ReasonBadTags,
		`{"metric":"x","type":"counter","value":1,"rate":2}`:       ReasonBadRate,
		`{"metric":"` + strings.Repeat("x", 300) + `"}`:            ReasonTooLong,
	}
	got := sdktest.Source(t, func() sdk.Source { return New() }, sdktest.SourceCase{
		Config: map[string]any{"max_line_length": 256},
		Listen: []string{"tcp://127.0.0.1:0", "unix://"},
		Send: func(t *testing.T, addrs []string) {
			for _, addr := range addrs {
				c := sdktest.Dial(t, addr)
				var all []string
				all = append(all, good...)
				for l := range bad {
					all = append(all, l)
				}
				// The last line without its newline.
				send(t, c, strings.Join(all, "\n"))
				c.Close()
			}
		},
		Want: func(t *testing.T, got *sdktest.Collector) bool {
			return len(got.Metrics()) >= 2*len(good) && len(got.Errors()) >= 2*len(bad)
		},
	})
	counts := map[string]int{}
	for _, m := range got.Metrics() {
		counts[m.String()]++
	}
	for _, proto := range []string{"tcp", "unix"} {
		for _, want := range []sdktest.Metric{
			{Protocol: proto, Type: sdk.Counter, Name: "ex.requests", Tags: "a:b,env:dev", Value: 2, Rate: 1},
			{Protocol: proto, Type: sdk.Gauge, Name: "ex.temp", Value: 21.5, Rate: 1},
			{Protocol: proto, Type: sdk.Timer, Name: "ex.latency", Tags: "route:/a", Value: 12, Rate: 0.5},
		} {
			if n := counts[want.String()]; n != 1 {
				t.Errorf("%s arrived %d times, want once", want, n)
			}
		}
	}
	if n := len(got.Metrics()); n != 2*len(good) {
		t.Errorf("%d samples, want %d: %s", n, 2*len(good), got)
	}
	reasons := map[string]int{}
	for _, e := range got.Errors() {
		reasons[e.PacketType+"/"+e.Reason]++
	}
	for _, r := range bad {
		if n := reasons["metric/"+r]; n != 2 {
			t.Errorf("%s counted %d times, want 2 (once per socket)", r, n)
		}
	}
}

func send(t *testing.T, c net.Conn, s string) {
	t.Helper()
	if _, err := c.Write([]byte(s)); err != nil {
		t.Fatal(err)
	}
}

// TestLineAcrossWrites sends a line in two writes over a synchronous pipe,
// whose first Write returns only once the reader has taken the half line,
// so that the line comes in two reads: it arrives once, whole.
func TestLineAcrossWrites(t *testing.T) {
	s := New()
	s.cfg = Config{MaxLineLength: 256}
	client, server := net.Pipe()
	col := &sdktest.Collector{}
	done := make(chan struct{})
	go func() { defer close(done); s.read(context.Background(), server, col.Writer("tcp")) }()

	line := `{"metric":"ex.split","type":"counter","value":5}` + "\n"
	send(t, client, line[:20])
	send(t, client, line[20:])
	client.Close()
	<-done
	col.Close()
	if ms := col.Metrics(); len(ms) != 1 || ms[0].Name != "ex.split" || ms[0].Value != 5 {
		t.Errorf("got %v, want ex.split = 5 once", ms)
	}
	for _, p := range col.Problems() {
		t.Errorf("Writer contract: %s", p)
	}
}
