package dogstatsd

import (
	"testing"
)

// benchLines is a realistic mix of client traffic: counters, gauges, timers,
// histograms and sets with three tags each, some sampled, some with tags out
// of order, a multi-value line, a timestamped gauge and a container id.
var benchLines = [][]byte{
	[]byte("api.requests:1|c|#env:prod,service:api,region:us-east-1"),
	[]byte("api.requests:1|c|@0.1|#env:prod,region:us-east-1,service:api"),
	[]byte("api.errors:3|c|#env:prod,code:500,service:api"),
	[]byte("db.pool.open:17|g|#db:main,env:prod,service:api"),
	[]byte("queue.depth:-42.5|g|#queue:ingest,env:prod,service:worker"),
	[]byte("http.latency:12.75|ms|#env:prod,route:/v1/items,method:GET"),
	[]byte("http.latency:3.2|ms|@0.25|#method:POST,env:prod,route:/v1/items"),
	[]byte("payload.bytes:2048|h|#env:prod,service:api,codec:json"),
	[]byte("render.time:18.2|d|#env:prod,page:home,service:web"),
	[]byte("users.unique:u-12345|s|#env:prod,service:api,region:eu-west-1"),
	[]byte("batch.sizes:10:12:9:14|h|#env:prod,service:worker,queue:ingest"),
	[]byte("cache.hit_ratio:0.93|g|#cache:l1,env:prod,service:api|T1700000000"),
	[]byte("api.requests:1|c|#env:prod,service:api,region:us-east-1|c:4f1e2a9b8c7d"),
	[]byte("jobs.done:1|c|@0.5|#veneurglobalonly,env:prod,service:worker,queue:ingest"),
}

func BenchmarkParseMetric(b *testing.B) {
	var p Parser
	total := 0
	for _, l := range benchLines {
		total += len(l)
	}
	b.ReportAllocs()
	b.SetBytes(int64(total) / int64(len(benchLines)))
	i := 0
	for b.Loop() {
		if _, err := p.ParseMetric(benchLines[i]); err != nil {
			b.Fatal(err)
		}
		i++
		if i == len(benchLines) {
			i = 0
		}
	}
}

// TestParseMetricNoAlloc fails if parsing any benchmark line allocates once
// the parser's scratch buffers are warm.
func TestParseMetricNoAlloc(t *testing.T) {
	var p Parser
	for _, line := range benchLines {
		if _, err := p.ParseMetric(line); err != nil {
			t.Fatalf("ParseMetric(%q): %v", line, err)
		}
	}
	for _, line := range benchLines {
		allocs := testing.AllocsPerRun(100, func() {
			if _, err := p.ParseMetric(line); err != nil {
				t.Fatal(err)
			}
		})
		if allocs != 0 {
			t.Errorf("ParseMetric(%q) allocates %v times per line", line, allocs)
		}
	}
	// Values that take strconv's slow path must not allocate either.
	for _, line := range []string{
		"a:1.234567890123456789|g",
		"a:1e300|h",
		"a:0x1p-2|ms|@1e-3",
		"a:1|c|#p,o,n,m,l,k,j,i,h,g,f,e,d,c,b,a",
	} {
		b := []byte(line)
		if _, err := p.ParseMetric(b); err != nil {
			t.Fatalf("ParseMetric(%q): %v", line, err)
		}
		allocs := testing.AllocsPerRun(100, func() { _, _ = p.ParseMetric(b) })
		if allocs != 0 {
			t.Errorf("ParseMetric(%q) allocates %v times per line", line, allocs)
		}
	}
}
