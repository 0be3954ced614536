package datadog_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/veneurd/veneurd/internal/daemontest"
)

// The bodies of Datadog's API, as its documentation describes them
// (https://docs.datadoghq.com/api/latest/metrics/#submit-metrics,
// .../service-checks/#submit-a-service-check, .../events/#post-an-event).
// The fake API decodes each request into them, refusing unknown fields.
type (
	v1Series struct {
		Series []struct {
			Metric     string       `json:"metric"`
			Points     [][2]float64 `json:"points"`
			Type       string       `json:"type"`
			Interval   int64        `json:"interval"`
			Host       string       `json:"host"`
			DeviceName string       `json:"device_name"`
			Tags       []string     `json:"tags"`
		} `json:"series"`
	}
	checkRun struct {
		Check     string   `json:"check"`
		Status    int      `json:"status"`
		HostName  string   `json:"host_name"`
		Timestamp int64    `json:"timestamp"`
		Message   string   `json:"message"`
		Tags      []string `json:"tags"`
	}
	event struct {
		Title          string   `json:"title"`
		Text           string   `json:"text"`
		DateHappened   int64    `json:"date_happened"`
		Priority       string   `json:"priority"`
		Host           string   `json:"host"`
		Tags           []string `json:"tags"`
		AlertType      string   `json:"alert_type"`
		AggregationKey string   `json:"aggregation_key"`
		SourceTypeName string   `json:"source_type_name"`
	}
)

// request is one series request the fake API answered.
type request struct {
	at     time.Time
	status int
	body   string
}

// fakeAPI checks requests against Datadog's documented API and records
// them. It answers the first series request 503 with Retry-After: 1 and
// every check_run request 400, quoting the API key.
type fakeAPI struct {
	*httptest.Server
	key    string
	mu     sync.Mutex
	series []request
	checks []checkRun
	events []event
	errors []string
}

func newFakeAPI(t *testing.T, key string) *fakeAPI {
	a := &fakeAPI{key: key}
	a.Server = httptest.NewServer(http.HandlerFunc(a.serve))
	t.Cleanup(a.Close)
	return a
}

func (a *fakeAPI) fail(format string, args ...any) {
	a.errors = append(a.errors, fmt.Sprintf(format, args...))
}

func (a *fakeAPI) serve(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if r.Method != http.MethodPost || r.Header.Get("DD-API-KEY") != a.key || r.Header.Get("Content-Type") != "application/json" ||
		r.URL.RawQuery != "" {
		a.fail("%s %s?%s: Content-Type %q, DD-API-KEY %t: want a POST with the key in DD-API-KEY and no query",
			r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Get("Content-Type"), r.Header.Get("DD-API-KEY") == a.key)
		w.WriteHeader(http.StatusForbidden)
		return
	}
	b, err := body(r)
	if err != nil {
		a.fail("%v", err)
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	switch r.URL.Path {
	case "/api/v1/series":
		var s v1Series
		if err := dec.Decode(&s); err != nil {
			a.fail("series: %v\n%s", err, b)
		}
		for _, m := range s.Series {
			if m.Metric == "" || len(m.Points) != 1 || (m.Type != "rate" && m.Type != "gauge") || m.Interval != 1 || m.Host == "" {
				a.fail("series: %+v is not a series as Veneur sends it", m)
			}
		}
		status := http.StatusAccepted
		if len(a.series) == 0 {
			status = http.StatusServiceUnavailable
			w.Header().Set("Retry-After", "1")
		}
		a.series = append(a.series, request{at: time.Now(), status: status, body: string(b)})
		w.WriteHeader(status)
		io.WriteString(w, `{"errors":[]}`)
	case "/api/v1/check_run":
		var cs []checkRun
		if err := dec.Decode(&cs); err != nil {
			a.fail("check_run: %v\n%s", err, b)
		}
		a.checks = append(a.checks, cs...)
		w.WriteHeader(http.StatusBadRequest)
		io.WriteString(w, `{"errors":["API key `+a.key+` may not post checks"]}`)
	case "/api/v1/events":
		var e event
		if err := dec.Decode(&e); err != nil {
			a.fail("events: %v\n%s", err, b)
		}
		a.events = append(a.events, e)
		w.WriteHeader(http.StatusAccepted)
		io.WriteString(w, `{"status":"ok"}`)
	default:
		a.fail("request to %s, which is not an endpoint the sink uses", r.URL.Path)
		w.WriteHeader(http.StatusNotFound)
	}
}

// waitSeries waits for n series requests.
func (a *fakeAPI) waitSeries(t *testing.T, n int, timeout time.Duration) {
	t.Helper()
	if !daemontest.Until(timeout, func() bool {
		a.mu.Lock()
		defer a.mu.Unlock()
		return len(a.series) >= n
	}) {
		t.Fatalf("%d series requests within %s, want %d", len(a.series), timeout, n)
	}
}
