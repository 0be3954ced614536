package receivers

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/veneurd/veneurd/internal/daemontest"
)

// CarbonCache is a running carbon-cache (Debian's graphite-carbon 1.1.7),
// storing whisper files: the receiver for a Graphite plaintext sink, written
// to over TCP at Line. (The constructor is Carbon; a type of that name could
// not share it.)
//
// How plaintext lines land (found by experiment and in carbon's source;
// the tests check them):
//   - A line is exactly "name value timestamp": a line with two fields (no
//     timestamp) or a name with a space is logged as invalid and dropped.
//     Timestamp -1 means now. A value "nan" is dropped.
//   - Timestamps are seconds, truncated to whole seconds
//     (MIN_TIMESTAMP_RESOLUTION = 1), then to the archive's step (1s here).
//     Several values for one name and second keep the last.
//   - Whisper keeps only what its retention covers (one day here): a point
//     older than that is dropped (its file is still created). A point in the
//     future is stored, but graphite-web and whisper-fetch do not show it
//     before its time comes; Points reads the file and shows it.
//   - An untagged name is a path: "a.b.c" is stored in a/b/c.wsp; the name
//     is not otherwise changed ("c-d_e:f" stays).
//   - A tagged name "name;k=v;..." is normalized first: the tags are sorted
//     (as the strings ";k=v", so "a.b" sorts before "a"), a repeated key
//     keeps its last value, a tag "name=..." is replaced by the name (and
//     then vanishes: "x;name=y" is stored as plain "x"), leading "~" of the
//     name are dropped ("~x;k=v" is "x;k=v"). It is stored under
//     _tagged/H[0:3]/H[3:6]/, with H the hex SHA-256 of the normalized name:
//     by default the file is H.wsp (TAG_HASH_FILENAMES), here it is the
//     normalized name with "." as "_DOT_" so that Metrics can list it. A tag
//     carbon refuses (empty value "k=", a key with "!" or "^", a value
//     starting with "~") is logged ("Error parsing metric") and the name is
//     stored un-normalized, as sent.
//   - Carbon holds points in its cache and writes them to the files in the
//     background, in rounds a second apart: a point shows in its file within
//     about a second. Wait for points with WaitPoints.
type CarbonCache struct {
	// Line is the plaintext line receiver, "127.0.0.1:PORT" (TCP).
	Line string
	// Pickle is the pickle receiver, "127.0.0.1:PORT".
	Pickle string
	// CacheQuery is the cache query port, "127.0.0.1:PORT".
	CacheQuery string
	// DataDir is the whisper tree (LOCAL_DATA_DIR).
	DataDir string

	proc *process
}

// retentionSeconds is the retention of the whisper files: one archive of
// one point a second for a day (storage-schemas.conf: pattern = .*,
// retentions = 1s:1d), so that no two points of a test share a slot and
// nothing is aggregated.
const retentionSeconds = 86400

