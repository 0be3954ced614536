package openmetrics

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/veneurd/veneurd/sdk"
	"github.com/veneurd/veneurd/sdk/delivery"
)

// Defaults. A source block is not told the pipeline's interval, so the
// scrape interval defaults to veneurd's default interval, 10s.
const (
	DefaultScrapeInterval = 10 * time.Second
	DefaultMaxBodyBytes   = 10 << 20
	DefaultBucketTag      = "le"
	minScrapeInterval     = 100 * time.Millisecond
	maxMaxBodyBytes       = 1 << 30
)

// Config is the openmetrics source's block.
type Config struct {
	Targets        []string `hcl:"targets" description:"URLs to scrape, such as [\"http://127.0.0.1:9100/metrics\"]"`
	ScrapeInterval string   `hcl:"scrape_interval,optional" description:"how often each target is scraped, e.g. \"10s\" (default 10s, veneurd's default interval)"`
	// Timeout bounds a whole scrape: connecting, the answer and reading
	// its body. It cannot exceed the interval, so that a target's scrapes
	// never overlap.
	Timeout string `hcl:"timeout,optional" description:"how long one scrape may take, at most scrape_interval (default scrape_interval)"`
	// BearerToken is sent as Authorization: Bearer TOKEN; read it with
	// env() or file().
	BearerToken string        `hcl:"bearer_token,optional" sensitive:"true" description:"sent as Authorization: Bearer TOKEN; read it with env() or file()"`
	TLS         *delivery.TLS `hcl:"tls,block" description:"TLS settings for https targets"`
	// MaxBodyBytes bounds a response body, after decompression; a larger
	// one is refused whole and counted.
	MaxBodyBytes int               `hcl:"max_body_bytes,optional" description:"largest response body taken, in bytes, after decompression (default 10485760)"`
	AddTags      map[string]string `hcl:"add_tags,optional" description:"tags every scraped series gets, replacing labels of the same names, such as { env = \"prod\" }"`
	Ignore       []string          `hcl:"ignore,optional" description:"regular expressions; a metric family whose whole name one matches is not emitted"`
	IgnoreLabels []string          `hcl:"ignore_labels,optional" description:"regular expressions; a label whose whole name one matches does not become a tag"`
	Rename       map[string]string `hcl:"rename,optional" description:"regular expression of a whole family name to its new name, with $1 for groups, such as { \"node_(.*)\" = \"host.$1\" }"`
	// InstanceTag, when set, tags every series with the host:port of its
	// target, so that two targets exposing the same series (every Go
	// program's go_* and process_*) stay apart.
	InstanceTag string `hcl:"instance_tag,optional" description:"tag key under which each series gets its target's host:port, such as \"instance\" (default none)"`
	// HistogramBucketTag is the tag a histogram bucket's upper bound goes
	// in; "" names the bucket instead, as veneur-prometheus did.
	HistogramBucketTag string `hcl:"histogram_bucket_tag,optional" description:"tag key of a histogram bucket's upper bound on NAME.bucket (default \"le\"); \"\" names buckets NAME.le<bound> as veneur-prometheus did"`

	settings settings
}

// settings are a Config checked and resolved.
type settings struct {
	targets      []*url.URL
	interval     time.Duration
	timeout      time.Duration
	maxBodyBytes int64
	tls          *tls.Config
	rules        *rules
}

func defaultConfig() *Config {
	return &Config{ScrapeInterval: DefaultScrapeInterval.String(), MaxBodyBytes: DefaultMaxBodyBytes, HistogramBucketTag: DefaultBucketTag}
}

