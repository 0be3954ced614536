package otlp

import (
	"errors"
	"fmt"
	"math"
	"unicode/utf8"
	"unsafe"

	colmetricspb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	metricspb "go.opentelemetry.io/proto/otlp/metrics/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	"google.golang.org/protobuf/encoding/protowire"
)

// decoder decodes protobuf requests into the generated types of
// go.opentelemetry.io/proto/otlp, as proto.Unmarshal does (the fuzz test
// checks that the two agree, message for message), but into messages it
// keeps from request to request, with strings that point into the body:
// proto.Unmarshal allocates about twenty objects per data point (the point,
// each attribute, its value, the value's wrapper, each string), which cost
// more than everything else the source does with the point. So a decoded
// request lives until the next one: its body must not change meanwhile.
//
// It decodes the whole request before any of it is used, counting data
// points and messages as it goes, and stops at the first limit passed:
// a request refused costs no more than its limits.
type decoder struct {
	lim       limits
	points    int
	messages  int
	req       colmetricspb.ExportMetricsServiceRequest
	rms       reuse[metricspb.ResourceMetrics]
	resources reuse[resourcepb.Resource]
	entities  reuse[commonpb.EntityRef]
	sms       reuse[metricspb.ScopeMetrics]
	scopes    reuse[commonpb.InstrumentationScope]
	metrics   reuse[metricspb.Metric]
	gauges    reuse[metricspb.Metric_Gauge]
	sums      reuse[metricspb.Metric_Sum]
	hists     reuse[metricspb.Metric_Histogram]
	exps      reuse[metricspb.Metric_ExponentialHistogram]
	summaries reuse[metricspb.Metric_Summary]
	gaugeData reuse[metricspb.Gauge]
	sumData   reuse[metricspb.Sum]
	histData  reuse[metricspb.Histogram]
	expData   reuse[metricspb.ExponentialHistogram]
	summData  reuse[metricspb.Summary]
	nps       reuse[metricspb.NumberDataPoint]
	hps       reuse[metricspb.HistogramDataPoint]
	eps       reuse[metricspb.ExponentialHistogramDataPoint]
	sps       reuse[metricspb.SummaryDataPoint]
	asInts    reuse[metricspb.NumberDataPoint_AsInt]
	asDoubles reuse[metricspb.NumberDataPoint_AsDouble]
	buckets   reuse[metricspb.ExponentialHistogramDataPoint_Buckets]
	quantiles reuse[metricspb.SummaryDataPoint_ValueAtQuantile]
	exemplars reuse[metricspb.Exemplar]
	exInts    reuse[metricspb.Exemplar_AsInt]
	exDoubles reuse[metricspb.Exemplar_AsDouble]
	kvs       reuse[commonpb.KeyValue]
	values    reuse[commonpb.AnyValue]
	strs      reuse[commonpb.AnyValue_StringValue]
	bools     reuse[commonpb.AnyValue_BoolValue]
	ints      reuse[commonpb.AnyValue_IntValue]
	doubles   reuse[commonpb.AnyValue_DoubleValue]
	bytesVals reuse[commonpb.AnyValue_BytesValue]
	strIdx    reuse[commonpb.AnyValue_StringValueStrindex]
	arrays    reuse[commonpb.AnyValue_ArrayValue]
	kvlists   reuse[commonpb.AnyValue_KvlistValue]
	arrData   reuse[commonpb.ArrayValue]
	kvlData   reuse[commonpb.KeyValueList]
	floats    reuse[float64] // the optional sum, min and max of histogram points
}

// reuse hands out objects of one type, reused from request to request.
type reuse[T any] struct {
	items []*T
	n     int
}

// get returns an object as it was left by the last request that used it:
// the caller resets it.
func (p *reuse[T]) get() *T {
	if p.n == len(p.items) {
		p.items = append(p.items, new(T))
	}
	x := p.items[p.n]
	p.n++
	return x
}

func (p *reuse[T]) reset() { p.n = 0 }

