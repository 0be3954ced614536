package graphite

import (
	"bytes"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// This file is a strict parser of Graphite's plaintext protocol with tags,
// written from Graphite's documentation (feeding Carbon, tag support) and
// what Carbon's line receiver does (it decodes UTF-8, splits each line at
// whitespace with Python's str.split, and reads the value and timestamp as
// floats), used to check what the encoder writes. Beyond what Carbon
// refuses it wants fields separated by single spaces, the tags sorted by
// name, and no name that Carbon would read as OpenMetrics.

// line is one parsed line.
type line struct {
	Name      string
	Tags      []ptag
	Value     float64
	Timestamp int64
}

type ptag struct{ Key, Value string }

// parseBody parses lines, each ending with a newline.
func parseBody(body []byte) ([]line, error) {
	var out []line
	for len(body) > 0 {
		i := bytes.IndexByte(body, '\n')
		if i < 0 {
			return out, fmt.Errorf("line %d: no newline at the end of the body", len(out)+1)
		}
		l, err := parseLine(string(body[:i]))
		if err != nil {
			return out, fmt.Errorf("line %d: %w: %q", len(out)+1, err, body[:i])
		}
		out = append(out, l)
		body = body[i+1:]
	}
	return out, nil
}

var (
	floatRE = regexp.MustCompile(`^-?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?$`)
	intRE   = regexp.MustCompile(`^-?[0-9]+$`)
)

// pySpace reports whether Python's str.isspace is true of r.
func pySpace(r rune) bool { return unicode.IsSpace(r) || (r >= 0x1c && r <= 0x1f) }

// parseLine parses one line, without its newline.
func parseLine(s string) (line, error) {
	var l line
	if len(s) > MaxLineLength {
		return l, fmt.Errorf("line of %d bytes", len(s))
	}
	if !utf8.ValidString(s) {
		return l, errors.New("invalid UTF-8")
	}
	for _, r := range s {
		if r < 0x20 || (r >= 0x7f && r < 0xa0) || (r != ' ' && pySpace(r)) {
			return l, fmt.Errorf("control or space character %U", r)
		}
	}
	fields := strings.Split(s, " ")
	if len(fields) != 3 {
		return l, fmt.Errorf("%d fields", len(fields))
	}
	path, value, ts := fields[0], fields[1], fields[2]
	if strings.HasSuffix(path, `"}`) && strings.Contains(path, "{") {
		return l, errors.New("an OpenMetrics name")
	}
	segments := strings.Split(path, ";")
	l.Name = segments[0]
	if l.Name == "" || l.Name[0] == '~' {
		return l, fmt.Errorf("bad name %q", l.Name)
	}
	for _, seg := range segments[1:] {
		k, v, ok := strings.Cut(seg, "=")
		if !ok || k == "" || strings.ContainsAny(k, ";!^=") {
			return l, fmt.Errorf("bad tag name in %q", seg)
		}
		if v == "" || v[0] == '~' {
			return l, fmt.Errorf("bad tag value in %q", seg)
		}
		if n := len(l.Tags); n > 0 && l.Tags[n-1].Key >= k {
			return l, fmt.Errorf("tags %q and %q out of order or duplicated", l.Tags[n-1].Key, k)
		}
		l.Tags = append(l.Tags, ptag{k, v})
	}
	if !floatRE.MatchString(value) {
		return l, fmt.Errorf("bad value %q", value)
	}
	var err error
	if l.Value, err = strconv.ParseFloat(value, 64); err != nil {
		return l, err
	}
	if !intRE.MatchString(ts) {
		return l, fmt.Errorf("bad timestamp %q", ts)
	}
	l.Timestamp, err = strconv.ParseInt(ts, 10, 64)
	return l, err
}
