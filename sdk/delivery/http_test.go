package delivery

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/klauspost/compress/gzip"

	"github.com/veneurd/veneurd/sdk"
)

const apiKey = "0123456789abcdef-secret-key"

func testClient(t *testing.T, h HTTP) *Client {
	t.Helper()
	s, err := h.Check()
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewClient(h, s, "veneurd-test", apiKey)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// TestClientClassifies checks what Send makes of each kind of answer, and
// that the request carries the headers and the compressed body.
func TestClientClassifies(t *testing.T) {
	var status int
	var retryAfter string
	var got http.Header
	var body []byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r.Header.Clone()
		zr, err := gzip.NewReader(r.Body)
		if err == nil {
			body, _ = io.ReadAll(zr)
		}
		if retryAfter != "" {
			w.Header().Set("Retry-After", retryAfter)
		}
		w.WriteHeader(status)
		io.WriteString(w, `{"errors":["bad key `+apiKey+`"]}`)
	}))
	defer srv.Close()
	c := testClient(t, HTTP{Headers: map[string]string{"X-Team": "metrics"}})
	dest := &Dest{URL: srv.URL + "/api/v1/series", ContentType: "application/json", Compression: Gzip,
		Header: http.Header{"Dd-Api-Key": {apiKey}}}
	send := func() error {
		return c.Send(context.Background(), &Payload{Dest: dest, Body: Gzip.Compress([]byte(`{"series":[]}`)), Points: 1})
	}

	status = 202
	if err := send(); err != nil {
		t.Fatalf("202: %v", err)
	}
	if string(body) != `{"series":[]}` || got.Get("Content-Encoding") != "gzip" || got.Get("Dd-Api-Key") != apiKey ||
		got.Get("X-Team") != "metrics" || got.Get("Content-Type") != "application/json" || got.Get("User-Agent") != "veneurd-test" {
		t.Errorf("request: headers %v, body %q", got, body)
	}

	var retry *RetryError
	status, retryAfter = 503, "7"
	err := send()
	if !errors.As(err, &retry) || retry.After != 7*time.Second {
		t.Errorf("503 with Retry-After 7: %#v", err)
	}
	status, retryAfter = 429, ""
	if err := send(); !errors.As(err, &retry) || retry.After != 0 {
		t.Errorf("429: %#v", err)
	}
	status = 400
	err = send()
	if err == nil || errors.As(err, &retry) {
		t.Fatalf("400 is not to be retried: %#v", err)
	}
	if strings.Contains(err.Error(), apiKey) || !strings.Contains(err.Error(), "400 Bad Request") ||
		!strings.Contains(err.Error(), "bad key (sensitive)") {
		t.Errorf("400's error shows the answer, scrubbed: %v", err)
	}

	srv.Close()
	if err := send(); !errors.As(err, &retry) {
		t.Errorf("a refused connection is retried: %#v", err)
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	f := func(h string, want time.Duration) {
		t.Helper()
		if got := retryAfter(h, now); got != want {
			t.Errorf("retryAfter(%q) = %s, want %s", h, got, want)
		}
	}
	f("", 0)
	f("3", 3*time.Second)
	f(" 3 ", 3*time.Second)
	f("-1", 0)
	f("soon", 0)
	f("Mon, 30 Nov 2026 12:00:10 GMT", 10*time.Second)
	f("Mon, 30 Nov 2026 11:00:00 GMT", 0)
	f("86400", maxRetryAfter)
}

// TestQueueHonoursRetryAfter checks, over real HTTP, that a 503 with
// Retry-After is retried after it, and the points then arrive; and that a
// 400 is dropped, counted, logged once with its answer, never retried, and
// that neither the log nor the count's tags show the API key.
func TestQueueHonoursRetryAfter(t *testing.T) {
	var mu sync.Mutex
	var attempts []time.Time
	answer := []int{503, 200}
	delivered := make(chan struct{}) // closed when the receiver answers 200
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		attempts = append(attempts, time.Now())
		code := 400
		if len(answer) > 0 {
			code, answer = answer[0], answer[1:]
		}
		if code == 200 {
			defer close(delivered)
		}
		w.Header().Set("Retry-After", "1")
		w.WriteHeader(code)
		io.WriteString(w, "no such key: "+apiKey)
	}))
	defer srv.Close()
	var logs bytes.Buffer
	var logMu sync.Mutex
	log := hclog.New(&hclog.LoggerOptions{Output: writerFunc(func(b []byte) { logMu.Lock(); logs.Write(b); logMu.Unlock() })})
	stats := sdk.NewStats()
	c := testClient(t, HTTP{})
	q := NewQueue(c, QueueConfig{Settings: Settings{MaxBufferedPoints: 100, MaxInFlight: 1, MaxRetryBackoff: time.Second},
		Stats: stats, Log: log, Secrets: []string{apiKey}})
	dest := &Dest{URL: srv.URL, ContentType: "text/plain", Header: http.Header{"Dd-Api-Key": {apiKey}}}
	q.Send(dest, []byte("a 1"), 5)
	select {
	case <-delivered:
	case <-time.After(10 * time.Second):
		t.Fatal("the retried request was not delivered within 10s")
	}
	mu.Lock()
	if len(attempts) != 2 || attempts[1].Sub(attempts[0]) < time.Second {
		t.Errorf("attempts at %v: want a retry after Retry-After's second", attempts)
	}
	mu.Unlock()
	if n := stats.Counter(Retries).Value(); n != 1 {
		t.Errorf("%s = %d, want 1", Retries, n)
	}
	q.Send(dest, []byte("a 1"), 3)
	q.Send(dest, []byte("a 1"), 4)
	q.Stop(context.Background())
	if n := stats.Counter(MetricsDropped, "reason:"+ReasonRejected).Value(); n != 7 {
		t.Errorf("rejected points counted %d, want 7", n)
	}
	mu.Lock()
	if len(attempts) != 4 {
		t.Errorf("%d attempts, want 4: rejected requests are not retried", len(attempts))
	}
	mu.Unlock()
	logMu.Lock()
	defer logMu.Unlock()
	if strings.Contains(logs.String(), apiKey) {
		t.Errorf("the API key is in the logs:\n%s", logs.String())
	}
	if n := strings.Count(logs.String(), "receiver rejected a request"); n != 1 {
		t.Errorf("rejections logged %d times in one period, want once:\n%s", n, logs.String())
	}
	if !strings.Contains(logs.String(), "no such key: (sensitive)") {
		t.Errorf("the rejection's answer is not logged:\n%s", logs.String())
	}
}

type writerFunc func([]byte)

func (f writerFunc) Write(b []byte) (int, error) { f(b); return len(b), nil }