// keepObjects bounds what a decoder keeps between requests: past it, the
// worker drops the decoder after the request, and a new one starts small.
const keepObjects = 1 << 18

func (d *decoder) size() int { return d.messages }

func (d *decoder) reset() {
	d.points, d.messages = 0, 0
	for _, p := range []interface{ reset() }{&d.rms, &d.resources, &d.entities, &d.sms, &d.scopes, &d.metrics,
		&d.gauges, &d.sums, &d.hists, &d.exps, &d.summaries, &d.gaugeData, &d.sumData, &d.histData, &d.expData,
		&d.summData, &d.nps, &d.hps, &d.eps, &d.sps, &d.asInts, &d.asDoubles, &d.buckets, &d.quantiles,
		&d.exemplars, &d.exInts, &d.exDoubles, &d.kvs, &d.values, &d.strs, &d.bools, &d.ints, &d.doubles,
		&d.bytesVals, &d.strIdx, &d.arrays, &d.kvlists, &d.arrData, &d.kvlData, &d.floats} {
		p.reset()
	}
}

// decode decodes body. The request returned is the decoder's, valid until
// the next call, and points into body.
func (d *decoder) decode(body []byte, l limits) (*colmetricspb.ExportMetricsServiceRequest, error) {
	d.reset()
	d.lim = l
	rms := d.req.ResourceMetrics[:0]
	d.req = colmetricspb.ExportMetricsServiceRequest{}
	err := d.fields(body, func(f field) error {
		if f.num == 1 && f.typ == protowire.BytesType {
			rm := d.resourceMetrics()
			rms = append(rms, rm)
			return d.decodeResourceMetrics(f.b, rm)
		}
		return nil
	})
	d.req.ResourceMetrics = rms
	if err != nil {
		var le *limitError
		if errors.As(err, &le) {
			return nil, err
		}
		return nil, &decodeError{ReasonBadProtobuf, fmt.Errorf("not an OTLP ExportMetricsServiceRequest: %w", err)}
	}
	return &d.req, nil
}

// count counts a message decoded, and a data point if point.
func (d *decoder) count(point bool) error {
	d.messages++
	if point {
		d.points++
	}
	if d.points > d.lim.maxPoints || d.messages > d.lim.maxMessages() {
		return d.lim.check(counts{points: d.points, messages: d.messages})
	}
	return nil
}

// field is one field of a message: its number, wire type and value.
type field struct {
	num protowire.Number
	typ protowire.Type
	b   []byte // BytesType
	u   uint64 // VarintType, Fixed32Type, Fixed64Type
}

var (
	errUTF8        = errors.New("invalid UTF-8 in a string field")
	errFieldNumber = errors.New("invalid field number")
)

// fields calls fn with each field of the message b. Groups, which OTLP
// does not use, are checked and skipped.
func (d *decoder) fields(b []byte, fn func(field) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		if !num.IsValid() {
			return errFieldNumber
		}
		b = b[n:]
		f := field{num: num, typ: typ}
		switch typ {
		case protowire.BytesType:
			f.b, n = protowire.ConsumeBytes(b)
		case protowire.VarintType:
			f.u, n = protowire.ConsumeVarint(b)
		case protowire.Fixed64Type:
			f.u, n = protowire.ConsumeFixed64(b)
		case protowire.Fixed32Type:
			var v uint32
			v, n = protowire.ConsumeFixed32(b)
			f.u = uint64(v)
		default:
			n = protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return protowire.ParseError(n)
			}
			b = b[n:]
			continue
		}
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		if err := fn(f); err != nil {
			return err
		}
	}
	return nil
}

// wireString returns the bytes of a string field as a string sharing their
// memory, checked for UTF-8 as proto3 strings are.
func wireString(b []byte) (string, error) {
	if len(b) == 0 {
		return "", nil
	}
	if !utf8.Valid(b) {
		return "", errUTF8
	}
	return unsafe.String(unsafe.SliceData(b), len(b)), nil
}

