package datadog

import "strconv"

// envelope is a body under construction: head, items separated by commas,
// and tail, which Body adds without keeping it, so that items can still be
// appended after Body.
type envelope struct {
	buf []byte // head and the items; empty until the first Reset or item
	n   int    // items

	// The last timestamp written, as text: the points of a flush share
	// theirs, which is then formatted once.
	ts     int64
	tsText [20]byte
	tsLen  int
}

// appendTimestamp appends ts in decimal.
func (e *envelope) appendTimestamp(b []byte, ts int64) []byte {
	if e.tsLen == 0 || ts != e.ts {
		e.ts = ts
		e.tsLen = len(strconv.AppendInt(e.tsText[:0], ts, 10))
	}
	return append(b, e.tsText[:e.tsLen]...)
}

func (e *envelope) reset(head string) {
	e.buf = append(e.buf[:0], head...)
	e.n = 0
}

// item starts one more item and returns the buffer to append it to: the
// head first when the encoder was never reset, a comma after the first item.
func (e *envelope) item(head string) []byte {
	if len(e.buf) == 0 {
		e.buf = append(e.buf, head...)
	}
	if e.n > 0 {
		e.buf = append(e.buf, ',')
	}
	e.n++
	return e.buf
}

func (e *envelope) size(head, tail string) int {
	if len(e.buf) == 0 {
		return len(head) + len(tail)
	}
	return len(e.buf) + len(tail)
}

// body returns head, items and tail. Its capacity is its length, so that a
// caller's append cannot write into the encoder's buffer.
func (e *envelope) body(head, tail string) []byte {
	if len(e.buf) == 0 {
		e.buf = append(e.buf, head...)
	}
	n := len(e.buf)
	b := append(e.buf, tail...)
	e.buf = b[:n]
	return b[:len(b):len(b)]
}
