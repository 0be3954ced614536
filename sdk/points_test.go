package sdk_test

import (
	"reflect"
	"testing"

	"github.com/veneurd/veneurd/sdk"
)

func TestPointsRoundTrip(t *testing.T) {
	shared := []string{"a:b", "env:dev"}
	in := []sdk.Point{
		{Name: "x.count", Tags: shared, Type: sdk.PointCounter, Value: 3, Timestamp: 1795300000, Hostname: "h1"},
		{Name: "x.max", Tags: shared, Type: sdk.PointGauge, Value: -2.5, Timestamp: 1795300000, Hostname: "h1"},
		{Name: "y", Type: sdk.PointGauge, Value: 1e300, Timestamp: 1795300000, Hostname: "h1"},
		{Name: "db.up", Tags: []string{"env:dev"}, Type: sdk.PointStatus, Value: 2, Timestamp: 1795300001, Hostname: "dbhost", Message: "down | really"},
		{Name: "z", Tags: []string{"env:dev"}, Type: sdk.PointCounter, Value: 0, Timestamp: -5, Hostname: ""},
	}
	var w sdk.PointPacker
	for i := range in {
		w.Append(&in[i])
	}
	out, err := sdk.UnpackPoints(w.Bytes(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(in, out) {
		t.Fatalf("got %+v\nwant %+v", out, in)
	}
	for n := 1; n < w.Size(); n++ {
		if pts, err := sdk.UnpackPoints(w.Bytes()[:n], nil); err == nil && len(pts) == len(in) {
			t.Fatalf("truncated to %d bytes decodes whole", n)
		}
	}
}

func FuzzUnpackPoints(f *testing.F) {
	var w sdk.PointPacker
	w.Append(&sdk.Point{Name: "a", Tags: []string{"t:1"}, Type: sdk.PointCounter, Value: 1, Timestamp: 5, Hostname: "h"})
	f.Add(w.Bytes())
	f.Add([]byte{1, 1, 15, 0, 0, 0, 0, 0, 0, 0, 0, 2})
	f.Fuzz(func(t *testing.T, b []byte) {
		sdk.UnpackPoints(b, nil) // must not panic
	})
}

func BenchmarkPoints(b *testing.B) {
	tags := []string{"env:prod", "host:h1", "route:/api"}
	pts := make([]sdk.Point, 1000)
	for i := range pts {
		pts[i] = sdk.Point{Name: "api.request.duration.max", Tags: tags, Type: sdk.PointGauge, Value: float64(i), Timestamp: 1795300000, Hostname: "host-1"}
		if i%9 == 0 {
			tags = append([]string(nil), tags...)
		}
	}
	b.ReportAllocs()
	var out []sdk.Point
	for b.Loop() {
		var w sdk.PointPacker
		for i := range pts {
			w.Append(&pts[i])
		}
		out, _ = sdk.UnpackPoints(w.Bytes(), out[:0])
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(pts)), "ns/point")
}

func TestAppendJoined(t *testing.T) {
	tags := "a:b,env:dev"
	var w sdk.PointPacker
	w.AppendJoined("t", ".max", tags, sdk.PointGauge, 4, 7, "h", "")
	before := w.Size()
	w.AppendJoined("t", ".count", tags, sdk.PointCounter, 2, 7, "h", "")
	// The second point of a series: type, flags, value and name only.
	if got := w.Size() - before; got != 2+8+1+len("t.count") {
		t.Errorf("the second point of a series takes %d bytes", got)
	}
	w.AppendJoined("c", "", "", sdk.PointCounter, 1, 7, "h", "")
	w.Append(&sdk.Point{Name: "self", Tags: []string{"veneurd:self"}, Type: sdk.PointGauge, Value: 9, Timestamp: 7, Hostname: "h"})
	w.AppendJoined("sc", "", "x:y", sdk.PointStatus, 2, 7, "other", "down")
	out, err := sdk.UnpackPoints(w.Bytes(), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []sdk.Point{
		{Name: "t.max", Tags: []string{"a:b", "env:dev"}, Type: sdk.PointGauge, Value: 4, Timestamp: 7, Hostname: "h"},
		{Name: "t.count", Tags: []string{"a:b", "env:dev"}, Type: sdk.PointCounter, Value: 2, Timestamp: 7, Hostname: "h"},
		{Name: "c", Type: sdk.PointCounter, Value: 1, Timestamp: 7, Hostname: "h"},
		{Name: "self", Tags: []string{"veneurd:self"}, Type: sdk.PointGauge, Value: 9, Timestamp: 7, Hostname: "h"},
		{Name: "sc", Tags: []string{"x:y"}, Type: sdk.PointStatus, Value: 2, Timestamp: 7, Hostname: "other", Message: "down"},
	}
	if !reflect.DeepEqual(out, want) {
		t.Fatalf("got %+v\nwant %+v", out, want)
	}
}
