package influxdb

import (
	"fmt"
	"math"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/veneurd/veneurd/sdk"
)

func TestPoint(t *testing.T) {
	f := func(in sdk.Point, want string) {
		t.Helper()
		var e Encoder
		ok := e.Point(&in)
		if got := string(e.Body()); got != want || ok != (want != "") {
			t.Errorf("%+v:\ngot  %t %q\nwant %q", in, ok, got, want)
		}
		if e.Len() != len(strings.Split(want, "\n"))-1 || e.Size() != len(want) {
			t.Errorf("%+v: Len %d, Size %d", in, e.Len(), e.Size())
		}
		if want == "" {
			return
		}
		if _, err := parseBody(e.Body()); err != nil {
			t.Errorf("%+v: %v", in, err)
		}
	}
	const ts = 1795300000
	// Counters and gauges: the name is the measurement, the value a float.
	f(sdk.Point{Name: "api.requests", Tags: []string{"env:prod", "region:eu"}, Type: sdk.PointCounter, Value: 3, Timestamp: ts, Hostname: "web1"},
		"api.requests,env=prod,host=web1,region=eu value=3 1795300000\n")
	f(sdk.Point{Name: "mem.free", Type: sdk.PointGauge, Value: -0.25, Timestamp: ts},
		"mem.free value=-0.25 1795300000\n")
	f(sdk.Point{Name: "x", Value: 1e-7, Timestamp: ts}, "x value=1e-7 1795300000\n")
	f(sdk.Point{Name: "x", Value: 1e21, Timestamp: ts}, "x value=1e+21 1795300000\n")
	f(sdk.Point{Name: "x", Value: 123456789.125, Timestamp: ts}, "x value=123456789.125 1795300000\n")
	f(sdk.Point{Name: "x", Value: math.MaxFloat64}, "x value=1.7976931348623157e+308 0\n")
	f(sdk.Point{Name: "x", Value: math.Copysign(0, -1), Timestamp: -5}, "x value=-0 -5\n")
	// Status points: the status as the value, the message as a string field.
	f(sdk.Point{Name: "db.up", Tags: []string{"db:main"}, Type: sdk.PointStatus, Value: 2, Timestamp: ts, Hostname: "h", Message: `refused: "conn" C:\x`},
		`db.up,db=main,host=h value=2,message="refused: \"conn\" C:\\x" 1795300000`+"\n")
	f(sdk.Point{Name: "db.up", Type: sdk.PointStatus, Value: 0, Timestamp: ts, Message: "line1\nline2\r\x00\u0085end\xff\x85"},
		"db.up value=0,message=\"line1 line2   end\uFFFD\uFFFD\" 1795300000\n")
	// Values InfluxDB cannot store, and a missing name.
	f(sdk.Point{Name: "x", Value: math.NaN()}, "")
	f(sdk.Point{Name: "x", Value: math.Inf(1)}, "")
	f(sdk.Point{Name: "x", Value: math.Inf(-1)}, "")
	f(sdk.Point{Name: "", Value: 1}, "")

	// Tags: bare tags are true, empty values and empty keys are left out,
	// keys split at the first colon.
	f(sdk.Point{Name: "x", Tags: []string{":v", "a", "b:", "c:d:e", "url:http://x"}, Value: 1, Timestamp: ts},
		"x,a=true,c=d:e,url=http://x value=1 1795300000\n")
	// Sorted by key, not as strings: "a.b:1" < "a:2" but "a" < "a.b".
	f(sdk.Point{Name: "x", Tags: []string{"a.b:1", "a:2", "a_c:3"}, Value: 1, Timestamp: ts},
		"x,a=2,a.b=1,a_c=3 value=1 1795300000\n")
	// Duplicate keys: the first in the point's order is kept.
	f(sdk.Point{Name: "x", Tags: []string{"env:a", "env:b", "k", "k:v"}, Value: 1, Timestamp: ts},
		"x,env=a,k=true value=1 1795300000\n")
	// The host: the point's hostname unless a host tag gives one.
	f(sdk.Point{Name: "x", Tags: []string{"host:other"}, Value: 1, Timestamp: ts, Hostname: "h"},
		"x,host=other value=1 1795300000\n")
	f(sdk.Point{Name: "x", Tags: []string{"host:"}, Value: 1, Timestamp: ts, Hostname: "h"},
		"x,host=h value=1 1795300000\n")
	f(sdk.Point{Name: "x", Tags: []string{"a:1", "z:2"}, Value: 1, Timestamp: ts, Hostname: "my host,1"},
		`x,a=1,host=my\ host\,1,z=2 value=1 1795300000`+"\n")
	// Reserved keys are renamed; a renamed key may then be a duplicate.
	f(sdk.Point{Name: "x", Tags: []string{"_field:f", "_measurement:m", "time:t", "time_:u"}, Value: 1, Timestamp: ts},
		"x,_field_=f,_measurement_=m,time_=t value=1 1795300000\n")

	// Escaping: commas and spaces in measurements, and equals signs too in
	// tags. Control characters become spaces, invalid UTF-8 U+FFFD.
	f(sdk.Point{Name: "a b,c=d", Tags: []string{"k,1 =:v,1 =:x"}, Value: 1, Timestamp: ts},
		`a\ b\,c=d,k\,1\ \==v\,1\ \=:x value=1 1795300000`+"\n")
	f(sdk.Point{Name: "a\nb\tc\x7fd\u0085e\xffé😀", Tags: []string{"k\r:v\x00"}, Value: 1, Timestamp: ts},
		"a\\ b\\ c\\ d\\ e\uFFFDé😀,k\\ =v\\  value=1 1795300000\n")
	// Quotes are part of names; a leading # would make a comment.
	f(sdk.Point{Name: `#"q"'`, Value: 1, Timestamp: ts}, `_"q"' value=1 1795300000`+"\n")
	f(sdk.Point{Name: "a#", Value: 1, Timestamp: ts}, "a# value=1 1795300000\n")
	// Backslashes: kept before other characters, a slash where readers
	// disagree on what they mean.
	f(sdk.Point{Name: `C:\dir\`, Tags: []string{`p:C:\x\`, `q:a\,b`, `r:\\srv\share`, `s:a\=b\ c`, `t:a\` + "\n"}, Value: 1, Timestamp: ts},
		`C:\dir/,p=C:\x/,q=a/\,b,r=/\srv\share,s=a/\=b/\ c,t=a/\  value=1 1795300000`+"\n")
	f(sdk.Point{Name: `a\=b\` + "\u0085c", Value: 1, Timestamp: ts}, `a/=b/\ c value=1 1795300000`+"\n")
	// The example in NOTES.md.
	f(sdk.Point{Name: "a b,c", Tags: []string{"k=1:x y", `path:C:\dir\`}, Type: sdk.PointStatus, Value: 2, Timestamp: ts, Message: "bad\n\"x\""},
		`a\ b\,c,k\=1=x\ y,path=C:\dir/ value=2,message="bad \"x\"" 1795300000`+"\n")
}

// TestSeriesKeyLimit checks that a point whose series key is longer than
// InfluxDB takes is refused, leaving the body as it was.
func TestSeriesKeyLimit(t *testing.T) {
	var e Encoder
	e.Point(&sdk.Point{Name: "first", Value: 1})
	body := string(e.Body())
	long := sdk.Point{Name: strings.Repeat("n", MaxKeyLength-3), Tags: []string{"k:v"}, Value: 1}
	if e.Point(&long) || string(e.Body()) != body || e.Len() != 1 {
		t.Fatalf("a series key of %d bytes was written", MaxKeyLength+1)
	}
	long.Name = long.Name[1:]
	if !e.Point(&long) || e.Len() != 2 {
		t.Fatalf("a series key of %d bytes was refused", MaxKeyLength)
	}
	if _, err := parseBody(e.Body()); err != nil {
		t.Fatal(err)
	}
}

// TestMessageLimit checks that a message is cut to MaxStringLength bytes at
// a character boundary.
func TestMessageLimit(t *testing.T) {
	var e Encoder
	msg := strings.Repeat("é", MaxStringLength) // twice too long
	e.Point(&sdk.Point{Name: "x", Type: sdk.PointStatus, Value: 1, Message: msg})
	lines, err := parseBody(e.Body())
	if err != nil {
		t.Fatal(err)
	}
	if got := lines[0].Fields[1].String; got != msg[:MaxStringLength] {
		t.Fatalf("message of %d bytes, want %d", len(got), MaxStringLength)
	}
	e.Reset()
	e.Point(&sdk.Point{Name: "x", Type: sdk.PointStatus, Value: 1, Message: "a" + msg})
	if lines, err = parseBody(e.Body()); err != nil || lines[0].Fields[1].String != "a"+msg[:MaxStringLength-2] {
		t.Fatalf("message cut inside a character: %v", err)
	}
}

func TestOptions(t *testing.T) {
	e := Encoder{NoHostTag: true}
	e.Point(&sdk.Point{Name: "x", Tags: []string{"a:b"}, Value: 1, Timestamp: 7, Hostname: "h"})
	e.Point(&sdk.Point{Name: "y", Tags: []string{"host:g"}, Value: 2, Timestamp: 7, Hostname: "h"})
	e.NoMessage = true
	e.Point(&sdk.Point{Name: "z", Type: sdk.PointStatus, Value: 2, Timestamp: 7, Message: "m"})
	if got, want := string(e.Body()), "x,a=b value=1 7\ny,host=g value=2 7\nz value=2 7\n"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
	e.Reset()
	if e.Len() != 0 || e.Size() != 0 || len(e.Body()) != 0 {
		t.Fatal("Reset left something")
	}
}

// TestManyTags checks the sort beyond the insertion sort's reach.
func TestManyTags(t *testing.T) {
	var tags []string
	for i := range 40 {
		tags = append(tags, fmt.Sprintf("k%02d.x:%d", 39-i, i), fmt.Sprintf("k%02d:%d", i, i))
	}
	slices.Sort(tags)
	p := sdk.Point{Name: "x", Tags: tags, Value: 1, Hostname: "h"}
	var e Encoder
	if !e.Point(&p) {
		t.Fatal("refused")
	}
	lines, err := parseBody(e.Body())
	if err != nil {
		t.Fatal(err)
	}
	if want, _ := expect(&p, false); !reflect.DeepEqual(lines[0], want) {
		t.Fatalf("got %+v\nwant %+v", lines[0], want)
	}
}

// expect is what the parser should read back for p: the mapping NOTES.md
// describes, written independently of the encoder. ok is false when the
// encoder should refuse p.
func expect(p *sdk.Point, noHost bool) (l line, ok bool) {
	if p.Name == "" || math.IsNaN(p.Value) || math.IsInf(p.Value, 0) {
		return l, false
	}
	l.Measurement = clean(p.Name)
	if l.Measurement[0] == '#' {
		l.Measurement = "_" + l.Measurement[1:]
	}
	var tags []ptag
	for _, t := range p.Tags {
		k, v, found := strings.Cut(t, ":")
		if !found {
			v = "true"
		}
		if k == "" || v == "" {
			continue
		}
		k = clean(k)
		if reserved(k) {
			k += "_"
		}
		tags = append(tags, ptag{k, clean(v)})
	}
	if !noHost && p.Hostname != "" && !slices.ContainsFunc(tags, func(t ptag) bool { return t.Key == "host" }) {
		tags = append(tags, ptag{"host", clean(p.Hostname)})
	}
	sort.SliceStable(tags, func(i, j int) bool { return tags[i].Key < tags[j].Key })
	keyLen := len(escape(l.Measurement, ", "))
	for _, t := range tags {
		if len(l.Tags) > 0 && l.Tags[len(l.Tags)-1].Key == t.Key {
			continue
		}
		l.Tags = append(l.Tags, t)
		keyLen += 2 + len(escape(t.Key, ",= ")) + len(escape(t.Value, ",= "))
	}
	if keyLen > MaxKeyLength {
		return l, false
	}
	l.Fields = []field{{Key: "value", Float: p.Value}}
	if p.Message != "" {
		var msg strings.Builder
		for _, r := range p.Message {
			if r < 0x20 || (r >= 0x7f && r < 0xa0) {
				r = ' '
			}
			if msg.Len()+len(string(r)) > MaxStringLength {
				break
			}
			msg.WriteRune(r)
		}
		l.Fields = append(l.Fields, field{Key: "message", String: msg.String(), IsString: true})
	}
	l.Timestamp = p.Timestamp
	return l, true
}

// clean is appendClean, by runes.
func clean(s string) string {
	rs := []rune(s) // each invalid byte becomes U+FFFD
	for i, r := range rs {
		if r < 0x20 || (r >= 0x7f && r < 0xa0) {
			rs[i] = ' '
		}
	}
	for i, r := range rs {
		if r == '\\' && (i+1 == len(rs) || strings.ContainsRune(`\,= `, rs[i+1])) {
			rs[i] = '/'
		}
	}
	return string(rs)
}

// escape puts a backslash before each of chars in s.
func escape(s, chars string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(chars, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// FuzzEncode checks that whatever a point holds, its line parses with the
// strict parser and reads back as the mapping says, after another line.
// tags is split at '|' and sorted, as the SDK hands tags over.
func FuzzEncode(f *testing.F) {
	f.Fuzz(func(t *testing.T, name, tags, host, msg string, typ uint8, value float64, ts int64, noHost bool) {
		p := sdk.Point{Name: name, Type: sdk.PointType(typ), Value: value, Timestamp: ts, Hostname: host, Message: msg}
		if tags != "" {
			p.Tags = strings.Split(tags, "|")
			slices.Sort(p.Tags)
		}
		first := sdk.Point{Name: "first", Tags: []string{"a:b"}, Value: 1, Timestamp: 1, Hostname: "h"}
		e := Encoder{NoHostTag: noHost}
		e.Point(&first)
		before := string(e.Body())
		want, ok := expect(&p, noHost)
		if got := e.Point(&p); got != ok {
			t.Fatalf("Point returned %t, want %t", got, ok)
		}
		lines, err := parseBody(e.Body())
		if err != nil {
			t.Fatalf("%v\nbody %q", err, e.Body())
		}
		if !ok {
			if string(e.Body()) != before || e.Len() != 1 {
				t.Fatalf("a refused point changed the body: %q", e.Body())
			}
			return
		}
		if len(lines) != 2 || e.Len() != 2 || e.Size() != len(e.Body()) {
			t.Fatalf("%d lines, Len %d", len(lines), e.Len())
		}
		if !reflect.DeepEqual(lines[1], want) && !sameNaNFree(lines[1], want) {
			t.Fatalf("read back\n%+v\nwant\n%+v\nline %q", lines[1], want, e.Body()[len(before):])
		}
	})
}

// sameNaNFree compares lines whose values may be -0 and 0, which DeepEqual
// tells apart but a float field does not.
func sameNaNFree(a, b line) bool {
	if len(a.Fields) == 0 || len(b.Fields) == 0 || a.Fields[0].Float != b.Fields[0].Float {
		return false
	}
	a.Fields[0].Float, b.Fields[0].Float = 0, 0
	return reflect.DeepEqual(a, b)
}

// points are realistic points: names of about 30 bytes, 4 to 6 tags.
func points(n int) []sdk.Point {
	ps := make([]sdk.Point, n)
	for i := range ps {
		tags := []string{"env:production", "region:eu-west-1", fmt.Sprintf("service:checkout-%d", i%7),
			fmt.Sprintf("endpoint:/api/v1/orders/%d", i%13), "version:1.42.0", "az:eu-west-1b"}[:4+i%3]
		slices.Sort(tags)
		ps[i] = sdk.Point{Name: fmt.Sprintf("checkout.http.request.duration.%d", i%10), Tags: tags,
			Type: sdk.PointType(1 + i%2), Value: float64(i) * 1.25, Timestamp: 1795300000, Hostname: "ip-10-0-12-34.eu-west-1"}
	}
	return ps
}

// TestPointAllocs checks that a warmed-up Encoder allocates nothing.
func TestPointAllocs(t *testing.T) {
	ps := points(1000)
	tags := make([]string, 30)
	for i := range tags {
		tags[i] = fmt.Sprintf("t%02d:v", 29-i)
	}
	ps = append(ps,
		sdk.Point{Name: "status.check", Tags: []string{"a:b"}, Type: sdk.PointStatus, Value: 1, Message: "bad \"x\"\n", Hostname: "h"},
		sdk.Point{Name: "many.tags", Tags: tags, Value: 1, Hostname: "h"},
		sdk.Point{Name: "dirty\n", Tags: []string{"a.b:1", "a:2\xff", "time:x"}, Value: 1, Hostname: "h\\"})
	var e Encoder
	encode := func() {
		e.Reset()
		for i := range ps {
			e.Point(&ps[i])
		}
	}
	encode()
	if n := testing.AllocsPerRun(10, encode); n != 0 {
		t.Fatalf("%v allocations per body", n)
	}
	if _, err := parseBody(e.Body()); err != nil {
		t.Fatal(err)
	}
}

// BenchmarkEncodePoints encodes bodies of 1000 points; ns/point is the
// figure to compare.
func BenchmarkEncodePoints(b *testing.B) {
	ps := points(1000)
	var e Encoder
	for i := range ps {
		e.Point(&ps[i]) // grows the buffers: what follows allocates nothing
	}
	b.ReportAllocs()
	for b.Loop() {
		e.Reset()
		for i := range ps {
			e.Point(&ps[i])
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(ps)), "ns/point")
	b.SetBytes(int64(e.Size()))
}
