package localfile

import (
	"encoding/json"
	"github.com/veneurd/veneurd/internal/textenc"
	"io"
	"math"
	"reflect"
	"strings"
	"testing"
)

// FuzzAppendString checks that strings are written exactly as encoding/json
// writes them, which is what the file held before the sink wrote lines
// itself.
func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "plain", "tab\t nl\n cr\r bs\b ff\f nul\x00 esc\x1b del\x7f", `quote " backslash \`,
		"<html> & ünïcödé", "line\u2028para\u2029", "invalid \xff\xfe", "cut \xe2\x82", "\xed\xa0\x80 surrogate", "\U0001F600"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) { checkJSON(t, s, textenc.AppendJSONString(nil, s)) })
}

// checkJSON fails the test unless got is what encoding/json writes for v.
func checkJSON(t *testing.T, v any, got []byte) {
	t.Helper()
	want, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Errorf("%#v: got %s, want %s", v, got, want)
	}
}

// TestAppendFloat checks that values are written as encoding/json writes
// them.
func TestAppendFloat(t *testing.T) {
	for _, v := range []float64{0, math.Copysign(0, -1), 1, -2.5, 3, 0.125, 1e-7, 1e-6, 9.99e-7, 123456789.125,
		1e20, 1e21, 1.5e300, -1e-300, math.MaxFloat64, math.SmallestNonzeroFloat64, 0.1 + 0.2} {
		checkJSON(t, v, textenc.AppendFloat(nil, v))
	}
}

// TestDecoder reads back what the sink wrote, leaves a line still being
// written unread, and names the line that does not decode.
func TestDecoder(t *testing.T) {
	const file = `{"name":"x.count","tags":["a:b"],"type":"counter","value":3,"timestamp":1795300000,"hostname":"h1"}
{"kind":"service_check","name":"db.up","tags":[],"type":"status","value":2,"timestamp":1795300000,"hostname":"h1","message":"refused"}
{"kind":"event","title":"deploy","text":"one\ntwo","tags":["env:dev"],"timestamp":1795300000,"hostname":"h1","priority":"normal","alert_type":"info"}
{"name":"x.gauge","tags":[],"type":"ga`
	want := []Line{
		{Name: "x.count", Tags: []string{"a:b"}, Type: "counter", Value: 3, Timestamp: 1795300000, Hostname: "h1"},
		{Kind: KindServiceCheck, Name: "db.up", Tags: []string{}, Type: "status", Value: 2, Timestamp: 1795300000, Hostname: "h1", Message: "refused"},
		{Kind: KindEvent, Title: "deploy", Text: "one\ntwo", Tags: []string{"env:dev"}, Timestamp: 1795300000, Hostname: "h1", Priority: "normal", AlertType: "info"},
	}
	dec := NewDecoder(strings.NewReader(file))
	var got []Line
	for {
		var l Line
		err := dec.Decode(&l)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, l)
		// What the sink writes for a line is what was read.
		if b := l.AppendJSON(nil); string(b) != strings.Split(file, "\n")[len(got)-1] {
			t.Errorf("line %d written back as %s", len(got), b)
		}
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v\nwant %+v", got, want)
	}

	dec = NewDecoder(strings.NewReader(strings.Join(strings.Split(file, "\n")[:2], "\n") + "\nnot json\n"))
	var l Line
	for range 2 {
		if err := dec.Decode(&l); err != nil {
			t.Fatal(err)
		}
	}
	const wantErr = `line 3: invalid character 'o' in literal null (expecting 'u'): "not json\n"`
	if err := dec.Decode(&l); err == nil || err.Error() != wantErr {
		t.Fatalf("got error %v, want %s", err, wantErr)
	}
}
