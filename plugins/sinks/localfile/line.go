package localfile

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/veneurd/veneurd/internal/textenc"
	"github.com/veneurd/veneurd/sdk"
)

// Kinds of line. A metric's line has no kind.
const (
	KindServiceCheck = "service_check"
	KindEvent        = "event"
)

// Line is one line of the file. A point's line holds Kind (KindServiceCheck
// for a status point, "" otherwise), Name, Tags, Type, Value, Timestamp,
// Hostname and, for a service check, Message; an event's line holds Kind
// KindEvent, Title, Text, Tags, Timestamp, Hostname and the event's optional
// fields. The sink writes a Line with AppendJSON, in the field order the
// README documents; a Decoder reads one back.
type Line struct {
	Kind      string   `json:"kind"`
	Name      string   `json:"name"`
	Tags      []string `json:"tags"`
	Type      string   `json:"type"`
	Value     float64  `json:"value"`
	Timestamp int64    `json:"timestamp"`
	Hostname  string   `json:"hostname"`
	Message   string   `json:"message"`

	Title          string `json:"title"`
	Text           string `json:"text"`
	AggregationKey string `json:"aggregation_key"`
	Priority       string `json:"priority"`
	SourceType     string `json:"source_type"`
	AlertType      string `json:"alert_type"`
}

// PointLine is the line the sink writes for p.
func PointLine(p *sdk.Point) Line {
	l := Line{Name: p.Name, Tags: p.Tags, Type: p.Type.String(), Value: p.Value,
		Timestamp: p.Timestamp, Hostname: p.Hostname, Message: p.Message}
	if p.Type == sdk.PointStatus {
		l.Kind = KindServiceCheck
	}
	return l
}

// EventLine is the line the sink writes for e, flushed at ts: an event
// without a timestamp takes the flush's.
func EventLine(e *sdk.Event, ts int64) Line {
	if e.Timestamp != 0 {
		ts = e.Timestamp
	}
	return Line{Kind: KindEvent, Title: e.Title, Text: e.Text, Tags: e.Tags, Timestamp: ts, Hostname: e.Hostname,
		AggregationKey: e.AggregationKey, Priority: e.Priority, SourceType: e.SourceType, AlertType: e.AlertType}
}

// AppendJSON appends l as one JSON object, in the field order the README
// documents, without a newline, and returns the extended buffer. Strings and
// numbers are written as encoding/json writes them. l.Value must be finite:
// JSON has no NaN or infinity.
func (l *Line) AppendJSON(b []byte) []byte {
	b = append(b, '{')
	if l.Kind != "" {
		b = append(appendField(b, "kind", l.Kind), ',')
	}
	if l.Kind == KindEvent {
		b = append(appendField(b, "title", l.Title), ',')
		b = append(appendField(b, "text", l.Text), ',')
		b = appendTags(b, l.Tags)
	} else {
		b = append(appendField(b, "name", l.Name), ',')
		b = append(appendTags(b, l.Tags), ',')
		b = append(appendField(b, "type", l.Type), `,"value":`...)
		b = textenc.AppendFloat(b, l.Value)
	}
	b = append(b, `,"timestamp":`...)
	b = strconv.AppendInt(b, l.Timestamp, 10)
	b = appendField(append(b, ','), "hostname", l.Hostname)
	if l.Kind == KindEvent {
		b = appendOptional(b, "aggregation_key", l.AggregationKey)
		b = appendOptional(b, "priority", l.Priority)
		b = appendOptional(b, "source_type", l.SourceType)
		b = appendOptional(b, "alert_type", l.AlertType)
	} else {
		b = appendOptional(b, "message", l.Message)
	}
	return append(b, '}')
}

// appendTags appends "tags":[...], [] when there are none.
func appendTags(b []byte, tags []string) []byte {
	b = append(b, `"tags":[`...)
	for i, t := range tags {
		if i > 0 {
			b = append(b, ',')
		}
		b = textenc.AppendJSONString(b, t)
	}
	return append(b, ']')
}

// appendField appends "key":value.
func appendField(b []byte, key, value string) []byte {
	b = append(b, '"')
	b = append(b, key...)
	b = append(b, `":`...)
	return textenc.AppendJSONString(b, value)
}

// appendOptional appends ,"key":value when value is not empty.
func appendOptional(b []byte, key, value string) []byte {
	if value == "" {
		return b
	}
	return appendField(append(b, ','), key, value)
}

// Decoder reads the lines of a file the sink wrote.
type Decoder struct {
	r *bufio.Reader
	n int // lines read
}

// NewDecoder returns a Decoder reading r.
func NewDecoder(r io.Reader) *Decoder { return &Decoder{r: bufio.NewReader(r)} }

// Decode reads the next line into l. It returns io.EOF at the end of the
// input. A last line without its newline is one the sink is still writing:
// it is left unread, and Decode returns io.EOF.
func (d *Decoder) Decode(l *Line) error {
	b, err := d.r.ReadBytes('\n')
	if errors.Is(err, io.EOF) {
		return io.EOF
	}
	if err != nil {
		return err
	}
	d.n++
	*l = Line{}
	if err := json.Unmarshal(b, l); err != nil {
		return fmt.Errorf("line %d: %w: %q", d.n, err, b)
	}
	return nil
}
