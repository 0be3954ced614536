package dogstatsd

import (
	"errors"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/veneurd/veneurd/sdk"
)

// metricCheckers returns the two f-test helpers for metric lines: f asserts
// that line parses into want, bad that it is rejected with reason.
func metricCheckers(t *testing.T) (f func(line string, want Metric), bad func(line, reason string)) {
	var p Parser
	f = func(line string, want Metric) {
		t.Helper()
		got, err := p.ParseMetric([]byte(line))
		if err != nil {
			t.Fatalf("ParseMetric(%q): unexpected error: %v", line, err)
		}
		if want.Rate == 0 {
			want.Rate = 1
		}
		if g, w := formatMetric(got), formatMetric(want); g != w {
			t.Fatalf("ParseMetric(%q):\ngot  %s\nwant %s", line, g, w)
		}
		if got.Type == sdk.Set && got.Values != nil {
			t.Fatalf("ParseMetric(%q): set with non-nil Values %v", line, got.Values)
		}
		if got.Type != sdk.Set && got.Members != nil {
			t.Fatalf("ParseMetric(%q): %s with non-nil Members", line, got.Type)
		}
		if len(got.Tags) == 0 && got.Tags != nil {
			t.Fatalf("ParseMetric(%q): empty but non-nil Tags", line)
		}
	}
	bad = func(line, reason string) {
		t.Helper()
		checkReason(t, "ParseMetric", line, reason, func() error {
			_, err := p.ParseMetric([]byte(line))
			return err
		})
	}
	return f, bad
}

func checkReason(t *testing.T, fn, line, reason string, parse func() error) {
	t.Helper()
	err := parse()
	if err == nil {
		t.Fatalf("%s(%q): expected error %q, got none", fn, line, reason)
	}
	var pe *ParseError
	if !errors.As(err, &pe) {
		t.Fatalf("%s(%q): error %v is not a *ParseError", fn, line, err)
	}
	if pe.Reason != reason {
		t.Fatalf("%s(%q): reason %q, want %q", fn, line, pe.Reason, reason)
	}
	if !strings.HasPrefix(line, pe.Line) {
		t.Fatalf("%s(%q): ParseError.Line %q is not the line", fn, line, pe.Line)
	}
	if !strings.Contains(err.Error(), reason) {
		t.Fatalf("%s(%q): Error() %q does not mention the reason", fn, line, err.Error())
	}
}

func formatMetric(m Metric) string {
	var members []string
	for _, b := range m.Members {
		members = append(members, string(b))
	}
	return strings.Join([]string{
		"name=" + string(m.Name),
		"type=" + m.Type.String(),
		"values=" + formatFloats(m.Values),
		"members=" + strings.Join(members, "|"),
		"rate=" + formatFloats([]float64{m.Rate}),
		"tags=" + string(m.Tags),
		"scope=" + formatScope(m.Scope),
		"ts=" + strconv.FormatInt(m.Timestamp, 10),
	}, " ")
}

func formatFloats(fs []float64) string {
	var s []string
	for _, f := range fs {
		s = append(s, strconv.FormatFloat(f, 'g', -1, 64))
	}
	return "[" + strings.Join(s, ",") + "]"
}

func formatScope(s sdk.Scope) string {
	switch s {
	case sdk.ScopeLocal:
		return "local"
	case sdk.ScopeGlobal:
		return "global"
	}
	return "default"
}

