// Package forward moves state between tiers: a Forwarder on a local sends
// each interval's state records that only the fleet's merged state can
// emit (aggregate.Aggregator.SetForward hands them over), and a Receiver on
// a global merges them (aggregate.Aggregator.Import) and acknowledges.
//
// Nothing is lost and nothing is counted twice: every batch carries its
// sender's identity and a sequence number. The Forwarder sends batches one
// at a time, in order, and sends a batch again until it is acknowledged; it
// holds the batches of up to a number of intervals while the receiver is
// down, and counts what it has to drop past that. The Receiver merges a
// batch, then acknowledges it, and acknowledges without merging a batch it
// has merged before (one whose acknowledgement was lost).
package forward

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/veneurd/veneurd/core/forward/forwardpb"
	"github.com/veneurd/veneurd/core/telemetry"
	"github.com/veneurd/veneurd/sdk"
)

// Self-metrics, as Veneur names them.
const (
	ForwardErrors     = "veneur.forward.error_total"           // cause
	ForwardDuration   = "veneur.forward.duration_ns"           // the last batch's round trip
	BufferedIntervals = "veneur.forward.buffered_intervals"    //
	ImportErrors      = "veneur.import.request_error_total"    // cause
	MetricsImported   = "veneur.worker.metrics_imported_total" //
)

// Receiver is the Forward service: it merges the batches it receives with
// merge, which returns how many series it merged.
type Receiver struct {
	forwardpb.UnimplementedForwardServer
	merge    func(records []byte) (int, error)
	imported telemetry.Counter
	corrupt  telemetry.Counter
	invalid  telemetry.Counter // Veneur metrics that did not convert or merge

	mu   sync.Mutex
	last map[string]uint64 // by sender: the sequence number of its last batch merged
}

// NewReceiver returns a Receiver merging with merge and counting in tel.
func NewReceiver(merge func(records []byte) (int, error), tel *telemetry.Registry) *Receiver {
	return &Receiver{merge: merge, last: map[string]uint64{},
		imported: tel.Counter(MetricsImported), corrupt: tel.Counter(ImportErrors, "cause:corrupt"),
		invalid: tel.Counter(ImportErrors, "cause:invalid")}
}

// Send merges b unless it was merged before, and acknowledges it. A
// sender sends its batches in order, one at a time, so a batch whose
// sequence number is not above the last merged one of its sender has been
// merged. Batches whose records do not decode are refused, and the part of
// them before the fault stays merged: such records come from a broken
// sender, which sending them again would not mend.
func (r *Receiver) Send(_ context.Context, b *forwardpb.Batch) (*forwardpb.Ack, error) {
	if b.Sender == "" || b.Seq == 0 {
		return nil, status.Error(codes.InvalidArgument, "a batch needs its sender and a sequence number")
	}
	r.mu.Lock()
	defer r.mu.Unlock() // one batch of a sender at a time, and the check and the merge as one
	if b.Seq <= r.last[b.Sender] {
		return &forwardpb.Ack{Duplicate: true}, nil
	}
	n, err := r.merge(b.Records)
	r.imported.Add(uint64(n))
	r.last[b.Sender] = b.Seq
	if err != nil {
		r.corrupt.Inc()
		return nil, status.Errorf(codes.InvalidArgument, "batch %d of %s: %v", b.Seq, b.Sender, err)
	}
	return &forwardpb.Ack{Merged: uint64(n)}, nil
}

// Serve serves the Forward service on l until Stop.
func (r *Receiver) Serve(l net.Listener, opts ...grpc.ServerOption) *Server {
	s := &Server{grpc: grpc.NewServer(opts...), done: make(chan error, 1)}
	forwardpb.RegisterForwardServer(s.grpc, r)
	registerVeneur(s.grpc, r)
	go func() { s.done <- s.grpc.Serve(l) }()
	return s
}

// Server is a Receiver being served.
type Server struct {
	grpc *grpc.Server
	done chan error
}

// Stop stops serving once the batches being merged are, within ctx.
func (s *Server) Stop(ctx context.Context) {
	stopped := make(chan struct{})
	go func() { s.grpc.GracefulStop(); close(stopped) }()
	select {
	case <-stopped:
	case <-ctx.Done():
		s.grpc.Stop()
	}
	<-s.done // Serve's error after a stop says nothing more
}

// ServerTLS is the TLS of a receiver serving certFile and keyFile (PEM),
// read again when they change, as a source's tls block is (sdk.ServerTLS);
// with clientCAFile, every client must present a certificate that one of
// its CAs signed, and is refused otherwise (mutual TLS).
func ServerTLS(certFile, keyFile, clientCAFile string) (*tls.Config, error) {
	tc, err := (&sdk.ServerTLS{CertFile: certFile, KeyFile: keyFile, ClientCAFile: clientCAFile}).Config()
	if ae := (*sdk.AttrError)(nil); errors.As(err, &ae) {
		return nil, fmt.Errorf("%s: %s", ae.Summary, strings.TrimSuffix(ae.Detail, "."))
	}
	return tc, err
}
