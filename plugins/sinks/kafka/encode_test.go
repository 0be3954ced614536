package kafka

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/veneurd/veneurd/plugins/sinks/localfile"
	"github.com/veneurd/veneurd/sdk"
)

const ts = 1795300000

// TestJSON pins the JSON values: the localfile sink's lines.
func TestJSON(t *testing.T) {
	f := func(in sdk.Point, want string) {
		t.Helper()
		var e Encoder
		key, value, ok := e.Record(&in)
		if string(value) != want || ok != (want != "") {
			t.Errorf("%+v:\ngot  %t %s\nwant %s", in, ok, value, want)
		}
		if ok && len(key) != KeySize {
			t.Errorf("key %x", key)
		}
		if l := localfile.PointLine(&in); ok && string(l.AppendJSON(nil)) != want {
			t.Errorf("%+v: not what localfile writes", in)
		}
		if e.Append(&in) != ok || e.Len() != len(e.recs) || (ok && e.Len() != 1) {
			t.Errorf("%+v: Append disagrees with Record", in)
		}
	}
	f(sdk.Point{Name: "api.requests", Tags: []string{"env:prod", "region:eu"}, Type: sdk.PointCounter, Value: 3, Timestamp: ts, Hostname: "web1"},
		`{"name":"api.requests","tags":["env:prod","region:eu"],"type":"counter","value":3,"timestamp":1795300000,"hostname":"web1"}`)
	f(sdk.Point{Name: "mem.free", Type: sdk.PointGauge, Value: -0.25, Timestamp: ts},
		`{"name":"mem.free","tags":[],"type":"gauge","value":-0.25,"timestamp":1795300000,"hostname":""}`)
	f(sdk.Point{Name: "db.up", Tags: []string{"db:main"}, Type: sdk.PointStatus, Value: 2, Timestamp: ts, Hostname: "h", Message: "refused\n\"x\"\xff"},
		`{"kind":"service_check","name":"db.up","tags":["db:main"],"type":"status","value":2,"timestamp":1795300000,"hostname":"h","message":"refused\n\"x\"\ufffd"}`)
	// Strings to escape, and other numbers.
	f(sdk.Point{Name: "a<b>&", Tags: []string{`q:"x"`, "é", "\u2028"}, Type: sdk.PointGauge, Value: 1e-7, Timestamp: -1, Hostname: `h\`},
		`{"name":"a\u003cb\u003e\u0026","tags":["q:\"x\"","é","\u2028"],"type":"gauge","value":1e-7,"timestamp":-1,"hostname":"h\\"}`)
	f(sdk.Point{Name: "x", Tags: []string{"a:b"}, Type: 7, Value: 1e21, Hostname: "h", Message: "m"},
		`{"name":"x","tags":["a:b"],"type":"unknown","value":1e+21,"timestamp":0,"hostname":"h","message":"m"}`)
	f(sdk.Point{Name: "x", Value: math.Copysign(0, -1)}, `{"name":"x","tags":[],"type":"unknown","value":-0,"timestamp":0,"hostname":""}`)
	f(sdk.Point{Name: "x", Value: 123456789012345}, `{"name":"x","tags":[],"type":"unknown","value":123456789012345,"timestamp":0,"hostname":""}`)
	f(sdk.Point{Name: "x", Value: math.NaN()}, "")
	f(sdk.Point{Name: "x", Value: math.Inf(1)}, "")
	f(sdk.Point{Name: "x", Value: math.Inf(-1)}, "")

	var e Encoder
	_, value, _ := e.EventRecord(&sdk.Event{Title: "deploy", Text: "one\ntwo", Tags: []string{"env:dev"}, Hostname: "h1", Priority: "normal", AlertType: "info"}, ts)
	if want := `{"kind":"event","title":"deploy","text":"one\ntwo","tags":["env:dev"],"timestamp":1795300000,"hostname":"h1","priority":"normal","alert_type":"info"}`; string(value) != want {
		t.Errorf("event: got %s, want %s", value, want)
	}
}

// TestPlainJSON checks plainJSON against a byte at a time, for every byte
// value at every position of strings of every length up to 20.
func TestPlainJSON(t *testing.T) {
	for n := range 21 {
		for pos := range n {
			for c := range 256 {
				b := []byte(strings.Repeat("a", n))
				b[pos] = byte(c)
				want := c >= 0x20 && c < 0x80 && !strings.ContainsRune(`"\<>&`, rune(c))
				if got := plainJSON(string(b)); got != want {
					t.Fatalf("plainJSON(%q) = %t", b, got)
				}
			}
		}
	}
}