func TestParseMetricTypes(t *testing.T) {
	f, bad := metricCheckers(t)

	// c is a counter.
	f("a:1|c", Metric{Name: []byte("a"), Type: sdk.Counter, Values: []float64{1}})
	// Only the first letter of the type counts: "count" is a counter.
	f("a:1|count", Metric{Name: []byte("a"), Type: sdk.Counter, Values: []float64{1}})
	// g is a gauge.
	f("a:1.5|g", Metric{Name: []byte("a"), Type: sdk.Gauge, Values: []float64{1.5}})
	// ms is a timer, and so is anything starting with m.
	f("a:12|ms", Metric{Name: []byte("a"), Type: sdk.Timer, Values: []float64{12}})
	f("a:12|m", Metric{Name: []byte("a"), Type: sdk.Timer, Values: []float64{12}})
	// h is a histogram.
	f("a:3|h", Metric{Name: []byte("a"), Type: sdk.Histogram, Values: []float64{3}})
	// d (distribution) is a histogram too.
	f("a:3|d", Metric{Name: []byte("a"), Type: sdk.Histogram, Values: []float64{3}})
	// s is a set whose member is the raw value.
	f("a:abc|s", Metric{Name: []byte("a"), Type: sdk.Set, Members: [][]byte{[]byte("abc")}})

	// A type with '#' glued to it is an error, not a tagless counter.
	bad("a:1|c#x", ReasonBadType)
	bad("a:1|ms#x:y", ReasonBadType)
	// A type with '@' glued to it is an error, not an unsampled counter.
	bad("a:1|c@0.5", ReasonBadType)
	// Unknown type letters are rejected.
	bad("a:1|x", ReasonBadType)
	bad("a:1|C", ReasonBadType)
	bad("a:1|#x", ReasonBadType)
	bad("a:1|@0.5", ReasonBadType)
	// No '|' at all: no type.
	bad("a:1", ReasonNoType)
	// An empty type section: no type.
	bad("a:1|", ReasonNoType)
	bad("a:1||c", ReasonNoType)
}

func TestParseMetricNameAndValue(t *testing.T) {
	f, bad := metricCheckers(t)

	// The name is everything before the first ':'.
	f("a.b-c_d:1|c", Metric{Name: []byte("a.b-c_d"), Type: sdk.Counter, Values: []float64{1}})
	// The name may hold any byte but ':' and '|'.
	f("a b/c#d@e:1|c", Metric{Name: []byte("a b/c#d@e"), Type: sdk.Counter, Values: []float64{1}})

	// An empty line is rejected.
	bad("", ReasonEmpty)
	// An empty name is rejected.
	bad(":1|c", ReasonNoName)
	// No ':' before the first '|': no value.
	bad("a|c", ReasonNoValue)
	bad("a", ReasonNoValue)
	bad("a|c:1", ReasonNoValue)
	// Nothing after the ':': no value.
	bad("a:|c", ReasonNoValue)
	bad("a:", ReasonNoValue)

	// Values are floats: integers, decimals, exponents, signs.
	f("a:-1|c", Metric{Name: []byte("a"), Type: sdk.Counter, Values: []float64{-1}})
	f("a:0.25|h", Metric{Name: []byte("a"), Type: sdk.Histogram, Values: []float64{0.25}})
	f("a:1e3|h", Metric{Name: []byte("a"), Type: sdk.Histogram, Values: []float64{1000}})
	f("a:.5|h", Metric{Name: []byte("a"), Type: sdk.Histogram, Values: []float64{0.5}})
	f("a:12345678901234567890|h", Metric{Name: []byte("a"), Type: sdk.Histogram, Values: []float64{12345678901234567890}})
	// Gauge signs are absolute values, not deltas: "+3" sets 3, "-3" sets -3.
	f("a:+3|g", Metric{Name: []byte("a"), Type: sdk.Gauge, Values: []float64{3}})
	f("a:-3|g", Metric{Name: []byte("a"), Type: sdk.Gauge, Values: []float64{-3}})

	// Non-numbers are bad values.
	bad("a:abc|c", ReasonBadValue)
	bad("a:1x|g", ReasonBadValue)
	bad("a: 1|g", ReasonBadValue)
	bad("a:-|g", ReasonBadValue)
	bad("a:.|g", ReasonBadValue)
	// NaN and infinities are bad values, whatever their spelling.
	bad("a:NaN|g", ReasonBadValue)
	bad("a:nan|g", ReasonBadValue)
	bad("a:Inf|g", ReasonBadValue)
	bad("a:+Inf|g", ReasonBadValue)
	bad("a:-inf|g", ReasonBadValue)
	bad("a:infinity|g", ReasonBadValue)
	// Values overflowing float64 are bad values.
	bad("a:1e400|g", ReasonBadValue)
	bad("a:-1e400|g", ReasonBadValue)
	// A name containing ':' turns the rest into (bad) values.
	bad("a:b:1|c", ReasonBadValue)
}

