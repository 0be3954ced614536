package receivers

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/veneurd/veneurd/internal/daemontest"
)

// Influx is a running InfluxDB 1.6 (Debian's influxdb): the receiver for an
// InfluxDB line-protocol sink, written to at URL+"/write?db="+DB.
//
// How line protocol lands (found by experiment; the tests check them):
//   - A line is measurement, tags, fields, timestamp: the measurement and
//     tag keys and values are kept as sent (dots and all), unescaped. A
//     series is the measurement and its tag set, whatever their order.
//   - Fields keep their types: 1.5 float, 2i integer, true boolean, "str"
//     string. A field that changes type within a shard is refused: the
//     write answers 400 "partial write: field type conflict ... dropped=N",
//     and the other lines of the request are stored.
//   - Timestamps are nanoseconds unless precision= (s, ms, u, n) says
//     otherwise, and are kept exactly; a line without one gets the server's
//     clock in nanoseconds. Any age is taken (the default retention policy,
//     autogen, keeps everything; 1970 is fine).
//   - Another write of the same series at the same timestamp replaces the
//     fields it names (last write wins).
//   - A write to a database that does not exist answers 404 "database not
//     found"; a good one answers 204, and is visible to queries at once.
type Influx struct {
	// URL is the base URL of the HTTP API, "http://127.0.0.1:PORT".
	URL string
	// DB is the database created at start.
	DB string
	// RPC is the address of the backup/restore RPC service, bound on
	// loopback so that it takes no shared port.
	RPC string

	proc *process
}

// InfluxDB starts an InfluxDB with its meta, data and WAL in a temporary
// directory and a database "veneurd", and returns once it answers /ping.
// It is stopped when the test ends. The test is skipped when influxd is not
// installed.
//
// The generated config: reporting-disabled, bind-address 127.0.0.1:RPC,
// [meta] dir, [data] dir and wal-dir in the temporary directory, [http]
// bind-address 127.0.0.1:P; and off what would write elsewhere or on its
// own: the monitor's _internal database, continuous queries, subscriptions,
// the query and HTTP request logs.
func InfluxDB(t testing.TB) *Influx {
	t.Helper()
	bin := systemBinary(t, "influxd", "influxdb")
	dir := t.TempDir()
	httpAddr := daemontest.FreePort(t, "tcp")
	i := &Influx{URL: "http://" + httpAddr, DB: "veneurd", RPC: daemontest.FreePort(t, "tcp")}
	config := filepath.Join(dir, "influxdb.conf")
	conf := fmt.Sprintf(`reporting-disabled = true
bind-address = %q
[meta]
  dir = %q
  logging-enabled = false
[data]
  dir = %q
  wal-dir = %q
  query-log-enabled = false
[monitor]
  store-enabled = false
[http]
  bind-address = %q
  log-enabled = false
[continuous_queries]
  enabled = false
[subscriber]
  enabled = false
`, i.RPC, filepath.Join(dir, "meta"), filepath.Join(dir, "data"), filepath.Join(dir, "wal"), httpAddr)
	if err := os.WriteFile(config, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	i.proc = startProcess(t, "influxd", dir, nil, func() error {
		return httpOK(i.URL + "/ping")
	}, bin, "run", "-config", config)
	i.CreateDatabase(t, i.DB)
	return i
}

// Stop stops InfluxDB (SIGTERM).
func (i *Influx) Stop() { i.proc.Stop() }

// Start starts a stopped InfluxDB again on the same ports and directories,
// and waits until it answers.
func (i *Influx) Start() { i.proc.Start() }

// Output returns what InfluxDB logged.
func (i *Influx) Output() string { return i.proc.Output() }

// CreateDatabase creates database db (nothing if it exists).
func (i *Influx) CreateDatabase(t testing.TB, db string) {
	t.Helper()
	if _, err := i.query("", "CREATE DATABASE "+quoteIdent(db), true); err != nil {
		t.Fatal(err)
	}
}

// quoteIdent quotes an InfluxQL identifier.
func quoteIdent(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// Row is one series of an InfluxQL result.
type Row struct {
	Name    string            // measurement
	Tags    map[string]string // with GROUP BY: the series' tags
	Columns []string          // the first is "time"
	// Values has a row per point: time as int64 nanoseconds, numbers as
	// float64 (integer fields too), strings, booleans, nil for no value.
	Values [][]any
}

// Get returns the value of column col in row n, nil if there is no such
// column.
func (r Row) Get(n int, col string) any {
	for i, c := range r.Columns {
		if c == col && n < len(r.Values) && i < len(r.Values[n]) {
			return r.Values[n][i]
		}
	}
	return nil
}

// Query runs an InfluxQL query on database db and returns its rows, with
// times in nanoseconds (epoch=ns). Use GROUP BY * to have each series' tags
// in Tags rather than as columns.
func (i *Influx) Query(t testing.TB, db, influxql string) []Row {
	t.Helper()
	rows, err := i.query(db, influxql, false)
	if err != nil {
		t.Fatalf("influxdb query %s: %v", influxql, err)
	}
	return rows
}

// WaitQuery polls Query until cond holds of its result, and returns it;
// after timeout it fails the test, showing what it last saw.
func (i *Influx) WaitQuery(t testing.TB, db, influxql string, timeout time.Duration, cond func([]Row) bool) []Row {
	t.Helper()
	return waitFor(t, timeout, "influxdb query "+influxql, func() ([]Row, error) { return i.query(db, influxql, false) }, cond)
}

func (i *Influx) query(db, influxql string, write bool) ([]Row, error) {
	q := url.Values{"q": {influxql}, "epoch": {"ns"}}
	if db != "" {
		q.Set("db", db)
	}
	var body []byte
	var err error
	if write {
		resp, perr := client.PostForm(i.URL+"/query", q)
		if perr != nil {
			return nil, perr
		}
		body, err = readResponse(resp)
	} else {
		body, err = httpGet(i.URL + "/query?" + q.Encode())
	}
	if err != nil {
		return nil, err
	}
	var resp struct {
		Results []struct {
			Error  string `json:"error"`
			Series []struct {
				Name    string            `json:"name"`
				Tags    map[string]string `json:"tags"`
				Columns []string          `json:"columns"`
				Values  [][]any           `json:"values"`
			} `json:"series"`
		} `json:"results"`
		Error string `json:"error"`
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber() // times in nanoseconds do not fit a float64
	if err := dec.Decode(&resp); err != nil {
		return nil, fmt.Errorf("query answer %s: %v", body, err)
	}
	if resp.Error != "" {
		return nil, fmt.Errorf("%s", resp.Error)
	}
	var rows []Row
	for _, r := range resp.Results {
		if r.Error != "" {
			return nil, fmt.Errorf("%s", r.Error)
		}
		for _, s := range r.Series {
			row := Row{Name: s.Name, Tags: s.Tags, Columns: s.Columns, Values: s.Values}
			for _, vals := range row.Values {
				for c, v := range vals {
					n, ok := v.(json.Number)
					if !ok {
						continue
					}
					if c < len(row.Columns) && row.Columns[c] == "time" {
						vals[c], err = n.Int64()
					} else {
						vals[c], err = n.Float64()
					}
					if err != nil {
						return nil, fmt.Errorf("value %s of column %s: %v", n, row.Columns[c], err)
					}
				}
			}
			rows = append(rows, row)
		}
	}
	return rows, nil
}
