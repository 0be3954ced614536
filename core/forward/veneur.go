package forward

// Veneur's forward protocol, both ways: a Receiver also serves Veneur's
// forwardrpc.Forward, so that Veneur locals forward to a veneurd global, and
// veneurSender sends a batch's records to a Veneur global. Each metric is
// converted between Veneur's metricpb.Metric and a state record (package
// state); docs/global-tier.md says what maps and what does not.

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"

	"github.com/axiomhq/hyperloglog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/veneurd/veneurd/core/forward/forwardpb"
	"github.com/veneurd/veneurd/core/forward/veneurpb/forwardrpc"
	"github.com/veneurd/veneurd/core/forward/veneurpb/metricpb"
	"github.com/veneurd/veneurd/core/forward/veneurpb/tdigestpb"
	"github.com/veneurd/veneurd/core/telemetry"
	"github.com/veneurd/veneurd/internal/state"
	"github.com/veneurd/veneurd/internal/tdigest"
)

// veneurFrameBytes is the size from which the records of the Veneur metrics
// received are merged, in the course of a call.
const veneurFrameBytes = 1 << 20

// errVeneurMetric is wrapped by the errors of metrics that do not convert.
var errVeneurMetric = errors.New("invalid Veneur metric")

func invalidVeneur(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{errVeneurMetric}, args...)...)
}

// The metric types and scopes of the two sides.
var (
	typeFromVeneur = map[metricpb.Type]uint8{
		metricpb.Type_Counter:   state.Counter,
		metricpb.Type_Gauge:     state.Gauge,
		metricpb.Type_Histogram: state.Histogram,
		metricpb.Type_Timer:     state.Timer,
		metricpb.Type_Set:       state.Set,
	}
	typeToVeneur = map[uint8]metricpb.Type{
		state.Counter:   metricpb.Type_Counter,
		state.Gauge:     metricpb.Type_Gauge,
		state.Histogram: metricpb.Type_Histogram,
		state.Timer:     metricpb.Type_Timer,
		state.Set:       metricpb.Type_Set,
	}
	scopeFromVeneur = map[metricpb.Scope]uint8{
		metricpb.Scope_Mixed:  state.ScopeDefault,
		metricpb.Scope_Local:  state.ScopeLocal,
		metricpb.Scope_Global: state.ScopeGlobal,
	}
	scopeToVeneur = map[uint8]metricpb.Scope{
		state.ScopeDefault: metricpb.Scope_Mixed,
		state.ScopeLocal:   metricpb.Scope_Local,
		state.ScopeGlobal:  metricpb.Scope_Global,
	}
)

// seriesFromVeneur converts a Veneur metric into a series: its tags sorted
// and comma-joined as a series key holds them (empty tags dropped), a
// counter's int64 as a float64, a histogram's or timer's digest rebuilt
// from its centroids (tdigest.FromCentroids), a set's HyperLogLog decoded
// (Veneur's axiomhq/hyperloglog writes the version 1 encoding, which ours
// reads). A metric that does not make a series a Table would merge is
// refused: an unknown type or scope, a value that is not the type's, an
// empty name, a tag holding a comma (the separator of a key's tags), a name
// or tags too long for a key, a gauge that is not finite, a digest of
// centroids that are not, a sketch that does not decode.
func seriesFromVeneur(m *metricpb.Metric) (state.Series, error) {
	typ, ok := typeFromVeneur[m.Type]
	if !ok {
		return state.Series{}, invalidVeneur("unknown type %d", m.Type)
	}
	scope, ok := scopeFromVeneur[m.Scope]
	if !ok {
		return state.Series{}, invalidVeneur("unknown scope %d", m.Scope)
	}
	if len(m.Name) == 0 {
		return state.Series{}, invalidVeneur("no name")
	}
	if len(m.Name) > state.MaxNameLen {
		return state.Series{}, invalidVeneur("a name of %d bytes", len(m.Name))
	}
	tags, err := joinVeneurTags(m.Tags)
	if err != nil {
		return state.Series{}, err
	}
	se := state.Series{Key: state.Key(scope, typ, string(m.Name), tags)}
	switch v := m.Value.(type) {
	case *metricpb.Metric_Counter:
		if typ != state.Counter {
			return state.Series{}, invalidVeneur("a counter's value for a %s", m.Type)
		}
		se.Value = float64(v.Counter.GetValue())
	case *metricpb.Metric_Gauge:
		if typ != state.Gauge {
			return state.Series{}, invalidVeneur("a gauge's value for a %s", m.Type)
		}
		g := v.Gauge.GetValue()
		if math.IsNaN(g) || math.IsInf(g, 0) {
			return state.Series{}, invalidVeneur("gauge value %v", g)
		}
		se.Value = g
	case *metricpb.Metric_Histogram:
		if typ != state.Histogram && typ != state.Timer {
			return state.Series{}, invalidVeneur("a histogram's value for a %s", m.Type)
		}
		td := v.Histogram.GetTDigest()
		if td == nil {
			return state.Series{}, invalidVeneur("a histogram without its digest")
		}
		d, err := digestFromVeneur(td)
		if err != nil {
			return state.Series{}, invalidVeneur("%v", err)
		}
		se.Digest = d
	case *metricpb.Metric_Set:
		if typ != state.Set {
			return state.Series{}, invalidVeneur("a set's value for a %s", m.Type)
		}
		sk := new(hyperloglog.Sketch)
		if err := sk.UnmarshalBinary(v.Set.GetHyperLogLog()); err != nil {
			return state.Series{}, invalidVeneur("set: %v", err)
		}
		se.Set = sk
	default:
		return state.Series{}, invalidVeneur("no value")
	}
	return se, nil
}

