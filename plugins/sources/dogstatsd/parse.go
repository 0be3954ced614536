// Package dogstatsd receives DogStatsD and plain StatsD datagrams.
//
// This file holds the line parser. The grammar follows Veneur's, with a few
// deliberate fixes that are called out where they apply:
//
//	metric:        name:value[:value...]|type[|@rate][|#tag,tag][|T<unix>][|c:<container>]
//	event:         _e{<title bytes>,<text bytes>}:title|text[|d:<unix>][|h:host][|k:key][|p:priority][|s:source][|t:alert_type][|#tags]
//	service check: _sc|name|status[|d:<unix>][|h:host][|#tags][|m:message]
//
// Parsing a metric line does not allocate once the Parser's scratch buffers
// have grown to fit the traffic.
package dogstatsd

import (
	"bytes"
	"math"
	"slices"
	"strconv"
	"strings"
	"unsafe"

	"github.com/veneurd/veneurd/sdk"
)

// Reasons a line is rejected. They are short, stable snake_case strings meant
// to be used as a metric tag value when counting parse failures.
const (
	ReasonEmpty                 = "empty"                    // the line is empty
	ReasonNoName                = "no_name"                  // metric or service check without a name
	ReasonNoValue               = "no_value"                 // no ':' before the first '|', or nothing after it
	ReasonBadValue              = "bad_value"                // a value is not a finite float, or a set member is empty
	ReasonNoType                = "no_type"                  // no '|' after the value, or an empty type section
	ReasonBadType               = "bad_type"                 // unknown type letter, or '#'/'@' glued to the type
	ReasonBadRate               = "bad_rate"                 // rate unparsable, outside (0, 1], or given twice
	ReasonBadTags               = "bad_tags"                 // a second '#' section
	ReasonBadTimestamp          = "bad_timestamp"            // T<unix> or d:<unix> not a non-negative integer, or T given twice
	ReasonBadEventHeader        = "bad_event_header"         // malformed _e{title_len,text_len}: prefix
	ReasonBadEventLength        = "bad_event_length"         // the lengths in the header do not match the line
	ReasonNoTitle               = "no_title"                 // event with an empty title
	ReasonBadPriority           = "bad_priority"             // event priority other than normal or low
	ReasonBadAlertType          = "bad_alert_type"           // event alert type other than error, warning, info or success
	ReasonBadServiceCheckHeader = "bad_service_check_header" // service check line not starting with "_sc|"
	ReasonNoStatus              = "no_status"                // service check without a status
	ReasonBadStatus             = "bad_status"               // service check status other than 0, 1, 2 or 3
)

// maxErrorLine caps how much of a rejected line a ParseError keeps.
const maxErrorLine = 256

// ParseError is the error returned for a rejected line.
type ParseError struct {
	// Reason is one of the Reason* constants.
	Reason string
	// Line is the rejected line, truncated to 256 bytes.
	Line string
}

// Error implements error.
func (e *ParseError) Error() string {
	return "dogstatsd: " + e.Reason + ": " + strconv.Quote(e.Line)
}

// newError builds a ParseError. It copies the line, so it allocates; it is
// only reached for rejected lines.
func newError(reason string, line []byte) error {
	if len(line) > maxErrorLine {
		line = line[:maxErrorLine]
	}
	return &ParseError{Reason: reason, Line: string(line)}
}

// PacketType tells which parser a line needs.
type PacketType uint8

// Packet types.
const (
	PacketMetric       PacketType = iota // anything that is not an event or a service check
	PacketEvent                          // starts with "_e{"
	PacketServiceCheck                   // starts with "_sc|"
)

// String returns "metric", "event" or "service_check".
func (t PacketType) String() string {
	switch t {
	case PacketMetric:
		return "metric"
	case PacketEvent:
		return "event"
	case PacketServiceCheck:
		return "service_check"
	}
	return "unknown"
}

// Kind tells which parser a line needs: events start with "_e{", service
// checks with "_sc|", everything else is a metric.
func Kind(line []byte) PacketType {
	if len(line) >= 3 && line[0] == '_' {
		if line[1] == 'e' && line[2] == '{' {
			return PacketEvent
		}
		if len(line) >= 4 && line[1] == 's' && line[2] == 'c' && line[3] == '|' {
			return PacketServiceCheck
		}
	}
	return PacketMetric
}

