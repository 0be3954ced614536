package dogstatsd

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/veneurd/veneurd/sdk"
	"github.com/veneurd/veneurd/sdk/sdktest"
)

func TestMaxPacketSizeRange(t *testing.T) {
	if got := defaultConfig().MaxPacketSize; got != 8192 {
		t.Fatalf("default max_packet_size %d, want 8192", got)
	}
	f := func(size int, ok bool) {
		t.Helper()
		c := defaultConfig()
		c.MaxPacketSize = size
		err := c.validate()
		var ae *sdk.AttrError
		switch {
		case ok && err != nil:
			t.Errorf("max_packet_size = %d: %v", size, err)
		case !ok && (!errors.As(err, &ae) || ae.Attribute != "max_packet_size"):
			t.Errorf("max_packet_size = %d: got %v, want an error on max_packet_size", size, err)
		}
	}
	f(512, true)
	f(4096, true) // Veneur's metric_max_length default
	f(65535, true)
	f(0, false)
	f(511, false)
	f(65536, false)
}

// A datagram up to max_packet_size bytes is read whole; a longer one is
// dropped whole and counted once as toolong, over UDP and unixgram alike.
func TestMaxPacketSizeDatagrams(t *testing.T) {
	fits := strings.Repeat("abc:1|c\n", 128)                // 1,024 bytes
	over := strings.Repeat("abc:1|c\n", 127) + "abcd:1|c\n" // 1,025 bytes
	listen := []string{"udp://127.0.0.1:0", "unixgram://"}
	got := sdktest.Source(t, func() sdk.Source { return New() }, sdktest.SourceCase{
		Config: map[string]any{"max_packet_size": 1024},
		Listen: listen,
		Send: func(t *testing.T, addrs []string) {
			for _, a := range addrs {
				c := sdktest.Dial(t, a)
				for _, d := range []string{fits, over, "end:1|c"} {
					if _, err := c.Write([]byte(d)); err != nil {
						t.Fatal(err)
					}
				}
			}
		},
		Want: func(t *testing.T, got *sdktest.Collector) bool {
			r := got.Received()
			return r["udp"] >= 130 && r["unixgram"] >= 130
		},
	})
	names := map[string]int{}
	for _, m := range got.Metrics() {
		names[m.Protocol+" "+m.Name]++
	}
	wantNames := map[string]int{"udp abc": 128, "udp end": 1, "unixgram abc": 128, "unixgram end": 1}
	if !reflect.DeepEqual(names, wantNames) {
		t.Errorf("metrics by protocol and name %v, want %v", names, wantNames)
	}
	wantErrors := []sdktest.Error{{PacketType: "metric", Reason: "toolong"}, {PacketType: "metric", Reason: "toolong"}}
	if e := got.Errors(); !reflect.DeepEqual(e, wantErrors) {
		t.Errorf("errors %+v, want %+v", e, wantErrors)
	}
	if r := got.Received(); !reflect.DeepEqual(r, sdktest.Received{"udp": 130, "unixgram": 130}) {
		t.Errorf("received %v, want 130 for each protocol", r)
	}
}

// A stream line longer than the 64 KiB line buffer is dropped whole and
// counted once as toolong; the lines after it are read.
func TestStreamLineTooLong(t *testing.T) {
	long := "long:1|c|#t:" + strings.Repeat("a", 70000) + "\n"
	got := sdktest.Source(t, func() sdk.Source { return New() }, sdktest.SourceCase{
		Listen: []string{"tcp://127.0.0.1:0"},
		Send: func(t *testing.T, addrs []string) {
			c := sdktest.Dial(t, addrs[0])
			if _, err := c.Write([]byte("before:1|c\n" + long + "after:1|c\n")); err != nil {
				t.Fatal(err)
			}
		},
		Want: func(t *testing.T, got *sdktest.Collector) bool { return got.Received()["tcp"] >= 3 },
	})
	var names []string
	for _, m := range got.Metrics() {
		names = append(names, m.Name)
	}
	if strings.Join(names, ",") != "before,after" {
		t.Errorf("metrics %q, want before and after", names)
	}
	wantErrors := []sdktest.Error{{PacketType: "metric", Reason: "toolong"}}
	if e := got.Errors(); !reflect.DeepEqual(e, wantErrors) {
		t.Errorf("errors %+v, want %+v", e, wantErrors)
	}
}