// joinVeneurTags makes a key's tags of Veneur's: sorted bytewise and
// comma-joined, empty ones dropped, duplicates kept, as the DogStatsD
// source makes them of a line's.
func joinVeneurTags(tags [][]byte) (string, error) {
	kept := make([]string, 0, len(tags))
	size := 0
	for _, t := range tags {
		if len(t) == 0 {
			continue
		}
		if slices.Contains(t, ',') {
			return "", invalidVeneur("tag %q holds a comma", t)
		}
		kept = append(kept, string(t))
		size += len(t) + 1
	}
	if size > state.MaxTagsLen+1 {
		return "", invalidVeneur("tags of %d bytes", size-1)
	}
	slices.Sort(kept)
	return strings.Join(kept, ","), nil
}

// digestFromVeneur rebuilds a Veneur digest as ours.
func digestFromVeneur(td *tdigestpb.MergingDigestData) (*tdigest.Merging, error) {
	cs := make([]tdigest.Centroid, len(td.MainCentroids))
	for i, c := range td.MainCentroids {
		if c == nil {
			return nil, fmt.Errorf("centroid %d is missing", i)
		}
		cs[i] = tdigest.Centroid{Mean: c.Mean, Weight: c.Weight}
	}
	return tdigest.FromCentroids(td.Compression, cs, td.Min, td.Max, td.ReciprocalSum)
}

// appendVeneur converts m and appends its record to frame (see
// seriesFromVeneur); frame is returned as it was when m does not convert.
func appendVeneur(frame []byte, m *metricpb.Metric) ([]byte, error) {
	se, err := seriesFromVeneur(m)
	if err != nil {
		return frame, err
	}
	return state.AppendRecord(frame, &se), nil
}