// sint32 decodes a zigzag-encoded sint32 varint as proto does.
func sint32(v uint64) int32 { return int32(protowire.DecodeZigZag(v & math.MaxUint32)) }

// packedFixed64, packedDouble and packedVarint decode a repeated scalar
// field, packed (one length-delimited field) or not (one field per
// element), appending to out.
func packedFixed64(f field, out []uint64) ([]uint64, error) {
	switch f.typ {
	case protowire.Fixed64Type:
		return append(out, f.u), nil
	case protowire.BytesType:
		if len(f.b)%8 != 0 {
			return out, protowire.ParseError(-1)
		}
		for b := f.b; len(b) > 0; b = b[8:] {
			v, _ := protowire.ConsumeFixed64(b)
			out = append(out, v)
		}
	}
	return out, nil
}

func packedDouble(f field, out []float64) ([]float64, error) {
	switch f.typ {
	case protowire.Fixed64Type:
		return append(out, math.Float64frombits(f.u)), nil
	case protowire.BytesType:
		if len(f.b)%8 != 0 {
			return out, protowire.ParseError(-1)
		}
		for b := f.b; len(b) > 0; b = b[8:] {
			v, _ := protowire.ConsumeFixed64(b)
			out = append(out, math.Float64frombits(v))
		}
	}
	return out, nil
}

func packedVarint(f field, out []uint64) ([]uint64, error) {
	switch f.typ {
	case protowire.VarintType:
		return append(out, f.u), nil
	case protowire.BytesType:
		for b := f.b; len(b) > 0; {
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return out, protowire.ParseError(n)
			}
			out = append(out, v)
			b = b[n:]
		}
	}
	return out, nil
}

func (d *decoder) float(v uint64) *float64 {
	p := d.floats.get()
	*p = math.Float64frombits(v)
	return p
}

// The constructors return a pooled message reset to its zero value, but
// for the capacity of its slices.

func (d *decoder) resourceMetrics() *metricspb.ResourceMetrics {
	x := d.rms.get()
	s := x.ScopeMetrics[:0]
	*x = metricspb.ResourceMetrics{ScopeMetrics: s}
	return x
}

func (d *decoder) decodeResourceMetrics(b []byte, rm *metricspb.ResourceMetrics) error {
	if err := d.count(false); err != nil {
		return err
	}
	return d.fields(b, func(f field) (err error) {
		switch {
		case f.num == 1 && f.typ == protowire.BytesType:
			if rm.Resource == nil { // a message field seen twice is merged, as proto does
				r := d.resources.get()
				a, e := r.Attributes[:0], r.EntityRefs[:0]
				*r = resourcepb.Resource{Attributes: a, EntityRefs: e}
				rm.Resource = r
			}
			return d.decodeResource(f.b, rm.Resource)
		case f.num == 2 && f.typ == protowire.BytesType:
			sm := d.sms.get()
			ms := sm.Metrics[:0]
			*sm = metricspb.ScopeMetrics{Metrics: ms}
			rm.ScopeMetrics = append(rm.ScopeMetrics, sm)
			return d.decodeScopeMetrics(f.b, sm)
		case f.num == 3 && f.typ == protowire.BytesType:
			rm.SchemaUrl, err = wireString(f.b)
		}
		return err
	})
}

func (d *decoder) decodeResource(b []byte, r *resourcepb.Resource) error {
	if err := d.count(false); err != nil {
		return err
	}
	return d.fields(b, func(f field) (err error) {
		switch {
		case f.num == 1 && f.typ == protowire.BytesType:
			r.Attributes, err = d.appendKeyValue(r.Attributes, f.b, 0)
		case f.num == 2 && f.typ == protowire.VarintType:
			r.DroppedAttributesCount = uint32(f.u)
		case f.num == 3 && f.typ == protowire.BytesType:
			e := d.entities.get()
			ids, descs := e.IdKeys[:0], e.DescriptionKeys[:0]
			*e = commonpb.EntityRef{IdKeys: ids, DescriptionKeys: descs}
			r.EntityRefs = append(r.EntityRefs, e)
			err = d.decodeEntityRef(f.b, e)
		}
		return err
	})
}