func TestParseMetricMultiValue(t *testing.T) {
	f, bad := metricCheckers(t)

	// Several ':'-separated values in one line.
	f("a:1:2:3|ms", Metric{Name: []byte("a"), Type: sdk.Timer, Values: []float64{1, 2, 3}})
	f("a:1:2.5|c|@0.5", Metric{Name: []byte("a"), Type: sdk.Counter, Values: []float64{1, 2.5}, Rate: 0.5})
	// One bad value rejects the whole line.
	bad("a:1:x|c", ReasonBadValue)
	bad("a:x:1|c", ReasonBadValue)
	bad("a:1:NaN:2|h", ReasonBadValue)
	// An empty value between colons is bad.
	bad("a:1::2|c", ReasonBadValue)
	bad("a:1:|c", ReasonBadValue)
	// Multi-value sets split on ':' too.
	f("a:x:y:x|s", Metric{Name: []byte("a"), Type: sdk.Set, Members: [][]byte{[]byte("x"), []byte("y"), []byte("x")}})
	// An empty set member is bad.
	bad("a:x::y|s", ReasonBadValue)
	bad("a:x:|s", ReasonBadValue)
	// Set members are raw bytes, numbers or not.
	f("a:1.0|s", Metric{Name: []byte("a"), Type: sdk.Set, Members: [][]byte{[]byte("1.0")}})
	f("a:NaN|s", Metric{Name: []byte("a"), Type: sdk.Set, Members: [][]byte{[]byte("NaN")}})
}

func TestParseMetricRate(t *testing.T) {
	f, bad := metricCheckers(t)

	// The sample rate follows '@'.
	f("a:1|c|@0.5", Metric{Name: []byte("a"), Type: sdk.Counter, Values: []float64{1}, Rate: 0.5})
	// A rate of exactly 1 is fine.
	f("a:1|c|@1", Metric{Name: []byte("a"), Type: sdk.Counter, Values: []float64{1}, Rate: 1})
	// Tiny rates are fine.
	f("a:1|c|@1e-5", Metric{Name: []byte("a"), Type: sdk.Counter, Values: []float64{1}, Rate: 1e-5})
	// Rates apply to every type.
	f("a:3|ms|@0.1", Metric{Name: []byte("a"), Type: sdk.Timer, Values: []float64{3}, Rate: 0.1})

	// Rate 0 is rejected.
	bad("a:1|c|@0", ReasonBadRate)
	// Rates above 1 are rejected.
	bad("a:1|c|@1.5", ReasonBadRate)
	// Negative rates are rejected.
	bad("a:1|c|@-0.5", ReasonBadRate)
	// Unparsable and empty rates are rejected.
	bad("a:1|c|@x", ReasonBadRate)
	bad("a:1|c|@", ReasonBadRate)
	bad("a:1|c|@NaN", ReasonBadRate)
	bad("a:1|c|@0.5#a", ReasonBadRate)
	// A second rate section is rejected as bad_rate.
	bad("a:1|c|@0.5|@0.5", ReasonBadRate)
}

