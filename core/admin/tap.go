package admin

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/veneurd/veneurd/core/status"
)

// Tap is a live copy of what flows through a block (core.Tap).
type Tap interface {
	Points() <-chan status.TapPoint
	// TakeLost returns how many points were lost to a slow reader since
	// the last call.
	TakeLost() uint64
	Close()
}

// maxTapWrite is how many lines a tap writes at once, when they are there.
const maxTapWrite = 512

// serveTap streams a tap: GET /api/tap?block=ADDRESS[&name=PATTERN][&format=json].
// Each point is a line: text, or a status.TapPoint as JSON; a line says how
// many were lost whenever some were (status.TapLost in JSON). It ends when
// the client goes.
func serveTap(b Backend, w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	tap, err := b.Tap(q.Get("block"), q.Get("name"))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	defer tap.Close()
	asJSON := q.Get("format") == "json"
	if asJSON {
		w.Header().Set("Content-Type", "application/x-ndjson")
	} else {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	}
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	flusher, _ := w.(http.Flusher)
	if flusher != nil {
		flusher.Flush()
	}
	lost := time.NewTicker(time.Second)
	defer lost.Stop()
	var buf []byte
	for {
		buf = buf[:0]
		select {
		case <-r.Context().Done():
			return
		case p := <-tap.Points():
			buf = appendTapPoint(buf, &p, asJSON)
			for range maxTapWrite - 1 {
				select {
				case p := <-tap.Points():
					buf = appendTapPoint(buf, &p, asJSON)
					continue
				default:
				}
				break
			}
		case <-lost.C:
			n := tap.TakeLost()
			if n == 0 {
				continue
			}
			if asJSON {
				buf, _ = json.Marshal(status.TapLost{Lost: n})
				buf = append(buf, '\n')
			} else {
				buf = append(buf, "# lost "...)
				buf = strconv.AppendUint(buf, n, 10)
				buf = append(buf, " lines: the tap's reader is slower than the traffic\n"...)
			}
		}
		if _, err := w.Write(buf); err != nil {
			return
		}
		if flusher != nil {
			flusher.Flush()
		}
	}
}

// appendTapPoint writes a point as a line: JSON, or
// "name{tag,tag} type value" and then "@rate" for a sample, or the flush's
// timestamp and host for a point.
func appendTapPoint(b []byte, p *status.TapPoint, asJSON bool) []byte {
	if asJSON {
		if p.Tags == nil {
			p.Tags = []string{} // a stable shape: a list, empty
		}
		js, _ := json.Marshal(p)
		return append(append(b, js...), '\n')
	}
	b = append(b, p.Name...)
	if len(p.Tags) > 0 {
		b = append(b, '{')
		b = append(b, strings.Join(p.Tags, ",")...)
		b = append(b, '}')
	}
	b = append(b, ' ')
	b = append(b, p.Type...)
	b = append(b, ' ')
	b = strconv.AppendFloat(b, p.Value, 'g', -1, 64)
	if p.Rate != 0 && p.Rate != 1 {
		b = append(b, " @"...)
		b = strconv.AppendFloat(b, p.Rate, 'g', -1, 64)
	}
	if p.Timestamp != 0 {
		b = append(b, " ts="...)
		b = strconv.AppendInt(b, p.Timestamp, 10)
	}
	if p.Hostname != "" {
		b = append(b, " host="...)
		b = append(b, p.Hostname...)
	}
	if p.Message != "" {
		b = append(b, " message="...)
		b = strconv.AppendQuote(b, p.Message)
	}
	return append(b, '\n')
}
