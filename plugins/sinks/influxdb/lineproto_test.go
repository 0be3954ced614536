package influxdb

import (
	"bytes"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"
)

// This file is a strict line protocol parser written from InfluxDB's line
// protocol reference (v1 and v2), used to check what the encoder writes. It
// accepts only what every reader agrees on: besides the documented syntax
// it refuses what InfluxDB refuses (duplicate or reserved ptag keys, empty
// ptag values, over-long series keys) and what readers read differently (a
// backslash before a backslash, or before an equals sign in a measurement),
// and it wants the tags sorted by key and a timestamp on every line.

// line is one parsed line.
type line struct {
	Measurement string
	Tags        []ptag
	Fields      []field
	Timestamp   int64
}

type ptag struct{ Key, Value string }

// field is a float field, or a string field when IsString.
type field struct {
	Key      string
	Float    float64
	String   string
	IsString bool
}

// parseBody parses a request body: lines, each ending with a newline.
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

// parseLine parses one line, without its newline.
func parseLine(s string) (line, error) {
	var l line
	if !utf8.ValidString(s) {
		return l, errors.New("invalid UTF-8")
	}
	for _, r := range s {
		if r < 0x20 || (r >= 0x7f && r < 0xa0) {
			return l, fmt.Errorf("control character %U", r)
		}
	}
	if s == "" || s[0] == '#' {
		return l, errors.New("empty line or comment")
	}
	var err error
	i := 0
	// The measurement escapes commas and spaces.
	l.Measurement, i, err = token(s, i, ", ", ", ", "")
	if err != nil {
		return l, fmt.Errorf("measurement: %w", err)
	}
	if l.Measurement == "" {
		return l, errors.New("empty measurement")
	}
	for i < len(s) && s[i] == ',' {
		var t ptag
		if t.Key, i, err = token(s, i+1, ",= ", "=", ", "); err != nil {
			return l, fmt.Errorf("ptag key: %w", err)
		}
		if i == len(s) {
			return l, errors.New("ptag without a value")
		}
		if t.Value, i, err = token(s, i+1, ",= ", ", ", "="); err != nil {
			return l, fmt.Errorf("ptag value: %w", err)
		}
		if t.Key == "" || t.Value == "" {
			return l, fmt.Errorf("empty ptag key or value in %q", t)
		}
		if reserved(t.Key) {
			return l, fmt.Errorf("reserved ptag key %q", t.Key)
		}
		if n := len(l.Tags); n > 0 && l.Tags[n-1].Key >= t.Key {
			return l, fmt.Errorf("ptag keys %q and %q out of order or duplicated", l.Tags[n-1].Key, t.Key)
		}
		l.Tags = append(l.Tags, t)
	}
	if i > MaxKeyLength {
		return l, fmt.Errorf("series key of %d bytes", i)
	}
	if i == len(s) {
		return l, errors.New("no field set")
	}
	for {
		// s[i] is the space before the field set or the comma before a
		// field.
		var f field
		if f.Key, i, err = token(s, i+1, ",= ", "=", ", "); err != nil {
			return l, fmt.Errorf("field key: %w", err)
		}
		if f.Key == "" || reserved(f.Key) || i == len(s) {
			return l, fmt.Errorf("bad field key %q", f.Key)
		}
		i++
		if i < len(s) && s[i] == '"' {
			f.IsString = true
			if f.String, i, err = stringValue(s, i+1); err != nil {
				return l, err
			}
		} else {
			j := i
			for j < len(s) && s[j] != ',' && s[j] != ' ' {
				j++
			}
			if !floatRE.MatchString(s[i:j]) {
				return l, fmt.Errorf("not a float: %q", s[i:j])
			}
			if f.Float, err = strconv.ParseFloat(s[i:j], 64); err != nil {
				return l, err
			}
			i = j
		}
		for _, g := range l.Fields {
			if g.Key == f.Key {
				return l, fmt.Errorf("duplicate field %q", f.Key)
			}
		}
		l.Fields = append(l.Fields, f)
		if i == len(s) {
			return l, errors.New("no timestamp")
		}
		if s[i] == ' ' {
			break
		}
		if s[i] != ',' {
			return l, fmt.Errorf("unexpected %q after a field", s[i])
		}
	}
	if !intRE.MatchString(s[i+1:]) {
		return l, fmt.Errorf("bad timestamp %q", s[i+1:])
	}
	l.Timestamp, err = strconv.ParseInt(s[i+1:], 10, 64)
	return l, err
}

// token reads from s[i:] up to one of the bytes in stop. A backslash before
// one of the bytes in escaped stands for that byte; before a backslash,
// comma, equals sign or space that it does not escape it is refused; before
// anything else it is itself. A byte of forbid, unescaped, is refused.
func token(s string, i int, escaped, stop, forbid string) (string, int, error) {
	var b strings.Builder
	for i < len(s) {
		c := s[i]
		switch {
		case c == '\\':
			if i+1 == len(s) {
				return "", i, errors.New("backslash at the end")
			}
			n := s[i+1]
			if strings.IndexByte(escaped, n) >= 0 {
				b.WriteByte(n)
				i += 2
				continue
			}
			if strings.IndexByte(`\,= `, n) >= 0 {
				return "", i, fmt.Errorf("ambiguous backslash before %q", n)
			}
			b.WriteByte(c)
		case strings.IndexByte(stop, c) >= 0:
			return b.String(), i, nil
		case strings.IndexByte(forbid, c) >= 0:
			return "", i, fmt.Errorf("unescaped %q", c)
		default:
			b.WriteByte(c)
		}
		i++
	}
	return b.String(), i, nil
}

// stringValue reads a string field value from s[i:], just after its opening
// quote, up to its closing quote. Only \" and \\ are escapes; this parser
// refuses other backslashes, which the encoder always escapes.
func stringValue(s string, i int) (string, int, error) {
	var b strings.Builder
	for i < len(s) {
		switch c := s[i]; c {
		case '"':
			if b.Len() > MaxStringLength {
				return "", i, fmt.Errorf("string of %d bytes", b.Len())
			}
			return b.String(), i + 1, nil
		case '\\':
			if i+1 == len(s) || (s[i+1] != '"' && s[i+1] != '\\') {
				return "", i, errors.New("lone backslash in a string")
			}
			b.WriteByte(s[i+1])
			i += 2
		default:
			b.WriteByte(c)
			i++
		}
	}
	return "", i, errors.New("unterminated string")
}

// reserved reports whether InfluxDB refuses k as a ptag or field key.
func reserved(k string) bool { return k == "time" || k == "_field" || k == "_measurement" }