func TestParseMetricTags(t *testing.T) {
	f, bad := metricCheckers(t)
	counter := func(tags string, scope sdk.Scope) Metric {
		m := Metric{Name: []byte("a"), Type: sdk.Counter, Values: []float64{1}, Scope: scope}
		if tags != "" {
			m.Tags = []byte(tags)
		}
		return m
	}

	// Tags follow '#', separated by ','.
	f("a:1|c|#x", counter("x", 0))
	f("a:1|c|#a:1,b:2", counter("a:1,b:2", 0))
	// Tags are sorted bytewise, so their order in the line does not matter.
	f("a:1|c|#b:2,a:1", counter("a:1,b:2", 0))
	f("a:1|c|#c,b,a", counter("a,b,c", 0))
	f("a:1|c|#b,B,a,A,_", counter("A,B,_,a,b", 0))
	f("a:1|c|#ab,a,abc", counter("a,ab,abc", 0))
	// Many tags are sorted too.
	f("a:1|c|#p,o,n,m,l,k,j,i,h,g,f,e,d,c,b,a", counter("a,b,c,d,e,f,g,h,i,j,k,l,m,n,o,p", 0))
	// Duplicate tags are kept.
	f("a:1|c|#b,a,b", counter("a,b,b", 0))
	// Empty tags between, before and after commas are dropped.
	f("a:1|c|#b,,a", counter("a,b", 0))
	f("a:1|c|#,a,b,", counter("a,b", 0))
	// An empty tag section means no tags.
	f("a:1|c|#", counter("", 0))
	f("a:1|c|#,,", counter("", 0))
	// Tags may hold any byte but ',' and '|'.
	f("a:1|c|#url:http://x/y?z=1,@at,#hash", counter("#hash,@at,url:http://x/y?z=1", 0))

	// veneurlocalonly makes the metric local and is removed from the tags.
	f("a:1|c|#veneurlocalonly,b:2", counter("b:2", sdk.ScopeLocal))
	// veneurglobalonly makes the metric global and is removed from the tags.
	f("a:1|c|#b:2,veneurglobalonly", counter("b:2", sdk.ScopeGlobal))
	// Magic tags match by prefix.
	f("a:1|c|#veneurlocalonly:true,b", counter("b", sdk.ScopeLocal))
	f("a:1|c|#z,veneurglobalonly:yes,b", counter("b,z", sdk.ScopeGlobal))
	// A magic tag alone leaves no tags.
	f("a:1|c|#veneurglobalonly", counter("", sdk.ScopeGlobal))
	// Every magic tag is removed, not just the first.
	f("a:1|c|#veneurlocalonly,x,veneurlocalonly", counter("x", sdk.ScopeLocal))
	// When both are present, local wins whatever the order.
	f("a:1|c|#veneurglobalonly,veneurlocalonly,x", counter("x", sdk.ScopeLocal))
	f("a:1|c|#veneurlocalonly,veneurglobalonly,x", counter("x", sdk.ScopeLocal))
	// Tags merely containing the magic words are ordinary tags.
	f("a:1|c|#xveneurlocalonly,veneur", counter("veneur,xveneurlocalonly", 0))

	// A second tag section is rejected as bad_tags.
	bad("a:1|c|#a|#b", ReasonBadTags)
	bad("a:1|c|#|#b", ReasonBadTags)
}

func TestParseMetricTimestamp(t *testing.T) {
	f, bad := metricCheckers(t)

	// |T<unix seconds> sets the timestamp.
	f("a:1|g|T1700000000", Metric{Name: []byte("a"), Type: sdk.Gauge, Values: []float64{1}, Timestamp: 1700000000})
	f("a:1|g|T0", Metric{Name: []byte("a"), Type: sdk.Gauge, Values: []float64{1}})

	// Only digits are allowed.
	bad("a:1|g|T", ReasonBadTimestamp)
	bad("a:1|g|T-1", ReasonBadTimestamp)
	bad("a:1|g|T1.5", ReasonBadTimestamp)
	bad("a:1|g|Tabc", ReasonBadTimestamp)
	bad("a:1|g|T1700000000 ", ReasonBadTimestamp)
	// Timestamps overflowing int64 are rejected.
	bad("a:1|g|T9223372036854775808", ReasonBadTimestamp)
	f("a:1|g|T9223372036854775807", Metric{Name: []byte("a"), Type: sdk.Gauge, Values: []float64{1}, Timestamp: math.MaxInt64})
	// A second timestamp section is rejected.
	bad("a:1|g|T1|T2", ReasonBadTimestamp)
}

