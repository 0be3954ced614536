package graphite

import (
	"fmt"
	"math"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/veneurd/veneurd/internal/textenc"
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
		if e.Len() != strings.Count(want, "\n") || e.Size() != len(want) {
			t.Errorf("%+v: Len %d, Size %d", in, e.Len(), e.Size())
		}
		if _, err := parseBody(e.Body()); err != nil {
			t.Errorf("%+v: %v", in, err)
		}
	}
	const ts = 1795300000
	f(sdk.Point{Name: "api.requests", Tags: []string{"env:prod", "region:eu"}, Type: sdk.PointCounter, Value: 3, Timestamp: ts, Hostname: "web1"},
		"api.requests;env=prod;host=web1;region=eu 3 1795300000\n")
	f(sdk.Point{Name: "mem.free", Type: sdk.PointGauge, Value: -0.25, Timestamp: ts},
		"mem.free -0.25 1795300000\n")
	f(sdk.Point{Name: "x", Value: 1e-7, Timestamp: ts}, "x 1e-7 1795300000\n")
	f(sdk.Point{Name: "x", Value: 1e21, Timestamp: ts}, "x 1e+21 1795300000\n")
	f(sdk.Point{Name: "x", Value: 1234567, Timestamp: ts}, "x 1234567 1795300000\n")
	f(sdk.Point{Name: "x", Value: math.Copysign(0, -1), Timestamp: -5}, "x -0 -5\n")
	// A status point: the status is the value; the message has no place.
	f(sdk.Point{Name: "db.up", Tags: []string{"db:main"}, Type: sdk.PointStatus, Value: 2, Timestamp: ts, Hostname: "h", Message: "refused"},
		"db.up;db=main;host=h 2 1795300000\n")
	// Values Graphite cannot store, and a missing name.
	f(sdk.Point{Name: "x", Value: math.NaN()}, "")
	f(sdk.Point{Name: "x", Value: math.Inf(1)}, "")
	f(sdk.Point{Name: "x", Value: math.Inf(-1)}, "")
	f(sdk.Point{Name: "", Value: 1}, "")

	// Tags: bare tags are true, empty values and empty names are left out,
	// names split at the first colon.
	f(sdk.Point{Name: "x", Tags: []string{":v", "a", "b:", "c:d:e", "url:http://x"}, Value: 1, Timestamp: ts},
		"x;a=true;c=d:e;url=http://x 1 1795300000\n")
	// Sorted by name, not as strings.
	f(sdk.Point{Name: "x", Tags: []string{"a.b:1", "a:2", "a_c:3"}, Value: 1, Timestamp: ts},
		"x;a=2;a.b=1;a_c=3 1 1795300000\n")
	// Duplicate names: the first in the point's order is kept, also when
	// they are duplicates once sanitised.
	f(sdk.Point{Name: "x", Tags: []string{"a!:3", "a=:2", "env:a", "env:b", "k", "k:v"}, Value: 1, Timestamp: ts},
		"x;a_=3;env=a;k=true 1 1795300000\n")
	// The host: the point's hostname unless a host tag gives one.
	f(sdk.Point{Name: "x", Tags: []string{"host:other"}, Value: 1, Timestamp: ts, Hostname: "h"},
		"x;host=other 1 1795300000\n")
	f(sdk.Point{Name: "x", Tags: []string{"host:"}, Value: 1, Timestamp: ts, Hostname: "h"},
		"x;host=h 1 1795300000\n")
	f(sdk.Point{Name: "x", Value: 1, Timestamp: ts, Hostname: "~my host;1"},
		"x;host=_my_host_1 1 1795300000\n")

	// Sanitising: in names ; and whitespace; in tag names ;!^= too; in
	// values ; and a leading ~; controls and Unicode spaces everywhere.
	f(sdk.Point{Name: "~a b;c=d!^~", Tags: []string{"k;!^= ~:~v;=!^ ~"}, Value: 1, Timestamp: ts},
		"_a_b_c=d!^~;k_____~=_v_=!^_~ 1 1795300000\n")
	f(sdk.Point{Name: "a\nb\tc\x7fd\u0085e\u00a0f\u2028g\u3000h\x1ci\xffé😀", Tags: []string{"k\r:v\x00"}, Value: 1, Timestamp: ts},
		"a_b_c_d_e_f_g_h_i\uFFFDé😀;k_=v_ 1 1795300000\n")
	// A name Carbon would read as OpenMetrics.
	f(sdk.Point{Name: `m{a="b"}`, Value: 1, Timestamp: ts}, `m{a="b"_ 1 1795300000`+"\n")
	f(sdk.Point{Name: `m{`, Tags: []string{`a:"}`}, Value: 1, Timestamp: ts}, `m{;a="_ 1 1795300000`+"\n")
	f(sdk.Point{Name: `m"}`, Value: 1, Timestamp: ts}, `m"} 1 1795300000`+"\n")
	// The example in NOTES.md.
	f(sdk.Point{Name: "~api requests;x", Tags: []string{"k=1:v;2", "path:~/x y"}, Value: 1, Timestamp: ts},
		"_api_requests_x;k_1=v_2;path=_/x_y 1 1795300000\n")
}