// ForEachLine calls fn for each non-empty '\n'-separated line of a datagram.
// A trailing '\r' is stripped from each line. The line passed to fn aliases
// packet. ForEachLine does not allocate.
func ForEachLine(packet []byte, fn func(line []byte)) {
	for len(packet) > 0 {
		var line []byte
		if i := bytes.IndexByte(packet, '\n'); i >= 0 {
			line, packet = packet[:i], packet[i+1:]
		} else {
			line, packet = packet, nil
		}
		if n := len(line); n > 0 && line[n-1] == '\r' {
			line = line[:n-1]
		}
		if len(line) > 0 {
			fn(line)
		}
	}
}

// Metric is one parsed metric line. Its slices alias the parsed line and the
// Parser's scratch buffers: they are valid only until the next call on the
// Parser, and must be copied to be kept.
type Metric struct {
	Name []byte
	// Type is Counter (c), Gauge (g), Timer (ms), Histogram (h and d) or
	// Set (s).
	Type sdk.MetricType
	// Values holds one or more values (multi-value lines "name:1:2:3|c");
	// nil for sets.
	Values []float64
	// Members holds one or more set members as sent; nil for other types.
	Members [][]byte
	// Rate is the sample rate in (0, 1]; 1 when absent.
	Rate float64
	// Tags are the line's tags sorted bytewise and joined by ','. Duplicates
	// are kept, empty tags and the scope tags are removed. Nil when none.
	Tags []byte
	// Scope comes from the magic tags veneurlocalonly / veneurglobalonly.
	Scope sdk.Scope
	// Timestamp is the |T<unix seconds> section, 0 when absent.
	Timestamp int64
}

// Parser parses DogStatsD lines. It reuses internal buffers: a Metric it
// returns aliases the input line and the parser's scratch, valid only until
// the next call. Not safe for concurrent use. The zero value is ready to use.
type Parser struct {
	values  []float64
	members [][]byte
	tags    [][]byte
	tagBuf  []byte
}

// Magic tags selecting a metric's scope. A tag counts when it starts with
// one of these (so "veneurlocalonly:true" works too).
var (
	magicLocal  = []byte("veneurlocalonly")
	magicGlobal = []byte("veneurglobalonly")
)

// isMagicTag reports whether t is a magic scope tag.
func isMagicTag(t []byte) bool {
	return len(t) > 0 && t[0] == 'v' && (bytes.HasPrefix(t, magicLocal) || bytes.HasPrefix(t, magicGlobal))
}

// ParseMetric parses one metric line:
//
//	name:value[:value...]|type[|@rate][|#tag,tag][|T<unix>][|c:<container>]
//
// The name is everything before the first ':' of the part before the first
// '|'. Only the first letter of the type counts (Veneur compatibility:
// "count" is a counter), but a type section holding '#' or '@' ("c#tags") is
// rejected. The sections after the type may come in any order; unknown ones
// (including the container id "c:...") and empty ones are ignored. A repeated
// @ section is bad_rate, a repeated # section bad_tags and a repeated T
// section bad_timestamp.
//
// Gauge values may carry a sign ("+3", "-3"). Like Veneur, the value is
// always an absolute gauge value: "+3" sets the gauge to 3 and "-3" sets it
// to -3; StatsD gauge deltas are not supported.
//
// Values of a multi-value line are applied all or none: one bad value rejects
// the whole line. Sets take each ':'-separated member as raw bytes.
func (p *Parser) ParseMetric(line []byte) (Metric, error) {
	var m Metric
	if len(line) == 0 {
		return m, newError(ReasonEmpty, line)
	}

	head, rest, hasPipe := cutByte(line, '|')
	colon := bytes.IndexByte(head, ':')
	if colon < 0 {
		return m, newError(ReasonNoValue, line)
	}
	if colon == 0 {
		return m, newError(ReasonNoName, line)
	}
	m.Name = head[:colon:colon]
	valuePart := head[colon+1:]
	if len(valuePart) == 0 {
		return m, newError(ReasonNoValue, line)
	}
	if !hasPipe {
		return m, newError(ReasonNoType, line)
	}

	// Type section.
	typ, rest, _ := cutByte(rest, '|')
	if len(typ) == 0 {
		return m, newError(ReasonNoType, line)
	}
	for _, c := range typ {
		if c == '#' || c == '@' {
			return m, newError(ReasonBadType, line)
		}
	}
	switch typ[0] {
	case 'c':
		m.Type = sdk.Counter
	case 'g':
		m.Type = sdk.Gauge
	case 'm':
		m.Type = sdk.Timer
	case 'h', 'd':
		m.Type = sdk.Histogram
	case 's':
		m.Type = sdk.Set
	default:
		return m, newError(ReasonBadType, line)
	}

	// Values or members.
	if m.Type == sdk.Set {
		members := p.members[:0]
		for v := valuePart; ; {
			part, next, more := cutByte(v, ':')
			if len(part) == 0 {
				p.members = members
				return Metric{}, newError(ReasonBadValue, line)
			}
			members = append(members, part[:len(part):len(part)])
			if !more {
				break
			}
			v = next
		}
		p.members = members
		m.Members = members
	} else {
		values := p.values[:0]
		for v := valuePart; ; {
			part, next, more := cutByte(v, ':')
			f, ok := parseFloat(part)
			if !ok {
				p.values = values
				return Metric{}, newError(ReasonBadValue, line)
			}
			values = append(values, f)
			if !more {
				break
			}
			v = next
		}
		p.values = values
		m.Values = values
	}

	// Optional sections.
	m.Rate = 1
	var rawTags []byte
	var haveRate, haveTags, haveTS bool
	for len(rest) > 0 {
		var sec []byte
		sec, rest, _ = cutByte(rest, '|')
		if len(sec) == 0 {
			continue
		}
		switch sec[0] {
		case '@':
			if haveRate {
				return Metric{}, newError(ReasonBadRate, line)
			}
			haveRate = true
			r, ok := parseFloat(sec[1:])
			if !ok || r <= 0 || r > 1 {
				return Metric{}, newError(ReasonBadRate, line)
			}
			m.Rate = r
		case '#':
			if haveTags {
				return Metric{}, newError(ReasonBadTags, line)
			}
			haveTags = true
			rawTags = sec[1:]
		case 'T':
			if haveTS {
				return Metric{}, newError(ReasonBadTimestamp, line)
			}
			haveTS = true
			ts, ok := parseUnix(sec[1:])
			if !ok {
				return Metric{}, newError(ReasonBadTimestamp, line)
			}
			m.Timestamp = ts
		}
	}
	if len(rawTags) > 0 {
		m.Tags, m.Scope = p.normalizeTags(rawTags)
	}
	return m, nil
}

