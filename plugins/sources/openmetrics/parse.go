package openmetrics

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/prometheus/pkg/labels"
	"github.com/prometheus/prometheus/pkg/textparse"
)

// The parsers are the Prometheus project's own: textparse's PromParser
// for the text format, which the source asks for first, and its
// OpenMetricsParser for OpenMetrics. Both are lexers that hand over each
// sample's series as the bytes the target wrote: a series already known is
// found by those bytes, without building its labels, so a scrape of known
// series allocates next to nothing. textparse is the version Veneur v14.2.0
// requires (github.com/prometheus/prometheus v2.5.0+incompatible), which
// for that reason is the one this module can have: a later one, whose
// version sorts below v2.5.0+incompatible, cannot be selected beside it.
// expfmt's OpenMetrics decoder (prometheus/common) is current but parses
// a line against the ABNF grammar: 2 s for Prometheus's own 37 KB
// /metrics, against 0.2 ms here.

// maxBlankRun bounds the blank lines in a row of a text body: the text
// parser recurses once a blank line, and a body of millions of them would
// exhaust the goroutine's stack, which no recover can catch.
const maxBlankRun = 10000

// ingest parses body and, when it parsed whole, emits it.
func (t *target) ingest(format expfmt.Format, body []byte) error {
	if err := t.parse(format, body); err != nil {
		t.m.abort()
		return err
	}
	t.m.commit(t.w)
	return nil
}

// parse takes body's samples into the mapper's pending ones. A panic in a
// parser, on a body nobody foresaw, is a parse failure of that body, not the
// end of the source.
func (t *target) parse(format expfmt.Format, body []byte) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("the parser failed: %v", r)
		}
	}()
	var p textparse.Parser
	if format.FormatType() == expfmt.TypeOpenMetrics {
		p = textparse.NewOpenMetricsParser(body)
	} else {
		// The text format, and what does not say what it is: the text
		// format is the fallback Prometheus itself used.
		if n := blankRun(body); n > maxBlankRun {
			return fmt.Errorf("%d blank lines in a row", n)
		}
		p = textparse.NewPromParser(body)
	}
	t.fam, t.typ = t.fam[:0], ""
	for {
		e, err := p.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		switch e {
		case textparse.EntryType:
			name, typ := p.Type()
			t.fam, t.typ = append(t.fam[:0], name...), typ
		case textparse.EntrySeries:
			met, _, v := p.Series()
			key := append(t.m.key[:0], typeCode(t.typ))
			key = append(append(append(key, t.fam...), 0xff), met...)
			t.m.key = key
			s := t.m.lookup(key)
			if s == nil {
				s = t.build(p, key)
			}
			t.m.add(s, v)
		}
	}
}

// Type codes in a series' key: the family's type is part of what a sample
// means.
func typeCode(t textparse.MetricType) byte {
	switch t {
	case textparse.MetricTypeCounter:
		return 'c'
	case textparse.MetricTypeGauge:
		return 'g'
	case textparse.MetricTypeHistogram:
		return 'h'
	case textparse.MetricTypeGaugeHistogram:
		return 'H'
	case textparse.MetricTypeSummary:
		return 's'
	case textparse.MetricTypeInfo:
		return 'i'
	case textparse.MetricTypeStateset:
		return 'S'
	}
	return 'u'
}

// build maps a series first seen: what part it is of the family the last
// TYPE line named, if any.
func (t *target) build(p textparse.Parser, key []byte) *series {
	t.lbls = t.lbls[:0]
	p.Metric(&t.lbls)
	sample := t.lbls.Get(labels.MetricName)
	fam := string(t.fam)
	// A sample of no family the last TYPE line named is untyped: a gauge
	// of its own name, as Prometheus takes it.
	part, family, bound, gauges := partGauge, sample, 0.0, false
	switch t.typ {
	case textparse.MetricTypeCounter:
		switch sample {
		case fam, fam + "_total": // the text format's name, OpenMetrics'
			part = partCounter
		case fam + "_created":
			part = partSkip
		}
	case textparse.MetricTypeSummary:
		switch sample {
		case fam:
			part, family, bound = partQuantile, fam, boundOf(t.lbls.Get("quantile"))
		case fam + "_sum":
			part, family = partSum, fam
		case fam + "_count":
			part, family = partCount, fam
		case fam + "_created":
			part = partSkip
		}
	case textparse.MetricTypeHistogram, textparse.MetricTypeGaugeHistogram:
		h := t.typ == textparse.MetricTypeHistogram
		switch {
		case sample == fam+"_bucket":
			part, family, bound, gauges = partBucket, fam, boundOf(t.lbls.Get("le")), !h
		case h && sample == fam+"_sum" || !h && sample == fam+"_gsum":
			part, family, gauges = partSum, fam, !h
		case h && sample == fam+"_count" || !h && sample == fam+"_gcount":
			part, family, gauges = partCount, fam, !h
		case sample == fam+"_created":
			part = partSkip
		}
	}
	// Gauges, untyped (unknown), info (NAME_info, 1) and stateset (one 0
	// or 1 a state) are gauges of the sample's name.
	kvs := t.kvs[:0]
	for _, l := range t.lbls {
		switch {
		case l.Name == labels.MetricName,
			part == partQuantile && l.Name == "quantile",
			part == partBucket && l.Name == "le":
			continue
		}
		kvs = append(kvs, kv{l.Name, l.Value})
	}
	t.kvs = kvs
	// Metric sorts the labels, the name first.
	canon := append(t.m.ckey[:0], typeCode(t.typ))
	canon = append(append(canon, t.fam...), 0xff)
	for _, l := range t.lbls {
		canon = append(append(append(append(canon, l.Name...), 0xfe), l.Value...), 0xfd)
	}
	t.m.ckey = canon
	return t.m.build(key, canon, family, part, kvs, bound, gauges)
}

// boundOf reads a bucket's or quantile's bound; NaN when it has none.
func boundOf(s string) float64 {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return math.NaN()
	}
	return f
}

// blankRun returns the most blank lines (empty, or spaces and tabs) in a
// row in b.
func blankRun(b []byte) int {
	run, most := 0, 0
	for len(b) > 0 {
		line := b
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			b = nil
		}
		blank := true
		for _, c := range line {
			if c != ' ' && c != '\t' {
				blank = false
				break
			}
		}
		if blank {
			run++
			most = max(most, run)
		} else {
			run = 0
		}
	}
	return most
}