// TestProtobuf pins one protobuf value byte by byte, and checks others
// against proto.Marshal.
func TestProtobuf(t *testing.T) {
	e := Encoder{Format: Protobuf}
	_, value, ok := e.Record(&sdk.Point{Name: "x", Tags: []string{"a:b"}, Type: sdk.PointGauge, Value: 1, Timestamp: 2, Hostname: "h", Message: "m"})
	const want = "0a0178" + "1203613a62" + "1802" + "21000000000000f03f" + "2802" + "320168" + "3a016d"
	if got := hex.EncodeToString(value); !ok || got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	f := func(in sdk.Point) {
		t.Helper()
		_, value, ok := e.Record(&in)
		if !ok {
			t.Fatalf("%+v refused", in)
		}
		checkPoint(t, &in, value)
	}
	f(sdk.Point{})
	f(sdk.Point{Name: "api.requests", Tags: []string{"env:prod", "region:eu"}, Type: sdk.PointCounter, Value: 3, Timestamp: ts, Hostname: "web1"})
	f(sdk.Point{Name: "x", Tags: []string{"", "a"}, Type: sdk.PointStatus, Value: 3, Timestamp: -1, Message: "bad\xff\xfe \xe2\x82 é"})
	f(sdk.Point{Name: "nan", Value: math.NaN()})
	f(sdk.Point{Name: "inf", Value: math.Inf(-1)})
	f(sdk.Point{Name: "negative zero", Value: math.Copysign(0, -1)})
	f(sdk.Point{Name: "\xed\xa0\x80 surrogate", Type: 9, Value: math.SmallestNonzeroFloat64, Timestamp: math.MinInt64})

	g := func(in sdk.Event, flush int64) {
		t.Helper()
		_, value, _ := e.EventRecord(&in, flush)
		checkEvent(t, &in, flush, value)
	}
	g(sdk.Event{}, 0)
	g(sdk.Event{Title: "deploy", Text: "one\ntwo", Tags: []string{"env:dev"}, Hostname: "h1", Priority: "normal", AlertType: "info"}, ts)
	g(sdk.Event{Title: "t", Text: "\xff", Timestamp: 5, AggregationKey: "k", SourceType: "s", AlertType: "error", Priority: "low"}, ts)
}

// checkPoint checks that value is what proto.Marshal writes for p, and
// reads back as p with its strings made valid UTF-8.
func checkPoint(t *testing.T, p *sdk.Point, value []byte) {
	t.Helper()
	want := &Point{Name: valid(p.Name), Type: Point_Type(p.Type), Value: p.Value, Timestamp: p.Timestamp,
		Hostname: valid(p.Hostname), Message: valid(p.Message)}
	for _, tag := range p.Tags {
		want.Tags = append(want.Tags, valid(tag))
	}
	wantBytes, err := proto.MarshalOptions{Deterministic: true}.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(value, wantBytes) {
		t.Errorf("%+v:\ngot  %x\nwant %x", p, value, wantBytes)
	}
	var got Point
	if err := proto.Unmarshal(value, &got); err != nil {
		t.Fatalf("%+v: %v", p, err)
	}
	if !proto.Equal(&got, want) && !(math.IsNaN(p.Value) && math.IsNaN(got.Value)) {
		t.Errorf("%+v: read back %v", p, &got)
	}
}

// checkEvent is checkPoint for events.
func checkEvent(t *testing.T, ev *sdk.Event, flush int64, value []byte) {
	t.Helper()
	ts := ev.Timestamp
	if ts == 0 {
		ts = flush
	}
	want := &Event{Title: valid(ev.Title), Text: valid(ev.Text), Timestamp: ts, Hostname: valid(ev.Hostname),
		AggregationKey: valid(ev.AggregationKey), Priority: valid(ev.Priority), SourceType: valid(ev.SourceType), AlertType: valid(ev.AlertType)}
	for _, tag := range ev.Tags {
		want.Tags = append(want.Tags, valid(tag))
	}
	wantBytes, err := proto.MarshalOptions{Deterministic: true}.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(value, wantBytes) {
		t.Errorf("%+v:\ngot  %x\nwant %x", ev, value, wantBytes)
	}
	var got Event
	if err := proto.Unmarshal(value, &got); err != nil || !proto.Equal(&got, want) {
		t.Errorf("%+v: read back %v, %v", ev, &got, err)
	}
}

