package sdk

import (
	"slices"
	"testing"

	"google.golang.org/protobuf/proto"
)

// TestInvalidUTF8Encodes checks that an event and a service check holding
// invalid UTF-8, as a client may send, still encode for the wire, with
// each invalid sequence replaced by U+FFFD and the caller's tags untouched.
func TestInvalidUTF8Encodes(t *testing.T) {
	tags := []string{"ok:1", "bad:\xff", "cut:\xe2\x82"}
	e := EventToProto(&Event{Title: "t\xc3", Text: "x\xffy", Hostname: "h\xfe", Tags: tags})
	if _, err := proto.Marshal(e); err != nil {
		t.Fatalf("event does not encode: %v", err)
	}
	if e.Title != "t\uFFFD" || e.Text != "x\uFFFDy" || !slices.Equal(e.Tags, []string{"ok:1", "bad:\uFFFD", "cut:\uFFFD"}) {
		t.Errorf("event %q %q %q", e.Title, e.Text, e.Tags)
	}
	if tags[1] != "bad:\xff" {
		t.Errorf("the caller's tags were changed: %q", tags)
	}
	c := ServiceCheckToProto(&ServiceCheck{Name: "db\xff", Message: "m\xff", Tags: tags})
	if _, err := proto.Marshal(c); err != nil {
		t.Fatalf("service check does not encode: %v", err)
	}
	if c.Name != "db\uFFFD" || c.Message != "m\uFFFD" {
		t.Errorf("service check %q %q", c.Name, c.Message)
	}
	valid := []string{"a:1"}
	if got := EventToProto(&Event{Tags: valid}).Tags; &got[0] != &valid[0] {
		t.Error("valid tags were copied")
	}
}