// veneurMetric converts a series into a Veneur metric: its tags split, a
// counter's sum rounded to an int64, a digest as its centroids, minimum,
// maximum and reciprocal sum, a set's sketch in the encoding Veneur's
// axiomhq/hyperloglog reads (veneurHLL). A counter outside int64's range, a
// gauge that is not finite and an empty digest are refused.
func veneurMetric(se *state.Series) (*metricpb.Metric, error) {
	typ, ok := typeToVeneur[se.Type()]
	if !ok {
		return nil, fmt.Errorf("unknown metric type %d", se.Type())
	}
	scope, ok := scopeToVeneur[se.Scope()]
	if !ok {
		return nil, fmt.Errorf("unknown scope %d", se.Scope())
	}
	m := &metricpb.Metric{Name: []byte(se.Name()), Type: typ, Scope: scope}
	if tags := se.Tags(); tags != "" {
		for t := range strings.SplitSeq(tags, ",") {
			m.Tags = append(m.Tags, []byte(t))
		}
	}
	switch se.Type() {
	case state.Counter:
		v := math.Round(se.Value)
		if !(v >= math.MinInt64 && v < math.MaxInt64) { // 2^63 rounds to MaxInt64's float64; NaN fails
			return nil, fmt.Errorf("counter %s: %v is outside int64's range", se.Name(), se.Value)
		}
		m.Value = &metricpb.Metric_Counter{Counter: &metricpb.CounterValue{Value: int64(v)}}
	case state.Gauge:
		if math.IsNaN(se.Value) || math.IsInf(se.Value, 0) {
			return nil, fmt.Errorf("gauge %s: %v", se.Name(), se.Value)
		}
		m.Value = &metricpb.Metric_Gauge{Gauge: &metricpb.GaugeValue{Value: se.Value}}
	case state.Histogram, state.Timer:
		d := se.Digest
		if d.Count() == 0 {
			return nil, fmt.Errorf("%s: an empty digest", se.Name()) // Veneur would emit NaN percentiles
		}
		cs := d.Centroids()
		td := &tdigestpb.MergingDigestData{
			MainCentroids: make([]*tdigestpb.Centroid, len(cs)),
			Compression:   d.Compression(), Min: d.Min(), Max: d.Max(), ReciprocalSum: d.ReciprocalSum(),
		}
		for i, c := range cs {
			td.MainCentroids[i] = &tdigestpb.Centroid{Mean: c.Mean, Weight: c.Weight}
		}
		m.Value = &metricpb.Metric_Histogram{Histogram: &metricpb.HistogramValue{TDigest: td}}
	case state.Set:
		b, err := veneurHLL(se.Set)
		if err != nil {
			return nil, fmt.Errorf("set %s: %w", se.Name(), err)
		}
		m.Value = &metricpb.Metric_Set{Set: &metricpb.SetValue{HyperLogLog: b}}
	}
	return m, nil
}

// veneurHLL encodes sk as Veneur v14's axiomhq/hyperloglog (of 2017) reads
// it. Ours writes version 2, which the old reader takes for version 1 as it
// ignores the version byte: the sparse form of the two versions is the same
// (same hash, same sparse precision), but version 2's dense form has a byte
// per register where version 1 packs two 4-bit registers in a byte, above
// a base (byte 2 of the header) and capped at 15 above it. A dense sketch is
// rewritten so, over the base of its smallest register: what the old
// library's own sketches hold, and what ours reads back.
func veneurHLL(sk *hyperloglog.Sketch) ([]byte, error) {
	b, err := sk.MarshalBinary()
	if err != nil {
		return nil, err
	}
	if len(b) < 8 || b[3] != 0 {
		return b, nil // sparse
	}
	regs := b[8:]
	if m := 1 << b[1]; len(regs) != m {
		return nil, fmt.Errorf("a dense sketch of %d registers, not %d", len(regs), m)
	}
	base := slices.Min(regs)
	out := make([]byte, 8, 8+len(regs)/2)
	out[0], out[1], out[2], out[3] = 1, b[1], base, 0
	binary.BigEndian.PutUint32(out[4:], uint32(len(regs)/2))
	for i := 0; i < len(regs); i += 2 {
		out = append(out, min(regs[i]-base, 15)<<4|min(regs[i+1]-base, 15))
	}
	return out, nil
}

// veneurMetrics converts a frame of records into Veneur metrics. Series
// that do not convert are left out; a frame that does not decode gives the
// metrics of the records before the fault, and the error.
func veneurMetrics(frame []byte) ([]*metricpb.Metric, error) {
	t := state.New(state.Params{}, 1)
	_, err := t.MergeRecords(frame)
	series := t.Take(0)
	ms := make([]*metricpb.Metric, 0, len(series))
	for i := range series {
		if m, cerr := veneurMetric(&series[i]); cerr == nil {
			ms = append(ms, m)
		}
	}
	return ms, err
}

// veneurStream describes SendMetricsV2 to the client as a stream both
// ways, so that the call succeeds when it ends with an OK status and no
// response: Veneur v14's global ends its SendMetricsV2 so, without the Empty
// its protocol promises, which a client stream's CloseAndRecv takes for an
// error (codes.Internal), after the global took the metrics. The wire is
// the same.
var veneurStream = grpc.StreamDesc{StreamName: "SendMetricsV2", ClientStreams: true, ServerStreams: true}

// veneurSender returns a function sending a batch's records to a Veneur
// global on conn, as Veneur's metrics in one SendMetricsV2 stream, and
// returning once the global answered. A send that fails returns the gRPC
// error unchanged. Veneur's protocol has no sender or sequence number: a
// batch sent again after a failure that happened once the global had
// merged it is merged twice. Records that do not decode are not sent: the
// error is then InvalidArgument, after the records before them were sent.
func veneurSender(conn grpc.ClientConnInterface) func(ctx context.Context, b *forwardpb.Batch) error {
	return func(ctx context.Context, b *forwardpb.Batch) error {
		ms, derr := veneurMetrics(b.Records)
		if derr != nil {
			derr = status.Errorf(codes.InvalidArgument, "batch %d of %s: %v", b.Seq, b.Sender, derr)
		}
		if len(ms) == 0 {
			return derr
		}
		if err := sendVeneur(ctx, conn, ms); err != nil {
			return err
		}
		return derr
	}
}

