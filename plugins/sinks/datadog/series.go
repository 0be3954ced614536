package datadog

import (
	"math"
	"strconv"
	"time"

	"github.com/veneurd/veneurd/internal/textenc"
	"github.com/veneurd/veneurd/sdk"
)

// kind is the type a series is sent with; the values are the v2 API's
// (MetricIntakeType).
type kind uint8

const (
	kindCount kind = 1
	kindRate  kind = 2
	kindGauge kind = 3
)

// v1Types are the v1 API's names of the kinds.
var v1Types = [...]string{kindCount: `"count"`, kindRate: `"rate"`, kindGauge: `"gauge"`}

// series returns the kind and value p is sent with, or false when p is not a
// series Datadog can take: a status point (a service check, see CheckRuns),
// a point of an unknown type, a point without a name (the API requires one,
// and a bad series can make it refuse the whole body), or a value that is
// NaN or infinite (JSON has neither), including a rate that overflows.
//
// A gauge is sent as it is. A counter is sent as Veneur sends it, as a rate:
// its value divided by the interval in seconds, which must then be positive;
// or, with asCount, as a count of its value over the interval.
func series(p *sdk.Point, interval time.Duration, asCount bool) (kind, float64, bool) {
	if p.Name == "" {
		return 0, 0, false
	}
	var k kind
	v := p.Value
	switch p.Type {
	case sdk.PointGauge:
		k = kindGauge
	case sdk.PointCounter:
		if asCount {
			k = kindCount
			break
		}
		if interval <= 0 {
			return 0, 0, false
		}
		k = kindRate
		v /= interval.Seconds()
	default:
		return 0, 0, false
	}
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, 0, false
	}
	return k, v, true
}

// intervalSeconds is the "interval" written for interval: whole seconds,
// truncated as Veneur's int32(interval.Seconds()); 0 (no field) when below
// one second.
func intervalSeconds(interval time.Duration) int64 { return int64(interval / time.Second) }

const (
	seriesHead = `{"series":[`
	seriesTail = `]}`
)

// SeriesV1 builds the body of POST /api/v1/series, as Veneur v14's datadog
// sink does (its DDMetric, in the same field order):
//
//	{"series":[{"metric":"a.b","points":[[1700000000,1.5]],"tags":["k:v"],"type":"gauge","host":"h1","device_name":"sda","interval":10}]}
//
// "tags" is left out when there are none, "host" when the point has no host,
// "device_name" when it has no device: tag, "interval" when Interval is
// under a second. The timestamp is written as an integer (Veneur wrote it as
// a float64, which encoding/json writes the same way for any Unix time
// within float64's integer range).
type SeriesV1 struct {
	// Interval is the flush interval the points were aggregated over, set
	// before each flush's points are appended. Counters sent as rates are
	// divided by it, and it is sent as every series' "interval".
	Interval time.Duration
	// CountersAsCount sends counters as type "count" with their value,
	// instead of Veneur's type "rate" with their value per second.
	CountersAsCount bool

	env envelope
}

// Reset empties the body, keeping its buffer.
func (s *SeriesV1) Reset() { s.env.reset(seriesHead) }

// Len is the number of series appended since Reset.
func (s *SeriesV1) Len() int { return s.env.n }

// Size is the length of Body.
func (s *SeriesV1) Size() int { return s.env.size(seriesHead, seriesTail) }

// Body is the complete request body, valid until the next Reset or Point.
func (s *SeriesV1) Body() []byte { return s.env.body(seriesHead, seriesTail) }

