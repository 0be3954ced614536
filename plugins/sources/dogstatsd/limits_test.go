package dogstatsd

import (
	"errors"
	"io"
	"net"
	"reflect"
	"strings"
	"testing"
	"time"

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

// max_line_length bounds a stream line, its newline included: a line that
// fits is read, a longer one is dropped whole and counted.
func TestMaxLineLength(t *testing.T) {
	line := func(name string, n int) string { // n bytes with the newline
		l := name + ":1|c|#t:"
		return l + strings.Repeat("a", n-len(l)-1) + "\n"
	}
	got := sdktest.Source(t, func() sdk.Source { return New() }, sdktest.SourceCase{
		Config: map[string]any{"max_line_length": 1024},
		Listen: []string{"tcp://127.0.0.1:0"},
		Send: func(t *testing.T, addrs []string) {
			c := sdktest.Dial(t, addrs[0])
			if _, err := c.Write([]byte(line("fits", 1024) + line("long", 1025) + "after:1|c\n")); err != nil {
				t.Fatal(err)
			}
		},
		Want: func(t *testing.T, got *sdktest.Collector) bool { return got.Received()["tcp"] >= 3 },
	})
	var names []string
	for _, m := range got.Metrics() {
		names = append(names, m.Name)
	}
	if strings.Join(names, ",") != "fits,after" {
		t.Errorf("metrics %q, want fits and after", names)
	}
	wantErrors := []sdktest.Error{{PacketType: "metric", Reason: "toolong"}}
	if e := got.Errors(); !reflect.DeepEqual(e, wantErrors) {
		t.Errorf("errors %+v, want %+v", e, wantErrors)
	}
}

// max_connections bounds the stream connections open at once: one past it
// is closed at once and counted, and the ones open are still read; once
// one closes, a new connection is taken again.
func TestMaxConnections(t *testing.T) {
	got := sdktest.Source(t, func() sdk.Source { return New() }, sdktest.SourceCase{
		Config: map[string]any{"max_connections": 2},
		Listen: []string{"tcp://127.0.0.1:0"},
		Send: func(t *testing.T, addrs []string) {
			a, b := sdktest.Dial(t, addrs[0]), sdktest.Dial(t, addrs[0])
			for _, c := range []net.Conn{a, b} {
				if _, err := c.Write([]byte("open:1|c\n")); err != nil {
					t.Fatal(err)
				}
			}
			// A third connection is closed by the source at once, which a
			// read shows.
			refused := sdktest.Dial(t, addrs[0])
			refused.SetReadDeadline(time.Now().Add(10 * time.Second))
			if n, err := refused.Read(make([]byte, 1)); err != io.EOF {
				t.Fatalf("a connection past max_connections read %d bytes, %v; want EOF", n, err)
			}
			a.Close()
			// a's slot is free once the source has seen it close; a new
			// connection may race that, so try until one is taken.
			deadline := time.Now().Add(10 * time.Second)
			for {
				c := sdktest.Dial(t, addrs[0])
				c.Write([]byte("later:1|c\n"))
				c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
				_, err := c.Read(make([]byte, 1))
				if ne, ok := err.(net.Error); ok && ne.Timeout() {
					return // taken: the source holds it open
				}
				if time.Now().After(deadline) {
					t.Fatal("no connection taken after one closed")
				}
			}
		},
		Want: func(t *testing.T, got *sdktest.Collector) bool {
			n := map[string]int{}
			for _, m := range got.Metrics() {
				n[m.Name]++
			}
			return n["open"] == 2 && n["later"] >= 1
		},
	})
	var refused int
	for _, e := range got.Errors() {
		if e != (sdktest.Error{PacketType: "connection", Reason: "too_many_connections"}) {
			t.Errorf("unexpected error %+v", e)
		}
		refused++
	}
	if refused < 1 {
		t.Errorf("%d refusals counted, want at least 1", refused)
	}
}
