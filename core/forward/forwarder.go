package forward

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc"

	"github.com/veneurd/veneurd/core/discovery"
	"github.com/veneurd/veneurd/core/forward/forwardpb"
	"github.com/veneurd/veneurd/core/telemetry"
	"github.com/veneurd/veneurd/internal/state"
	consistenthash "github.com/veneurd/veneurd/plugins/routers/consistent_hash"
)

// Config is what a Forwarder needs.
type Config struct {
	// Members are the tier forwarded to: one address, a static list, or
	// a Consul service's passing instances.
	Members discovery.Members
	// Hostname goes into the sender's identity.
	Hostname string
	// MaxBufferedIntervals is how many intervals' batches each member
	// holds while it is down; past it the oldest interval's are dropped.
	MaxBufferedIntervals int
	// Timeout bounds one Send.
	Timeout time.Duration
	// FailoverAfter is how many attempts in a row must find a member
	// unreachable before its batches go to each series' next choice.
	FailoverAfter int
	// Protocol is ProtocolVeneurd (the default) or ProtocolVeneur.
	Protocol string
	// DialOptions are added to each connection's (TLS credentials).
	DialOptions []grpc.DialOption
}

// The protocols a Forwarder speaks.
const (
	ProtocolVeneurd = "veneurd" // forwardpb: acknowledged, sequenced batches
	ProtocolVeneur  = "veneur"  // Veneur's forwardrpc, to a Veneur global
)

// Defaults of Config.
const (
	DefaultMaxBufferedIntervals = 10
	DefaultTimeout              = 10 * time.Second
	DefaultFailoverAfter        = 3
)

// downFor is how long a member that failed over gets no new batches: its
// series go to their next choice meanwhile, then it is tried again.
const downFor = 30 * time.Second

// maxFrame is the size past which a member's part of an interval is cut
// into another batch.
const maxFrame = 1 << 20

// MembersGauge is the number of members forwarded to.
const MembersGauge = "veneur.proxy.members"

// Forwarder sends each interval's records to the tier above: each series
// to the member that rendezvous hashing of its key chooses (every sender
// chooses the same), each member's batches in order, one at a time, until
// acknowledged. A member that leaves the membership, or stays unreachable,
// hands its batches back, and each of their series goes to its next
// choice. Safe for concurrent use.
type Forwarder struct {
	cfg Config
	log hclog.Logger

	errors   func(cause string) telemetry.Counter
	duration telemetry.Gauge
	buffered telemetry.Gauge
	size     telemetry.Gauge

	mu       sync.Mutex
	ring     *consistenthash.Ring
	members  map[string]*member // of ring, by address
	down     map[string]time.Time
	frames   [][]byte        // of the interval being flushed
	unplaced []*outgoing     // while the ring is empty
	held     map[*member]int // each member's buffered intervals
	stopping bool

	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
}

