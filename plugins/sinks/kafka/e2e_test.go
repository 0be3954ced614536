package kafka_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/protobuf/proto"

	"github.com/veneurd/veneurd/internal/daemontest"
	"github.com/veneurd/veneurd/internal/sinkcheck"
	"github.com/veneurd/veneurd/plugins/sinks/kafka"
	"github.com/veneurd/veneurd/plugins/sinks/localfile"
)

// cluster starts kfake, franz-go's in-process implementation of the Kafka
// protocol (no Kafka broker can be installed where the tests run), on port
// (0: any), keeping its log in dir, with topics.
func cluster(t *testing.T, port int, dir string, topics ...string) *kfake.Cluster {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(port), kfake.DataDir(dir), kfake.SeedTopics(2, topics...))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// record is one record read back.
type record struct{ key, value []byte }

// consume reads every record of topic from the start, until none came for a
// moment.
func consume(t *testing.T, addrs []string, topic string) []record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var out []record
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		fs := cl.PollFetches(ctx)
		cancel()
		if ctx.Err() != nil && fs.NumRecords() == 0 {
			return out
		}
		fs.EachRecord(func(r *kgo.Record) { out = append(out, record{r.Key, r.Value}) })
	}
}

// key identifies a point in both formats, the way the oracle has it.
func key(name string, tags []string, host string, ts int64) sinkcheck.Key {
	return sinkcheck.Key{Series: name + "{" + strings.Join(tags, ",") + "}@" + host, TS: ts}
}

func fromOracle(lines []localfile.Line) map[sinkcheck.Key]float64 {
	want := map[sinkcheck.Key]float64{}
	for _, l := range lines {
		want[key(l.Name, l.Tags, l.Hostname, l.Timestamp)] = l.Value
	}
	return want
}

// fromJSON decodes JSON records, which must be the oracle's own lines.
func fromJSON(t *testing.T, recs []record, prefix string) map[sinkcheck.Key]float64 {
	got := map[sinkcheck.Key]float64{}
	for _, r := range recs {
		var l localfile.Line
		if err := json.Unmarshal(r.value, &l); err != nil {
			t.Fatalf("%s: %v", r.value, err)
		}
		if len(r.key) != kafka.KeySize {
			t.Errorf("key of %d bytes", len(r.key))
		}
		if strings.HasPrefix(l.Name, prefix) {
			got[key(l.Name, l.Tags, l.Hostname, l.Timestamp)] = l.Value
		}
	}
	return got
}

// fromProtobuf decodes protobuf records with point.proto's generated type.
func fromProtobuf(t *testing.T, recs []record, prefix string) map[sinkcheck.Key]float64 {
	got := map[sinkcheck.Key]float64{}
	for _, r := range recs {
		var p kafka.Point
		if err := proto.Unmarshal(r.value, &p); err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(p.Name, prefix) {
			got[key(p.Name, p.Tags, p.Hostname, p.Timestamp)] = p.Value
		}
	}
	return got
}

// TestDelivers produces the workload through the builtin sink, as JSON,
// and through the standalone binary, pinned by its sha256, as protobuf, and
// checks that each topic holds every point and service check the oracle
// got, once, and the event.
func TestDelivers(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	c := cluster(t, 0, t.TempDir(), "points", "points-pb", "events")
	defer c.Close()
	brokers, _ := json.Marshal(c.ListenAddrs())
	r := sinkcheck.Start(t, sinkcheck.Standalone(t, "kafka")+fmt.Sprintf(`
sink "kafka" "json" {
  brokers     = %s
  topic       = "points"
  event_topic = "events"
}
sink "kafka_standalone" "pb" {
  brokers = %s
  topic   = "points-pb"
  format  = "protobuf"
}
`, brokers, brokers))
	r.Send(t, []string{"_e{6,2}:deploy|ok|#svc:api"})
	points := r.SendWorkload(t)
	lines := append(points, sinkcheck.Checks(daemontest.ReadLines(t, r.Oracle), sinkcheck.Prefix)...)
	want := fromOracle(lines)
	var diff string
	if !daemontest.Until(20*time.Second, func() bool {
		diff = "json: " + sinkcheck.Diff(fromJSON(t, consume(t, c.ListenAddrs(), "points"), sinkcheck.Prefix), want)
		if diff == "json: " {
			diff = "protobuf: " + sinkcheck.Diff(fromProtobuf(t, consume(t, c.ListenAddrs(), "points-pb"), sinkcheck.Prefix), want)
		}
		return diff == "protobuf: "
	}) {
		t.Fatal(diff)
	}
	events := consume(t, c.ListenAddrs(), "events")
	if len(events) != 1 || !strings.Contains(string(events[0].value), `"title":"deploy"`) {
		t.Errorf("events: %q", events)
	}
}

// TestOutage stops the cluster for three intervals, while veneurd flushes
// 20 counters each interval, and starts it again on the same port and log:
// every point of those intervals must arrive, once.
func TestOutage(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	dir := t.TempDir()
	c := cluster(t, 0, dir, "points")
	addr := c.ListenAddrs()[0]
	_, p, _ := net.SplitHostPort(addr)
	var port int
	fmt.Sscan(p, &port)
	r := sinkcheck.Start(t, fmt.Sprintf(`
sink "kafka" "k" {
  brokers           = [%q]
  topic             = "points"
  max_retry_backoff = "250ms"
  timeout           = "2s"
}
`, addr))
	r.WaitFlushed(r.Oracle, 1, 20*time.Second)
	c.Close()
	for i := range 3 {
		lines := make([]string, 20)
		for j := range lines {
			lines[j] = fmt.Sprintf("e2e.outage.c%d:%d|c|#interval:%d", j, j+1, i)
		}
		r.Send(t, lines)
		r.WaitFlushed(r.Oracle, 1, 20*time.Second)
	}
	r.WaitFlushed(r.Oracle, 1, 20*time.Second)
	c = cluster(t, port, dir, "points")
	defer c.Close()
	want := fromOracle(sinkcheck.Points(daemontest.ReadLines(t, r.Oracle), "e2e.outage."))
	if len(want) != 60 {
		t.Fatalf("the oracle has %d points of the outage, want 60", len(want))
	}
	var diff string
	var n int
	if !daemontest.Until(30*time.Second, func() bool {
		recs := consume(t, c.ListenAddrs(), "points")
		got := fromJSON(t, recs, "e2e.outage.")
		n = 0
		for _, r := range recs {
			if strings.Contains(string(r.value), `"name":"e2e.outage.`) {
				n++
			}
		}
		diff = sinkcheck.Diff(got, want)
		return diff == "" && n == len(want)
	}) {
		t.Fatalf("%d records of the outage: %s", n, diff)
	}
}