// normalizeTags splits raw on ',', drops empty and magic scope tags, sorts
// what is left bytewise and joins it with ','. When nothing was dropped and
// the tags were already in order it returns raw itself.
func (p *Parser) normalizeTags(raw []byte) ([]byte, sdk.Scope) {
	tags := p.tags[:0]
	var local, global bool
	sorted, dropped := true, false
	for v := raw; ; {
		t, next, more := cutByte(v, ',')
		switch {
		case len(t) == 0:
			dropped = true
		case t[0] == 'v' && bytes.HasPrefix(t, magicLocal):
			local, dropped = true, true
		case t[0] == 'v' && bytes.HasPrefix(t, magicGlobal):
			global, dropped = true, true
		default:
			if n := len(tags); n > 0 && sorted && bytes.Compare(tags[n-1], t) > 0 {
				sorted = false
			}
			tags = append(tags, t)
		}
		if !more {
			break
		}
		v = next
	}
	p.tags = tags

	// Both magic tags on one line: local wins, so a conflicting line is
	// never forwarded. This keeps the outcome independent of tag order.
	scope := sdk.ScopeDefault
	if local {
		scope = sdk.ScopeLocal
	} else if global {
		scope = sdk.ScopeGlobal
	}

	if len(tags) == 0 {
		return nil, scope
	}
	if sorted && !dropped {
		return raw[:len(raw):len(raw)], scope
	}
	if !sorted {
		sortTags(tags)
	}
	buf := p.tagBuf[:0]
	for i, t := range tags {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = append(buf, t...)
	}
	p.tagBuf = buf
	return buf, scope
}

// sortTags sorts tags bytewise without allocating: insertion sort for the
// usual handful of tags, pdqsort beyond that.
func sortTags(tags [][]byte) {
	if len(tags) > 12 {
		slices.SortFunc(tags, bytes.Compare)
		return
	}
	for i := 1; i < len(tags); i++ {
		t := tags[i]
		j := i
		for ; j > 0 && bytes.Compare(tags[j-1], t) > 0; j-- {
			tags[j] = tags[j-1]
		}
		tags[j] = t
	}
}

