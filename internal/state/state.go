// Package state is an interval's mergeable state, series by series: counters
// summed, gauges last-write, histograms and timers in merging t-digests, sets
// in HyperLogLog sketches. A Table is filled from samples or from another
// table's state, and gives its state away as packed records, which merge
// into another Table.
//
// Both sides of the source boundary use it: a source process aggregates the
// samples it parses in a Table and ships the state at each flush (a few
// records per series instead of one per sample), and the daemon merges what
// every source shipped into its own Table before it emits points. Every
// aggregate merges, so a Table may also be shipped early, in parts (when it
// grows past its budget), without changing the result.
package state

import (
	"encoding/binary"
	"hash/maphash"
	"math"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/axiomhq/hyperloglog"

	"github.com/veneurd/veneurd/internal/tdigest"
)

// The metric types of series keys, numbered as sdk.MetricType numbers them
// (a test keeps them equal; this package sits below sdk).
const (
	Counter   = 1
	Gauge     = 2
	Histogram = 3
	Timer     = 4
	Set       = 5
)

// The scopes of series, numbered as sdk.Scope numbers them. A scope says
// where a series is aggregated, not which series it is: it is a property of
// a Series, not part of its key, so that samples of one series sent with
// different scopes still make one series, and a sink one point.
//
// When the samples (or the shipped states) of one series disagree on scope
// within an interval, the widest wins: global over default over local. The
// rule does not depend on the order they arrive in, and a series that any
// client asked to see fleet-wide is aggregated fleet-wide, with every one of
// its samples rather than only those that asked.
const (
	ScopeDefault = 0
	ScopeLocal   = 1
	ScopeGlobal  = 2
)

// widerScope returns the wider of two scopes (see ScopeDefault).
func widerScope(a, b uint8) uint8 {
	if scopeRank(b) > scopeRank(a) {
		return b
	}
	return a
}

func scopeRank(s uint8) int {
	switch s {
	case ScopeLocal:
		return 0
	case ScopeGlobal:
		return 2
	}
	return 1
}

// Params are the settings of the digests and sketches a Table creates.
type Params struct {
	Compression  float64
	HLLPrecision uint8
}

func (p Params) withDefaults() Params {
	if p.Compression <= 0 {
		p.Compression = tdigest.DefaultCompression
	}
	if p.HLLPrecision == 0 {
		p.HLLPrecision = 14
	}
	return p
}

// Approximate bytes a series holds besides its key, for Table.Size: the slab
// entry and its index entry, and for a digest its storage once it has seen a
// few hundred samples.
const (
	seriesBytes = 64
	digestBytes = 2048
)

// Table holds series state, in shards by series key: each shard's index
// stays small, and a flush takes the state away a shard at a time. All
// methods may be called concurrently; they take one lock, which AddSamples
// holds for a batch of samples at a time.
type Table struct {
	params atomic.Pointer[Params]
	size   atomic.Int64
	mu     sync.Mutex
	shards []shard
	touch  uint64 // see prefetch
	admit  Admit
	// held counts the series held (guarded by mu); past maxSeries, a new
	// series is refused and counted in overLimit.
	held      int
	maxSeries atomic.Int64
	overLimit atomic.Uint64
}

// Admit decides whether a sample of a series that a Table does not hold
// may make it (name and tags are only read): a source's drop rules and
// series limits. It is asked only for the samples of series not held, so
// that the series admitted, which are most of a source's traffic, cost it
// nothing per sample; a series refused is never held, so each of its
// samples is asked. h is a hash of the series' identity, the same for the
// life of the process. It is called with the table's lock held.
type Admit func(h uint64, name, tags []byte) bool

// SetMaxSeries bounds the series the table holds: past n, the samples and
// records of a series it does not hold are refused and counted (see
// TakeOverLimit). 0 is no bound.
func (t *Table) SetMaxSeries(n int) { t.maxSeries.Store(int64(n)) }

// TakeOverLimit returns how many samples and records SetMaxSeries's bound
// refused since the last call.
func (t *Table) TakeOverLimit() uint64 { return t.overLimit.Swap(0) }

// full reports whether the table holds as many series as it may; t.mu is
// held.
func (t *Table) full() bool {
	max := t.maxSeries.Load()
	if max > 0 && int64(t.held) >= max {
		t.overLimit.Add(1)
		return true
	}
	return false
}

// SetAdmit sets the table's Admit; nil admits every series. Set it before
// the table is used.
func (t *Table) SetAdmit(a Admit) { t.admit = a }

// seed keys the series hash, one for the process: a shard's index is
// rebuilt from its keys when it grows.
var seed = maphash.MakeSeed()

