package receivers

import (
	"bytes"
	"io"
	"maps"
	"net/http"
	"strings"
	"testing"
	"time"
)

// rejected sends a remote-write request that Prometheus should refuse with
// 400, and returns the reason it gives.
func rejected(t *testing.T, p *Prom, series ...rwSeries) string {
	t.Helper()
	req, _ := http.NewRequest("POST", p.RemoteWrite, bytes.NewReader(remoteWrite(series...)))
	req.Header.Set("Content-Type", "application/x-protobuf")
	req.Header.Set("Content-Encoding", "snappy")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 400 {
		t.Fatalf("remote write answered %s (want 400): %s", resp.Status, b)
	}
	return string(b)
}

func checkSamples(t *testing.T, got []Sample, labels map[string]string, want ...rwSample) {
	t.Helper()
	ok := len(got) == len(want)
	for i := 0; ok && i < len(got); i++ {
		ok = maps.Equal(got[i].Labels, labels) && got[i].Value == want[i].Value && got[i].Timestamp == want[i].Ms
	}
	if !ok {
		t.Errorf("got:\n%swant %s %v", show(got), formatLabels(labels), want)
	}
}

// TestPrometheusRemoteWrite writes through remote write and reads back
// exact samples, and checks which timestamps Prometheus refuses: the
// findings in Prom's doc comment.
func TestPrometheusRemoteWrite(t *testing.T) {
	p := Prometheus(t)
	now := time.Now().UnixMilli()
	labels := map[string]string{"__name__": "rw.a-b", "k.x": "v", "host": "h1"}
	postRemoteWrite(t, p.RemoteWrite, 204,
		rwSeries{Labels: labels, Samples: []rwSample{{1.5, now - 1}, {2, now}}},
		rwSeries{Labels: map[string]string{"__name__": "rw_empty", "gone": "", "k": "v"}, Samples: []rwSample{{3, now}}})

	got := p.Query(t, `{__name__="rw.a-b"}[10m]`, time.UnixMilli(now))
	checkSamples(t, got, labels, rwSample{1.5, now - 1}, rwSample{2, now})
	got = p.Query(t, `{__name__="rw.a-b"}`, time.UnixMilli(now+1000))
	checkSamples(t, got, labels, rwSample{2, now + 1000})
	if s := p.Series(t, `rw_empty`); len(s) != 1 || !maps.Equal(s[0], map[string]string{"__name__": "rw_empty", "k": "v"}) {
		t.Errorf("a label with an empty value: got series %v", s)
	}
	if s := p.Query(t, `scalar(sum(rw_empty))`, time.UnixMilli(now)); len(s) != 1 || s[0].Value != 3 {
		t.Errorf("scalar: %v", s)
	}

	// The same sample again is taken; another value at that time is not.
	postRemoteWrite(t, p.RemoteWrite, 204, rwSeries{Labels: labels, Samples: []rwSample{{2, now}}})
	if r := rejected(t, p, rwSeries{Labels: labels, Samples: []rwSample{{5, now}}}); !strings.Contains(r, "duplicate sample for timestamp") {
		t.Errorf("another value at the same time: %s", r)
	}
	// Older than the series' newest: out of order.
	if r := rejected(t, p, rwSeries{Labels: labels, Samples: []rwSample{{5, now - 2}}}); !strings.Contains(r, "out of order sample") {
		t.Errorf("an older sample: %s", r)
	}
	// A new series: up to an hour before the newest sample of any series,
	// and no further. A refused request stores none of its samples.
	fresh := map[string]string{"__name__": "rw_old"}
	postRemoteWrite(t, p.RemoteWrite, 204, rwSeries{Labels: fresh, Samples: []rwSample{{1, now - 59*60_000}}})
	if r := rejected(t, p,
		rwSeries{Labels: map[string]string{"__name__": "rw_lost"}, Samples: []rwSample{{1, now}}},
		rwSeries{Labels: map[string]string{"__name__": "rw_older"}, Samples: []rwSample{{1, now - 61*60_000}}},
	); !strings.Contains(r, "out of bounds") {
		t.Errorf("a sample 61 minutes old: %s", r)
	}
	if len(p.Series(t, "rw_older")) != 0 || len(p.Series(t, "rw_lost")) != 0 {
		t.Errorf("after a refused request: rw_older %v, rw_lost %v", p.Series(t, "rw_older"), p.Series(t, "rw_lost"))
	}
	// The future is taken, and moves the bound: now is then an hour and a
	// half behind the newest sample.
	postRemoteWrite(t, p.RemoteWrite, 204, rwSeries{Labels: map[string]string{"__name__": "rw_future"}, Samples: []rwSample{{1, now + 90*60_000}}})
	if r := rejected(t, p, rwSeries{Labels: map[string]string{"__name__": "rw_now"}, Samples: []rwSample{{1, now}}}); !strings.Contains(r, "out of bounds") {
		t.Errorf("a sample at now after one 90 minutes ahead: %s", r)
	}
}

// TestPrometheusFreshTakesOld checks that the first samples a fresh
// Prometheus gets may be of any age, and set the bound for what follows.
func TestPrometheusFreshTakesOld(t *testing.T) {
	p := Prometheus(t)
	old := time.Now().Add(-30 * 24 * time.Hour).UnixMilli()
	postRemoteWrite(t, p.RemoteWrite, 204, rwSeries{Labels: map[string]string{"__name__": "first"}, Samples: []rwSample{{1, old}}})
	checkSamples(t, p.Query(t, "first[1m]", time.UnixMilli(old)), map[string]string{"__name__": "first"}, rwSample{1, old})
	if r := rejected(t, p, rwSeries{Labels: map[string]string{"__name__": "older"}, Samples: []rwSample{{1, old - 2*3600_000}}}); !strings.Contains(r, "out of bounds") {
		t.Errorf("two hours before the first: %s", r)
	}
}

// TestPrometheusRestart stops Prometheus and starts it again on the same
// port and TSDB: what it had is still there, and it takes writes again.
func TestPrometheusRestart(t *testing.T) {
	p := Prometheus(t)
	now := time.Now().UnixMilli()
	labels := map[string]string{"__name__": "restart"}
	postRemoteWrite(t, p.RemoteWrite, 204, rwSeries{Labels: labels, Samples: []rwSample{{1, now - 1000}}})
	p.Stop()
	if err := httpOK(p.URL + "/-/ready"); err == nil {
		t.Fatal("prometheus still answers after Stop")
	}
	p.Start()
	postRemoteWrite(t, p.RemoteWrite, 204, rwSeries{Labels: labels, Samples: []rwSample{{2, now}}})
	p.WaitQuery(t, "restart[1m]", wait, func(s []Sample) bool { return len(s) == 2 })
	checkSamples(t, p.Query(t, "restart[1m]", time.UnixMilli(now)), labels, rwSample{1, now - 1000}, rwSample{2, now})
}