// ParseEvent parses one event line:
//
//	_e{<title bytes>,<text bytes>}:title|text[|d:<unix>][|h:host][|k:key][|p:priority][|s:source][|t:alert_type][|#tags]
//
// The lengths are byte lengths and are honoured, so the title and text may
// contain '|'. In the text, the two characters `\n` become a newline. Tags
// are sorted, empty and magic scope tags dropped, unknown sections ignored.
// Priority defaults to "normal" and the alert type to "info", as in the
// Datadog agent. ParseEvent allocates.
func (p *Parser) ParseEvent(line []byte) (sdk.Event, error) {
	var e sdk.Event
	if len(line) == 0 {
		return e, newError(ReasonEmpty, line)
	}
	if !bytes.HasPrefix(line, []byte("_e{")) {
		return e, newError(ReasonBadEventHeader, line)
	}
	i := 3
	titleLen, i, ok := parseLength(line, i)
	if !ok || i >= len(line) || line[i] != ',' {
		return e, newError(ReasonBadEventHeader, line)
	}
	textLen, i, ok := parseLength(line, i+1)
	if !ok || i+1 >= len(line) || line[i] != '}' || line[i+1] != ':' {
		return e, newError(ReasonBadEventHeader, line)
	}
	start := i + 2
	if titleLen > len(line)-start {
		return e, newError(ReasonBadEventLength, line)
	}
	titleEnd := start + titleLen
	if titleEnd >= len(line) || line[titleEnd] != '|' {
		return e, newError(ReasonBadEventLength, line)
	}
	textStart := titleEnd + 1
	if textLen > len(line)-textStart {
		return e, newError(ReasonBadEventLength, line)
	}
	textEnd := textStart + textLen
	if textEnd < len(line) && line[textEnd] != '|' {
		return e, newError(ReasonBadEventLength, line)
	}
	if titleLen == 0 {
		return e, newError(ReasonNoTitle, line)
	}
	e.Title = string(line[start:titleEnd])
	e.Text = unescapeNewlines(line[textStart:textEnd])
	e.Priority = "normal"
	e.AlertType = "info"

	var rest []byte
	if textEnd < len(line) {
		rest = line[textEnd+1:]
	}
	var haveTags bool
	for len(rest) > 0 {
		var sec []byte
		sec, rest, _ = cutByte(rest, '|')
		if len(sec) == 0 {
			continue
		}
		if sec[0] == '#' {
			if haveTags {
				return sdk.Event{}, newError(ReasonBadTags, line)
			}
			haveTags = true
			e.Tags = p.tagStrings(sec[1:])
			continue
		}
		if len(sec) < 2 || sec[1] != ':' {
			continue
		}
		val := sec[2:]
		switch sec[0] {
		case 'd':
			ts, ok := parseUnix(val)
			if !ok {
				return sdk.Event{}, newError(ReasonBadTimestamp, line)
			}
			e.Timestamp = ts
		case 'h':
			e.Hostname = string(val)
		case 'k':
			e.AggregationKey = string(val)
		case 'p':
			switch string(val) {
			case "normal", "low":
				e.Priority = string(val)
			default:
				return sdk.Event{}, newError(ReasonBadPriority, line)
			}
		case 's':
			e.SourceType = string(val)
		case 't':
			switch string(val) {
			case "error", "warning", "info", "success":
				e.AlertType = string(val)
			default:
				return sdk.Event{}, newError(ReasonBadAlertType, line)
			}
		}
	}
	return e, nil
}

// ParseServiceCheck parses one service check line:
//
//	_sc|name|status[|d:<unix>][|h:host][|#tags][|m:message]
//
// The status is 0 (ok), 1 (warning), 2 (critical) or 3 (unknown). As in
// Datadog's protocol the m: section is the last one: everything after "m:"
// is the message, '|' included. Clients escape the message, so `\n` becomes
// a newline and `m\:` becomes "m:". Tags are sorted, empty and magic scope
// tags dropped, unknown sections ignored. ParseServiceCheck allocates.
func (p *Parser) ParseServiceCheck(line []byte) (sdk.ServiceCheck, error) {
	var sc sdk.ServiceCheck
	if len(line) == 0 {
		return sc, newError(ReasonEmpty, line)
	}
	if !bytes.HasPrefix(line, []byte("_sc|")) {
		return sc, newError(ReasonBadServiceCheckHeader, line)
	}
	name, rest, hasStatus := cutByte(line[4:], '|')
	if len(name) == 0 {
		return sc, newError(ReasonNoName, line)
	}
	if !hasStatus {
		return sc, newError(ReasonNoStatus, line)
	}
	status, rest, _ := cutByte(rest, '|')
	if len(status) == 0 {
		return sc, newError(ReasonNoStatus, line)
	}
	if len(status) != 1 || status[0] < '0' || status[0] > '3' {
		return sc, newError(ReasonBadStatus, line)
	}
	sc.Name = string(name)
	sc.Status = int(status[0] - '0')

	var haveTags bool
	for len(rest) > 0 {
		if len(rest) >= 2 && rest[0] == 'm' && rest[1] == ':' {
			sc.Message = unescapeMessage(rest[2:])
			break
		}
		var sec []byte
		sec, rest, _ = cutByte(rest, '|')
		if len(sec) == 0 {
			continue
		}
		if sec[0] == '#' {
			if haveTags {
				return sdk.ServiceCheck{}, newError(ReasonBadTags, line)
			}
			haveTags = true
			sc.Tags = p.tagStrings(sec[1:])
			continue
		}
		if len(sec) < 2 || sec[1] != ':' {
			continue
		}
		switch sec[0] {
		case 'd':
			ts, ok := parseUnix(sec[2:])
			if !ok {
				return sdk.ServiceCheck{}, newError(ReasonBadTimestamp, line)
			}
			sc.Timestamp = ts
		case 'h':
			sc.Hostname = string(sec[2:])
		}
	}
	return sc, nil
}