// validate checks every value and reports every problem, joined.
func (c *Config) validate() error {
	var errs []error
	bad := func(attr, summary, format string, args ...any) {
		errs = append(errs, &sdk.AttrError{Attribute: attr, Summary: summary, Detail: fmt.Sprintf(format, args...)})
	}
	s := settings{maxBodyBytes: int64(c.MaxBodyBytes), rules: &rules{bucketTag: c.HistogramBucketTag}}

	if len(c.Targets) == 0 {
		bad("targets", "No targets", "targets lists the URLs to scrape, such as [\"http://127.0.0.1:9100/metrics\"].")
	}
	for i, t := range c.Targets {
		u, err := url.Parse(t)
		switch {
		case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
			bad("targets", "Invalid target", "Target %d, %q, is not an http or https URL such as \"http://127.0.0.1:9100/metrics\".", i+1, redactURL(t))
		case u.User != nil:
			// Credentials in a URL show wherever the URL does: in the
			// target tag, in logs, in the rendered config.
			bad("targets", "Credentials in a target", "%q holds credentials: give a token in bearer_token (read with env() or file()) instead.", redactURL(t))
		case slices.Contains(c.Targets[:i], t):
			bad("targets", "Duplicate target", "%q is listed twice.", t)
		default:
			s.targets = append(s.targets, u)
		}
	}

	s.interval = DefaultScrapeInterval
	if d, err := time.ParseDuration(c.ScrapeInterval); err != nil || d < minScrapeInterval {
		bad("scrape_interval", "Invalid interval", "%q is not a duration of at least %s, such as \"10s\".", c.ScrapeInterval, minScrapeInterval)
	} else {
		s.interval = d
	}
	s.timeout = s.interval
	if c.Timeout != "" {
		d, err := time.ParseDuration(c.Timeout)
		switch {
		case err != nil || d <= 0:
			bad("timeout", "Invalid duration", "%q is not a positive duration such as \"5s\".", c.Timeout)
		case d > s.interval:
			bad("timeout", "Timeout longer than the interval",
				"timeout (%s) must not exceed scrape_interval (%s): a target's scrapes would overlap.", d, s.interval)
		default:
			s.timeout = d
		}
	}
	if c.MaxBodyBytes < 1024 || c.MaxBodyBytes > maxMaxBodyBytes {
		bad("max_body_bytes", "Body size out of range", "max_body_bytes must be between 1024 and %d bytes, not %d.", maxMaxBodyBytes, c.MaxBodyBytes)
	}
	if strings.ContainsAny(c.BearerToken, "\r\n") {
		// Never quote the token.
		bad("bearer_token", "Invalid token", "bearer_token holds a line break, which no header can carry (a file read with file() loses one trailing newline only).")
	}
	if tc, err := c.TLS.Config(); err != nil {
		errs = append(errs, err)
	} else {
		s.tls = tc
	}

	r := s.rules
	for _, p := range c.Ignore {
		re, err := wholeMatch(p)
		if err != nil {
			bad("ignore", "Invalid regular expression", "%q: %v.", p, err)
			continue
		}
		r.ignore = append(r.ignore, re)
	}
	for _, p := range c.IgnoreLabels {
		re, err := wholeMatch(p)
		if err != nil {
			bad("ignore_labels", "Invalid regular expression", "%q: %v.", p, err)
			continue
		}
		r.ignoreLabels = append(r.ignoreLabels, re)
	}
	// A map has no order: rules are tried in the order of their patterns,
	// sorted, so that the outcome never depends on how HCL lists them.
	patterns := make([]string, 0, len(c.Rename))
	for p := range c.Rename {
		patterns = append(patterns, p)
	}
	slices.Sort(patterns)
	for _, p := range patterns {
		re, err := wholeMatch(p)
		if err != nil {
			bad("rename", "Invalid regular expression", "%q: %v.", p, err)
			continue
		}
		r.rename = append(r.rename, renameRule{re: re, repl: c.Rename[p]})
	}
	keys := make([]string, 0, len(c.AddTags))
	for k := range c.AddTags {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if k == "" || strings.ContainsAny(k, ":,") || strings.Contains(c.AddTags[k], ",") {
			bad("add_tags", "Invalid tag", "%q = %q: a tag key is not empty and holds no ':' or ',', and a value holds no ','.", k, c.AddTags[k])
			continue
		}
		r.fixed = append(r.fixed, kv{k, c.AddTags[k]})
	}
	for name, v := range map[string]string{"instance_tag": c.InstanceTag, "histogram_bucket_tag": c.HistogramBucketTag} {
		if strings.ContainsAny(v, ":,") {
			bad(name, "Invalid tag key", "%q: a tag key holds no ':' or ','.", v)
		}
	}
	if c.InstanceTag != "" && c.InstanceTag == c.HistogramBucketTag {
		bad("instance_tag", "Tag key taken", "instance_tag and histogram_bucket_tag are both %q.", c.InstanceTag)
	}
	if _, ok := c.AddTags[c.InstanceTag]; ok && c.InstanceTag != "" {
		bad("instance_tag", "Tag key taken", "add_tags sets %q too.", c.InstanceTag)
	}
	if _, ok := c.AddTags[c.HistogramBucketTag]; ok && c.HistogramBucketTag != "" {
		bad("add_tags", "Tag key taken", "%q is histogram_bucket_tag, the key of a bucket's upper bound.", c.HistogramBucketTag)
	}
	r.instanceTag = c.InstanceTag
	if err := errors.Join(errs...); err != nil {
		return err
	}
	c.settings = s
	return nil
}

// wholeMatch compiles p to match whole names, as Prometheus's relabelling
// does: "go_.*" takes go_goroutines and not cargo_total.
func wholeMatch(p string) (*regexp.Regexp, error) {
	if _, err := regexp.Compile(p); err != nil {
		return nil, err
	}
	return regexp.Compile(`^(?:` + p + `)$`)
}

// redactURL hides a URL's password, for error messages.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}