// hashKey and hashString hash a key alike.
func hashKey(key []byte) uint64    { return maphash.Bytes(seed, key) }
func hashString(key string) uint64 { return maphash.String(seed, key) }

// shard holds its series in a slab, one allocation for all of them rather
// than one each, which is what makes a million series cheap. They are found
// through an open-addressing index of the key's 64-bit hash (the same hash
// picks the shard, so a key is hashed once per sample): a slot packs the
// hash's top 32 bits with the series' position, so that a lookup reads one
// slot, and the key only to confirm a match. A general-purpose map costs
// several cache misses more per sample, and this lookup is most of what a
// sample costs.
type shard struct {
	slots   []uint64 // hash>>32<<32 | position+1; 0 is empty; at most half full
	series  []Series
	scratch *tdigest.Merging // decodes digests being merged
}

// New returns an empty Table of n shards.
func New(p Params, n int) *Table {
	t := &Table{shards: make([]shard, max(n, 1))}
	t.SetParams(p)
	return t
}

// SetParams changes the settings of the digests and sketches created from
// now on.
func (t *Table) SetParams(p Params) {
	p = p.withDefaults()
	t.params.Store(&p)
}

// Params returns the settings in effect.
func (t *Table) Params() Params { return *t.params.Load() }

// Size is an estimate of the bytes the table holds.
func (t *Table) Size() int64 { return t.size.Load() }

// Shards returns the number of shards, for Take.
func (t *Table) Shards() int { return len(t.shards) }

// Take empties shard i and returns its series. The next interval starts
// empty and grows: sizing it like this one would hold both in memory at
// once, which is the peak.
func (t *Table) Take(i int) []Series {
	sh := &t.shards[i]
	t.mu.Lock()
	taken := sh.series
	sh.slots = nil
	sh.series = nil
	t.held -= len(taken)
	t.mu.Unlock()
	var bytes int64
	for j := range taken {
		bytes += taken[j].cost()
	}
	t.size.Add(-bytes)
	return taken
}

// Reasons a Table refuses a sample, named as the reason tag of
// veneur.packet.error_total (packet_type:metric) counts them.
const (
	// ReasonUnknownType: not a counter, gauge, histogram, timer or set.
	ReasonUnknownType = "unknown_type"
	// ReasonInvalidValue: a value that is NaN or infinite, or a counter's
	// value that its sample rate scales past float64's range. Such a value
	// would make every aggregate it joins meaningless, and sinks have
	// formats (JSON among them) without NaN or infinity. A set's value is a
	// hash, not a number, and is never refused.
	ReasonInvalidValue = "invalid_value"
	// ReasonInvalidRate: a sample rate outside (0, 1], or so small that
	// its reciprocal, the sample's weight, is infinite.
	ReasonInvalidRate = "invalid_rate"
)

// Refused counts the samples AddSamples refused, by reason.
type Refused struct {
	UnknownType  int
	InvalidValue int
	InvalidRate  int
	// NotAdmitted samples were refused by the table's Admit, which counts
	// them as it sees fit, or by its series bound, which counts them in
	// TakeOverLimit: they are not rejected input, and Each leaves them out.
	NotAdmitted int
}

// Each calls fn with each reason (ReasonUnknownType, ...) some sample was
// refused for, and how many were.
func (r Refused) Each(fn func(reason string, n int)) {
	if r.UnknownType > 0 {
		fn(ReasonUnknownType, r.UnknownType)
	}
	if r.InvalidValue > 0 {
		fn(ReasonInvalidValue, r.InvalidValue)
	}
	if r.InvalidRate > 0 {
		fn(ReasonInvalidRate, r.InvalidRate)
	}
}

// refusal is why add refused a sample, or accepted.
type refusal uint8

const (
	accepted refusal = iota
	unknownType
	invalidValue
	invalidRate
	notAdmitted
)

func (r *Refused) count(why refusal) {
	switch why {
	case unknownType:
		r.UnknownType++
	case invalidValue:
		r.InvalidValue++
	case invalidRate:
		r.InvalidRate++
	case notAdmitted:
		r.NotAdmitted++
	}
}

// batchSize is how many samples AddSamples looks up together.
const batchSize = 16

