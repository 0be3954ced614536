package dogstatsd

import (
	"bytes"
	"errors"
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/veneurd/veneurd/sdk"
)

// The seed corpora live in testdata/fuzz/<FuzzName>/.

var knownReasons = map[string]bool{
	ReasonEmpty: true, ReasonNoName: true, ReasonNoValue: true, ReasonBadValue: true,
	ReasonNoType: true, ReasonBadType: true, ReasonBadRate: true, ReasonBadTags: true,
	ReasonBadTimestamp: true, ReasonBadEventHeader: true, ReasonBadEventLength: true,
	ReasonNoTitle: true, ReasonBadPriority: true, ReasonBadAlertType: true,
	ReasonBadServiceCheckHeader: true, ReasonNoStatus: true, ReasonBadStatus: true,
}

func checkFuzzError(t *testing.T, line []byte, err error) {
	t.Helper()
	var pe *ParseError
	if !errors.As(err, &pe) {
		t.Fatalf("%q: error %v is not a *ParseError", line, err)
	}
	if !knownReasons[pe.Reason] {
		t.Fatalf("%q: unknown reason %q", line, pe.Reason)
	}
	if len(pe.Line) > maxErrorLine || !bytes.HasPrefix(line, []byte(pe.Line)) {
		t.Fatalf("%q: ParseError.Line %q", line, pe.Line)
	}
}

func checkSortedTags(t *testing.T, line []byte, tags []string) {
	t.Helper()
	if tags != nil && len(tags) == 0 {
		t.Fatalf("%q: empty non-nil tags", line)
	}
	if !slices.IsSorted(tags) {
		t.Fatalf("%q: tags not sorted: %q", line, tags)
	}
	for _, tag := range tags {
		if tag == "" || strings.ContainsAny(tag, ",|") {
			t.Fatalf("%q: bad tag %q", line, tag)
		}
		if strings.HasPrefix(tag, "veneurlocalonly") || strings.HasPrefix(tag, "veneurglobalonly") {
			t.Fatalf("%q: magic tag %q left in tags", line, tag)
		}
	}
}

func FuzzParseMetric(f *testing.F) {
	var p Parser
	f.Fuzz(func(t *testing.T, line []byte) {
		orig := string(line)
		m, err := p.ParseMetric(line)
		if string(line) != orig {
			t.Fatalf("ParseMetric modified its input: %q -> %q", orig, line)
		}

		// A fresh parser must agree with the warm one.
		var fresh Parser
		m2, err2 := fresh.ParseMetric(line)
		if (err == nil) != (err2 == nil) {
			t.Fatalf("%q: warm parser err %v, fresh parser err %v", line, err, err2)
		}
		if err != nil {
			checkFuzzError(t, line, err)
			var pe, pe2 *ParseError
			errors.As(err, &pe)
			errors.As(err2, &pe2)
			if pe.Reason != pe2.Reason {
				t.Fatalf("%q: reasons differ: %q vs %q", line, pe.Reason, pe2.Reason)
			}
			return
		}
		if a, b := formatMetric(m), formatMetric(m2); a != b {
			t.Fatalf("%q: warm parser %s, fresh parser %s", line, a, b)
		}

		if len(m.Name) == 0 || bytes.ContainsAny(m.Name, ":|") {
			t.Fatalf("%q: bad name %q", line, m.Name)
		}
		switch m.Type {
		case sdk.Counter, sdk.Gauge, sdk.Timer, sdk.Histogram:
			if len(m.Values) == 0 || m.Members != nil {
				t.Fatalf("%q: %s with values %v members %q", line, m.Type, m.Values, m.Members)
			}
			for _, v := range m.Values {
				if math.IsNaN(v) || math.IsInf(v, 0) {
					t.Fatalf("%q: non-finite value %v", line, v)
				}
			}
		case sdk.Set:
			if len(m.Members) == 0 || m.Values != nil {
				t.Fatalf("%q: set with values %v members %q", line, m.Values, m.Members)
			}
			for _, mem := range m.Members {
				if len(mem) == 0 || bytes.ContainsAny(mem, ":|") {
					t.Fatalf("%q: bad set member %q", line, mem)
				}
			}
		default:
			t.Fatalf("%q: bad type %v", line, m.Type)
		}
		if !(m.Rate > 0 && m.Rate <= 1) {
			t.Fatalf("%q: rate %v outside (0, 1]", line, m.Rate)
		}
		if m.Timestamp < 0 {
			t.Fatalf("%q: negative timestamp %d", line, m.Timestamp)
		}
		if m.Scope > sdk.ScopeGlobal {
			t.Fatalf("%q: bad scope %d", line, m.Scope)
		}
		if m.Tags != nil {
			tags := strings.Split(string(m.Tags), ",")
			checkSortedTags(t, line, tags)
		}

		// Tag order in the line does not matter: reversing the tag list
		// gives the same result.
		if rev, ok := reverseTagSection(line); ok {
			m3, err := fresh.ParseMetric(rev)
			if err != nil {
				t.Fatalf("%q parsed but its tag-reversed form %q fails: %v", line, rev, err)
			}
			if a, b := formatMetric(m2), formatMetric(m3); a != b {
				t.Fatalf("%q: tag order changed the result:\n%s\n%s", line, a, b)
			}
		}

		// The fast float path must agree with strconv bit for bit.
		if v, ok := parseSimpleFloat(line); ok {
			want, err := strconv.ParseFloat(string(line), 64)
			if err != nil || math.Float64bits(v) != math.Float64bits(want) {
				t.Fatalf("parseSimpleFloat(%q) = %v, strconv %v %v", line, v, want, err)
			}
		}
	})
}

