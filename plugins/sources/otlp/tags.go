package otlp

import (
	"bytes"
	"encoding/base64"
	"math"
	"slices"
	"strconv"

	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
)

// HostAttribute is the resource attribute that, when listed in
// include_resource_attributes, becomes the host tag (host:NAME), which
// Veneur's sinks take as a point's host, rather than a host.name tag.
const HostAttribute = "host.name"

// tagSet builds the comma-joined, sorted tags of one point in reused
// buffers: the resource's tags, set once per ResourceMetrics, and the
// point's attributes. A point attribute replaces a resource tag of the same
// key.
type tagSet struct {
	buf    []byte // the tags, one after the other
	spans  []span
	work   []span
	nres   int    // spans[:nres] are the resource's
	resEnd int    // buf[:resEnd] holds them
	joined []byte // the result
}

type span struct {
	start, end, keyEnd int32
	point              bool
}

func (t *tagSet) tag(s span) []byte      { return t.buf[s.start:s.end] }
func (t *tagSet) key(s span) []byte      { return t.buf[s.start:s.keyEnd] }
func (t *tagSet) cmp(a, b span) int      { return bytes.Compare(t.tag(a), t.tag(b)) }
func (t *tagSet) sameKey(a, b span) bool { return bytes.Equal(t.key(a), t.key(b)) }

// resetResource drops every tag.
func (t *tagSet) resetResource() {
	t.buf, t.spans, t.nres, t.resEnd = t.buf[:0], t.spans[:0], 0, 0
}

// addResource adds a resource tag; call before any point's.
func (t *tagSet) addResource(key string, v *commonpb.AnyValue) {
	t.add(key, v, false)
	t.nres, t.resEnd = len(t.spans), len(t.buf)
}

// sortResource sorts the resource's tags, keeping one of each key; call
// once they are all added.
func (t *tagSet) sortResource() {
	spans := t.spans[:t.nres]
	t.sortSpans(spans)
	out := spans[:0]
	for _, s := range spans {
		if n := len(out); n > 0 && t.sameKey(out[n-1], s) {
			continue
		}
		out = append(out, s)
	}
	t.nres = len(out)
	t.spans = t.spans[:t.nres]
}

// point returns the tags of a point of attributes attrs: sorted,
// comma-joined, valid until the next call.
func (t *tagSet) point(attrs []*commonpb.KeyValue) []byte {
	t.buf, t.spans = t.buf[:t.resEnd], t.spans[:t.nres]
	if len(attrs) == 0 {
		return t.join(t.spans)
	}
	for _, kv := range attrs {
		if kv.GetKey() == "" {
			continue
		}
		t.add(kv.Key, kv.Value, true)
	}
	// Sorted in a copy: t.spans[:t.nres] stay the resource's.
	spans := append(t.work[:0], t.spans...)
	t.work = spans
	t.sortSpans(spans)
	// Tags of one key sort next to each other ("k:a" < "k.x:b" < "k:b" is
	// impossible, as every tag between "k:a" and "k:b" starts with "k:"):
	// keep one of each key, a point's over the resource's.
	out := spans[:0]
	for _, s := range spans {
		if n := len(out); n > 0 && t.sameKey(out[n-1], s) {
			if s.point && !out[n-1].point {
				out[n-1] = s
			}
			continue
		}
		out = append(out, s)
	}
	return t.join(out)
}

func (t *tagSet) join(spans []span) []byte {
	j := t.joined[:0]
	for i, s := range spans {
		if i > 0 {
			j = append(j, ',')
		}
		j = append(j, t.tag(s)...)
	}
	t.joined = j
	return j
}

// sortSpans sorts by tag; points have few tags, so insertion sort first.
func (t *tagSet) sortSpans(s []span) {
	if len(s) <= 12 {
		for i := 1; i < len(s); i++ {
			for j := i; j > 0 && t.cmp(s[j-1], s[j]) > 0; j-- {
				s[j-1], s[j] = s[j], s[j-1]
			}
		}
		return
	}
	slices.SortStableFunc(s, t.cmp)
}

// add appends the tag key:value.
func (t *tagSet) add(key string, v *commonpb.AnyValue, point bool) {
	start := len(t.buf)
	t.buf = appendClean(t.buf, key, true)
	keyEnd := len(t.buf)
	t.buf = append(t.buf, ':')
	t.buf = appendValue(t.buf, v, 0)
	t.spans = append(t.spans, span{int32(start), int32(len(t.buf)), int32(keyEnd), point})
}

// appendClean appends s with each comma, which would split the tag, as an
// underscore; in a key, each colon too, which would end it early.
func appendClean[S string | []byte](b []byte, s S, key bool) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == ',' || (key && c == ':') {
			c = '_'
		}
		b = append(b, c)
	}
	return b
}

// appendValue appends an attribute value as a tag value: strings as they
// are, numbers and booleans in Go's shortest form, bytes in base64, the
// elements of an array joined with ";", a key-value list as k=v;k=v.
func appendValue(b []byte, v *commonpb.AnyValue, depth int) []byte {
	switch x := v.GetValue().(type) {
	case *commonpb.AnyValue_StringValue:
		return appendClean(b, x.StringValue, false)
	case *commonpb.AnyValue_BoolValue:
		return strconv.AppendBool(b, x.BoolValue)
	case *commonpb.AnyValue_IntValue:
		return strconv.AppendInt(b, x.IntValue, 10)
	case *commonpb.AnyValue_DoubleValue:
		return appendFloat(b, x.DoubleValue)
	case *commonpb.AnyValue_BytesValue:
		return base64.StdEncoding.AppendEncode(b, x.BytesValue)
	case *commonpb.AnyValue_ArrayValue:
		if depth >= maxDepth {
			return b
		}
		for i, e := range x.ArrayValue.GetValues() {
			if i > 0 {
				b = append(b, ';')
			}
			b = appendValue(b, e, depth+1)
		}
	case *commonpb.AnyValue_KvlistValue:
		if depth >= maxDepth {
			return b
		}
		for i, kv := range x.KvlistValue.GetValues() {
			if i > 0 {
				b = append(b, ';')
			}
			b = appendClean(b, kv.GetKey(), false)
			b = append(b, '=')
			b = appendValue(b, kv.GetValue(), depth+1)
		}
	}
	return b
}

func appendFloat(b []byte, f float64) []byte {
	if f == math.Trunc(f) && math.Abs(f) < 1e15 {
		return strconv.AppendInt(b, int64(f), 10)
	}
	return strconv.AppendFloat(b, f, 'g', -1, 64)
}