func (d *decoder) decodeEntityRef(b []byte, e *commonpb.EntityRef) error {
	if err := d.count(false); err != nil {
		return err
	}
	return d.fields(b, func(f field) error {
		if f.typ != protowire.BytesType {
			return nil
		}
		s, err := wireString(f.b)
		switch f.num {
		case 1:
			e.SchemaUrl = s
		case 2:
			e.Type = s
		case 3:
			e.IdKeys = append(e.IdKeys, s)
		case 4:
			e.DescriptionKeys = append(e.DescriptionKeys, s)
		default:
			return nil
		}
		return err
	})
}

func (d *decoder) decodeScopeMetrics(b []byte, sm *metricspb.ScopeMetrics) error {
	if err := d.count(false); err != nil {
		return err
	}
	return d.fields(b, func(f field) (err error) {
		switch {
		case f.num == 1 && f.typ == protowire.BytesType:
			if sm.Scope == nil {
				s := d.scopes.get()
				a := s.Attributes[:0]
				*s = commonpb.InstrumentationScope{Attributes: a}
				sm.Scope = s
			}
			return d.decodeScope(f.b, sm.Scope)
		case f.num == 2 && f.typ == protowire.BytesType:
			m := d.metrics.get()
			md := m.Metadata[:0]
			*m = metricspb.Metric{Metadata: md}
			sm.Metrics = append(sm.Metrics, m)
			return d.decodeMetric(f.b, m)
		case f.num == 3 && f.typ == protowire.BytesType:
			sm.SchemaUrl, err = wireString(f.b)
		}
		return err
	})
}

func (d *decoder) decodeScope(b []byte, s *commonpb.InstrumentationScope) error {
	if err := d.count(false); err != nil {
		return err
	}
	return d.fields(b, func(f field) (err error) {
		switch {
		case f.num == 1 && f.typ == protowire.BytesType:
			s.Name, err = wireString(f.b)
		case f.num == 2 && f.typ == protowire.BytesType:
			s.Version, err = wireString(f.b)
		case f.num == 3 && f.typ == protowire.BytesType:
			s.Attributes, err = d.appendKeyValue(s.Attributes, f.b, 0)
		case f.num == 4 && f.typ == protowire.VarintType:
			s.DroppedAttributesCount = uint32(f.u)
		}
		return err
	})
}