// valid is s with each byte that is not part of valid UTF-8 replaced with
// U+FFFD.
func valid(s string) string { return string([]rune(s)) }

// TestKeys checks that a key depends on the series, not the format or the
// point's value, time or message, and pins the hash so that a change that
// would move series across partitions shows.
func TestKeys(t *testing.T) {
	base := sdk.Point{Name: "api.requests", Tags: []string{"env:prod", "region:eu"}, Type: sdk.PointCounter, Value: 3, Timestamp: ts, Hostname: "web1"}
	key := func(p sdk.Point, f Format) string {
		e := Encoder{Format: f}
		k, _, _ := e.Record(&p)
		e.Append(&p)
		if k2, _ := e.At(0); !bytes.Equal(k, k2) {
			t.Fatalf("Record and Append keys differ: %x %x", k, k2)
		}
		return hex.EncodeToString(k)
	}
	const golden = "b6473b7ba0c3de5a"
	if got := key(base, JSON); got != golden {
		t.Errorf("key %s, pinned %s", got, golden)
	}
	same := base
	same.Value, same.Timestamp, same.Message = 4, ts+10, "m"
	if key(same, JSON) != key(base, JSON) || key(base, Protobuf) != key(base, JSON) {
		t.Error("a series' key changed with its value, time or format")
	}
	for _, other := range []func(p *sdk.Point){
		func(p *sdk.Point) { p.Type = sdk.PointGauge },
		func(p *sdk.Point) { p.Name = "api.request" },
		func(p *sdk.Point) { p.Tags = []string{"env:prod"} },
		func(p *sdk.Point) { p.Tags = []string{"env:prod", "region:e", "u"} },
		func(p *sdk.Point) { p.Tags = []string{"env:prodregion:eu"} },
		func(p *sdk.Point) { p.Hostname = "" },
	} {
		p := base
		other(&p)
		if key(p, JSON) == key(base, JSON) {
			t.Errorf("%+v has the key of %+v", p, base)
		}
	}

	var e Encoder
	ek := func(ev sdk.Event) string {
		k, _, _ := e.EventRecord(&ev, ts)
		return hex.EncodeToString(k)
	}
	ev := sdk.Event{Title: "deploy", Hostname: "h1", AggregationKey: "rollout-7"}
	if ek(ev) != ek(sdk.Event{Title: "done", Text: "x", Hostname: "h1", AggregationKey: "rollout-7"}) {
		t.Error("events with one aggregation key have different keys")
	}
	if ek(ev) == ek(sdk.Event{Title: "deploy", Hostname: "h1"}) || ek(sdk.Event{Title: "a"}) == ek(sdk.Event{Title: "b"}) {
		t.Error("events that do not belong together share a key")
	}
}