func FuzzParseEvent(f *testing.F) {
	var p Parser
	f.Fuzz(func(t *testing.T, line []byte) {
		e, err := p.ParseEvent(line)
		if err != nil {
			checkFuzzError(t, line, err)
			return
		}
		if Kind(line) != PacketEvent {
			t.Fatalf("%q: parsed as an event but Kind says %v", line, Kind(line))
		}
		if e.Title == "" {
			t.Fatalf("%q: empty title", line)
		}
		if e.Priority != "normal" && e.Priority != "low" {
			t.Fatalf("%q: priority %q", line, e.Priority)
		}
		switch e.AlertType {
		case "error", "warning", "info", "success":
		default:
			t.Fatalf("%q: alert type %q", line, e.AlertType)
		}
		if e.Timestamp < 0 {
			t.Fatalf("%q: negative timestamp", line)
		}
		if !bytes.Contains(line, []byte(e.Title)) {
			t.Fatalf("%q: title %q not in the line", line, e.Title)
		}
		checkSortedTags(t, line, e.Tags)
	})
}

func FuzzParseServiceCheck(f *testing.F) {
	var p Parser
	f.Fuzz(func(t *testing.T, line []byte) {
		sc, err := p.ParseServiceCheck(line)
		if err != nil {
			checkFuzzError(t, line, err)
			return
		}
		if Kind(line) != PacketServiceCheck {
			t.Fatalf("%q: parsed as a service check but Kind says %v", line, Kind(line))
		}
		if sc.Name == "" || strings.Contains(sc.Name, "|") {
			t.Fatalf("%q: bad name %q", line, sc.Name)
		}
		if sc.Status < 0 || sc.Status > 3 {
			t.Fatalf("%q: status %d", line, sc.Status)
		}
		if sc.Timestamp < 0 {
			t.Fatalf("%q: negative timestamp", line)
		}
		if strings.Contains(sc.Hostname, "|") {
			t.Fatalf("%q: hostname %q", line, sc.Hostname)
		}
		checkSortedTags(t, line, sc.Tags)
	})
}

// reverseTagSection returns line with the comma-separated list of its first
// '#' section (after the type) reversed.
func reverseTagSection(line []byte) ([]byte, bool) {
	secs := bytes.Split(line, []byte("|"))
	for i := 2; i < len(secs); i++ {
		if len(secs[i]) > 0 && secs[i][0] == '#' {
			tags := bytes.Split(secs[i][1:], []byte(","))
			slices.Reverse(tags)
			out := slices.Clone(secs)
			out[i] = append([]byte("#"), bytes.Join(tags, []byte(","))...)
			return bytes.Join(out, []byte("|")), true
		}
	}
	return nil, false
}