func TestParseMetricSections(t *testing.T) {
	f, _ := metricCheckers(t)
	full := Metric{
		Name: []byte("a"), Type: sdk.Counter, Values: []float64{1}, Rate: 0.5,
		Tags: []byte("x,y"), Timestamp: 1700000000,
	}

	// Sections after the type may come in any order.
	f("a:1|c|@0.5|#y,x|T1700000000", full)
	f("a:1|c|#y,x|@0.5|T1700000000", full)
	f("a:1|c|T1700000000|#y,x|@0.5", full)
	f("a:1|c|T1700000000|@0.5|#y,x", full)
	// The container id section is ignored.
	f("a:1|c|@0.5|#y,x|T1700000000|c:containerid", full)
	f("a:1|c|c:containerid|@0.5|#y,x|T1700000000", full)
	// Unknown sections are ignored, never fatal.
	f("a:1|c|x:whatever|@0.5|#y,x|T1700000000|e:ext|card:high", full)
	// Empty sections are ignored.
	f("a:1|c||@0.5||#y,x|T1700000000|", full)
	f("a:1|c|", Metric{Name: []byte("a"), Type: sdk.Counter, Values: []float64{1}})
}

func TestParseMetricReusesParser(t *testing.T) {
	var p Parser
	// A long line grows the scratch; a shorter one must not see its leftovers.
	if _, err := p.ParseMetric([]byte("a:1:2:3:4|c|#d,c,b,a")); err != nil {
		t.Fatal(err)
	}
	m, err := p.ParseMetric([]byte("b:5|c|#y,x"))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(m.Values, []float64{5}) || string(m.Tags) != "x,y" {
		t.Fatalf("got values %v tags %q", m.Values, m.Tags)
	}
	// A rejected line leaves the parser usable.
	if _, err := p.ParseMetric([]byte("a:1:x|c")); err == nil {
		t.Fatal("expected error")
	}
	m, err = p.ParseMetric([]byte("c:7|g"))
	if err != nil || !slices.Equal(m.Values, []float64{7}) || m.Tags != nil {
		t.Fatalf("got %v %v %q", err, m.Values, m.Tags)
	}
	// Appending to a returned slice must not clobber the line.
	line := []byte("n:1|c|#a,b|T5")
	m, err = p.ParseMetric(line)
	if err != nil {
		t.Fatal(err)
	}
	_ = append(m.Name, 'X')
	_ = append(m.Tags, 'X')
	if string(line) != "n:1|c|#a,b|T5" {
		t.Fatalf("line clobbered: %q", line)
	}
}

func TestParseFloatMatchesStrconv(t *testing.T) {
	for _, s := range []string{
		"0", "-0", "+0", "1", "0.1", "0.3", "123456789012345", "1234567890.12345",
		"0.000000000000001", "999999999999999", "-42.5", "3.14159", ".1", "1.",
		"100000000000000000000", "1e10", "0x1p3", "4.9e-324",
	} {
		got, ok := parseFloat([]byte(s))
		want, err := strconv.ParseFloat(s, 64)
		if !ok || err != nil || math.Float64bits(got) != math.Float64bits(want) {
			t.Errorf("parseFloat(%q) = %v, %v; strconv: %v, %v", s, got, ok, want, err)
		}
	}
}

func TestKind(t *testing.T) {
	f := func(line string, want PacketType, name string) {
		t.Helper()
		got := Kind([]byte(line))
		if got != want || got.String() != name {
			t.Fatalf("Kind(%q) = %v (%s), want %v (%s)", line, got, got, want, name)
		}
	}
	f("a:1|c", PacketMetric, "metric")
	f("", PacketMetric, "metric")
	f("_e{1,1}:a|b", PacketEvent, "event")
	f("_e{", PacketEvent, "event")
	f("_sc|a|0", PacketServiceCheck, "service_check")
	f("_sc|", PacketServiceCheck, "service_check")
	f("_sc", PacketMetric, "metric")
	f("_s:1|c", PacketMetric, "metric")
	f("_e:1|c", PacketMetric, "metric")
	if s := PacketType(9).String(); s != "unknown" {
		t.Fatalf("PacketType(9).String() = %q", s)
	}
}

