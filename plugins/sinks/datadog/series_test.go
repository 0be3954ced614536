package datadog

import (
	"math"
	"testing"
	"time"

	"github.com/veneurd/veneurd/sdk"
)

const ts = 1700000000

func gauge(name string, v float64, tags ...string) sdk.Point {
	return sdk.Point{Name: name, Tags: tags, Type: sdk.PointGauge, Value: v, Timestamp: ts, Hostname: "h1"}
}

func counter(name string, v float64, tags ...string) sdk.Point {
	return sdk.Point{Name: name, Tags: tags, Type: sdk.PointCounter, Value: v, Timestamp: ts, Hostname: "h1"}
}

func status(name string, v float64, msg string, tags ...string) sdk.Point {
	return sdk.Point{Name: name, Tags: tags, Type: sdk.PointStatus, Value: v, Timestamp: ts, Hostname: "h1", Message: msg}
}

// oddName and oddTag hold everything a JSON string must escape or replace.
const (
	oddName = "a\"b\\c\nd\x00e\x1f<f>&g\u2028h\xffi"
	oddTag  = "k\t:v\xe2\x82é"
	oddJSON = `"a\"b\\c\nd\u0000e\u001f\u003cf\u003e\u0026g\u2028h\ufffdi"`
	oddTagJ = `"k\t:v\ufffd\ufffdé"`
)

// encoder is what every series and checks encoder has.
type encoder interface {
	Reset()
	Point(p *sdk.Point) bool
	Len() int
	Size() int
	Body() []byte
}

// checkOne appends p to enc, after a Reset that must forget an earlier
// body, and checks the body is head+want+tail, or that p is refused and the
// body empty when want is "".
func checkOne(t *testing.T, enc encoder, p sdk.Point, head, want, tail string) {
	t.Helper()
	old := gauge("old", 1)
	enc.Point(&old)
	enc.Reset()
	ok := enc.Point(&p)
	if want == "" {
		want = head + tail
		if ok || enc.Len() != 0 {
			t.Errorf("%+v: accepted (Len %d), want refused", p, enc.Len())
		}
	} else {
		want = head + want + tail
		if !ok || enc.Len() != 1 {
			t.Errorf("%+v: refused (Len %d), want accepted", p, enc.Len())
		}
	}
	if got := string(enc.Body()); got != want {
		t.Errorf("%+v:\ngot  %s\nwant %s", p, got, want)
	}
	if enc.Size() != len(want) {
		t.Errorf("%+v: Size %d, want %d", p, enc.Size(), len(want))
	}
}

