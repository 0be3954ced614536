package pluginhost

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/hcl/v2"

	"github.com/veneurd/veneurd/core/config"
	"github.com/veneurd/veneurd/internal/daemontest"
	"github.com/veneurd/veneurd/internal/state"
	"github.com/veneurd/veneurd/sdk"
	pb "github.com/veneurd/veneurd/sdk/proto"
)

func launcher(t *testing.T) *Launcher {
	return &Launcher{Self: daemontest.Binary(t), Logger: hclog.New(&hclog.LoggerOptions{Level: hclog.Warn, Output: testWriter{t}})}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(b)))
	return len(b), nil
}

// TestMillionPointFlush sends one flush of 1,000,000 points to a real
// blackhole sink process: it must arrive whole, in chunks under gRPC's
// message limit.
func TestMillionPointFlush(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a plugin process")
	}
	s, err := StartSink(launcher(t), Spec{Type: "blackhole", Address: "sink.blackhole.test"}, &pb.ConfigureRequest{ConfigJson: []byte("{}")})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop(context.Background())
	f := &sdk.Flush{Timestamp: 1}
	for i := range 1_000_000 {
		f.Points = append(f.Points, sdk.Point{Name: "a.fairly.typical.metric.name", Tags: []string{"env:prod", fmt.Sprintf("host:h%d", i)},
			Type: sdk.PointCounter, Value: float64(i), Timestamp: 1, Hostname: "host"})
	}
	b := NewFlushBatch()
	c := NewChunker(f.Timestamp, f.Interval, b.Add)
	for i := range f.Points {
		c.Append(&f.Points[i])
	}
	c.Finish()
	b.Close()
	chunks, _, _ := b.Wait(context.Background())
	if len(chunks) < 2 {
		t.Fatalf("1,000,000 points in %d chunk(s)", len(chunks))
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	start := time.Now()
	if _, err := s.Flush(ctx, b); err != nil { // the sink acknowledges the number of points it saw
		t.Fatal(err)
	}
	t.Logf("1,000,000 points in %d chunks flushed in %s", len(chunks), time.Since(start))
}

// TestExternalPluginRefusals checks that a binary whose checksum differs
// from its pin, and one built against another protocol version, are refused
// with messages that say so.
func TestExternalPluginRefusals(t *testing.T) {
	if testing.Short() {
		t.Skip("builds plugins")
	}
	dir := t.TempDir()
	sleepy := daemontest.BuildPlugin(t, "./internal/daemontest/plugins/sleepy", dir)
	oldproto := daemontest.BuildPlugin(t, "./internal/daemontest/plugins/oldproto", dir)
	l := launcher(t)

	_, err := l.Start(Spec{Kind: sdk.KindSink, Type: "sleepy", Address: "plugin.sink.sleepy", Path: sleepy,
		SHA256: strings.Repeat("ab", 32)})
	if err == nil || !strings.Contains(err.Error(), "does not match its sha256") {
		t.Errorf("checksum mismatch: %v", err)
	}
	b, rerr := os.ReadFile(sleepy)
	if rerr != nil {
		t.Fatal(rerr)
	}
	actual := sha256.Sum256(b)
	if err == nil || !strings.Contains(err.Error(), strings.Repeat("ab", 32)) || !strings.Contains(err.Error(), hex.EncodeToString(actual[:])) {
		t.Errorf("the checksum mismatch does not name the expected and the actual sha256: %v", err)
	}

	_, err = l.Start(Spec{Kind: sdk.KindSink, Type: "oldproto", Address: "plugin.sink.oldproto", Path: oldproto})
	if err == nil || !strings.Contains(err.Error(), "Plugin version: 99") || !strings.Contains(err.Error(), "Client versions: [2]") {
		t.Errorf("incompatible protocol: %v", err)
	}

	// Through the registry, the same refusals are diagnostics at the plugin block.
	cat := NewRegistry(noBuiltins{}, l)
	defer cat.Close()
	_, diags := cat.Extend([]config.External{{Kind: "sink", Type: "old", Path: oldproto,
		PathRange: rangeIn("p.hcl", 2)}}, config.Daemon{})
	if !diags.HasErrors() || !strings.Contains(diags.Error(), "p.hcl:2") || !strings.Contains(diags.Error(), "Plugin version: 99") {
		t.Errorf("diagnostics: %v", diags)
	}
	if info, err := cat.Lookup("sink", "missing"); err == nil {
		t.Errorf("unknown plugin found: %+v", info)
	}
}