func TestForEachLine(t *testing.T) {
	f := func(packet string, want ...string) {
		t.Helper()
		var got []string
		ForEachLine([]byte(packet), func(line []byte) { got = append(got, string(line)) })
		if !slices.Equal(got, want) {
			t.Fatalf("ForEachLine(%q) = %q, want %q", packet, got, want)
		}
	}
	// A single line, with or without a trailing newline.
	f("a:1|c", "a:1|c")
	f("a:1|c\n", "a:1|c")
	// Several lines.
	f("a:1|c\nb:2|g\nc:3|ms", "a:1|c", "b:2|g", "c:3|ms")
	f("a:1|c\nb:2|g\n", "a:1|c", "b:2|g")
	// \r\n line endings lose their \r.
	f("a:1|c\r\nb:2|g\r\n", "a:1|c", "b:2|g")
	f("a:1|c\r", "a:1|c")
	// Empty lines are skipped, including ones made of a lone \r.
	f("")
	f("\n\n\n")
	f("\r\n\r\n")
	f("\na:1|c\n\n\nb:2|g\n\n", "a:1|c", "b:2|g")
	f("a:1|c\n\r\nb:2|g", "a:1|c", "b:2|g")
	// Only one trailing \r is stripped; other whitespace is kept.
	f("a:1|c\r\r\n a \n", "a:1|c\r", " a ")

	// ForEachLine does not allocate.
	packet := []byte("a:1|c\r\nb:2|g\n\nc:3|ms\n")
	n := 0
	fn := func(line []byte) { n += len(line) }
	if allocs := testing.AllocsPerRun(100, func() { ForEachLine(packet, fn) }); allocs != 0 {
		t.Fatalf("ForEachLine allocates %v times per call", allocs)
	}
}

