package receivers

import (
	"compress/zlib"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
)

// DatadogAPI is Datadog's intake API as Veneur's datadog sink posts to it,
// on 127.0.0.1 until the test ends: it records every request, its body
// inflated, and accepts it. Veneur posts each flush's events to /intake,
// its service checks to /api/v1/check_run and its series to /api/v1/series,
// in that order.
type DatadogAPI struct {
	URL string // point Veneur's api_hostname here

	mu    sync.Mutex
	posts []DatadogPost
}

// DatadogPost is one request DatadogAPI received.
type DatadogPost struct {
	Path string
	Body []byte // inflated
}

// DatadogSeries is one series of a /api/v1/series body.
type DatadogSeries struct {
	Metric string       `json:"metric"`
	Points [][2]float64 `json:"points"`
	Tags   []string     `json:"tags"`
	Type   string       `json:"type"`
}

// StartDatadogAPI starts a DatadogAPI, stopped at the end of the test.
func StartDatadogAPI(t testing.TB) *DatadogAPI {
	a := &DatadogAPI{}
	srv := httptest.NewServer(a)
	t.Cleanup(srv.Close)
	a.URL = srv.URL
	return a
}

func (a *DatadogAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var body io.Reader = r.Body
	if r.Header.Get("Content-Encoding") == "deflate" {
		z, err := zlib.NewReader(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		body = z
	}
	b, err := io.ReadAll(body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	a.mu.Lock()
	a.posts = append(a.posts, DatadogPost{Path: r.URL.Path, Body: b})
	a.mu.Unlock()
	w.WriteHeader(http.StatusAccepted)
}

// Posts returns the requests received so far, in order.
func (a *DatadogAPI) Posts() []DatadogPost {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]DatadogPost(nil), a.posts...)
}

// Reset forgets the requests received so far.
func (a *DatadogAPI) Reset() {
	a.mu.Lock()
	a.posts = nil
	a.mu.Unlock()
}

// Series returns every series posted so far, in order. A body that is not
// a series body fails the test.
func (a *DatadogAPI) Series(t testing.TB) []DatadogSeries {
	t.Helper()
	var out []DatadogSeries
	for _, p := range a.Posts() {
		if p.Path == "/api/v1/series" {
			out = append(out, DecodeDatadogSeries(t, p.Body)...)
		}
	}
	return out
}

// DecodeDatadogSeries decodes a /api/v1/series body, failing the test if it
// is not one.
func DecodeDatadogSeries(t testing.TB, body []byte) []DatadogSeries {
	t.Helper()
	var s struct {
		Series []DatadogSeries `json:"series"`
	}
	if err := json.Unmarshal(body, &s); err != nil {
		t.Fatalf("Veneur posted a bad series body: %v\n%s", err, body)
	}
	return s.Series
}
