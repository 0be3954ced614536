package frame_test

import (
	"testing"

	"github.com/veneurd/veneurd/sdk"
	. "github.com/veneurd/veneurd/sdk/frame"
)

func TestRoundTrip(t *testing.T) {
	var w Writer
	if err := w.Append(uint8(sdk.Counter), uint8(sdk.ScopeDefault), []byte("a.b"), []byte("x:1,y:2"), 3, 0.5); err != nil {
		t.Fatal(err)
	}
	if err := w.Append(uint8(sdk.Set), uint8(sdk.ScopeGlobal), []byte("s"), nil, SetValue(0xdeadbeefcafe), 1); err != nil {
		t.Fatal(err)
	}
	var got []Sample
	r := NewReader(w.Bytes())
	for r.Next() {
		c, s := r.Sample, &r.Sample
		c.Name, c.Tags, c.Key = append([]byte(nil), s.Name...), append([]byte(nil), s.Tags...), append([]byte(nil), s.Key...)
		got = append(got, c)
	}
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || w.Len() != 2 {
		t.Fatalf("got %d records, writer says %d", len(got), w.Len())
	}
	if g := got[0]; g.Type != uint8(sdk.Counter) || string(g.Name) != "a.b" || string(g.Tags) != "x:1,y:2" || g.Value != 3 || g.Rate != 0.5 {
		t.Errorf("record 0 = %+v", g)
	}
	if g := got[1]; g.Type != uint8(sdk.Set) || g.Scope != uint8(sdk.ScopeGlobal) || SetHash(g.Value) != 0xdeadbeefcafe || len(g.Tags) != 0 {
		t.Errorf("record 1 = %+v", g)
	}
	if string(got[0].Key) == string(got[1].Key) {
		t.Error("distinct series share a key")
	}
}

func TestKeyDistinguishesNameFromTags(t *testing.T) {
	var w Writer
	w.Append(uint8(sdk.Counter), 0, []byte("ab"), []byte("c"), 1, 1)
	w.Append(uint8(sdk.Counter), 0, []byte("a"), []byte("bc"), 1, 1)
	var keys []string
	for r := NewReader(w.Bytes()); r.Next(); {
		keys = append(keys, string(r.Sample.Key))
	}
	if keys[0] == keys[1] {
		t.Fatal("name/tags boundary is not part of the key")
	}
}

func TestDecodeCorrupt(t *testing.T) {
	var w Writer
	w.Append(uint8(sdk.Gauge), 0, []byte("g"), []byte("t"), 1, 1)
	good := append([]byte(nil), w.Bytes()...)
	for n := 2; n < len(good); n++ {
		r := NewReader(good[:n])
		calls := 0
		for r.Next() {
			calls++
		}
		if err := r.Err(); err != ErrCorrupt || calls != 0 {
			t.Fatalf("truncated to %d: err %v, %d records", n, err, calls)
		}
	}
	if r := NewReader([]byte{9, 1, 2}); r.Next() || r.Err() != ErrCorrupt {
		err := r.Err()
		t.Fatalf("bad version: %v", err)
	}
}

func TestNoAllocs(t *testing.T) {
	var w Writer
	name, tags := []byte("api.request.duration"), []byte("env:prod,host:a,route:/x")
	for range 100 {
		w.Append(uint8(sdk.Timer), 0, name, tags, 1, 1)
	}
	w.Reset()
	var sum float64
	allocs := testing.AllocsPerRun(100, func() {
		w.Reset()
		for range 100 {
			w.Append(uint8(sdk.Timer), 0, name, tags, 12.5, 1)
		}
		for r := NewReader(w.Bytes()); r.Next(); {
			sum += r.Sample.Value
		}
	})
	if allocs != 0 {
		t.Fatalf("append+decode allocates %.1f times per 100 samples", allocs)
	}
}

func BenchmarkAppendDecode(b *testing.B) {
	var w Writer
	name, tags := []byte("api.request.duration"), []byte("env:prod,host:a,route:/x")
	var sum float64
	b.ReportAllocs()
	for b.Loop() {
		w.Reset()
		for range 1024 {
			w.Append(uint8(sdk.Timer), 0, name, tags, 12.5, 1)
		}
		for r := NewReader(w.Bytes()); r.Next(); {
			sum += r.Sample.Value
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*1024), "ns/sample")
}