func (d *decoder) decodeMetric(b []byte, m *metricspb.Metric) error {
	if err := d.count(false); err != nil {
		return err
	}
	return d.fields(b, func(f field) (err error) {
		if f.typ != protowire.BytesType {
			return nil
		}
		switch f.num {
		case 1:
			m.Name, err = wireString(f.b)
		case 2:
			m.Description, err = wireString(f.b)
		case 3:
			m.Unit, err = wireString(f.b)
		case 12:
			m.Metadata, err = d.appendKeyValue(m.Metadata, f.b, 0)
		case 5:
			g, ok := m.Data.(*metricspb.Metric_Gauge)
			if !ok { // a new oneof member replaces the last; the same one is merged
				g = d.gauges.get()
				x := d.gaugeData.get()
				pts := x.DataPoints[:0]
				*x = metricspb.Gauge{DataPoints: pts}
				g.Gauge = x
				m.Data = g
			}
			err = d.fields(f.b, func(f field) (err error) {
				if f.num == 1 && f.typ == protowire.BytesType {
					g.Gauge.DataPoints, err = d.appendNumberPoint(g.Gauge.DataPoints, f.b)
				}
				return err
			})
		case 7:
			s, ok := m.Data.(*metricspb.Metric_Sum)
			if !ok {
				s = d.sums.get()
				x := d.sumData.get()
				pts := x.DataPoints[:0]
				*x = metricspb.Sum{DataPoints: pts}
				s.Sum = x
				m.Data = s
			}
			err = d.fields(f.b, func(f field) (err error) {
				switch {
				case f.num == 1 && f.typ == protowire.BytesType:
					s.Sum.DataPoints, err = d.appendNumberPoint(s.Sum.DataPoints, f.b)
				case f.num == 2 && f.typ == protowire.VarintType:
					s.Sum.AggregationTemporality = metricspb.AggregationTemporality(int32(f.u))
				case f.num == 3 && f.typ == protowire.VarintType:
					s.Sum.IsMonotonic = f.u != 0
				}
				return err
			})
		case 9:
			h, ok := m.Data.(*metricspb.Metric_Histogram)
			if !ok {
				h = d.hists.get()
				x := d.histData.get()
				pts := x.DataPoints[:0]
				*x = metricspb.Histogram{DataPoints: pts}
				h.Histogram = x
				m.Data = h
			}
			err = d.fields(f.b, func(f field) (err error) {
				switch {
				case f.num == 1 && f.typ == protowire.BytesType:
					p := d.hps.get()
					a, e, bc, eb := p.Attributes[:0], p.Exemplars[:0], p.BucketCounts[:0], p.ExplicitBounds[:0]
					*p = metricspb.HistogramDataPoint{Attributes: a, Exemplars: e, BucketCounts: bc, ExplicitBounds: eb}
					h.Histogram.DataPoints = append(h.Histogram.DataPoints, p)
					err = d.decodeHistPoint(f.b, p)
				case f.num == 2 && f.typ == protowire.VarintType:
					h.Histogram.AggregationTemporality = metricspb.AggregationTemporality(int32(f.u))
				}
				return err
			})
		case 10:
			h, ok := m.Data.(*metricspb.Metric_ExponentialHistogram)
			if !ok {
				h = d.exps.get()
				x := d.expData.get()
				pts := x.DataPoints[:0]
				*x = metricspb.ExponentialHistogram{DataPoints: pts}
				h.ExponentialHistogram = x
				m.Data = h
			}
			err = d.fields(f.b, func(f field) (err error) {
				switch {
				case f.num == 1 && f.typ == protowire.BytesType:
					p := d.eps.get()
					a, e := p.Attributes[:0], p.Exemplars[:0]
					*p = metricspb.ExponentialHistogramDataPoint{Attributes: a, Exemplars: e}
					h.ExponentialHistogram.DataPoints = append(h.ExponentialHistogram.DataPoints, p)
					err = d.decodeExpPoint(f.b, p)
				case f.num == 2 && f.typ == protowire.VarintType:
					h.ExponentialHistogram.AggregationTemporality = metricspb.AggregationTemporality(int32(f.u))
				}
				return err
			})
		case 11:
			s, ok := m.Data.(*metricspb.Metric_Summary)
			if !ok {
				s = d.summaries.get()
				x := d.summData.get()
				pts := x.DataPoints[:0]
				*x = metricspb.Summary{DataPoints: pts}
				s.Summary = x
				m.Data = s
			}
			err = d.fields(f.b, func(f field) (err error) {
				if f.num == 1 && f.typ == protowire.BytesType {
					p := d.sps.get()
					a, q := p.Attributes[:0], p.QuantileValues[:0]
					*p = metricspb.SummaryDataPoint{Attributes: a, QuantileValues: q}
					s.Summary.DataPoints = append(s.Summary.DataPoints, p)
					err = d.decodeSummaryPoint(f.b, p)
				}
				return err
			})
		}
		return err
	})
}