// Point appends p as one series of one point. It returns false, appending
// nothing, when p is not a series: a status point (see CheckRuns), an
// unknown type, an empty name, a value that is NaN or infinite, or a counter
// to send as a rate while Interval is not positive (or whose rate
// overflows).
func (s *SeriesV1) Point(p *sdk.Point) bool {
	k, v, ok := series(p, s.Interval, s.CountersAsCount)
	if !ok {
		return false
	}
	m := scanMagic(p.Tags)
	b := s.env.item(seriesHead)
	b = append(b, `{"metric":`...)
	b = textenc.AppendJSONString(b, p.Name)
	b = append(b, `,"points":[[`...)
	b = s.env.appendTimestamp(b, p.Timestamp)
	b = append(b, ',')
	b = textenc.AppendFloat(b, v)
	b = append(b, ']', ']')
	b = appendTags(b, p.Tags, m.hostTags > 0, m.deviceTags > 0, len(p.Tags)-m.hostTags-m.deviceTags, false)
	b = append(b, `,"type":`...)
	b = append(b, v1Types[k]...)
	b = appendOptional(b, "host", m.hostOr(p.Hostname))
	b = appendOptional(b, "device_name", m.device)
	if secs := intervalSeconds(s.Interval); secs > 0 {
		b = append(b, `,"interval":`...)
		b = strconv.AppendInt(b, secs, 10)
	}
	s.env.buf = append(b, '}')
	return true
}

// SeriesV2 builds the body of POST /api/v2/series (Datadog's MetricPayload):
//
//	{"series":[{"metric":"a.b","type":3,"points":[{"timestamp":1700000000,"value":1.5}],"interval":10,"resources":[{"name":"h1","type":"host"}],"tags":["device:sda","k:v"]}]}
//
// with type 1 (count), 2 (rate) or 3 (gauge), chosen as for SeriesV1. The
// host is a resource of type "host"; "resources" is left out when there is
// none. A device: tag stays a tag: the v2 API documents no device field,
// and a tag is what Datadog makes of a v1 device_name anyway, and what every
// other receiver of this API (VictoriaMetrics among them) keeps. "tags" is
// left out when there are no tags, "interval" when Interval is under a
// second.
type SeriesV2 struct {
	// Interval and CountersAsCount are as in SeriesV1.
	Interval        time.Duration
	CountersAsCount bool

	env envelope
}

// Reset empties the body, keeping its buffer.
func (s *SeriesV2) Reset() { s.env.reset(seriesHead) }

// Len is the number of series appended since Reset.
func (s *SeriesV2) Len() int { return s.env.n }

// Size is the length of Body.
func (s *SeriesV2) Size() int { return s.env.size(seriesHead, seriesTail) }

// Body is the complete request body, valid until the next Reset or Point.
func (s *SeriesV2) Body() []byte { return s.env.body(seriesHead, seriesTail) }

// Point appends p as one series of one point. It returns false, appending
// nothing, in the cases SeriesV1.Point does.
func (s *SeriesV2) Point(p *sdk.Point) bool {
	k, v, ok := series(p, s.Interval, s.CountersAsCount)
	if !ok {
		return false
	}
	m := scanMagic(p.Tags)
	b := s.env.item(seriesHead)
	b = append(b, `{"metric":`...)
	b = textenc.AppendJSONString(b, p.Name)
	b = append(b, `,"type":`...)
	b = append(b, '0'+byte(k))
	b = append(b, `,"points":[{"timestamp":`...)
	b = s.env.appendTimestamp(b, p.Timestamp)
	b = append(b, `,"value":`...)
	b = textenc.AppendFloat(b, v)
	b = append(b, '}', ']')
	if secs := intervalSeconds(s.Interval); secs > 0 {
		b = append(b, `,"interval":`...)
		b = strconv.AppendInt(b, secs, 10)
	}
	if host := m.hostOr(p.Hostname); host != "" {
		b = append(b, `,"resources":[{"name":`...)
		b = textenc.AppendJSONString(b, host)
		b = append(b, `,"type":"host"}]`...)
	}
	b = appendTags(b, p.Tags, m.hostTags > 0, false, len(p.Tags)-m.hostTags, false)
	s.env.buf = append(b, '}')
	return true
}