func TestPrefix(t *testing.T) {
	e := Encoder{Prefix: "veneur."}
	e.Point(&sdk.Point{Name: "x", Tags: []string{"a:b"}, Value: 1, Timestamp: 7, Hostname: "h"})
	e.Prefix = "~p "
	e.Point(&sdk.Point{Name: "~y", Value: 2, Timestamp: 7})
	if got, want := string(e.Body()), "veneur.x;a=b;host=h 1 7\n_p_~y 2 7\n"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}

func TestNoHostTag(t *testing.T) {
	e := Encoder{NoHostTag: true}
	e.Point(&sdk.Point{Name: "x", Tags: []string{"a:b"}, Value: 1, Timestamp: 7, Hostname: "h"})
	e.Point(&sdk.Point{Name: "y", Tags: []string{"host:g"}, Value: 2, Timestamp: 7, Hostname: "h"})
	if got, want := string(e.Body()), "x;a=b 1 7\ny;host=g 2 7\n"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
	e.Reset()
	if e.Len() != 0 || e.Size() != 0 || len(e.Body()) != 0 {
		t.Fatal("Reset left something")
	}
}

// TestLineLimit checks that a line longer than Carbon takes is refused,
// leaving the body as it was.
func TestLineLimit(t *testing.T) {
	var e Encoder
	e.Point(&sdk.Point{Name: "first", Value: 1})
	body := string(e.Body())
	long := sdk.Point{Name: strings.Repeat("n", MaxLineLength-3), Tags: []string{"k:v"}, Value: 1}
	// name;k=v 1 0
	if e.Point(&long) || string(e.Body()) != body || e.Len() != 1 {
		t.Fatalf("a line of %d bytes was written", MaxLineLength+5)
	}
	long.Name = long.Name[5:]
	if !e.Point(&long) || e.Len() != 2 {
		t.Fatalf("a line of %d bytes was refused", MaxLineLength)
	}
	if _, err := parseBody(e.Body()); err != nil {
		t.Fatal(err)
	}
}

