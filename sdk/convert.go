package sdk

import pb "github.com/veneurd/veneurd/sdk/proto"

// Conversions between the SDK's types and their wire form.

// EventToProto encodes e.
func EventToProto(e *Event) *pb.Event {
	return &pb.Event{Title: e.Title, Text: e.Text, Timestamp: e.Timestamp, Hostname: e.Hostname,
		AggregationKey: e.AggregationKey, Priority: e.Priority, SourceType: e.SourceType,
		AlertType: e.AlertType, Tags: e.Tags}
}

// EventFromProto decodes e.
func EventFromProto(e *pb.Event) Event {
	return Event{Title: e.Title, Text: e.Text, Timestamp: e.Timestamp, Hostname: e.Hostname,
		AggregationKey: e.AggregationKey, Priority: e.Priority, SourceType: e.SourceType,
		AlertType: e.AlertType, Tags: e.Tags}
}

// ServiceCheckToProto encodes c.
func ServiceCheckToProto(c *ServiceCheck) *pb.ServiceCheck {
	return &pb.ServiceCheck{Name: c.Name, Status: int32(c.Status), Timestamp: c.Timestamp,
		Hostname: c.Hostname, Message: c.Message, Tags: c.Tags}
}

// ServiceCheckFromProto decodes c.
func ServiceCheckFromProto(c *pb.ServiceCheck) ServiceCheck {
	return ServiceCheck{Name: c.Name, Status: int(c.Status), Timestamp: c.Timestamp,
		Hostname: c.Hostname, Message: c.Message, Tags: c.Tags}
}
