package otlp

import (
	"hash/maphash"
	"sync"
	"sync/atomic"
)

// A stream is what cumulative points are told apart by: the metric's name,
// its resource (all of its attributes, not only those that become tags), its
// instrumentation scope and the point's attributes. Turning a cumulative
// point into the increase since the last one needs the last one: streams
// remembers it, per stream, for as long as the stream keeps sending.

// stream is the last point of a cumulative stream.
type stream struct {
	seen  int64  // when it was last updated, Unix nanoseconds (the source's clock)
	start uint64 // start_time_unix_nano of the last point
	time  uint64 // time_unix_nano of the last point
	value float64
	count uint64 // histograms and summaries
	sum   float64
	hist  *histState
}

// histState is the rest of a histogram's last point.
type histState struct {
	bounds []float64 // explicit bounds
	counts []uint64  // explicit buckets
	// exponential
	scale          int32
	zero           uint64
	posOff, negOff int32
	pos, neg       []uint64
}

const nShards = 64

// streams is a table of streams. Safe for concurrent use: a stream is
// locked through its shard.
type streams struct {
	seed   maphash.Seed
	max    int64
	n      atomic.Int64
	shards [nShards]streamShard
}

type streamShard struct {
	mu sync.Mutex
	m  map[string]*stream
	_  [40]byte // keep shards' locks on separate cache lines
}

func newStreams(max int) *streams {
	s := &streams{seed: maphash.MakeSeed(), max: int64(max)}
	for i := range s.shards {
		s.shards[i].m = map[string]*stream{}
	}
	return s
}

// get returns the stream keyed key with its shard locked, the caller to
// unlock it: a new, zero one if it was not known (fresh), or nil if it was
// not and the table is full.
func (s *streams) get(key []byte, now int64) (st *stream, sh *streamShard, fresh bool) {
	sh = &s.shards[maphash.Bytes(s.seed, key)%nShards]
	sh.mu.Lock()
	st = sh.m[string(key)]
	if st == nil {
		if s.n.Load() >= s.max {
			return nil, sh, true
		}
		s.n.Add(1)
		st = &stream{}
		sh.m[string(key)] = st
		fresh = true
	}
	st.seen = now
	return st, sh, fresh
}

// expire forgets the streams not updated since before, and returns how
// many.
func (s *streams) expire(before int64) int {
	n := 0
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		for k, st := range sh.m {
			if st.seen < before {
				delete(sh.m, k)
				n++
			}
		}
		sh.mu.Unlock()
	}
	s.n.Add(int64(-n))
	return n
}

// len returns the number of streams.
func (s *streams) len() int { return int(s.n.Load()) }