func TestManyTags(t *testing.T) {
	var tags []string
	for i := range 40 {
		tags = append(tags, fmt.Sprintf("k%02d.x:%d", 39-i, i), fmt.Sprintf("k%02d:%d", i, i), fmt.Sprintf("k%02d=:%d", i, i))
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
	if want, _ := expect(&p, "", false); !reflect.DeepEqual(lines[0], want) {
		t.Fatalf("got %+v\nwant %+v", lines[0], want)
	}
}

// expect is what the parser should read back for p: the mapping NOTES.md
// describes, written independently of the encoder. ok is false when the
// encoder should refuse p.
func expect(p *sdk.Point, prefix string, noHost bool) (l line, ok bool) {
	if p.Name == "" || math.IsNaN(p.Value) || math.IsInf(p.Value, 0) {
		return l, false
	}
	// The prefix and the name are sanitised apart.
	l.Name = clean(prefix, ";", true) + clean(p.Name, ";", prefix == "")
	var tags []ptag
	for _, t := range p.Tags {
		k, v, found := strings.Cut(t, ":")
		if !found {
			v = "true"
		}
		if k == "" || v == "" {
			continue
		}
		tags = append(tags, ptag{clean(k, ";!^=", false), clean(v, ";", true)})
	}
	if !noHost && p.Hostname != "" && !slices.ContainsFunc(tags, func(t ptag) bool { return t.Key == "host" }) {
		tags = append(tags, ptag{"host", clean(p.Hostname, ";", true)})
	}
	sort.SliceStable(tags, func(i, j int) bool { return tags[i].Key < tags[j].Key })
	path := l.Name
	for _, t := range tags {
		if len(l.Tags) > 0 && l.Tags[len(l.Tags)-1].Key == t.Key {
			continue
		}
		l.Tags = append(l.Tags, t)
		path += ";" + t.Key + "=" + t.Value
	}
	if strings.HasSuffix(path, `"}`) && strings.Contains(path, "{") {
		if len(l.Tags) == 0 {
			l.Name = strings.TrimSuffix(l.Name, "}") + "_"
		} else {
			t := &l.Tags[len(l.Tags)-1]
			t.Value = strings.TrimSuffix(t.Value, "}") + "_"
		}
	}
	if len(fmt.Sprintf("%s %s %d", path, strings.TrimSpace(string(textenc.AppendFloat(nil, p.Value))), p.Timestamp)) > MaxLineLength {
		return l, false
	}
	l.Value = p.Value
	l.Timestamp = p.Timestamp
	return l, true
}

// clean is appendClean, by runes.
func clean(s, forbidden string, first bool) string {
	rs := []rune(s) // each invalid byte becomes U+FFFD
	for i, r := range rs {
		if strings.ContainsRune(forbidden, r) || r < 0x20 || (r >= 0x7f && r < 0xa0) || pySpace(r) || (i == 0 && first && r == '~') {
			rs[i] = '_'
		}
	}
	return string(rs)
}

// FuzzEncode checks that whatever a point holds, its line parses with the
// strict parser and reads back as the mapping says, after another line.
// tags is split at '|' and sorted, as the SDK hands tags over.
func FuzzEncode(f *testing.F) {
	f.Fuzz(func(t *testing.T, name, tags, host, prefix string, value float64, ts int64, noHost bool) {
		p := sdk.Point{Name: name, Type: sdk.PointGauge, Value: value, Timestamp: ts, Hostname: host}
		if tags != "" {
			p.Tags = strings.Split(tags, "|")
			slices.Sort(p.Tags)
		}
		first := sdk.Point{Name: "first", Tags: []string{"a:b"}, Value: 1, Timestamp: 1, Hostname: "h"}
		e := Encoder{NoHostTag: noHost, Prefix: prefix}
		e.Point(&first)
		before := string(e.Body())
		want, ok := expect(&p, prefix, noHost)
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
		if want.Value == 0 {
			lines[1].Value = 0 // -0 reads back as -0 or 0, both right
		}
		if !reflect.DeepEqual(lines[1], want) {
			t.Fatalf("read back\n%+v\nwant\n%+v\nline %q", lines[1], want, e.Body()[len(before):])
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
	ps = append(ps, sdk.Point{Name: "many.tags", Tags: tags, Value: 1, Hostname: "h"},
		sdk.Point{Name: "~dirty name\n", Tags: []string{"a.b:1", "a:~2\xff", "k=:v"}, Value: 1, Hostname: "h;"})
	e := Encoder{Prefix: "veneur."}
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
