package datadog

import (
	"strings"
	"testing"

	"github.com/veneurd/veneurd/sdk"
)

func TestEvents(t *testing.T) {
	enc := &Events{Hostname: "self"}
	f := func(e sdk.Event, flushTS int64, want string) {
		t.Helper()
		old := sdk.Event{Title: "old"}
		enc.Event(&old, 1)
		got := enc.Event(&e, flushTS)
		if want == "" {
			if got != nil || enc.Len() != 0 || enc.Size() != 0 || len(enc.Body()) != 0 {
				t.Errorf("%+v: got %q (Len %d, Size %d), want refused", e, got, enc.Len(), enc.Size())
			}
			return
		}
		if string(got) != want {
			t.Errorf("%+v:\ngot  %s\nwant %s", e, got, want)
		}
		if enc.Len() != 1 || enc.Size() != len(want) || string(enc.Body()) != want || cap(got) != len(got) {
			t.Errorf("%+v: Len %d, Size %d, Body %s", e, enc.Len(), enc.Size(), enc.Body())
		}
	}
	f(sdk.Event{Title: "deploy", Text: "v2 is out", Timestamp: 1700000001, Hostname: "h1", AggregationKey: "deploys",
		Priority: "low", SourceType: "jenkins", AlertType: "success", Tags: []string{"env:prod", "host:x"}}, ts,
		`{"title":"deploy","text":"v2 is out","date_happened":1700000001,"priority":"low","host":"h1","tags":["env:prod","host:x"],`+
			`"alert_type":"success","aggregation_key":"deploys","source_type_name":"jenkins"}`)
	// The flush's timestamp and the encoder's host for an event without.
	f(sdk.Event{Title: "deploy", Priority: "normal", AlertType: "info"}, ts,
		`{"title":"deploy","text":"","date_happened":1700000000,"priority":"normal","host":"self","alert_type":"info"}`)
	// Values Datadog does not know are left to its defaults.
	f(sdk.Event{Title: "deploy", Priority: "high", AlertType: "fatal"}, ts,
		`{"title":"deploy","text":"","date_happened":1700000000,"host":"self"}`)
	enc.Hostname = ""
	f(sdk.Event{Title: "deploy"}, 0, `{"title":"deploy","text":""}`)
	f(sdk.Event{Title: oddName, Text: oddName, Hostname: oddTag, Tags: []string{oddTag}, AggregationKey: oddTag, SourceType: oddName}, ts,
		`{"title":`+oddJSON+`,"text":`+oddJSON+`,"date_happened":1700000000,"host":`+oddTagJ+`,"tags":[`+oddTagJ+`],"aggregation_key":`+
			oddTagJ+`,"source_type_name":`+oddJSON+`}`)

	// The text is cut to 4000 characters, the aggregation key to 100, at
	// character boundaries; the title is not cut (Datadog documents no
	// limit).
	long := strings.Repeat("é", 4001)
	f(sdk.Event{Title: strings.Repeat("t", 500), Text: long, AggregationKey: strings.Repeat("€", 101)}, ts,
		`{"title":"`+strings.Repeat("t", 500)+`","text":"`+strings.Repeat("é", 4000)+`","date_happened":1700000000,"aggregation_key":"`+
			strings.Repeat("€", 100)+`"}`)
	f(sdk.Event{Title: "t", Text: strings.Repeat("a", 3999) + "\xff\xfe"}, ts,
		`{"title":"t","text":"`+strings.Repeat("a", 3999)+`\ufffd","date_happened":1700000000}`)
	f(sdk.Event{Title: "t", Text: strings.Repeat("a", 4000)}, ts,
		`{"title":"t","text":"`+strings.Repeat("a", 4000)+`","date_happened":1700000000}`)

	// Datadog requires a title.
	f(sdk.Event{Text: "no title"}, ts, "")
}