// AddSamples adds every sample of s, and returns how many it added and how
// many it refused, by reason. It does not allocate for series already held.
//
// Samples are looked up a batch at a time, and that is what makes it fast:
// over thousands of series, finding one costs three cache misses in a row
// (index slot, series, key) and a fourth for a digest. Within a batch, a
// first pass reads every sample's slot, series and digest before any is
// used, so that the misses of sixteen samples overlap rather than follow one
// another; the last pass then finds them in the cache.
func (t *Table) AddSamples(s *Samples) (added int, refused Refused) {
	var batch [batchSize]sample
	var hashes [batchSize]uint64
	for off := 0; off < len(s.b); {
		n := 0
		for ; n < batchSize && off < len(s.b); n++ {
			off = s.read(off, &batch[n])
			hashes[n] = hashKey(batch[n].key)
		}
		t.mu.Lock()
		t.prefetch(hashes[:n])
		for i := range n {
			if why := t.add(hashes[i], &batch[i]); why == accepted {
				added++
			} else {
				refused.count(why)
			}
		}
		t.mu.Unlock()
	}
	return added, refused
}

// prefetch reads what finding the series hashed hs will read: their
// slots, then the series the slots point to, then those series' keys and
// digests. Each pass's loads depend on the previous pass only, so the
// processor has sixteen in flight at once.
func (t *Table) prefetch(hs []uint64) {
	var found [batchSize]*Series
	var touch uint64
	for i, h := range hs {
		sh := &t.shards[h%uint64(len(t.shards))]
		if len(sh.slots) == 0 {
			continue
		}
		if s := sh.slots[slotOf(h)&uint64(len(sh.slots)-1)]; s != 0 {
			found[i] = &sh.series[int32(uint32(s))-1]
		}
	}
	for _, se := range found[:len(hs)] {
		if se != nil && len(se.Key) > 0 {
			touch += uint64(se.Key[0])
		}
	}
	for _, se := range found[:len(hs)] {
		if se != nil && se.Digest != nil {
			touch += uint64(se.Digest.Pending())
		}
	}
	t.touch += touch // loads whose results are kept are not left out
}

// minRate is the smallest sample rate whose reciprocal is finite.
const minRate = 1 / math.MaxFloat64

// add adds s, hashed h, unless it refuses it (see Refused); t.mu is held.
func (t *Table) add(h uint64, s *sample) refusal {
	if s.typ < Counter || s.typ > Set {
		return unknownType
	}
	if !(s.rate >= minRate && s.rate <= 1) {
		return invalidRate
	}
	v := s.value
	if s.typ == Counter {
		v /= s.rate
	}
	if s.typ != Set && !(math.Abs(v) <= math.MaxFloat64) {
		return invalidValue
	}
	sh := &t.shards[h%uint64(len(t.shards))]
	i, ok := sh.find(h, s.key)
	if !ok {
		if t.admit != nil {
			nl := int(binary.LittleEndian.Uint16(s.key[1:3]))
			if !t.admit(h, s.key[keyHeader:keyHeader+nl], s.key[keyHeader+nl:]) {
				return notAdmitted
			}
		}
		if t.full() {
			return notAdmitted
		}
		se := t.newSeries(s.typ, s.scope, s.key)
		i = t.insert(sh, h, se)
		t.size.Add(se.cost())
	}
	se := &sh.series[i]
	if se.Key[0] != s.scope {
		se.widen(s.scope)
	}
	switch s.typ {
	case Counter:
		se.Value += v
	case Gauge:
		se.Value = v
	case Histogram, Timer:
		se.Digest.Add(v, 1/s.rate)
	case Set:
		se.Set.InsertHash(math.Float64bits(v)) // a hash, not a number
	}
	return accepted
}

// newSeries makes an empty series of a known type, of identity id (see
// Series.Key) and scope.
func (t *Table) newSeries(typ, scope uint8, id []byte) Series {
	se := Series{Key: seriesKey(scope, id)}
	p := t.params.Load()
	switch typ {
	case Histogram, Timer:
		se.Digest = tdigest.New(p.Compression)
	case Set:
		sk, err := hyperloglog.NewSketch(p.HLLPrecision, true)
		if err != nil {
			sk = hyperloglog.New()
		}
		se.Set = sk
	}
	return se
}

// find returns the position of the series keyed key, hashed h.
func (sh *shard) find(h uint64, key []byte) (int32, bool) { return find(sh, h, key) }

// find returns the position in sh of the series whose identity is id,
// hashed h, as bytes or as a string.
func find[K string | []byte](sh *shard, h uint64, key K) (int32, bool) {
	if len(sh.slots) == 0 {
		return 0, false
	}
	mask := uint64(len(sh.slots) - 1)
	fp := h >> 32 << 32
	for i := slotOf(h) & mask; ; i = (i + 1) & mask {
		s := sh.slots[i]
		if s == 0 {
			return 0, false
		}
		if s&^0xffffffff == fp {
			pos := int32(uint32(s)) - 1
			if sh.series[pos].Key[1:] == string(key) {
				return pos, true
			}
		}
	}
}

