package match

import (
	"slices"
	"strings"
	"unsafe"
)

// Policy is a sink's tag policy: what the sink receives of each point routed
// to it. It changes that sink's copy alone; other sinks get the point as it
// was.
type Policy struct {
	// AddTags are upserted by key: "key:value", or "key" for an empty value,
	// sorted. A point's own tags of those keys are replaced.
	AddTags []string
	// StripTags are keys whose tags are removed ("env" removes "env:prod"
	// and a bare "env").
	StripTags []string
	// Limits on what the sink receives, after AddTags and StripTags; 0 for
	// none. A point over a limit is dropped for the sink, and counted.
	MaxNameLength int
	MaxTagLength  int
	MaxTags       int
}

// IsZero reports whether the policy changes nothing.
func (p *Policy) IsZero() bool {
	return len(p.AddTags) == 0 && len(p.StripTags) == 0 && p.MaxNameLength == 0 && p.MaxTagLength == 0 && p.MaxTags == 0
}

// Reason says why a policy drops a point, or that it keeps it.
type Reason uint8

// Reasons, named as veneur.sink.metrics_dropped_total's reason tag.
const (
	Kept Reason = iota
	NameTooLong
	TagTooLong
	TooManyTags
	Reasons
)

var reasonNames = [Reasons]string{"", "max_name_length", "max_tag_length", "max_tags"}

func (r Reason) String() string { return reasonNames[r] }

// TagKey returns a tag's key: what comes before its first ':', or the whole
// tag.
func TagKey(tag string) string {
	k, _, _ := strings.Cut(tag, ":")
	return k
}

// Tags returns tags (sorted, comma-joined) as the policy leaves them, and
// whether they break a tag limit (the tags are returned either way). Tags it
// leaves alone are returned as given, not copied; others are built in one
// allocation, merging the point's tags with AddTags (both sorted).
func (p *Policy) Tags(tags string) (string, Reason) {
	if len(p.AddTags) == 0 && !p.strips(tags) {
		return tags, p.check(tags)
	}
	n := len(tags)
	for _, a := range p.AddTags {
		n += len(a) + 1
	}
	buf := make([]byte, 0, n)
	add := p.AddTags
	for rest := tags; rest != ""; {
		var t string
		t, rest, _ = strings.Cut(rest, ",")
		if p.removesKey(TagKey(t)) {
			continue
		}
		for len(add) > 0 && add[0] < t {
			buf = appendTag(buf, add[0])
			add = add[1:]
		}
		buf = appendTag(buf, t)
	}
	for _, a := range add {
		buf = appendTag(buf, a)
	}
	out := unsafe.String(unsafe.SliceData(buf), len(buf))
	return out, p.check(out)
}

func appendTag(buf []byte, t string) []byte {
	if len(buf) > 0 {
		buf = append(buf, ',')
	}
	return append(buf, t...)
}

// EventTags is Tags for an event's tags, which it does not change in place.
func (p *Policy) EventTags(tags []string) ([]string, Reason) {
	out := tags
	if len(p.AddTags) > 0 || slices.ContainsFunc(tags, p.stripped) {
		out = make([]string, 0, len(tags)+len(p.AddTags))
		for _, t := range tags {
			if !p.replaces(t) {
				out = append(out, t)
			}
		}
		out = append(out, p.AddTags...)
		slices.Sort(out)
	}
	return out, p.check(strings.Join(out, ","))
}

// Name reports whether a point named name+suffix is over the name limit.
func (p *Policy) Name(name, suffix string) Reason {
	if p.MaxNameLength > 0 && len(name)+len(suffix) > p.MaxNameLength {
		return NameTooLong
	}
	return Kept
}

func (p *Policy) check(tags string) Reason {
	if p.MaxTags == 0 && p.MaxTagLength == 0 {
		return Kept
	}
	n := 0
	for rest := tags; rest != ""; n++ {
		var t string
		t, rest, _ = strings.Cut(rest, ",")
		if p.MaxTagLength > 0 && len(t) > p.MaxTagLength {
			return TagTooLong
		}
	}
	if p.MaxTags > 0 && n > p.MaxTags {
		return TooManyTags
	}
	return Kept
}

// strips reports whether one of tags has a key StripTags removes.
func (p *Policy) strips(tags string) bool {
	if len(p.StripTags) == 0 {
		return false
	}
	for rest := tags; rest != ""; {
		var t string
		t, rest, _ = strings.Cut(rest, ",")
		if p.stripped(t) {
			return true
		}
	}
	return false
}

func (p *Policy) stripped(tag string) bool { return slices.Contains(p.StripTags, TagKey(tag)) }

// replaces reports whether the policy removes tag: it strips its key, or
// adds a tag of the same key.
func (p *Policy) replaces(tag string) bool { return p.removesKey(TagKey(tag)) }

// removesKey reports whether the policy removes the tags of key k.
func (p *Policy) removesKey(k string) bool {
	if slices.Contains(p.StripTags, k) {
		return true
	}
	for _, a := range p.AddTags { // a's key is k: "k" or "k:..."
		if len(a) >= len(k) && a[:len(k)] == k && (len(a) == len(k) || a[len(k)] == ':') {
			return true
		}
	}
	return false
}

// Rewrite applies a Policy for one flush: a series' tags are rewritten once
// for all its points, and a set of tags many series share (a host's, a
// service's) once for all of them, up to maxRewritten sets. Not safe for
// concurrent use.
type Rewrite struct {
	p      *Policy
	in     string
	out    string
	why    Reason
	primed bool
	seen   map[string]rewritten
}

type rewritten struct {
	tags string
	why  Reason
}

// maxRewritten bounds the tag sets a Rewrite remembers in one flush.
const maxRewritten = 1 << 16

// Rewrite returns the policy's state for one flush.
func (p *Policy) Rewrite() *Rewrite { return &Rewrite{p: p, seen: map[string]rewritten{}} }

// Point returns the tags a point named name+suffix with tags gets, or why
// the policy drops it.
func (w *Rewrite) Point(name, suffix, tags string) (string, Reason) {
	if !w.primed || !sameString(tags, w.in) {
		w.in, w.primed = tags, true
		if r, ok := w.seen[tags]; ok {
			w.out, w.why = r.tags, r.why
		} else {
			w.out, w.why = w.p.Tags(tags)
			if len(w.seen) < maxRewritten {
				w.seen[tags] = rewritten{w.out, w.why}
			}
		}
	}
	if w.why != Kept {
		return "", w.why
	}
	if why := w.p.Name(name, suffix); why != Kept {
		return "", why
	}
	return w.out, Kept
}