// New returns a Forwarder to cfg.Members and starts following them.
func New(cfg Config, tel *telemetry.Registry, log hclog.Logger) (*Forwarder, error) {
	if cfg.MaxBufferedIntervals <= 0 {
		cfg.MaxBufferedIntervals = DefaultMaxBufferedIntervals
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.FailoverAfter <= 0 {
		cfg.FailoverAfter = DefaultFailoverAfter
	}
	if log == nil {
		log = hclog.NewNullLogger()
	}
	f := &Forwarder{cfg: cfg, log: log,
		errors:   func(cause string) telemetry.Counter { return tel.Counter(ForwardErrors, "cause:"+cause) },
		duration: tel.Gauge(ForwardDuration), buffered: tel.Gauge(BufferedIntervals), size: tel.Gauge(MembersGauge),
		members: map[string]*member{}, down: map[string]time.Time{}, held: map[*member]int{},
		ring: consistenthash.New(nil), done: make(chan struct{})}
	f.ctx, f.cancel = context.WithCancel(context.Background())
	ring, changed := cfg.Members.Ring()
	if err := f.setRing(ring); err != nil {
		return nil, err
	}
	go f.watch(changed)
	return f, nil
}

// watch follows the membership until Stop.
func (f *Forwarder) watch(changed <-chan struct{}) {
	defer close(f.done)
	for changed != nil {
		select {
		case <-changed:
		case <-f.ctx.Done():
			return
		}
		var ring *consistenthash.Ring
		ring, changed = f.cfg.Members.Ring()
		if err := f.setRing(ring); err != nil {
			f.log.Error("cannot forward to a new member", "error", err)
		}
	}
}

// setRing makes ring the members: a member that joins gets a sender, one
// that leaves hands its batches to the others once its send under way is
// done, and what waited for any member is placed.
func (f *Forwarder) setRing(ring *consistenthash.Ring) error {
	f.mu.Lock()
	var err error
	next := make(map[string]*member, ring.Len())
	for _, addr := range ring.Members() {
		if m := f.members[addr]; m != nil {
			next[addr] = m
			continue
		}
		m, merr := f.newMember(addr)
		if merr != nil {
			err = merr
			continue
		}
		next[addr] = m
		delete(f.down, addr)
	}
	for addr, m := range f.members {
		if next[addr] == nil {
			m.retire()
		}
	}
	f.ring, f.members = ring, next
	unplaced := f.unplaced
	f.unplaced = nil
	f.mu.Unlock()
	f.size.Set(float64(ring.Len()))
	for _, b := range unplaced {
		f.place(b.Interval, [][]byte{b.Records}, b.tried)
	}
	return err
}

// Add takes a frame of records of the interval being flushed (the
// aggregator's forward callback); it is sent at EndInterval.
func (f *Forwarder) Add(frame []byte) {
	f.mu.Lock()
	f.frames = append(f.frames, frame)
	f.mu.Unlock()
}

// EndInterval sends the frames added since the last call as the state of
// the interval that ended at ts.
func (f *Forwarder) EndInterval(ts int64) {
	f.mu.Lock()
	frames := f.frames
	f.frames = nil
	f.mu.Unlock()
	f.place(ts, frames, nil)
}

// Route sends a frame of records received from another instance at once,
// as the state of the interval that ended at ts: a proxy's forwarding. A
// frame whose framing is broken is refused after the records before the
// fault were placed.
func (f *Forwarder) Route(ts int64, records []byte) (int, error) {
	return f.place(ts, [][]byte{records}, nil)
}

// place splits frames by member and queues each member's part: each record
// goes to the member of highest weight for its series among those neither
// down nor in tried; when there is none, to the first choice of those not
// in tried (which then holds it), and when every member has tried, to its
// first choice. With no members, the records wait for some.
func (f *Forwarder) place(ts int64, frames [][]byte, tried []string) (int, error) {
	f.mu.Lock()
	ring, members := f.ring, f.members
	if ring.Len() == 0 || f.stopping {
		for _, fr := range frames {
			if f.stopping {
				f.errors("shutdown").Inc()
				continue
			}
			f.unplaced = append(f.unplaced, &outgoing{&forwardpb.Batch{Interval: ts, Records: fr}, tried})
		}
		f.trimUnplaced()
		f.mu.Unlock()
		return 0, nil
	}
	names := ring.Members()
	fresh, untried := make([]bool, len(names)), make([]bool, len(names))
	now := time.Now()
	for i, n := range names {
		untried[i] = !slices.Contains(tried, n) && members[n] != nil
		fresh[i] = untried[i] && !now.Before(f.down[n])
	}
	f.mu.Unlock()

	parts := make([][]byte, len(names))
	send := func(i int) {
		if m := members[names[i]]; m != nil {
			m.enqueue(ts, parts[i], tried)
		} else {
			f.errors("no_member").Inc()
		}
		parts[i] = nil
	}
	n := 0
	var err error
	for _, fr := range frames {
		err = state.EachRecord(fr, func(record, id []byte) bool {
			h := consistenthash.Hash(id)
			i := ring.ChooseAmong(h, func(i int) bool { return fresh[i] })
			if i < 0 {
				if i = ring.ChooseAmong(h, func(i int) bool { return untried[i] }); i < 0 {
					i = ring.Choose(h)
				}
			}
			parts[i] = state.AppendRaw(parts[i], record)
			if len(parts[i]) >= maxFrame {
				send(i)
			}
			n++
			return true
		})
		if err != nil {
			break
		}
	}
	for i := range parts {
		if len(parts[i]) > 0 {
			send(i)
		}
	}
	return n, err
}

// trimUnplaced drops the oldest intervals that wait for a member past the
// buffer. f.mu is held.
func (f *Forwarder) trimUnplaced() {
	f.unplaced = trimIntervals(f.unplaced, f.cfg.MaxBufferedIntervals, 0, func(oldest int64, n int) {
		f.errors("buffer_full").Add(uint64(n))
		f.log.Error("no member to forward to for longer than the buffer holds: dropped an interval", "interval", oldest)
	})
}

// failoverOne hands b, m's oldest batch, which m could not deliver, to
// its series' next choices and marks m down for a while; it reports false,
// leaving b with m, when every other member has failed b already.
func (f *Forwarder) failoverOne(m *member, b *outgoing) bool {
	tried := append(slices.Clone(b.tried), m.addr)
	f.mu.Lock()
	other := false
	for addr := range f.members {
		other = other || !slices.Contains(tried, addr)
	}
	if other {
		f.down[m.addr] = time.Now().Add(downFor)
	}
	f.mu.Unlock()
	if !other {
		return false
	}
	m.take(b)
	f.errors("failover").Inc()
	f.log.Warn("member unreachable: its series go to their next choice", "address", m.addr, "interval", b.Interval,
		"down_for", downFor)
	f.place(b.Interval, [][]byte{b.Records}, tried)
	return true
}

// failover places the batches of m, which left the membership.
func (f *Forwarder) failover(m *member, batches []*outgoing) {
	f.mu.Lock()
	delete(f.held, m)
	f.mu.Unlock()
	for _, b := range batches {
		f.place(b.Interval, [][]byte{b.Records}, append(slices.Clone(b.tried), m.addr))
	}
}

// setBuffered records that m holds n intervals; the gauge is the most any
// member holds.
func (f *Forwarder) setBuffered(m *member, n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if n == 0 {
		delete(f.held, m)
	} else {
		f.held[m] = n
	}
	most := intervals(f.unplaced)
	for _, v := range f.held {
		most = max(most, v)
	}
	f.buffered.Set(float64(most))
}

// Members returns the addresses forwarded to now.
func (f *Forwarder) Members() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.ring.Members()
}

// Pending returns the batches not yet acknowledged.
func (f *Forwarder) Pending() int {
	f.mu.Lock()
	n := len(f.unplaced)
	members := f.members
	f.mu.Unlock()
	for _, m := range members {
		n += m.len()
	}
	return n
}

// Stop sends what is pending until ctx ends, then gives up on the rest,
// counting it (cause:shutdown), and closes the connections. Frames added
// since the last EndInterval are sent too: a reload may replace the
// forwarder between a flush's frames and the end of its interval.
func (f *Forwarder) Stop(ctx context.Context) {
	f.cancel()
	<-f.done
	f.EndInterval(time.Now().Unix())
	f.mu.Lock()
	f.stopping = true
	members := f.members
	lost := len(f.unplaced)
	f.unplaced = nil
	f.mu.Unlock()
	var wg sync.WaitGroup
	var mu sync.Mutex
	for _, m := range members {
		wg.Go(func() {
			n := m.shutdown(ctx)
			mu.Lock()
			lost += n
			mu.Unlock()
		})
	}
	wg.Wait()
	if lost > 0 {
		f.errors("shutdown").Add(uint64(lost))
		f.log.Error("stopped before the upstream took every batch: dropped", "batches", lost)
	}
}