type noBuiltins struct{}

func (noBuiltins) Types(string) []string { return nil }
func (noBuiltins) Lookup(kind, typ string) (config.PluginInfo, error) {
	return config.PluginInfo{}, config.ErrUnknownPlugin
}
func (noBuiltins) Check(string, string, []byte) error { return nil }

func rangeIn(file string, line int) hcl.Range {
	return hcl.Range{Filename: file, Start: hcl.Pos{Line: line, Column: 3}, End: hcl.Pos{Line: line, Column: 9}}
}

// TestSkippedIntervalEndIsEndedByTheNextCut: a Cut that cannot start, for a
// cut of the process's own still streaming, leaves the interval's end to the
// next cut, so the series limits of the process count anew from there
// rather than over two intervals.
func TestSkippedIntervalEndIsEndedByTheNextCut(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a plugin process")
	}
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	f, err := conn.(*net.UDPConn).File()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()

	var mu sync.Mutex
	table := state.New(state.Params{}, 1)
	var seen, limited atomic.Uint64 // samples the process read, and refused
	h := SourceHandlers{
		Batch: func(b *pb.Batch) {
			seen.Add(b.Processed + b.SeriesLimited)
			limited.Add(b.SeriesLimited)
		},
		State: func(records []byte) {
			mu.Lock()
			defer mu.Unlock()
			if _, err := table.MergeRecords(records); err != nil {
				t.Error(err)
			}
		},
	}
	params := &pb.StateParams{Compression: 100, HllPrecision: 14}
	addr := conn.LocalAddr().String()
	s, err := StartSource(launcher(t), Spec{Type: "dogstatsd", Address: "source.dogstatsd.test", Files: []*os.File{f}},
		[]string{"udp://" + addr}, &pb.ConfigureRequest{ConfigJson: []byte("{}")}, params, nil, &pb.Limits{MaxSeries: 1}, h)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop(10 * time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	send := func(line string, total uint64) {
		t.Helper()
		c, err := net.Dial("udp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := c.Write([]byte(line)); err != nil {
			t.Fatal(err)
		}
		if !daemontest.Until(10*time.Second, func() bool { return seen.Load() >= total }) {
			t.Fatalf("the source reported %d samples read, want %d", seen.Load(), total)
		}
	}

	send("a:1|c", 1) // the interval's one series
	// A cut of the process's own is streaming: the flush's Cut cannot start.
	s.cutting <- struct{}{}
	expired, stop := context.WithCancel(ctx)
	stop()
	if err := s.Cut(expired, params); err == nil {
		t.Fatal("a Cut started while another held the token")
	}
	<-s.cutting
	// The next cut, one the process asked for, ends the interval.
	s.cutting <- struct{}{}
	if err := s.cut(ctx, &pb.CutRequest{Params: params}); err != nil {
		t.Fatal(err)
	}
	send("b:1|c", 2) // the next interval's one series
	if err := s.Cut(ctx, params); err != nil {
		t.Fatal(err)
	}
	if n := limited.Load(); n != 0 {
		t.Errorf("%d samples refused by the series limit, want 0: the interval did not end", n)
	}
	mu.Lock()
	defer mu.Unlock()
	got := map[string]float64{}
	for _, se := range table.Take(0) {
		got[se.Name()] = se.Value
	}
	if got["a"] != 1 || got["b"] != 1 || len(got) != 2 {
		t.Errorf("the cuts handed over %v, want a=1 and b=1", got)
	}
}
