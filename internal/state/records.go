package state

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/axiomhq/hyperloglog"

	"github.com/veneurd/veneurd/internal/tdigest"
)

// Records are the packed form of state, the one format in which state
// leaves a process: a source ships its state to the daemon as records. A
// frame of records is a version byte followed by records, each
//
//	payloadLen uint32
//	scope      uint8  an sdk.Scope
//	key        type uint8, nameLen uint16, tagsLen uint16, name, tags
//	payload    counters and gauges: the float64 value; histograms and timers:
//	           the t-digest's binary encoding; sets: the sketch's
//
// all little-endian. The key is laid out as in Series and Samples, so one
// series has one key in every form.
//
// Version 2 took the scope out of the key: version 1 records are refused.
const RecordsVersion = 2

const recordHeader = 4 + 1 // payloadLen, scope

// ErrCorrupt is wrapped by the errors of records that do not decode.
var ErrCorrupt = errors.New("corrupt state records")

func corrupt(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrCorrupt}, args...)...)
}

// AppendRecord appends se's record to a frame, starting it when b is empty.
func AppendRecord(b []byte, se *Series) []byte {
	if len(b) == 0 {
		b = append(b, RecordsVersion)
	}
	at := len(b)
	b = append(b, 0, 0, 0, 0)
	b = append(b, se.Key...) // the scope, then the series' identity
	start := len(b)
	switch {
	case se.Digest != nil:
		b, _ = se.Digest.AppendBinary(b)
	case se.Set != nil:
		b, _ = se.Set.AppendBinary(b)
	default:
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(se.Value))
	}
	binary.LittleEndian.PutUint32(b[at:], uint32(len(b)-start))
	return b
}

// Ship takes the table's state away and hands it to send as frames of about
// maxBytes each (a frame is never split inside a record). send owns each
// frame. The table is empty afterwards, unless samples arrived meanwhile.
func (t *Table) Ship(maxBytes int, send func(frame []byte)) {
	var b []byte
	for i := range t.shards {
		taken := t.Take(i)
		for j := range taken {
			b = AppendRecord(b, &taken[j])
			if len(b) >= maxBytes {
				send(b)
				b = nil
			}
		}
	}
	if len(b) > 0 {
		send(b)
	}
}

// MergeRecords merges a frame of records into t and returns how many merged.
// Records before a corrupt one are merged; the error names what was wrong.
func (t *Table) MergeRecords(b []byte) (int, error) {
	n := 0
	var err error
	ferr := EachRecord(b, func(record, id []byte) bool {
		scope := record[4]
		if scope > ScopeGlobal {
			err = corrupt("unknown scope %d", scope)
			return false
		}
		if err = t.merge(scope, id, record[recordHeader+len(id):]); err != nil {
			return false
		}
		n++
		return true
	})
	if ferr != nil {
		return n, ferr
	}
	return n, err
}

// EachRecord calls fn with each record of a frame, whole (as AppendRaw
// takes it), and its series' identity (type, name and tags, as the key
// lays them out, without the scope), until fn returns false. It checks the
// framing only, not the payloads: a process that routes records onward
// without merging them (a proxy) splits frames with it. A frame whose
// framing is broken yields the records before the fault and the error.
func EachRecord(b []byte, fn func(record, id []byte) bool) error {
	if len(b) == 0 {
		return nil
	}
	if b[0] != RecordsVersion {
		return corrupt("unknown version %d", b[0])
	}
	b = b[1:]
	for len(b) > 0 {
		if len(b) < recordHeader+keyHeader {
			return corrupt("truncated record header")
		}
		plen := int(binary.LittleEndian.Uint32(b))
		key := b[recordHeader:]
		klen := keyHeader + int(binary.LittleEndian.Uint16(key[1:])) + int(binary.LittleEndian.Uint16(key[3:]))
		if len(key) < klen || len(key)-klen < plen {
			return corrupt("truncated record")
		}
		n := recordHeader + klen + plen
		if !fn(b[:n:n], key[:klen:klen]) {
			return nil
		}
		b = b[n:]
	}
	return nil
}

// AppendRaw appends a record that EachRecord yielded to a frame, starting
// the frame when b is empty.
func AppendRaw(b, record []byte) []byte {
	if len(b) == 0 {
		b = append(b, RecordsVersion)
	}
	return append(b, record...)
}

// merge merges one record: decoded as a series, it is either held from now
// on or merged into the series of its key.
func (t *Table) merge(scope uint8, key, payload []byte) error {
	h := hashKey(key)
	sh := &t.shards[h%uint64(len(t.shards))]
	t.mu.Lock()
	defer t.mu.Unlock()
	i, found := sh.find(h, key)
	if !found && t.full() {
		return nil
	}
	var scratch *tdigest.Merging // a held series' digest merges from it
	if found {
		if sh.scratch == nil {
			sh.scratch = new(tdigest.Merging)
		}
		scratch = sh.scratch
	}
	in, err := decode(key[0], payload, scratch)
	if err != nil {
		return err
	}
	if found {
		se := &sh.series[i]
		se.widen(scope)
		return se.mergeState(&in)
	}
	in.Key = seriesKey(scope, key)
	t.size.Add(in.cost())
	t.insert(sh, h, in)
	return nil
}

// MergeIfHeld merges se into the series of the same identity, if t holds
// one, widening its scope, and reports whether it did; se is left as it was,
// and t holds nothing new otherwise. A flush uses it to merge a series of
// its own into the same series received from other instances.
func (t *Table) MergeIfHeld(se *Series) (bool, error) {
	id := se.ID()
	h := hashString(id)
	sh := &t.shards[h%uint64(len(t.shards))]
	t.mu.Lock()
	defer t.mu.Unlock()
	i, found := find(sh, h, id)
	if !found {
		return false, nil
	}
	return true, sh.series[i].Merge(se)
}

// decode reads a record's payload as a series of type typ, without its
// key. A digest decodes into d, or a new one if d is nil.
func decode(typ uint8, payload []byte, d *tdigest.Merging) (Series, error) {
	switch typ {
	case Counter, Gauge:
		if len(payload) != 8 {
			return Series{}, corrupt("a counter's or gauge's payload is %d bytes, not 8", len(payload))
		}
		return Series{Value: math.Float64frombits(binary.LittleEndian.Uint64(payload))}, nil
	case Histogram, Timer:
		if d == nil {
			d = new(tdigest.Merging)
		}
		if err := d.UnmarshalBinary(payload); err != nil {
			return Series{}, fmt.Errorf("%w: %w", ErrCorrupt, err)
		}
		return Series{Digest: d}, nil
	case Set:
		sk := new(hyperloglog.Sketch)
		if err := sk.UnmarshalBinary(payload); err != nil {
			return Series{}, corrupt("set sketch: %v", err)
		}
		return Series{Set: sk}, nil
	}
	return Series{}, corrupt("unknown metric type %d", typ)
}