func TestParseEvent(t *testing.T) {
	var p Parser
	f := func(line string, want sdk.Event) {
		t.Helper()
		got, err := p.ParseEvent([]byte(line))
		if err != nil {
			t.Fatalf("ParseEvent(%q): unexpected error: %v", line, err)
		}
		if want.Priority == "" {
			want.Priority = "normal"
		}
		if want.AlertType == "" {
			want.AlertType = "info"
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("ParseEvent(%q):\ngot  %#v\nwant %#v", line, got, want)
		}
	}
	bad := func(line, reason string) {
		t.Helper()
		checkReason(t, "ParseEvent", line, reason, func() error {
			_, err := p.ParseEvent([]byte(line))
			return err
		})
	}

	// A minimal event: title and text with their byte lengths.
	f("_e{5,4}:title|text", sdk.Event{Title: "title", Text: "text"})
	// The text may be empty.
	f("_e{5,0}:title|", sdk.Event{Title: "title"})
	// Lengths are honoured, so the title and the text may contain '|'.
	f("_e{3,3}:a|b|c|d|#x", sdk.Event{Title: "a|b", Text: "c|d", Tags: []string{"x"}})
	f("_e{4,4}:|||||||||", sdk.Event{Title: "||||", Text: "||||"})
	// Lengths count bytes, not runes.
	f("_e{6,2}:héllo|é", sdk.Event{Title: "héllo", Text: "é"})
	// The two characters \n in the text become a newline (the length counts them as two).
	f(`_e{1,12}:t|line1\nline2`, sdk.Event{Title: "t", Text: "line1\nline2"})
	f(`_e{1,4}:t|\n\n`, sdk.Event{Title: "t", Text: "\n\n"})
	// The title is taken as is.
	f(`_e{4,1}:a\nb|x`, sdk.Event{Title: `a\nb`, Text: "x"})
	// Every known section.
	f("_e{1,1}:t|x|d:1700000000|h:host1|k:agg|p:low|s:src|t:error|#b,a:1",
		sdk.Event{
			Title: "t", Text: "x", Timestamp: 1700000000, Hostname: "host1",
			AggregationKey: "agg", Priority: "low", SourceType: "src",
			AlertType: "error", Tags: []string{"a:1", "b"},
		})
	// Sections come in any order.
	f("_e{1,1}:t|x|#b,a|t:warning|p:normal|d:5",
		sdk.Event{Title: "t", Text: "x", Timestamp: 5, Priority: "normal", AlertType: "warning", Tags: []string{"a", "b"}})
	// Every alert type.
	f("_e{1,1}:t|x|t:success", sdk.Event{Title: "t", Text: "x", AlertType: "success"})
	f("_e{1,1}:t|x|t:info", sdk.Event{Title: "t", Text: "x", AlertType: "info"})
	// Tags are sorted, duplicates kept, empty ones dropped.
	f("_e{1,1}:t|x|#c,,a,c", sdk.Event{Title: "t", Text: "x", Tags: []string{"a", "c", "c"}})
	// Every magic scope tag is removed, as from metrics: it is an
	// instruction, not data.
	f("_e{1,1}:t|x|#veneurlocalonly,a,veneurglobalonly:yes,veneurlocalonly:true", sdk.Event{Title: "t", Text: "x", Tags: []string{"a"}})
	f("_e{1,1}:t|x|#veneurlocalonly", sdk.Event{Title: "t", Text: "x"})
	f("_e{1,1}:t|x|#xveneurlocalonly", sdk.Event{Title: "t", Text: "x", Tags: []string{"xveneurlocalonly"}})
	// Unknown and empty sections are ignored.
	f("_e{1,1}:t|x|c:container|z:zzz||q|#a", sdk.Event{Title: "t", Text: "x", Tags: []string{"a"}})

	// Empty line.
	bad("", ReasonEmpty)
	// Malformed headers.
	bad("_e", ReasonBadEventHeader)
	bad("e{1,1}:t|x", ReasonBadEventHeader)
	bad("_e{", ReasonBadEventHeader)
	bad("_e{1,1}", ReasonBadEventHeader)
	bad("_e{1,1:t|x", ReasonBadEventHeader)
	bad("_e{1,1}t|x", ReasonBadEventHeader)
	bad("_e{1}:t|x", ReasonBadEventHeader)
	bad("_e{,1}:t|x", ReasonBadEventHeader)
	bad("_e{1,}:t|x", ReasonBadEventHeader)
	bad("_e{-1,1}:t|x", ReasonBadEventHeader)
	bad("_e{a,1}:t|x", ReasonBadEventHeader)
	bad("_e{1, 1}:t|x", ReasonBadEventHeader)
	// Lengths that do not match the line.
	bad("_e{2,1}:t|x", ReasonBadEventLength)
	bad("_e{1,2}:t|x", ReasonBadEventLength)
	bad("_e{1,0}:t|x", ReasonBadEventLength)
	bad("_e{5,4}:title", ReasonBadEventLength)
	bad("_e{5,4}:title|tex", ReasonBadEventLength)
	bad("_e{5,4}:title|texts", ReasonBadEventLength)
	bad("_e{99999999999999999999999,1}:t|x", ReasonBadEventLength)
	bad("_e{1,99999999999999999999999}:t|x", ReasonBadEventLength)
	// An empty title.
	bad("_e{0,1}:|x", ReasonNoTitle)
	// Bad sections.
	bad("_e{1,1}:t|x|d:abc", ReasonBadTimestamp)
	bad("_e{1,1}:t|x|d:", ReasonBadTimestamp)
	bad("_e{1,1}:t|x|p:high", ReasonBadPriority)
	bad("_e{1,1}:t|x|t:fatal", ReasonBadAlertType)
	bad("_e{1,1}:t|x|#a|#b", ReasonBadTags)
}