func (d *decoder) appendNumberPoint(out []*metricspb.NumberDataPoint, b []byte) ([]*metricspb.NumberDataPoint, error) {
	if err := d.count(true); err != nil {
		return out, err
	}
	p := d.nps.get()
	a, e := p.Attributes[:0], p.Exemplars[:0]
	*p = metricspb.NumberDataPoint{Attributes: a, Exemplars: e}
	out = append(out, p)
	return out, d.fields(b, func(f field) (err error) {
		switch {
		case f.num == 7 && f.typ == protowire.BytesType:
			p.Attributes, err = d.appendKeyValue(p.Attributes, f.b, 0)
		case f.num == 2 && f.typ == protowire.Fixed64Type:
			p.StartTimeUnixNano = f.u
		case f.num == 3 && f.typ == protowire.Fixed64Type:
			p.TimeUnixNano = f.u
		case f.num == 4 && f.typ == protowire.Fixed64Type:
			v := d.asDoubles.get()
			v.AsDouble = math.Float64frombits(f.u)
			p.Value = v
		case f.num == 6 && f.typ == protowire.Fixed64Type:
			v := d.asInts.get()
			v.AsInt = int64(f.u)
			p.Value = v
		case f.num == 5 && f.typ == protowire.BytesType:
			p.Exemplars, err = d.appendExemplar(p.Exemplars, f.b)
		case f.num == 8 && f.typ == protowire.VarintType:
			p.Flags = uint32(f.u)
		}
		return err
	})
}

func (d *decoder) decodeHistPoint(b []byte, p *metricspb.HistogramDataPoint) error {
	if err := d.count(true); err != nil {
		return err
	}
	return d.fields(b, func(f field) (err error) {
		switch {
		case f.num == 9 && f.typ == protowire.BytesType:
			p.Attributes, err = d.appendKeyValue(p.Attributes, f.b, 0)
		case f.num == 2 && f.typ == protowire.Fixed64Type:
			p.StartTimeUnixNano = f.u
		case f.num == 3 && f.typ == protowire.Fixed64Type:
			p.TimeUnixNano = f.u
		case f.num == 4 && f.typ == protowire.Fixed64Type:
			p.Count = f.u
		case f.num == 5 && f.typ == protowire.Fixed64Type:
			p.Sum = d.float(f.u)
		case f.num == 6:
			p.BucketCounts, err = packedFixed64(f, p.BucketCounts)
		case f.num == 7:
			p.ExplicitBounds, err = packedDouble(f, p.ExplicitBounds)
		case f.num == 8 && f.typ == protowire.BytesType:
			p.Exemplars, err = d.appendExemplar(p.Exemplars, f.b)
		case f.num == 10 && f.typ == protowire.VarintType:
			p.Flags = uint32(f.u)
		case f.num == 11 && f.typ == protowire.Fixed64Type:
			p.Min = d.float(f.u)
		case f.num == 12 && f.typ == protowire.Fixed64Type:
			p.Max = d.float(f.u)
		}
		return err
	})
}

