package datadog

import (
	"strconv"

	"github.com/veneurd/veneurd/internal/textenc"
	"github.com/veneurd/veneurd/sdk"
)

// Datadog's documented limits on an event's fields, in characters
// (EventCreateRequest in Datadog's API specification: text and
// aggregation_key have a maxLength; the title has none).
const (
	maxEventText           = 4000
	maxEventAggregationKey = 100
)

// Events builds the bodies of POST /api/v1/events, which takes one event per
// request (Datadog's EventCreateRequest):
//
//	{"title":"deploy","text":"v2 is out","date_happened":1700000000,"priority":"normal","host":"h1","tags":["env:prod"],"alert_type":"info","aggregation_key":"deploys","source_type_name":"jenkins"}
//
// The text is cut to its first 4000 characters and the aggregation key to
// its first 100 (Datadog's documented limits), at character boundaries. The
// optional fields are left out when empty; priority and alert_type are also
// left out when they are not values Datadog knows ("normal", "low"; "error",
// "warning", "info", "success", "user_update", "recommendation",
// "snapshot"), which leaves Datadog's defaults, normal and info.
//
// Veneur posted events in batches to the undocumented /intake endpoint; this
// is the documented endpoint instead.
type Events struct {
	// Hostname is the host of events that name none (Veneur used its own
	// hostname); when it is empty too, "host" is left out.
	Hostname string

	buf []byte
	n   int
}

// Reset empties the body, keeping its buffer.
func (e *Events) Reset() {
	e.buf = e.buf[:0]
	e.n = 0
}

// Len is 1 after an Event that was encoded, 0 otherwise.
func (e *Events) Len() int { return e.n }

// Size is the length of Body.
func (e *Events) Size() int { return len(e.buf) }

// Body is the last body Event returned, or an empty one.
func (e *Events) Body() []byte { return e.buf[:len(e.buf):len(e.buf)] }

// Event replaces the body with that of ev and returns it; it is valid until
// the next Event or Reset. An event without a timestamp takes flushTS, the
// flush's. Event returns nil, and leaves the body empty, when ev has no
// title, which Datadog requires.
func (e *Events) Event(ev *sdk.Event, flushTS int64) []byte {
	e.Reset()
	if ev.Title == "" {
		return nil
	}
	b := append(e.buf, `{"title":`...)
	b = textenc.AppendJSONString(b, ev.Title)
	b = appendField(b, "text", truncate(ev.Text, maxEventText))
	ts := ev.Timestamp
	if ts == 0 {
		ts = flushTS
	}
	if ts != 0 {
		b = append(b, `,"date_happened":`...)
		b = strconv.AppendInt(b, ts, 10)
	}
	switch ev.Priority {
	case "normal", "low":
		b = appendField(b, "priority", ev.Priority)
	}
	host := ev.Hostname
	if host == "" {
		host = e.Hostname
	}
	b = appendOptional(b, "host", host)
	b = appendTags(b, ev.Tags, false, false, len(ev.Tags), false)
	switch ev.AlertType {
	case "error", "warning", "info", "success", "user_update", "recommendation", "snapshot":
		b = appendField(b, "alert_type", ev.AlertType)
	}
	b = appendOptional(b, "aggregation_key", truncate(ev.AggregationKey, maxEventAggregationKey))
	b = appendOptional(b, "source_type_name", ev.SourceType)
	e.buf = append(b, '}')
	e.n = 1
	return e.Body()
}