// Carbon starts a carbon-cache in the foreground (--nodaemon) with a
// generated carbon.conf, all its directories in a temporary directory, its
// line, pickle and cache query receivers on free loopback ports, and
// returns once the line receiver accepts connections. It is stopped when
// the test ends. The test is skipped when carbon-cache is not installed.
//
// Settings beyond the directories and ports, and why:
//
//	MAX_CACHE_SIZE, MAX_UPDATES_PER_SECOND, MAX_CREATES_PER_MINUTE = inf
//	                          no point held back by carbon's rate limits
//	ENABLE_TAGS = False       tagged names are still normalized and stored
//	                          (that does not depend on it); it only turns off
//	                          the calls to graphite-web's tag database
//	                          (GRAPHITE_URL), which is not there
//	TAG_HASH_FILENAMES = False  readable names under _tagged (see above)
//	WHISPER_SPARSE_CREATE = True  a day of seconds is a sparse 1 MB file
//	ENABLE_UDP_LISTENER = False
func Carbon(t testing.TB) *CarbonCache {
	t.Helper()
	bin := systemBinary(t, "carbon-cache", "graphite-carbon")
	dir := t.TempDir()
	c := &CarbonCache{
		Line:       daemontest.FreePort(t, "tcp"),
		Pickle:     daemontest.FreePort(t, "tcp"),
		CacheQuery: daemontest.FreePort(t, "tcp"),
		DataDir:    filepath.Join(dir, "whisper"),
	}
	conf := filepath.Join(dir, "conf")
	for _, d := range []string{conf, c.DataDir, filepath.Join(dir, "log"), filepath.Join(dir, "run")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	carbonConf := fmt.Sprintf(`[cache]
STORAGE_DIR = %[1]s/
LOCAL_DATA_DIR = %[2]s/
CONF_DIR = %[3]s/
LOG_DIR = %[1]s/log/
PID_DIR = %[1]s/run/
DATABASE = whisper
USER =
ENABLE_LOGROTATION = False
MAX_CACHE_SIZE = inf
MAX_UPDATES_PER_SECOND = inf
MAX_CREATES_PER_MINUTE = inf
MIN_TIMESTAMP_RESOLUTION = 1
LINE_RECEIVER_INTERFACE = 127.0.0.1
LINE_RECEIVER_PORT = %[4]d
ENABLE_UDP_LISTENER = False
PICKLE_RECEIVER_INTERFACE = 127.0.0.1
PICKLE_RECEIVER_PORT = %[5]d
CACHE_QUERY_INTERFACE = 127.0.0.1
CACHE_QUERY_PORT = %[6]d
LOG_LISTENER_CONN_SUCCESS = False
LOG_CREATES = True
LOG_UPDATES = False
WHISPER_AUTOFLUSH = False
WHISPER_SPARSE_CREATE = True
WHISPER_FALLOCATE_CREATE = False
ENABLE_TAGS = False
TAG_HASH_FILENAMES = False
`, dir, c.DataDir, conf, port(c.Line), port(c.Pickle), port(c.CacheQuery))
	schemas := fmt.Sprintf("[all]\npattern = .*\nretentions = 1s:%ds\n", retentionSeconds)
	if err := os.WriteFile(filepath.Join(conf, "carbon.conf"), []byte(carbonConf), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(conf, "storage-schemas.conf"), []byte(schemas), 0o644); err != nil {
		t.Fatal(err)
	}
	c.proc = startProcess(t, "carbon-cache", dir,
		// Twisted's deprecation warnings would fill the output.
		[]string{"PYTHONWARNINGS=ignore"},
		func() error {
			conn, err := net.DialTimeout("tcp", c.Line, time.Second)
			if err == nil {
				conn.Close()
			}
			return err
		},
		bin, "--nodaemon", "--config="+filepath.Join(conf, "carbon.conf"), "--logfile=-", "start")
	return c
}

// Stop stops carbon-cache (SIGTERM; it writes its cache out first, which
// takes two or three seconds).
func (c *CarbonCache) Stop() { c.proc.Stop() }

// Start starts a stopped carbon-cache again on the same ports and
// directories, and waits until it accepts connections.
func (c *CarbonCache) Start() { c.proc.Start() }

// Output returns what carbon-cache logged (its creates are logged).
func (c *CarbonCache) Output() string { return c.proc.Output() }

// Point is one point of a whisper file.
type Point struct {
	Timestamp int64 // seconds since the epoch
	Value     float64
}

// Points returns the points stored for the series name, tagged
// ("name;k=v") or not, sorted by time; none when carbon has not written the
// file yet. The name is normalized the way carbon does (CarbonName), so the
// tags may be given in any order.
func (c *CarbonCache) Points(t testing.TB, name string) []Point {
	t.Helper()
	p, err := readWhisper(c.Path(name))
	if err != nil {
		t.Fatalf("carbon %s: %v", name, err)
	}
	return p
}

// WaitPoints polls Points until cond holds of its result, and returns it;
// after timeout it fails the test, showing what it last saw.
func (c *CarbonCache) WaitPoints(t testing.TB, name string, timeout time.Duration, cond func([]Point) bool) []Point {
	t.Helper()
	return waitFor(t, timeout, "carbon "+name, func() ([]Point, error) { return readWhisper(c.Path(name)) }, cond)
}

// Path returns the whisper file carbon stores the series name in.
func (c *CarbonCache) Path(name string) string {
	name = CarbonName(name)
	if !strings.Contains(name, ";") {
		return filepath.Join(c.DataDir, filepath.FromSlash(strings.TrimLeft(strings.ReplaceAll(name, ".", "/"), "/"))+".wsp")
	}
	sum := sha256.Sum256([]byte(name))
	h := hex.EncodeToString(sum[:])
	return filepath.Join(c.DataDir, "_tagged", h[0:3], h[3:6], filepath.FromSlash(strings.ReplaceAll(name, ".", "_DOT_"))+".wsp")
}

// Metrics lists the names of the series carbon has files for, sorted:
// tagged ones in their normalized form. For a failure message: what did
// arrive.
func (c *CarbonCache) Metrics(t testing.TB) []string {
	t.Helper()
	var names []string
	err := filepath.WalkDir(c.DataDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".wsp") {
			return err
		}
		rel, _ := filepath.Rel(c.DataDir, strings.TrimSuffix(path, ".wsp"))
		rel = filepath.ToSlash(rel)
		if parts := strings.SplitN(rel, "/", 4); len(parts) == 4 && parts[0] == "_tagged" {
			names = append(names, strings.ReplaceAll(parts[3], "_DOT_", "."))
		} else {
			names = append(names, strings.ReplaceAll(rel, "/", "."))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(names)
	return names
}

// CarbonName returns the name carbon stores a series under: for a tagged
// name "name;k=v;...", its tags sorted (as the strings ";k=v"), repeated
// keys keeping their last value, a "name" tag replaced by the name; the
// name as given when carbon would refuse its tags (carbon's
// TaggedSeries.parse and format, in carbon/util.py).
func CarbonName(name string) string {
	if !strings.Contains(name, ";") {
		return name
	}
	segs := strings.Split(name, ";")
	if segs[0] == "" {
		return name
	}
	tags := map[string]string{}
	for _, seg := range segs[1:] {
		k, v, ok := strings.Cut(seg, "=")
		if !ok || k == "" || v == "" || strings.ContainsAny(k, ";!^=") || v[0] == '~' {
			return name
		}
		tags[k] = v
	}
	metric := strings.TrimLeft(segs[0], "~")
	if metric == "" {
		return name
	}
	delete(tags, "name")
	var parts []string
	for k, v := range tags {
		parts = append(parts, ";"+k+"="+v)
	}
	slices.Sort(parts)
	return metric + strings.Join(parts, "")
}

// readWhisper reads the points of a whisper file's first (finest) archive:
// the slots written within its retention, sorted by time. A file that does
// not exist yet, or is still being created, has none.
//
// The format (whisper.py): a header of aggregation type, max retention
// (uint32), xFilesFactor (float32) and archive count (uint32); for each
// archive its offset, seconds per point and number of points (uint32); at
// each archive's offset its points, each a uint32 timestamp and a float64
// value; all big-endian. A slot never written has timestamp 0; one written
// longer ago than the retention is stale.
func readWhisper(path string) ([]Point, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	const header, archiveInfo, pointSize = 16, 12, 12
	if len(b) < header+archiveInfo {
		return nil, nil // being created
	}
	if n := binary.BigEndian.Uint32(b[12:]); n == 0 {
		return nil, fmt.Errorf("%s: no archives", path)
	}
	offset := int(binary.BigEndian.Uint32(b[header:]))
	step := int64(binary.BigEndian.Uint32(b[header+4:]))
	count := int(binary.BigEndian.Uint32(b[header+8:]))
	if len(b) < offset+count*pointSize {
		return nil, nil // being created
	}
	oldest := time.Now().Unix() - step*int64(count)
	var points []Point
	for i := range count {
		p := b[offset+i*pointSize:]
		ts := int64(binary.BigEndian.Uint32(p))
		if ts == 0 || ts <= oldest {
			continue
		}
		points = append(points, Point{Timestamp: ts, Value: math.Float64frombits(binary.BigEndian.Uint64(p[4:]))})
	}
	slices.SortFunc(points, func(a, b Point) int { return int(a.Timestamp - b.Timestamp) })
	return points, nil
}