// tagStrings splits raw on ',', drops empty tags and magic scope tags, and
// returns the rest sorted as new strings; nil when none. Magic tags are
// instructions to veneurd, not data, so events and service checks lose them
// as metrics do, though they have no scope to set.
func (p *Parser) tagStrings(raw []byte) []string {
	var out []string
	for v := raw; ; {
		t, next, more := cutByte(v, ',')
		if len(t) > 0 && !isMagicTag(t) {
			out = append(out, string(t))
		}
		if !more {
			break
		}
		v = next
	}
	slices.Sort(out)
	return out
}

// unescapeNewlines turns the two characters `\n` into a newline.
func unescapeNewlines(b []byte) string {
	return strings.ReplaceAll(string(b), `\n`, "\n")
}

// unescapeMessage undoes the escaping clients apply to service check
// messages ("m:" sent as `m\:`, newlines as `\n`).
func unescapeMessage(b []byte) string {
	return unescapeNewlines(bytes.ReplaceAll(b, []byte(`m\:`), []byte("m:")))
}

// cutByte is bytes.Cut for a single separator byte.
func cutByte(b []byte, sep byte) (before, after []byte, found bool) {
	if i := bytes.IndexByte(b, sep); i >= 0 {
		return b[:i], b[i+1:], true
	}
	return b, nil, false
}

// parseLength parses the decimal digits of an event header length starting
// at line[i]. It returns the value, the index after the digits and whether
// there was at least one digit. Values are capped just above len(line), so
// they cannot overflow and any capped value fails the length checks.
func parseLength(line []byte, i int) (n, next int, ok bool) {
	start := i
	for ; i < len(line) && line[i] >= '0' && line[i] <= '9'; i++ {
		if n <= len(line) {
			n = n*10 + int(line[i]-'0')
		}
	}
	return n, i, i > start
}

// parseUnix parses a non-negative decimal integer of Unix seconds.
func parseUnix(b []byte) (int64, bool) {
	if len(b) == 0 {
		return 0, false
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		d := int64(c - '0')
		if n > (math.MaxInt64-d)/10 {
			return 0, false
		}
		n = n*10 + d
	}
	return n, true
}

// pow10 holds the powers of ten that float64 represents exactly.
var pow10 = [...]float64{
	1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
	1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
}

// parseFloat parses a finite float64 without allocating. NaN and ±Inf (and
// out-of-range values) are rejected.
func parseFloat(b []byte) (float64, bool) {
	if f, ok := parseSimpleFloat(b); ok {
		return f, true
	}
	if len(b) == 0 {
		return 0, false
	}
	// The string aliases b only for the duration of the call; strconv does
	// not retain it on success.
	f, err := strconv.ParseFloat(unsafe.String(unsafe.SliceData(b), len(b)), 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, false
	}
	return f, true
}

// parseSimpleFloat is the fast path for the values clients actually send:
// an optional sign, at most 15 decimal digits and an optional '.'. Both the
// digits (< 2^53) and the power of ten are exact float64s, so one IEEE
// division gives the correctly rounded result, the same as strconv.
// Anything else reports !ok and goes through strconv.
func parseSimpleFloat(b []byte) (float64, bool) {
	i := 0
	neg := false
	if len(b) > 0 && (b[0] == '-' || b[0] == '+') {
		neg = b[0] == '-'
		i = 1
	}
	var mant uint64
	digits, frac := 0, 0
	dot := false
	for ; i < len(b); i++ {
		c := b[i]
		switch {
		case c >= '0' && c <= '9':
			if digits == 15 {
				return 0, false
			}
			mant = mant*10 + uint64(c-'0')
			digits++
			if dot {
				frac++
			}
		case c == '.' && !dot:
			dot = true
		default:
			return 0, false
		}
	}
	if digits == 0 {
		return 0, false
	}
	f := float64(mant)
	if frac > 0 {
		f /= pow10[frac]
	}
	if neg {
		f = -f
	}
	return f, true
}