// sendVeneur sends ms in one SendMetricsV2 call.
func sendVeneur(ctx context.Context, conn grpc.ClientConnInterface, ms []*metricpb.Metric) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // ends the stream if it is left midway
	stream, err := conn.NewStream(ctx, &veneurStream, forwardrpc.Forward_SendMetricsV2_FullMethodName)
	if err != nil {
		return err
	}
	sent := 0
	for _, m := range ms {
		if err := stream.SendMsg(m); err != nil {
			if !errors.Is(err, io.EOF) {
				return err
			}
			break // the stream ended: its status says why
		}
		sent++
	}
	if err := stream.CloseSend(); err != nil {
		return err
	}
	for {
		err := stream.RecvMsg(new(emptypb.Empty))
		if errors.Is(err, io.EOF) {
			if sent < len(ms) {
				return status.Errorf(codes.Unknown, "the Veneur global ended the call after %d metrics of %d", sent, len(ms))
			}
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// veneurService serves Veneur's Forward on a Receiver: it converts the
// metrics each call brings into frames of records and merges them as
// Receiver.Send merges a batch's.
type veneurService struct {
	forwardrpc.UnimplementedForwardServer
	r       *Receiver
	invalid telemetry.Counter // metrics that did not convert or merge
}

// registerVeneur registers Veneur's Forward service, merging into r, on s.
func registerVeneur(s *grpc.Server, r *Receiver) {
	forwardrpc.RegisterForwardServer(s, newVeneurService(r, r.invalid))
}

func newVeneurService(r *Receiver, invalid telemetry.Counter) *veneurService {
	return &veneurService{r: r, invalid: invalid}
}

// SendMetrics merges a list of metrics.
func (v *veneurService) SendMetrics(_ context.Context, list *forwardrpc.MetricList) (*emptypb.Empty, error) {
	im := veneurImport{v: v}
	for _, m := range list.Metrics {
		im.add(m)
	}
	im.merge()
	return &emptypb.Empty{}, nil
}

// SendMetricsV2 merges a stream of metrics, a frame at a time. A stream
// that breaks keeps what it brought: Veneur does not send it again.
func (v *veneurService) SendMetricsV2(stream forwardrpc.Forward_SendMetricsV2Server) error {
	im := veneurImport{v: v}
	for {
		m, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			im.merge()
			return err
		}
		im.add(m)
	}
	im.merge()
	return stream.SendAndClose(&emptypb.Empty{})
}

// veneurImport gathers the records of a call's metrics into frames.
type veneurImport struct {
	v     *veneurService
	frame []byte
	ends  []int // where each record of frame ends
}

// add converts m and adds its record, merging the frame once it is full. A
// metric that does not convert is counted and left out.
func (im *veneurImport) add(m *metricpb.Metric) {
	b, err := appendVeneur(im.frame, m)
	if err != nil {
		im.v.invalid.Inc()
		return
	}
	im.frame = b
	im.ends = append(im.ends, len(b))
	if len(b) >= veneurFrameBytes {
		im.merge()
	}
}

// merge merges the frame. A record that does not merge (a set whose
// precision is not that of the same series held) is counted and skipped,
// and those after it merged still.
func (im *veneurImport) merge() {
	if len(im.ends) == 0 {
		return
	}
	r := im.v.r
	r.mu.Lock()
	frame, first := im.frame, 0 // the records of frame are im.ends[first:]
	for {
		n, err := r.merge(frame)
		r.imported.Add(uint64(max(n, 0)))
		if err == nil {
			break
		}
		im.v.invalid.Inc()
		failed := first + n
		if n < 0 || failed >= len(im.ends)-1 {
			break
		}
		// The rest, framed where the failed record's last byte was.
		start := im.ends[failed] - 1
		im.frame[start] = state.RecordsVersion
		frame, first = im.frame[start:], failed+1
	}
	r.mu.Unlock()
	im.frame, im.ends = nil, im.ends[:0] // the merge may keep the frame
}