func TestSeriesV1(t *testing.T) {
	f := func(p sdk.Point, interval time.Duration, asCount bool, want string) {
		t.Helper()
		checkOne(t, &SeriesV1{Interval: interval, CountersAsCount: asCount}, p, `{"series":[`, want, `]}`)
	}
	const i10 = 10 * time.Second

	// Gauges as they are, with the interval as Veneur sends it.
	f(gauge("a.b", 1.5, "k:v"), i10, false,
		`{"metric":"a.b","points":[[1700000000,1.5]],"tags":["k:v"],"type":"gauge","host":"h1","interval":10}`)
	f(gauge("a.b", 1.5, "k:v"), i10, true,
		`{"metric":"a.b","points":[[1700000000,1.5]],"tags":["k:v"],"type":"gauge","host":"h1","interval":10}`)
	// Counters: a rate per second by default (Veneur), a count on request.
	f(counter("a.count", 25, "k:v"), i10, false,
		`{"metric":"a.count","points":[[1700000000,2.5]],"tags":["k:v"],"type":"rate","host":"h1","interval":10}`)
	f(counter("a.count", 25, "k:v"), i10, true,
		`{"metric":"a.count","points":[[1700000000,25]],"tags":["k:v"],"type":"count","host":"h1","interval":10}`)
	// A fractional interval divides the rate exactly and is sent truncated.
	f(counter("a.count", 3, "k:v"), 1500*time.Millisecond, false,
		`{"metric":"a.count","points":[[1700000000,2]],"tags":["k:v"],"type":"rate","host":"h1","interval":1}`)
	// Below a second there is no interval to send; no interval at all
	// leaves counters nothing to divide by.
	f(counter("a.count", 3), 500*time.Millisecond, false,
		`{"metric":"a.count","points":[[1700000000,6]],"type":"rate","host":"h1"}`)
	f(counter("a.count", 3), 0, false, "")
	f(counter("a.count", 3), -time.Second, false, "")
	f(counter("a.count", 3), 0, true, `{"metric":"a.count","points":[[1700000000,3]],"type":"count","host":"h1"}`)
	f(gauge("a.b", 3), 0, false, `{"metric":"a.b","points":[[1700000000,3]],"type":"gauge","host":"h1"}`)

	// host: overrides the host, device: becomes device_name; both leave the
	// tags, the last of each wins, and an empty one leaves the point's host.
	f(gauge("a.b", 1, "a:b", "host:h2", "z:y"), i10, false,
		`{"metric":"a.b","points":[[1700000000,1]],"tags":["a:b","z:y"],"type":"gauge","host":"h2","interval":10}`)
	f(gauge("a.b", 1, "host:h2", "host:h3"), i10, false,
		`{"metric":"a.b","points":[[1700000000,1]],"type":"gauge","host":"h3","interval":10}`)
	f(gauge("a.b", 1, "a:b", "host:"), i10, false,
		`{"metric":"a.b","points":[[1700000000,1]],"tags":["a:b"],"type":"gauge","host":"h1","interval":10}`)
	f(gauge("a.b", 1, "device:sda", "k:v"), i10, false,
		`{"metric":"a.b","points":[[1700000000,1]],"tags":["k:v"],"type":"gauge","host":"h1","device_name":"sda","interval":10}`)
	f(gauge("a.b", 1, "device:", "k:v"), i10, false,
		`{"metric":"a.b","points":[[1700000000,1]],"tags":["k:v"],"type":"gauge","host":"h1","interval":10}`)
	f(gauge("a.b", 1, "device:sda", "host:h2"), i10, false,
		`{"metric":"a.b","points":[[1700000000,1]],"type":"gauge","host":"h2","device_name":"sda","interval":10}`)
	// Tags that only look alike stay tags.
	f(gauge("a.b", 1, "host", "hostname:x", "devices:y"), i10, false,
		`{"metric":"a.b","points":[[1700000000,1]],"tags":["host","hostname:x","devices:y"],"type":"gauge","host":"h1","interval":10}`)

	// No tags, no host.
	f(gauge("a.b", 1), i10, false, `{"metric":"a.b","points":[[1700000000,1]],"type":"gauge","host":"h1","interval":10}`)
	f(sdk.Point{Name: "a.b", Type: sdk.PointGauge, Value: 1, Timestamp: ts}, i10, false,
		`{"metric":"a.b","points":[[1700000000,1]],"type":"gauge","interval":10}`)

	// Odd strings are escaped, invalid UTF-8 replaced.
	p := gauge(oddName, 1, oddTag, "host:"+oddName)
	f(p, i10, false, `{"metric":`+oddJSON+`,"points":[[1700000000,1]],"tags":[`+oddTagJ+`],"type":"gauge","host":`+oddJSON+`,"interval":10}`)

	// Numbers as encoding/json writes them.
	f(gauge("a.b", 1e-7), 0, false, `{"metric":"a.b","points":[[1700000000,1e-7]],"type":"gauge","host":"h1"}`)
	f(gauge("a.b", -1e21), 0, false, `{"metric":"a.b","points":[[1700000000,-1e+21]],"type":"gauge","host":"h1"}`)
	f(gauge("a.b", 123456789.125), 0, false, `{"metric":"a.b","points":[[1700000000,123456789.125]],"type":"gauge","host":"h1"}`)

	// Refused: no NaN or infinity in JSON, not a series, no name.
	f(gauge("a.b", math.NaN()), i10, false, "")
	f(gauge("a.b", math.Inf(1)), i10, false, "")
	f(counter("a.b", math.Inf(-1)), i10, true, "")
	f(counter("a.b", 1e308), 100*time.Millisecond, false, "") // the rate overflows
	f(status("a.b", 0, ""), i10, false, "")
	f(sdk.Point{Name: "a.b", Type: 0, Timestamp: ts}, i10, false, "")
	f(sdk.Point{Name: "a.b", Type: 9, Timestamp: ts}, i10, false, "")
	f(gauge("", 1), i10, false, "")
}