// TestBatch checks the batch: records in order, contiguous, Reset keeping
// capacity, and iteration that stops.
func TestBatch(t *testing.T) {
	for _, f := range []Format{JSON, Protobuf} {
		e := Encoder{Format: f}
		ps := points(50)
		ps[7].Value = math.NaN()
		var want [][2]string
		var one Encoder
		one.Format = f
		for i := range ps {
			k, v, ok := one.Record(&ps[i])
			if e.Append(&ps[i]) != ok {
				t.Fatal("Append and Record disagree")
			}
			if ok {
				want = append(want, [2]string{string(k), string(v)})
			}
			if i == 20 {
				e.AppendEvent(&sdk.Event{Title: "t", Hostname: "h"}, ts)
				k, v, _ := one.EventRecord(&sdk.Event{Title: "t", Hostname: "h"}, ts)
				want = append(want, [2]string{string(k), string(v)})
			}
		}
		var got [][2]string
		size := 0
		for k, v := range e.Records {
			got = append(got, [2]string{string(k), string(v)})
			size += 4 + len(k) + len(v)
		}
		var split [][2]string
		if !Split(e.Body(), func(k, v []byte) bool { split = append(split, [2]string{string(k), string(v)}); return true }) ||
			!slices.Equal(split, want) {
			t.Fatalf("format %d: Split read %d records of the body, unlike those appended", f, len(split))
		}
		if !slices.Equal(got, want) || e.Len() != len(want) || e.Size() != size {
			t.Fatalf("format %d: %d records of %d bytes, want %d of %d", f, e.Len(), e.Size(), len(want), size)
		}
		if f == JSON && e.Len() != 50 {
			t.Fatalf("the NaN point was appended")
		}
		n := 0
		for range e.Records {
			n++
			if n == 3 {
				break
			}
		}
		k, v := e.At(1)
		if k2 := append(k, 'x'); &k2[0] == &v[0] || v[0] != want[1][1][0] {
			t.Fatal("appending to a key overwrote its value")
		}
		c := cap(e.buf)
		e.Reset()
		if e.Len() != 0 || e.Size() != 0 || cap(e.buf) != c {
			t.Fatal("Reset")
		}
	}
}

// FuzzEncode checks that whatever a point holds, its record decodes to the
// point (its strings made valid UTF-8), with the generated protobuf code or
// encoding/json, after another record. tags is split at '|'.
func FuzzEncode(f *testing.F) {
	f.Fuzz(func(t *testing.T, name, tags, host, msg string, typ uint8, value float64, timestamp int64, pb bool) {
		p := sdk.Point{Name: name, Type: sdk.PointType(typ), Value: value, Timestamp: timestamp, Hostname: host, Message: msg}
		if tags != "" {
			p.Tags = strings.Split(tags, "|")
			slices.Sort(p.Tags)
		}
		e := Encoder{Format: JSON}
		if pb {
			e.Format = Protobuf
		}
		first := sdk.Point{Name: "first", Tags: []string{"a:b"}, Type: sdk.PointGauge, Value: 1, Timestamp: 1, Hostname: "h"}
		e.Append(&first)
		k1, v1 := e.At(0)
		k1, v1 = bytes.Clone(k1), bytes.Clone(v1)
		ok := e.Append(&p)
		if ok != (pb || !(math.IsNaN(value) || math.IsInf(value, 0))) {
			t.Fatalf("Append returned %t", ok)
		}
		if k, v := e.At(0); !bytes.Equal(k, k1) || !bytes.Equal(v, v1) {
			t.Fatal("the first record changed")
		}
		if !ok {
			if e.Len() != 1 || e.Size() != 4+len(k1)+len(v1) {
				t.Fatal("a refused point was appended")
			}
			return
		}
		key, val := e.At(1)
		if k, v, _ := e.Record(&p); !bytes.Equal(k, key) || !bytes.Equal(v, val) || len(key) != KeySize {
			t.Fatal("Record and Append disagree")
		}
		if pb {
			checkPoint(t, &p, val)
			return
		}
		line := localfile.PointLine(&p)
		if exact := line.AppendJSON(nil); !bytes.Equal(val, exact) {
			t.Fatalf("got  %s\nwant %s", val, exact)
		}
		var got localfile.Line
		if err := json.Unmarshal(val, &got); err != nil {
			t.Fatalf("%v: %s", err, val)
		}
		want := localfile.PointLine(&p)
		want.Name, want.Hostname, want.Message = valid(want.Name), valid(want.Hostname), valid(want.Message)
		want.Tags = []string{}
		for _, tag := range p.Tags {
			want.Tags = append(want.Tags, valid(tag))
		}
		if fmt.Sprintf("%#v", got) != fmt.Sprintf("%#v", want) {
			t.Fatalf("read back\n%#v\nwant\n%#v", got, want)
		}
	})
}