func (d *decoder) decodeExpPoint(b []byte, p *metricspb.ExponentialHistogramDataPoint) error {
	if err := d.count(true); err != nil {
		return err
	}
	buckets := func(f field, to **metricspb.ExponentialHistogramDataPoint_Buckets) error {
		if err := d.count(false); err != nil {
			return err
		}
		if *to == nil {
			x := d.buckets.get()
			c := x.BucketCounts[:0]
			*x = metricspb.ExponentialHistogramDataPoint_Buckets{BucketCounts: c}
			*to = x
		}
		x := *to
		return d.fields(f.b, func(f field) (err error) {
			switch {
			case f.num == 1 && f.typ == protowire.VarintType:
				x.Offset = sint32(f.u)
			case f.num == 2:
				x.BucketCounts, err = packedVarint(f, x.BucketCounts)
			}
			return err
		})
	}
	return d.fields(b, func(f field) (err error) {
		switch {
		case f.num == 1 && f.typ == protowire.BytesType:
			p.Attributes, err = d.appendKeyValue(p.Attributes, f.b, 0)
		case f.num == 2 && f.typ == protowire.Fixed64Type:
			p.StartTimeUnixNano = f.u
		case f.num == 3 && f.typ == protowire.Fixed64Type:
			p.TimeUnixNano = f.u
		case f.num == 4 && f.typ == protowire.Fixed64Type:
			p.Count = f.u
		case f.num == 5 && f.typ == protowire.Fixed64Type:
			p.Sum = d.float(f.u)
		case f.num == 6 && f.typ == protowire.VarintType:
			p.Scale = sint32(f.u)
		case f.num == 7 && f.typ == protowire.Fixed64Type:
			p.ZeroCount = f.u
		case f.num == 8 && f.typ == protowire.BytesType:
			err = buckets(f, &p.Positive)
		case f.num == 9 && f.typ == protowire.BytesType:
			err = buckets(f, &p.Negative)
		case f.num == 10 && f.typ == protowire.VarintType:
			p.Flags = uint32(f.u)
		case f.num == 11 && f.typ == protowire.BytesType:
			p.Exemplars, err = d.appendExemplar(p.Exemplars, f.b)
		case f.num == 12 && f.typ == protowire.Fixed64Type:
			p.Min = d.float(f.u)
		case f.num == 13 && f.typ == protowire.Fixed64Type:
			p.Max = d.float(f.u)
		case f.num == 14 && f.typ == protowire.Fixed64Type:
			p.ZeroThreshold = math.Float64frombits(f.u)
		}
		return err
	})
}

func (d *decoder) decodeSummaryPoint(b []byte, p *metricspb.SummaryDataPoint) error {
	if err := d.count(true); err != nil {
		return err
	}
	return d.fields(b, func(f field) (err error) {
		switch {
		case f.num == 7 && f.typ == protowire.BytesType:
			p.Attributes, err = d.appendKeyValue(p.Attributes, f.b, 0)
		case f.num == 2 && f.typ == protowire.Fixed64Type:
			p.StartTimeUnixNano = f.u
		case f.num == 3 && f.typ == protowire.Fixed64Type:
			p.TimeUnixNano = f.u
		case f.num == 4 && f.typ == protowire.Fixed64Type:
			p.Count = f.u
		case f.num == 5 && f.typ == protowire.Fixed64Type:
			p.Sum = math.Float64frombits(f.u)
		case f.num == 6 && f.typ == protowire.BytesType:
			if err := d.count(false); err != nil {
				return err
			}
			q := d.quantiles.get()
			*q = metricspb.SummaryDataPoint_ValueAtQuantile{}
			p.QuantileValues = append(p.QuantileValues, q)
			err = d.fields(f.b, func(f field) error {
				switch {
				case f.num == 1 && f.typ == protowire.Fixed64Type:
					q.Quantile = math.Float64frombits(f.u)
				case f.num == 2 && f.typ == protowire.Fixed64Type:
					q.Value = math.Float64frombits(f.u)
				}
				return nil
			})
		case f.num == 8 && f.typ == protowire.VarintType:
			p.Flags = uint32(f.u)
		}
		return err
	})
}

func (d *decoder) appendExemplar(out []*metricspb.Exemplar, b []byte) ([]*metricspb.Exemplar, error) {
	if err := d.count(false); err != nil {
		return out, err
	}
	e := d.exemplars.get()
	a := e.FilteredAttributes[:0]
	*e = metricspb.Exemplar{FilteredAttributes: a}
	out = append(out, e)
	return out, d.fields(b, func(f field) (err error) {
		switch {
		case f.num == 7 && f.typ == protowire.BytesType:
			e.FilteredAttributes, err = d.appendKeyValue(e.FilteredAttributes, f.b, 0)
		case f.num == 2 && f.typ == protowire.Fixed64Type:
			e.TimeUnixNano = f.u
		case f.num == 3 && f.typ == protowire.Fixed64Type:
			v := d.exDoubles.get()
			v.AsDouble = math.Float64frombits(f.u)
			e.Value = v
		case f.num == 6 && f.typ == protowire.Fixed64Type:
			v := d.exInts.get()
			v.AsInt = int64(f.u)
			e.Value = v
		case f.num == 4 && f.typ == protowire.BytesType:
			e.SpanId = f.b
		case f.num == 5 && f.typ == protowire.BytesType:
			e.TraceId = f.b
		}
		return err
	})
}

