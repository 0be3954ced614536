// Package datadog encodes flushed points and events as the bodies of
// Datadog's HTTP API requests:
//
//   - SeriesV1: POST /api/v1/series, {"series":[...]}, as Veneur v14's
//     datadog sink wrote it;
//   - SeriesV2: POST /api/v2/series, {"series":[...]}, Datadog's v2 schema;
//   - CheckRuns: POST /api/v1/check_run, an array of service checks, made
//     from status points;
//   - Events: POST /api/v1/events, which takes one event per request.
//
// The encoders only build bodies: batching, compression, retries and HTTP
// are the delivery layer's (sdk/delivery). Each encoder is reused from one
// request to the next and allocates nothing per item once its buffer has
// grown to the size of a body. An encoder is not safe for concurrent use.
//
// # Encoder contract
//
// Reset empties the body, keeping the buffer. An append method (Point,
// Event) adds one item, or returns false and adds nothing when the item
// cannot be encoded (its doc says when). Len is the number of items since
// Reset, Size the length in bytes of the complete body so far, envelope
// included, and Body the complete body, valid until the next Reset or
// append; the caller copies it or sends it before touching the encoder
// again. A zero encoder is ready for use.
//
// # Mapping
//
// The magic tags of Veneur and the Datadog agent: a tag host:X sets the
// point's host to X, and device:X its device; both are removed from the
// tags. When several are present the last one wins (the tags are sorted),
// and an empty X leaves the point's own Hostname (as Veneur does). Strings
// are written as encoding/json writes them: each byte that is not part of
// valid UTF-8 becomes U+FFFD, control characters, quotes and backslashes are
// escaped, and so are <, >, &, U+2028 and U+2029. Names and tags are not
// otherwise changed: Datadog normalises metric names and tags on intake.
// NOTES.md has the details and examples.
//
// # Configuration (sketch, not built yet)
//
// The sink that uses these encoders is expected to take:
//
//	sink "datadog" NAME {
//	  api_key           = "..."                      # sensitive
//	  site              = "datadoghq.com"            # or api_url = "https://api.datadoghq.eu"
//	  series_api        = "v1"                       # "v1" (Veneur's) or "v2"
//	  counters_as_count = false                      # true: counters as "count", not rates
//	  events            = true                       # post events (one request each)
//	  service_checks    = true                       # post status points to check_run
//	}
//
// with the flush interval (SeriesV1.Interval, SeriesV2.Interval) taken from
// the daemon's interval and Events.Hostname from sdk.Env.Hostname.
package datadog