// slotOf is where a hash's probe starts: bits the shard choice (the low
// ones) and the fingerprint (the top 32) do not already use.
func slotOf(h uint64) uint64 { return h >> 8 }

// insert records se, hashed h, and returns its position. se's key must not
// be held already.
func (t *Table) insert(sh *shard, h uint64, se Series) int32 {
	t.held++
	return sh.insert(h, se)
}

func (sh *shard) insert(h uint64, se Series) int32 {
	pos := int32(len(sh.series))
	sh.series = append(sh.series, se)
	if 2*len(sh.series) > len(sh.slots) {
		sh.grow(h)
	} else {
		sh.place(h, pos)
	}
	return pos
}

func (sh *shard) place(h uint64, pos int32) {
	mask := uint64(len(sh.slots) - 1)
	i := slotOf(h) & mask
	for sh.slots[i] != 0 {
		i = (i + 1) & mask
	}
	sh.slots[i] = h>>32<<32 | uint64(pos+1)
}

// grow doubles the index and places every series again; the last one, just
// appended, is hashed h (the others' hashes are recomputed from the keys).
func (sh *shard) grow(h uint64) {
	sh.slots = make([]uint64, max(16, 2*len(sh.slots)))
	last := len(sh.series) - 1
	for pos := range last {
		sh.place(hashString(sh.series[pos].Key[1:]), int32(pos))
	}
	sh.place(h, int32(last))
}

// Series is one series' state. Its key is its scope (where it is
// aggregated, see ScopeDefault) and then its identity (type, name and tags;
// see Samples). The scope travels in the key rather than in a field of its
// own because a million series are held at once: a field would cost each
// series eight bytes of padding.
type Series struct {
	Key    string
	Value  float64 // a counter's sum or a gauge's last value
	Digest *tdigest.Merging
	Set    *hyperloglog.Sketch
}

// Scope is an sdk.Scope, read from the key.
func (se *Series) Scope() uint8 { return se.Key[0] }

// ID is the series' identity: its key without the scope.
func (se *Series) ID() string { return se.Key[1:] }

// Type is an sdk.MetricType, read from the key.
func (se *Series) Type() uint8 { return se.Key[1] }

// Name and Tags are slices of the key.
func (se *Series) Name() string {
	nl := int(binary.LittleEndian.Uint16([]byte(se.Key[2:4])))
	return se.Key[1+keyHeader : 1+keyHeader+nl]
}

func (se *Series) Tags() string {
	nl := int(binary.LittleEndian.Uint16([]byte(se.Key[2:4])))
	return se.Key[1+keyHeader+nl:]
}

// widen gives se the wider of its scope and scope (see ScopeDefault). It
// makes a new key, which happens only when a series' samples disagree.
func (se *Series) widen(scope uint8) {
	if w := widerScope(se.Key[0], scope); w != se.Key[0] {
		se.Key = seriesKey(w, []byte(se.Key[1:]))
	}
}

// seriesKey is scope followed by id, in one allocation.
func seriesKey(scope uint8, id []byte) string {
	var b strings.Builder
	b.Grow(1 + len(id))
	b.WriteByte(scope)
	b.Write(id)
	return b.String()
}

// Merge adds other's state, of the same type, to se: sums add, the gauge
// takes other's value (other is the later), digests and sketches merge, and
// the wider scope wins.
func (se *Series) Merge(other *Series) error {
	se.widen(other.Scope())
	return se.mergeState(other)
}

// mergeState is Merge but for the scope.
func (se *Series) mergeState(other *Series) error {
	switch se.Type() {
	case Counter:
		se.Value += other.Value
	case Gauge:
		se.Value = other.Value
	case Histogram, Timer:
		se.Digest.Merge(other.Digest)
	case Set:
		return se.Set.Merge(other.Set)
	}
	return nil
}

func (se *Series) cost() int64 {
	c := int64(len(se.Key) + seriesBytes)
	if se.Digest != nil {
		c += digestBytes
	}
	return c
}

// Key builds a series key (see Series).
func Key(scope, typ uint8, name, tags string) string {
	return string(append([]byte{scope}, ID(typ, name, tags)...))
}

// ID builds a series identity, as Samples lays it out.
func ID(typ uint8, name, tags string) string {
	b := make([]byte, keyHeader, keyHeader+len(name)+len(tags))
	b[0] = typ
	binary.LittleEndian.PutUint16(b[1:], uint16(len(name)))
	binary.LittleEndian.PutUint16(b[3:], uint16(len(tags)))
	b = append(append(b, name...), tags...)
	return string(b)
}