func (d *decoder) appendKeyValue(out []*commonpb.KeyValue, b []byte, depth int) ([]*commonpb.KeyValue, error) {
	if err := d.count(false); err != nil {
		return out, err
	}
	kv := d.kvs.get()
	*kv = commonpb.KeyValue{}
	out = append(out, kv)
	return out, d.fields(b, func(f field) (err error) {
		switch {
		case f.num == 1 && f.typ == protowire.BytesType:
			kv.Key, err = wireString(f.b)
		case f.num == 2 && f.typ == protowire.BytesType:
			if kv.Value == nil {
				kv.Value = d.anyValue()
			}
			err = d.decodeAnyValue(f.b, kv.Value, depth)
		case f.num == 3 && f.typ == protowire.VarintType:
			kv.KeyStrindex = int32(f.u)
		}
		return err
	})
}

func (d *decoder) anyValue() *commonpb.AnyValue {
	v := d.values.get()
	*v = commonpb.AnyValue{}
	return v
}

func (d *decoder) decodeAnyValue(b []byte, v *commonpb.AnyValue, depth int) error {
	if depth >= maxDepth {
		return errDepth
	}
	if err := d.count(false); err != nil {
		return err
	}
	return d.fields(b, func(f field) (err error) {
		switch {
		case f.num == 1 && f.typ == protowire.BytesType:
			x := d.strs.get()
			x.StringValue, err = wireString(f.b)
			v.Value = x
		case f.num == 2 && f.typ == protowire.VarintType:
			x := d.bools.get()
			x.BoolValue = f.u != 0
			v.Value = x
		case f.num == 3 && f.typ == protowire.VarintType:
			x := d.ints.get()
			x.IntValue = int64(f.u)
			v.Value = x
		case f.num == 4 && f.typ == protowire.Fixed64Type:
			x := d.doubles.get()
			x.DoubleValue = math.Float64frombits(f.u)
			v.Value = x
		case f.num == 7 && f.typ == protowire.BytesType:
			x := d.bytesVals.get()
			x.BytesValue = f.b
			v.Value = x
		case f.num == 8 && f.typ == protowire.VarintType:
			x := d.strIdx.get()
			x.StringValueStrindex = int32(f.u)
			v.Value = x
		case f.num == 5 && f.typ == protowire.BytesType:
			x, ok := v.Value.(*commonpb.AnyValue_ArrayValue)
			if !ok {
				x = d.arrays.get()
				a := d.arrData.get()
				vals := a.Values[:0]
				*a = commonpb.ArrayValue{Values: vals}
				x.ArrayValue = a
				v.Value = x
			}
			if err := d.count(false); err != nil {
				return err
			}
			err = d.fields(f.b, func(f field) error {
				if f.num == 1 && f.typ == protowire.BytesType {
					e := d.anyValue()
					x.ArrayValue.Values = append(x.ArrayValue.Values, e)
					return d.decodeAnyValue(f.b, e, depth+1)
				}
				return nil
			})
		case f.num == 6 && f.typ == protowire.BytesType:
			x, ok := v.Value.(*commonpb.AnyValue_KvlistValue)
			if !ok {
				x = d.kvlists.get()
				l := d.kvlData.get()
				vals := l.Values[:0]
				*l = commonpb.KeyValueList{Values: vals}
				x.KvlistValue = l
				v.Value = x
			}
			if err := d.count(false); err != nil {
				return err
			}
			err = d.fields(f.b, func(f field) (err error) {
				if f.num == 1 && f.typ == protowire.BytesType {
					x.KvlistValue.Values, err = d.appendKeyValue(x.KvlistValue.Values, f.b, depth+1)
				}
				return err
			})
		}
		return err
	})
}
