package localfile

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/veneurd/veneurd/sdk"
)

// fullDisk is a file on a disk that holds room more bytes: a write that does
// not fit writes what fits and fails with ENOSPC. A negative room is no limit.
type fullDisk struct {
	*os.File
	room int
}

func (f *fullDisk) Write(b []byte) (int, error) {
	if f.room < 0 || len(b) <= f.room {
		n, err := f.File.Write(b)
		if f.room >= 0 {
			f.room -= n
		}
		return n, err
	}
	n, err := f.File.Write(b[:f.room])
	f.room -= n
	if err == nil {
		err = &os.PathError{Op: "write", Path: f.Name(), Err: syscall.ENOSPC}
	}
	return n, err
}

// start configures and starts a sink writing to path.
func start(t *testing.T, s *Sink, path string) {
	t.Helper()
	ctx := context.Background()
	cfg := s.Config().(*Config)
	cfg.Path = path
	if err := s.Configure(ctx, sdk.Env{}, cfg); err != nil {
		t.Fatal(err)
	}
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Stop(ctx) })
}

// gauges is a flush of one gauge per name, and the lines the sink writes
// for it.
func gauges(names ...string) (sdk.Flush, string) {
	const ts = 1795300000
	f := sdk.Flush{Timestamp: ts}
	var lines strings.Builder
	for _, n := range names {
		f.Points = append(f.Points, sdk.Point{Name: n, Tags: []string{"env:dev"}, Type: sdk.PointGauge, Value: 1.5, Timestamp: ts, Hostname: "h1"})
		lines.WriteString(formatLine(f.Points[len(f.Points)-1]) + "\n")
	}
	return f, lines.String()
}

// TestFullDisk fills the disk during flushes: a flush that does not fit
// leaves the file as it was, with whole lines only, and the next flush that
// fits appends after them.
func TestFullDisk(t *testing.T) {
	path := filepath.Join(t.TempDir(), "points.jsonl")
	disk := &fullDisk{room: -1}
	s := New()
	s.open = func(path string) (file, error) {
		f, err := openFile(path)
		if err != nil {
			return nil, err
		}
		disk.File = f.(*os.File)
		return disk, nil
	}
	start(t, s, path)
	ctx := context.Background()

	first, firstLines := gauges("a.one", "a.two")
	if err := s.Flush(ctx, &first); err != nil {
		t.Fatal(err)
	}
	second, _ := gauges("b.one", "b.two", "b.three")
	for _, room := range []int{0, 10, len(firstLines)/2 + 5} {
		disk.room = room
		if err := s.Flush(ctx, &second); !errors.Is(err, syscall.ENOSPC) {
			t.Fatalf("room for %d bytes: the flush returned %v, want ENOSPC", room, err)
		}
		if got := readFile(t, path); got != firstLines {
			t.Fatalf("room for %d bytes: after the failed flush the file holds\n%q\nwant\n%q", room, got, firstLines)
		}
	}
	disk.room = -1
	third, thirdLines := gauges("c.one")
	if err := s.Flush(ctx, &third); err != nil {
		t.Fatal(err)
	}
	if got, want := readFile(t, path), firstLines+thirdLines; got != want {
		t.Fatalf("after the disk has room again the file holds\n%q\nwant\n%q", got, want)
	}
}

// TestRotated renames the file between flushes, as logrotate does before it
// creates a new one, or deletes it: the next flush writes to a new file at
// the path, and the old one keeps only what was written before.
func TestRotated(t *testing.T) {
	for name, move := range map[string]func(path string) (old string, err error){
		"renamed": func(path string) (string, error) { return path + ".1", os.Rename(path, path+".1") },
		"deleted": func(path string) (string, error) { return "", os.Remove(path) },
		"renamed and created": func(path string) (string, error) {
			if err := os.Rename(path, path+".1"); err != nil {
				return "", err
			}
			return path + ".1", os.WriteFile(path, nil, 0o644)
		},
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "points.jsonl")
			s := New()
			start(t, s, path)
			ctx := context.Background()
			first, firstLines := gauges("a.one", "a.two")
			if err := s.Flush(ctx, &first); err != nil {
				t.Fatal(err)
			}
			old, err := move(path)
			if err != nil {
				t.Fatal(err)
			}
			second, secondLines := gauges("b.one")
			if err := s.Flush(ctx, &second); err != nil {
				t.Fatal(err)
			}
			if old != "" {
				if got := readFile(t, old); got != firstLines {
					t.Errorf("the rotated file holds\n%q\nwant\n%q", got, firstLines)
				}
			}
			if got := readFile(t, path); got != secondLines {
				t.Errorf("the file at the path holds\n%q\nwant\n%q", got, secondLines)
			}
			third, thirdLines := gauges("c.one")
			if err := s.Flush(ctx, &third); err != nil {
				t.Fatal(err)
			}
			if got, want := readFile(t, path), secondLines+thirdLines; got != want {
				t.Errorf("after another flush the file at the path holds\n%q\nwant\n%q", got, want)
			}
		})
	}
}
