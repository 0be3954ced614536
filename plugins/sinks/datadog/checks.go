package datadog

import (
	"github.com/veneurd/veneurd/sdk"

	"github.com/veneurd/veneurd/internal/textenc"
)

const (
	checksHead = `[`
	checksTail = `]`
)

// CheckRuns builds the body of POST /api/v1/check_run, an array of service
// checks, from status points, with the fields of Veneur's DDServiceCheck in
// its order:
//
//	[{"check":"db.up","status":2,"host_name":"h1","timestamp":1700000000,"tags":["k:v"],"message":"refused"}]
//
// "tags" is always written ([] when there are none: Datadog's schema
// requires it), "host_name" too (required; "" when the point has no host),
// "timestamp" unless it is 0, "message" unless it is empty. A host:X tag
// sets host_name and is removed from the tags; a device: tag stays a tag
// (Veneur dropped it from checks: check_run has no device field).
type CheckRuns struct {
	env envelope
}

// Reset empties the body, keeping its buffer.
func (c *CheckRuns) Reset() { c.env.reset(checksHead) }

// Len is the number of checks appended since Reset.
func (c *CheckRuns) Len() int { return c.env.n }

// Size is the length of Body.
func (c *CheckRuns) Size() int { return c.env.size(checksHead, checksTail) }

// Body is the complete request body, valid until the next Reset or Point.
func (c *CheckRuns) Body() []byte { return c.env.body(checksHead, checksTail) }

// Point appends the status point p as one check run, with Value as its
// status. It returns false, appending nothing, when p is not a status point,
// has no name (the check is required), or its Value is not one of Datadog's
// statuses 0 (ok), 1 (warning), 2 (critical) and 3 (unknown). Veneur
// truncated the value to an integer; a value such as 1.5 or NaN is refused
// here instead.
func (c *CheckRuns) Point(p *sdk.Point) bool {
	if p.Type != sdk.PointStatus || p.Name == "" {
		return false
	}
	v := p.Value
	if v != 0 && v != 1 && v != 2 && v != 3 {
		return false
	}
	m := scanMagic(p.Tags)
	b := c.env.item(checksHead)
	b = append(b, `{"check":`...)
	b = textenc.AppendJSONString(b, p.Name)
	b = append(b, `,"status":`...)
	b = append(b, '0'+byte(v))
	b = appendField(b, "host_name", m.hostOr(p.Hostname))
	if p.Timestamp != 0 {
		b = append(b, `,"timestamp":`...)
		b = c.env.appendTimestamp(b, p.Timestamp)
	}
	b = appendTags(b, p.Tags, m.hostTags > 0, false, len(p.Tags)-m.hostTags, true)
	b = appendOptional(b, "message", p.Message)
	c.env.buf = append(b, '}')
	return true
}