func TestParseServiceCheck(t *testing.T) {
	var p Parser
	f := func(line string, want sdk.ServiceCheck) {
		t.Helper()
		got, err := p.ParseServiceCheck([]byte(line))
		if err != nil {
			t.Fatalf("ParseServiceCheck(%q): unexpected error: %v", line, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("ParseServiceCheck(%q):\ngot  %#v\nwant %#v", line, got, want)
		}
	}
	bad := func(line, reason string) {
		t.Helper()
		checkReason(t, "ParseServiceCheck", line, reason, func() error {
			_, err := p.ParseServiceCheck([]byte(line))
			return err
		})
	}

	// Name and status are required; statuses are 0 to 3.
	f("_sc|db.up|0", sdk.ServiceCheck{Name: "db.up", Status: 0})
	f("_sc|db.up|1", sdk.ServiceCheck{Name: "db.up", Status: 1})
	f("_sc|db.up|2", sdk.ServiceCheck{Name: "db.up", Status: 2})
	f("_sc|db.up|3", sdk.ServiceCheck{Name: "db.up", Status: 3})
	// Every known section.
	f("_sc|db.up|2|d:1700000000|h:host1|#b,a:1|m:connection refused",
		sdk.ServiceCheck{Name: "db.up", Status: 2, Timestamp: 1700000000, Hostname: "host1",
			Tags: []string{"a:1", "b"}, Message: "connection refused"})
	// Sections before m: come in any order.
	f("_sc|x|0|#b,a|h:h|d:7", sdk.ServiceCheck{Name: "x", Timestamp: 7, Hostname: "h", Tags: []string{"a", "b"}})
	// m: is the last section: everything after it is the message, '|' included.
	f("_sc|x|1|m:a|b|#c|d:5", sdk.ServiceCheck{Name: "x", Status: 1, Message: "a|b|#c|d:5"})
	f("_sc|x|1|m:", sdk.ServiceCheck{Name: "x", Status: 1})
	// The escaped newline and m\: in the message are unescaped.
	f(`_sc|x|1|m:line1\nline2 m\: x`, sdk.ServiceCheck{Name: "x", Status: 1, Message: "line1\nline2 m: x"})
	// Tags are sorted, empty ones dropped.
	f("_sc|x|0|#z,,y", sdk.ServiceCheck{Name: "x", Tags: []string{"y", "z"}})
	// Every magic scope tag is removed, as from metrics (Veneur removes only
	// the first exact "veneurlocalonly" or "veneurglobalonly").
	f("_sc|x|0|#veneurlocalonly,veneurlocalonly,a:b,veneurglobalonly:true", sdk.ServiceCheck{Name: "x", Tags: []string{"a:b"}})
	f("_sc|x|0|#veneurglobalonly", sdk.ServiceCheck{Name: "x"})
	f("_sc|x|0|#veneur,xveneurglobalonly", sdk.ServiceCheck{Name: "x", Tags: []string{"veneur", "xveneurglobalonly"}})
	// Unknown and empty sections are ignored.
	f("_sc|x|0||c:container|q|zz:1|h:h", sdk.ServiceCheck{Name: "x", Hostname: "h"})

	// Empty line.
	bad("", ReasonEmpty)
	// Not a service check.
	bad("_sc", ReasonBadServiceCheckHeader)
	bad("sc|x|0", ReasonBadServiceCheckHeader)
	bad("_e{1,1}:a|b", ReasonBadServiceCheckHeader)
	// Name required.
	bad("_sc|", ReasonNoName)
	bad("_sc||0", ReasonNoName)
	// Status required.
	bad("_sc|x", ReasonNoStatus)
	bad("_sc|x|", ReasonNoStatus)
	bad("_sc|x||h:h", ReasonNoStatus)
	// Status is one of 0, 1, 2, 3.
	bad("_sc|x|4", ReasonBadStatus)
	bad("_sc|x|-1", ReasonBadStatus)
	bad("_sc|x|01", ReasonBadStatus)
	bad("_sc|x|ok", ReasonBadStatus)
	// Bad sections.
	bad("_sc|x|0|d:now", ReasonBadTimestamp)
	bad("_sc|x|0|#a|#b", ReasonBadTags)
}

func TestParseErrorTruncatesLine(t *testing.T) {
	var p Parser
	line := strings.Repeat("x", 1000)
	_, err := p.ParseMetric([]byte(line))
	var pe *ParseError
	if !errors.As(err, &pe) || pe.Reason != ReasonNoValue || len(pe.Line) != maxErrorLine {
		t.Fatalf("got %v", err)
	}
}
