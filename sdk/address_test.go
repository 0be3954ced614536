package sdk

import "testing"

func TestParseAddress(t *testing.T) {
	for in, want := range map[string]Address{
		"udp://127.0.0.1:8126":               {Network: "udp", Host: "127.0.0.1", Port: 8126},
		"udp://:8126":                        {Network: "udp", Port: 8126},
		"udp4://localhost:1":                 {Network: "udp4", Host: "localhost", Port: 1},
		"tcp6://[::1]:65535":                 {Network: "tcp6", Host: "::1", Port: 65535},
		"tcp://[fe80::1%eth0]:8126":          {Network: "tcp", Host: "fe80::1%eth0", Port: 8126},
		"unixgram:///run/veneurd/dsd.sock":   {Network: "unixgram", Path: "/run/veneurd/dsd.sock"},
		"unix://relative/dsd.sock":           {Network: "unix", Path: "relative/dsd.sock"},
		"unix:///tmp/a socket?with#odd%char": {Network: "unix", Path: "/tmp/a socket?with#odd%char"},
	} {
		got, err := ParseAddress(in)
		if err != nil || got != want {
			t.Errorf("ParseAddress(%q) = %+v, %v; want %+v", in, got, err, want)
			continue
		}
		if back, err := ParseAddress(got.String()); err != nil || back != got {
			t.Errorf("%q: String() = %q reads back as %+v, %v", in, got.String(), back, err)
		}
	}
	if got := (Address{Network: "tcp6", Host: "::1", Port: 8126}).String(); got != "tcp6://[::1]:8126" {
		t.Errorf("String() = %q", got)
	}
}

func TestParseAddressErrors(t *testing.T) {
	for in, want := range map[string]string{
		"127.0.0.1:8126":         `"127.0.0.1:8126" has no scheme: write it as udp://HOST:PORT, tcp://HOST:PORT, unixgram:///PATH or unix:///PATH`,
		"udp://127.0.0.1":        `"udp://127.0.0.1" has no port: write it as udp://127.0.0.1:8126`,
		"udp://127.0.0.1:":       `"udp://127.0.0.1:" has no port: write it as udp://127.0.0.1:8126`,
		"tcp6://[::1]":           `"tcp6://[::1]" has no port: write it as tcp6://[::1]:8126`,
		"udp://":                 `"udp://" has no host or port: write it as udp://127.0.0.1:8126`,
		"udp://::1:8126":         `"udp://::1:8126": write an IPv6 host in brackets, as in udp://[::1]:8126`,
		"udp://127.0.0.1:99999":  `"udp://127.0.0.1:99999": the port 99999 is out of range: a port is 1 to 65535`,
		"udp://127.0.0.1:0":      `"udp://127.0.0.1:0": the port 0 is out of range: a port is 1 to 65535`,
		"udp://127.0.0.1:-1":     `"udp://127.0.0.1:-1": the port -1 is out of range: a port is 1 to 65535`,
		"udp://127.0.0.1:http":   `"udp://127.0.0.1:http": the port "http" is not a number`,
		"udp://127.0.0.1:8126/x": `"udp://127.0.0.1:8126/x": the port "8126/x" is not a number`,
		"udp://a b:8126":         `"udp://a b:8126": "a b" is neither an IP address nor a host name`,
		"upd://127.0.0.1:8126":   `"upd://127.0.0.1:8126" has an unknown scheme "upd" (did you mean "udp"?): use udp, udp4, udp6, tcp, tcp4, tcp6, unix, unixgram`,
		"http://x:1":             `"http://x:1" has an unknown scheme "http": use udp, udp4, udp6, tcp, tcp4, tcp6, unix, unixgram`,
		"unixgram://":            `"unixgram://" has no socket path: write it as unixgram:///run/veneurd/dsd.sock`,
		"unix://":                `"unix://" has no socket path: write it as unix:///run/veneurd/dsd.sock`,
	} {
		_, err := ParseAddress(in)
		if err == nil || err.Error() != want {
			t.Errorf("ParseAddress(%q) error\n got %v\nwant %s", in, err, want)
		}
	}
}

func TestParseUnboundAddress(t *testing.T) {
	for in, want := range map[string]Address{
		"udp://127.0.0.1:0": {Network: "udp", Host: "127.0.0.1"},
		"unixgram://":       {Network: "unixgram"},
	} {
		if got, err := ParseUnboundAddress(in); err != nil || got != want {
			t.Errorf("ParseUnboundAddress(%q) = %+v, %v", in, got, err)
		}
	}
	if _, err := ParseUnboundAddress("udp://127.0.0.1"); err == nil {
		t.Error("ParseUnboundAddress took an address without a port")
	}
}

func TestAddressOverlaps(t *testing.T) {
	p := func(s string) Address {
		a, err := ParseAddress(s)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	for _, c := range []struct {
		a, b string
		want bool
	}{
		{"udp://127.0.0.1:8126", "udp://127.0.0.1:8126", true},
		{"udp://127.0.0.1:8126", "udp4://127.0.0.1:8126", true},
		{"udp://0.0.0.0:8126", "udp://127.0.0.1:8126", true},
		{"udp://:8126", "udp6://[::1]:8126", true},
		{"tcp://[::]:8126", "tcp://10.0.0.1:8126", true},
		{"udp://[::ffff:127.0.0.1]:8126", "udp://127.0.0.1:8126", true},
		{"udp://LocalHost:8126", "udp://localhost:8126", true},
		{"udp://127.0.0.1:8126", "tcp://127.0.0.1:8126", false},
		{"udp://127.0.0.1:8126", "udp://127.0.0.1:8127", false},
		{"udp://127.0.0.1:8126", "udp://127.0.0.2:8126", false},
		{"unix:///tmp/a.sock", "unixgram:///tmp/a.sock", true},
		{"unix:///tmp/a.sock", "unix:///tmp/b.sock", false},
		{"unix:///tmp/a.sock", "udp://127.0.0.1:8126", false},
	} {
		if got := p(c.a).Overlaps(p(c.b)); got != c.want {
			t.Errorf("%s overlaps %s: %v, want %v", c.a, c.b, got, c.want)
		}
		if got := p(c.b).Overlaps(p(c.a)); got != c.want {
			t.Errorf("%s overlaps %s: %v, want %v", c.b, c.a, got, c.want)
		}
	}
}

func TestSchemeSuggestion(t *testing.T) {
	for given, want := range map[string]string{"upd": "udp", "tpc": "tcp", "udpp": "udp", "unixgrm": "unixgram", "uni": "unix", "http": "", "quic": ""} {
		if got := closest(given, Networks); got != want {
			t.Errorf("closest(%q) = %q, want %q", given, got, want)
		}
	}
}
