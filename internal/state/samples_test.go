package state

import (
	"bytes"
	"errors"
	"testing"
)

// readAll reads back the samples of s, their keys copied.
func readAll(s *Samples) []sample {
	var out []sample
	for off := 0; off < len(s.b); {
		var x sample
		off = s.read(off, &x)
		x.key = bytes.Clone(x.key)
		out = append(out, x)
	}
	return out
}

func TestSamplesRoundTrip(t *testing.T) {
	var s Samples
	if err := s.Append(Counter, 0, []byte("a.b"), []byte("x:1,y:2"), 3, 0.5); err != nil {
		t.Fatal(err)
	}
	if err := s.Append(Set, 2, []byte("s"), nil, setValue(0xdeadbeefcafe), 1); err != nil {
		t.Fatal(err)
	}
	got := readAll(&s)
	if len(got) != 2 || s.Len() != 2 {
		t.Fatalf("read %d samples, Len says %d; want 2", len(got), s.Len())
	}
	c := Series{Key: seriesKey(got[0].scope, got[0].key)}
	if g := got[0]; g.typ != Counter || g.scope != 0 || g.value != 3 || g.rate != 0.5 ||
		c.Type() != Counter || c.Name() != "a.b" || c.Tags() != "x:1,y:2" {
		t.Errorf("sample 0 = %+v, name %q, tags %q", g, c.Name(), c.Tags())
	}
	st := Series{Key: seriesKey(got[1].scope, got[1].key)}
	if g := got[1]; g.typ != Set || g.scope != 2 || g.rate != 1 || st.Name() != "s" || st.Tags() != "" {
		t.Errorf("sample 1 = %+v", g)
	}
	if h := got[1].value; setValue(0xdeadbeefcafe) != h {
		t.Errorf("set member's hash read back as %x", h)
	}
	if ID(Counter, "a.b", "x:1,y:2") != string(got[0].key) {
		t.Errorf("ID builds %q for the sample keyed %q", ID(Counter, "a.b", "x:1,y:2"), got[0].key)
	}
	s.Reset()
	if s.Len() != 0 || s.Size() != 0 || len(readAll(&s)) != 0 {
		t.Errorf("after Reset: %d samples, %d bytes", s.Len(), s.Size())
	}
}

func TestKeyDistinguishesNameFromTags(t *testing.T) {
	var s Samples
	s.Append(Counter, 0, []byte("ab"), []byte("c"), 1, 1)
	s.Append(Counter, 0, []byte("a"), []byte("bc"), 1, 1)
	if got := readAll(&s); bytes.Equal(got[0].key, got[1].key) {
		t.Fatal("the name/tags boundary is not part of the key")
	}
}

func TestSamplesTooLong(t *testing.T) {
	var s Samples
	long := make([]byte, MaxNameLen+1)
	if err := s.Append(Counter, 0, long, nil, 1, 1); !errors.Is(err, ErrTooLong) {
		t.Errorf("a name of %d bytes: %v, want ErrTooLong", len(long), err)
	}
	if err := s.Append(Counter, 0, []byte("c"), long, 1, 1); !errors.Is(err, ErrTooLong) {
		t.Errorf("tags of %d bytes: %v, want ErrTooLong", len(long), err)
	}
	if err := s.Append(Counter, 0, long[:MaxNameLen], long[:MaxTagsLen], 1, 1); err != nil {
		t.Errorf("the longest name and tags: %v", err)
	}
	if s.Len() != 1 {
		t.Errorf("%d samples held, want 1", s.Len())
	}
}

func TestSamplesDoNotAllocate(t *testing.T) {
	var s Samples
	name, tags := []byte("api.request.duration"), []byte("env:prod,host:a,route:/x")
	for range 100 {
		s.Append(Timer, 0, name, tags, 1, 1)
	}
	var sum float64
	allocs := testing.AllocsPerRun(100, func() {
		s.Reset()
		for range 100 {
			s.Append(Timer, 0, name, tags, 12.5, 1)
		}
		var x sample
		for off := 0; off < len(s.b); {
			off = s.read(off, &x)
			sum += x.value
		}
	})
	if allocs != 0 {
		t.Fatalf("append and read allocate %.1f times per 100 samples", allocs)
	}
}

func BenchmarkSamplesAppendRead(b *testing.B) {
	var s Samples
	name, tags := []byte("api.request.duration"), []byte("env:prod,host:a,route:/x")
	var sum float64
	b.ReportAllocs()
	for b.Loop() {
		s.Reset()
		for range 1024 {
			s.Append(Timer, 0, name, tags, 12.5, 1)
		}
		var x sample
		for off := 0; off < len(s.b); {
			off = s.read(off, &x)
			sum += x.value
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*1024), "ns/sample")
}
