package sdk

import (
	"strings"
	"unicode/utf8"

	pb "github.com/veneurd/veneurd/sdk/proto"
)

// Conversions between the SDK's types and their wire form.
//
// Protobuf strings must be valid UTF-8: a message holding one that is not
// fails to encode, and on a source's Run stream that would end the stream
// and cost the process. A client's bytes are not always valid, so encoding
// replaces each invalid sequence with U+FFFD, as a JSON encoder would.

// EventToProto encodes e.
func EventToProto(e *Event) *pb.Event {
	return &pb.Event{Title: validUTF8(e.Title), Text: validUTF8(e.Text), Timestamp: e.Timestamp,
		Hostname: validUTF8(e.Hostname), AggregationKey: validUTF8(e.AggregationKey),
		Priority: validUTF8(e.Priority), SourceType: validUTF8(e.SourceType),
		AlertType: validUTF8(e.AlertType), Tags: validTags(e.Tags)}
}

// EventFromProto decodes e.
func EventFromProto(e *pb.Event) Event {
	return Event{Title: e.Title, Text: e.Text, Timestamp: e.Timestamp, Hostname: e.Hostname,
		AggregationKey: e.AggregationKey, Priority: e.Priority, SourceType: e.SourceType,
		AlertType: e.AlertType, Tags: e.Tags}
}

// ServiceCheckToProto encodes c.
func ServiceCheckToProto(c *ServiceCheck) *pb.ServiceCheck {
	return &pb.ServiceCheck{Name: validUTF8(c.Name), Status: int32(c.Status), Timestamp: c.Timestamp,
		Hostname: validUTF8(c.Hostname), Message: validUTF8(c.Message), Tags: validTags(c.Tags)}
}

// ServiceCheckFromProto decodes c.
func ServiceCheckFromProto(c *pb.ServiceCheck) ServiceCheck {
	return ServiceCheck{Name: c.Name, Status: int(c.Status), Timestamp: c.Timestamp,
		Hostname: c.Hostname, Message: c.Message, Tags: c.Tags}
}

func validUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}

// validTags returns tags, or a copy with its invalid UTF-8 replaced.
func validTags(tags []string) []string {
	for i, t := range tags {
		if !utf8.ValidString(t) {
			out := append([]string(nil), tags...)
			for j := i; j < len(out); j++ {
				out[j] = validUTF8(out[j])
			}
			return out
		}
	}
	return tags
}
