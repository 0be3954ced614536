package sdk

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// Networks are the schemes of socket addresses, as veneurd's listen
// attributes, `veneurd emit -hostport` and the SDK's test kit write them.
var Networks = []string{"udp", "udp4", "udp6", "tcp", "tcp4", "tcp6", "unix", "unixgram"}

// Address is a socket address written as a URL: "udp://127.0.0.1:8126",
// "tcp://[::1]:8126", "unixgram:///run/veneurd/dsd.sock". It is comparable.
type Address struct {
	// Network is one of Networks.
	Network string
	// Host is an IP network's host, a name or an IP address without
	// brackets; empty for every interface ("udp://:8126").
	Host string
	// Port is an IP network's port.
	Port int
	// Path is a unix or unixgram socket's path, everything after "://".
	Path string
}

// ParseAddress parses a socket address and refuses what cannot be listened
// on or sent to: no scheme or an unknown one, a missing or non-numeric port,
// a port outside 1..65535, an empty socket path. Its errors quote the
// address and say how to write it.
func ParseAddress(s string) (Address, error) {
	return parseAddress(s, false)
}

// ParseUnboundAddress is ParseAddress that also takes port 0 and an empty
// socket path: an address still to be chosen, as the SDK's test kit takes
// them (a free port, a temporary path).
func ParseUnboundAddress(s string) (Address, error) {
	return parseAddress(s, true)
}

func parseAddress(s string, unbound bool) (Address, error) {
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok {
		return Address{}, fmt.Errorf("%q has no scheme: write it as udp://HOST:PORT, tcp://HOST:PORT, unixgram:///PATH or unix:///PATH", s)
	}
	a := Address{Network: scheme}
	switch scheme {
	case "unix", "unixgram":
		if rest == "" && !unbound {
			return Address{}, fmt.Errorf("%q has no socket path: write it as %s:///run/veneurd/dsd.sock", s, scheme)
		}
		a.Path = rest
		return a, nil
	case "udp", "udp4", "udp6", "tcp", "tcp4", "tcp6":
	default:
		hint := ""
		if m := closest(scheme, Networks); m != "" {
			hint = fmt.Sprintf(" (did you mean %q?)", m)
		}
		return Address{}, fmt.Errorf("%q has an unknown scheme %q%s: use %s", s, scheme, hint, strings.Join(Networks, ", "))
	}
	example := scheme + "://127.0.0.1:8126"
	if rest == "" {
		return Address{}, fmt.Errorf("%q has no host or port: write it as %s", s, example)
	}
	host, port, err := net.SplitHostPort(rest)
	if err != nil {
		var ae *net.AddrError
		switch {
		case strings.Count(rest, ":") > 1 && !strings.HasPrefix(rest, "["):
			return Address{}, fmt.Errorf("%q: write an IPv6 host in brackets, as in %s://[::1]:8126", s, scheme)
		case !strings.Contains(rest, ":") || strings.HasSuffix(rest, "]"):
			return Address{}, fmt.Errorf("%q has no port: write it as %s://%s:8126", s, scheme, rest)
		case errors.As(err, &ae):
			return Address{}, fmt.Errorf("%q: %s", s, ae.Err)
		}
		return Address{}, fmt.Errorf("%q: %v", s, err)
	}
	if port == "" {
		return Address{}, fmt.Errorf("%q has no port: write it as %s://%s", s, scheme, net.JoinHostPort(host, "8126"))
	}
	n, err := strconv.Atoi(port)
	if err != nil || strings.HasPrefix(port, "+") {
		return Address{}, fmt.Errorf("%q: the port %q is not a number", s, port)
	}
	if n < 0 || n > 65535 || (n == 0 && !unbound) {
		return Address{}, fmt.Errorf("%q: the port %d is out of range: a port is 1 to 65535", s, n)
	}
	if !validHost(host) {
		return Address{}, fmt.Errorf("%q: %q is neither an IP address nor a host name", s, host)
	}
	a.Host, a.Port = host, n
	return a, nil
}

// validHost reports whether h is empty (every interface), an IP address or
// a host name made of letters, digits, hyphens, underscores and dots.
func validHost(h string) bool {
	if _, err := netip.ParseAddr(h); err == nil {
		return true
	}
	if len(h) > 253 {
		return false
	}
	for _, c := range h {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_', c == '.':
		default:
			return false
		}
	}
	return true
}

// closest returns the option one typo away from given: a letter added,
// removed or changed, or two adjacent letters swapped.
func closest(given string, options []string) string {
	for _, o := range options {
		if typoDistance(given, o) <= 1 {
			return o
		}
	}
	return ""
}

// typoDistance is the optimal string alignment distance between a and b.
func typoDistance(a, b string) int {
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
}

// Addr is what net.Listen and net.Dial take: host:port, or the path.
func (a Address) Addr() string {
	if a.IsUnix() {
		return a.Path
	}
	return net.JoinHostPort(a.Host, strconv.Itoa(a.Port))
}

// String returns the address in its canonical form, which ParseAddress
// reads back.
func (a Address) String() string { return a.Network + "://" + a.Addr() }

// IsUnix reports whether the address is a unix or unixgram socket's path.
func (a Address) IsUnix() bool { return a.Network == "unix" || a.Network == "unixgram" }

// IsDatagram reports whether the network carries datagrams: udp or
// unixgram.
func (a Address) IsDatagram() bool {
	return a.Network == "unixgram" || strings.HasPrefix(a.Network, "udp")
}

// Overlaps reports whether two addresses would take the same socket or
// port, so that listening on both fails or splits the traffic between them:
// the same path, or the same transport (udp or tcp, whatever the IP
// version) and port on the same host or on every interface. Host names
// other than IP addresses are compared as written.
func (a Address) Overlaps(b Address) bool {
	if a.IsUnix() || b.IsUnix() {
		return a.IsUnix() && b.IsUnix() && a.Path == b.Path
	}
	if a.Network[:3] != b.Network[:3] || a.Port != b.Port {
		return false
	}
	ha, hb := canonicalHost(a.Host), canonicalHost(b.Host)
	return ha == "" || hb == "" || ha == hb
}

// canonicalHost returns an IP host in its canonical form, "" for every
// interface, and a name lowercased.
func canonicalHost(h string) string {
	ip, err := netip.ParseAddr(h)
	if err != nil {
		return strings.ToLower(h)
	}
	if ip.IsUnspecified() {
		return ""
	}
	return ip.Unmap().String()
}