func TestSeriesV2(t *testing.T) {
	f := func(p sdk.Point, interval time.Duration, asCount bool, want string) {
		t.Helper()
		checkOne(t, &SeriesV2{Interval: interval, CountersAsCount: asCount}, p, `{"series":[`, want, `]}`)
	}
	const i10 = 10 * time.Second

	f(gauge("a.b", 1.5, "k:v"), i10, false,
		`{"metric":"a.b","type":3,"points":[{"timestamp":1700000000,"value":1.5}],"interval":10,"resources":[{"name":"h1","type":"host"}],"tags":["k:v"]}`)
	f(counter("a.count", 25, "k:v"), i10, false,
		`{"metric":"a.count","type":2,"points":[{"timestamp":1700000000,"value":2.5}],"interval":10,"resources":[{"name":"h1","type":"host"}],"tags":["k:v"]}`)
	f(counter("a.count", 25, "k:v"), i10, true,
		`{"metric":"a.count","type":1,"points":[{"timestamp":1700000000,"value":25}],"interval":10,"resources":[{"name":"h1","type":"host"}],"tags":["k:v"]}`)
	f(counter("a.count", 3), 500*time.Millisecond, false,
		`{"metric":"a.count","type":2,"points":[{"timestamp":1700000000,"value":6}],"resources":[{"name":"h1","type":"host"}]}`)
	f(counter("a.count", 3), 0, false, "")
	f(counter("a.count", 3), 0, true,
		`{"metric":"a.count","type":1,"points":[{"timestamp":1700000000,"value":3}],"resources":[{"name":"h1","type":"host"}]}`)

	f(gauge("a.b", 1, "a:b", "host:h2", "z:y"), i10, false,
		`{"metric":"a.b","type":3,"points":[{"timestamp":1700000000,"value":1}],"interval":10,"resources":[{"name":"h2","type":"host"}],"tags":["a:b","z:y"]}`)
	f(gauge("a.b", 1, "host:"), i10, false,
		`{"metric":"a.b","type":3,"points":[{"timestamp":1700000000,"value":1}],"interval":10,"resources":[{"name":"h1","type":"host"}]}`)
	// The device stays a tag: v2 documents no device field.
	f(gauge("a.b", 1, "device:sda", "k:v"), i10, false,
		`{"metric":"a.b","type":3,"points":[{"timestamp":1700000000,"value":1}],"interval":10,"resources":[{"name":"h1","type":"host"}],"tags":["device:sda","k:v"]}`)
	p := gauge("a.b", 1, "device:sda")
	p.Hostname = ""
	f(p, i10, false,
		`{"metric":"a.b","type":3,"points":[{"timestamp":1700000000,"value":1}],"interval":10,"tags":["device:sda"]}`)
	p.Tags = nil
	f(p, i10, false, `{"metric":"a.b","type":3,"points":[{"timestamp":1700000000,"value":1}],"interval":10}`)

	p = gauge(oddName, 1, oddTag, "host:"+oddName, "device:"+oddTag)
	f(p, i10, false, `{"metric":`+oddJSON+`,"type":3,"points":[{"timestamp":1700000000,"value":1}],"interval":10,"resources":[{"name":`+
		oddJSON+`,"type":"host"}],"tags":[`+oddTagJ+`,"device:`+oddTagJ[1:]+`]}`)

	f(gauge("a.b", math.NaN()), i10, false, "")
	f(gauge("a.b", math.Inf(-1)), i10, false, "")
	f(status("a.b", 0, ""), i10, false, "")
	f(gauge("", 1), i10, false, "")
}

// TestSeriesBody checks separators, Size and Body across appends and
// Resets, and a zero encoder's body.
func TestSeriesBody(t *testing.T) {
	var s SeriesV1
	if got := string(s.Body()); got != `{"series":[]}` || s.Size() != len(got) || s.Len() != 0 {
		t.Fatalf("zero encoder: body %s, size %d, len %d", got, s.Size(), s.Len())
	}
	var v2 SeriesV2
	a, b, nan := gauge("a", 1), gauge("b", 2), gauge("nan", math.NaN())
	for round := 0; round < 2; round++ {
		s.Reset()
		v2.Reset()
		for _, p := range []*sdk.Point{&a, &nan, &b} {
			s.Point(p)
			v2.Point(p)
			if body := s.Body(); s.Size() != len(body) {
				t.Fatalf("Size %d, body %d bytes", s.Size(), len(body))
			}
		}
		const want = `{"series":[{"metric":"a","points":[[1700000000,1]],"type":"gauge","host":"h1"},{"metric":"b","points":[[1700000000,2]],"type":"gauge","host":"h1"}]}`
		if got := string(s.Body()); got != want || s.Len() != 2 {
			t.Fatalf("round %d: got %s (Len %d), want %s", round, got, s.Len(), want)
		}
		const want2 = `{"series":[{"metric":"a","type":3,"points":[{"timestamp":1700000000,"value":1}],"resources":[{"name":"h1","type":"host"}]},` +
			`{"metric":"b","type":3,"points":[{"timestamp":1700000000,"value":2}],"resources":[{"name":"h1","type":"host"}]}]}`
		if got := string(v2.Body()); got != want2 || v2.Len() != 2 {
			t.Fatalf("round %d: got %s (Len %d), want %s", round, got, v2.Len(), want2)
		}
	}
	// A caller's append to a body cannot write into the encoder's buffer.
	if body := s.Body(); cap(body) != len(body) {
		t.Fatalf("body has capacity %d beyond its %d bytes", cap(body), len(body))
	}
}