// FuzzEncodeEvent is FuzzEncode for events.
func FuzzEncodeEvent(f *testing.F) {
	f.Fuzz(func(t *testing.T, title, text, tags, host, aggKey, priority, source, alert string, timestamp, flush int64, pb bool) {
		ev := sdk.Event{Title: title, Text: text, Timestamp: timestamp, Hostname: host, AggregationKey: aggKey,
			Priority: priority, SourceType: source, AlertType: alert}
		if tags != "" {
			ev.Tags = strings.Split(tags, "|")
		}
		e := Encoder{Format: JSON}
		if pb {
			e.Format = Protobuf
		}
		e.AppendEvent(&sdk.Event{Title: "first"}, 1)
		if !e.AppendEvent(&ev, flush) || e.Len() != 2 {
			t.Fatal("event refused")
		}
		key, val := e.At(1)
		if k, v, _ := e.EventRecord(&ev, flush); !bytes.Equal(k, key) || !bytes.Equal(v, val) || len(key) != KeySize {
			t.Fatal("EventRecord and AppendEvent disagree")
		}
		if pb {
			checkEvent(t, &ev, flush, val)
			return
		}
		var got localfile.Line
		if err := json.Unmarshal(val, &got); err != nil {
			t.Fatalf("%v: %s", err, val)
		}
		want := localfile.EventLine(&ev, flush)
		for _, s := range []*string{&want.Title, &want.Text, &want.Hostname, &want.AggregationKey, &want.Priority, &want.SourceType, &want.AlertType} {
			*s = valid(*s)
		}
		want.Tags = []string{}
		for _, tag := range ev.Tags {
			want.Tags = append(want.Tags, valid(tag))
		}
		if fmt.Sprintf("%#v", got) != fmt.Sprintf("%#v", want) {
			t.Fatalf("read back\n%#v\nwant\n%#v", got, want)
		}
	})
}

// points are realistic points: names of about 30 bytes, 4 to 6 tags.
func points(n int) []sdk.Point {
	ps := make([]sdk.Point, n)
	for i := range ps {
		tags := []string{"env:production", "region:eu-west-1", fmt.Sprintf("service:checkout-%d", i%7),
			fmt.Sprintf("endpoint:/api/v1/orders/%d", i%13), "version:1.42.0", "az:eu-west-1b"}[:4+i%3]
		slices.Sort(tags)
		ps[i] = sdk.Point{Name: fmt.Sprintf("checkout.http.request.duration.%d", i%10), Tags: tags,
			Type: sdk.PointType(1 + i%2), Value: float64(i) * 1.25, Timestamp: ts, Hostname: "ip-10-0-12-34.eu-west-1"}
	}
	return ps
}

// TestAllocs checks that a warmed-up Encoder allocates nothing, in either
// format, batched or one record at a time.
func TestAllocs(t *testing.T) {
	ps := points(1000)
	ps = append(ps, sdk.Point{Name: "status.check", Tags: []string{"a:b"}, Type: sdk.PointStatus, Value: 1, Message: "bad \"x\"\n\xff", Hostname: "h\xff"})
	ev := sdk.Event{Title: "deploy", Text: "one\ntwo", Tags: []string{"env:dev"}, Hostname: "h1", AggregationKey: "k", Priority: "normal", AlertType: "info"}
	for _, f := range []Format{JSON, Protobuf} {
		e := Encoder{Format: f}
		encode := func() {
			e.Reset()
			for i := range ps {
				e.Append(&ps[i])
				e.Record(&ps[i])
			}
			e.AppendEvent(&ev, ts)
			e.EventRecord(&ev, ts)
		}
		encode()
		if n := testing.AllocsPerRun(10, encode); n != 0 {
			t.Fatalf("format %d: %v allocations per batch", f, n)
		}
	}
}

// BenchmarkEncodeJSON and BenchmarkEncodeProtobuf append batches of 1000
// points; ns/point is the figure to compare.
func BenchmarkEncodeJSON(b *testing.B)     { benchmark(b, JSON) }
func BenchmarkEncodeProtobuf(b *testing.B) { benchmark(b, Protobuf) }

func benchmark(b *testing.B, f Format) {
	ps := points(1000)
	e := Encoder{Format: f}
	for i := range ps {
		e.Append(&ps[i]) // grows the buffers: what follows allocates nothing
	}
	b.ReportAllocs()
	for b.Loop() {
		e.Reset()
		for i := range ps {
			e.Append(&ps[i])
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(ps)), "ns/point")
	b.SetBytes(int64(e.Size()))
}
