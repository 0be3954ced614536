package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"

	"golang.org/x/sys/unix"

	"github.com/veneurd/veneurd/core/config"
	"github.com/veneurd/veneurd/core/status"
	"github.com/veneurd/veneurd/internal/human"
)

// ANSI sequences of the live screen: the alternate screen keeps the user's
// scrollback as it was, and the cursor is hidden so that it does not
// flicker across the screen at each redraw.
const (
	ansiEnterScreen = "\x1b[?1049h\x1b[?25l\x1b[H\x1b[2J"
	ansiLeaveScreen = "\x1b[?25h\x1b[?1049l"
	ansiHome        = "\x1b[H"
	ansiClear       = "\x1b[2J"
	ansiEraseLine   = "\x1b[K"
	ansiEraseBelow  = "\x1b[J"
)

// topDefaultWidth is the width when the terminal's is not known: a plain
// snapshot fits the narrowest terminal.
const topDefaultWidth = 80

// topTopNames is how many series names the screen lists.
const topTopNames = 5

func topCmd(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("top", "[-addr HOST:PORT] [-refresh 1s] [-once]",
		"Shows a running veneurd's sources and sinks, their rates, errors, drops and\n"+
			"processes, redrawn every -refresh from its admin address's /api/status.\n"+
			"q or Ctrl-C quits. When standard output is not a terminal, or with -once,\n"+
			"prints one snapshot as plain text and exits: 0, or 1 when the address\n"+
			"cannot be reached.", stderr)
	addr := fs.String("addr", config.DefaultHTTPAddress, "veneurd's admin address (veneurd { http_address })")
	refresh := fs.Duration("refresh", time.Second, "time between two redraws")
	once := fs.Bool("once", false, "print one snapshot as plain text and exit")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	uerr := usageError(stderr, "top")
	if fs.NArg() > 0 {
		return uerr("unexpected argument %q: the address is given with -addr", fs.Arg(0))
	}
	if *refresh < 100*time.Millisecond {
		return uerr("-refresh %s: at least 100ms", *refresh)
	}
	base, err := topBaseURL(*addr)
	if err != nil {
		return uerr("-addr %q: %v", *addr, err)
	}
	client := &http.Client{Timeout: max(2*time.Second, *refresh)}
	out, _ := stdout.(*os.File)
	if *once || out == nil || !isTerminal(out) {
		width := topDefaultWidth
		if out != nil {
			if w, _ := terminalSize(out); w > 0 {
				width = w
			}
		}
		st, err := fetchStatus(context.Background(), client, base)
		if err != nil {
			fmt.Fprintf(stderr, "veneurd top: cannot reach %s: %v\n", *addr, err)
			return 1
		}
		lines := renderTop(st, topView{Addr: *addr, Width: width, Loc: time.Local})
		io.WriteString(stdout, strings.Join(lines, "\n")+"\n")
		return 0
	}
	return topLive(client, base, *addr, *refresh, os.Stdin, out)
}

// topBaseURL turns -addr, host:port or an http(s) URL, into the URL that
// /api/status is appended to.
func topBaseURL(addr string) (string, error) {
	if strings.HasPrefix(addr, "http://") || strings.HasPrefix(addr, "https://") {
		u, err := url.Parse(addr)
		if err != nil {
			return "", err
		}
		if u.Host == "" {
			return "", errors.New("no host")
		}
		return strings.TrimSuffix(u.String(), "/"), nil
	}
	if !strings.Contains(addr, ":") {
		return "", errors.New("want HOST:PORT")
	}
	return "http://" + addr, nil
}

// fetchStatus gets /api/status. Its errors leave out the URL, which the
// caller names as the address.
func fetchStatus(ctx context.Context, client *http.Client, base string) (*status.Status, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/api/status", nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		// The address is named by the caller: "connect: connection
		// refused" says the rest.
		if oe, ok := errors.AsType[*net.OpError](err); ok && oe.Op == "dial" {
			err = oe.Err
		} else if ue, ok := errors.AsType[*url.Error](err); ok {
			err = ue.Err
		}
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /api/status: %s (a veneurd older than /api/status, or not veneurd?)", resp.Status)
	}
	var st status.Status
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<20)).Decode(&st); err != nil {
		return nil, fmt.Errorf("GET /api/status: %v", err)
	}
	return &st, nil
}

func isTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// terminalSize returns f's columns and rows, 0 when f is no terminal.
func terminalSize(f *os.File) (cols, rows int) {
	ws, err := unix.IoctlGetWinsize(int(f.Fd()), unix.TIOCGWINSZ)
	if err != nil {
		return 0, 0
	}
	return int(ws.Col), int(ws.Row)
}

type topFetch struct {
	st  *status.Status
	err error
}

// topLive runs the live screen until q, Ctrl-C, SIGINT, SIGTERM or SIGHUP.
func topLive(client *http.Client, base, addr string, refresh time.Duration, in, out *os.File) int {
	// Signals first: one that arrives while the terminal is being set up
	// is handled by the loop, which restores it, rather than killing the
	// process with the terminal raw.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGWINCH)
	defer signal.Stop(sigs)

	keys := make(chan byte, 16)
	if restore, err := cbreak(in); err == nil {
		defer restore()
		go readKeys(in, keys)
	}
	// Deferred after the termios restore, so it runs before it: the
	// screen is left while the terminal still takes the sequences raw.
	io.WriteString(out, ansiEnterScreen)
	defer io.WriteString(out, ansiLeaveScreen)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	fetches := make(chan topFetch, 1)
	go func() {
		tick := time.NewTicker(refresh)
		defer tick.Stop()
		for {
			st, err := fetchStatus(ctx, client, base)
			select {
			case fetches <- topFetch{st, err}:
			case <-ctx.Done():
				return
			}
			select {
			case <-tick.C:
			case <-ctx.Done():
				return
			}
		}
	}()

	var last *status.Status
	var lastErr error
	fetched := false
	var frame strings.Builder
	draw := func() {
		cols, rows := terminalSize(out)
		if cols <= 0 {
			cols = topDefaultWidth
		}
		v := topView{Addr: addr, Width: cols, Height: rows, Loc: time.Local, Live: true, Err: lastErr, Waiting: !fetched}
		frame.Reset()
		frame.WriteString(ansiHome)
		lines := renderTop(last, v)
		full := false
		for i, l := range lines {
			if i > 0 {
				frame.WriteString("\r\n")
			}
			frame.WriteString(l)
			// After a line as wide as the screen the cursor waits on
			// its last column, which erasing would blank.
			if full = runeLen(l) >= cols; !full {
				frame.WriteString(ansiEraseLine)
			}
		}
		switch {
		case !full:
			frame.WriteString(ansiEraseBelow)
		case rows <= 0 || len(lines) < rows:
			frame.WriteString("\r\n" + ansiEraseBelow)
		}
		io.WriteString(out, frame.String())
	}
	draw()
	for {
		select {
		case f := <-fetches:
			fetched = true
			lastErr = f.err
			if f.err == nil {
				last = f.st
			}
			draw()
		case k := <-keys:
			switch k {
			case 'q', 'Q', 0x03, 0x1c: // Ctrl-C and Ctrl-\, which cbreak mode no longer turns into signals
				return 0
			}
		case s := <-sigs:
			if s == syscall.SIGWINCH {
				io.WriteString(out, ansiClear)
				draw()
				continue
			}
			return 0
		}
	}
}

// cbreak turns off f's line buffering, echo and signal keys, and returns
// the function that restores f as it was.
func cbreak(f *os.File) (func(), error) {
	fd := int(f.Fd())
	orig, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return nil, err
	}
	raw := *orig
	raw.Lflag &^= unix.ICANON | unix.ECHO | unix.ISIG | unix.IEXTEN
	raw.Iflag &^= unix.IXON | unix.ICRNL
	raw.Cc[unix.VMIN] = 1
	raw.Cc[unix.VTIME] = 0
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, &raw); err != nil {
		return nil, err
	}
	return func() { unix.IoctlSetTermios(fd, unix.TCSETS, orig) }, nil
}

func readKeys(in *os.File, keys chan<- byte) {
	buf := make([]byte, 64)
	for {
		n, err := in.Read(buf)
		for _, b := range buf[:n] {
			keys <- b
		}
		if err != nil {
			return
		}
	}
}

// topView is how renderTop draws.
type topView struct {
	Addr string
	// Width is the screen's columns; every line fits. Height, when not 0,
	// is its rows: lines past it are left out.
	Width, Height int
	// Loc is the time zone times are shown in.
	Loc *time.Location
	// Live adds the keys' help; Err is the last fetch's failure, shown
	// above the last status that was fetched; Waiting says no answer came
	// yet.
	Live    bool
	Err     error
	Waiting bool
}

// renderTop draws st (nil before any answer) as lines of at most v.Width
// columns, without escape sequences.
func renderTop(st *status.Status, v topView) []string {
	width := v.Width
	if width <= 0 {
		width = topDefaultWidth
	}
	loc := v.Loc
	if loc == nil {
		loc = time.UTC
	}
	var lines []string
	add := func(format string, a ...any) { lines = append(lines, fmt.Sprintf(format, a...)) }

	// The title: what is shown and from where, and its clock.
	title := "veneurd"
	right := v.Addr
	if st != nil {
		if st.Version != "" {
			title += " " + st.Version
		}
		if st.Hostname != "" {
			title += " on " + st.Hostname
		}
		if !st.Started.IsZero() && !st.Time.IsZero() {
			title += ", up " + topAgo(st.Time.Sub(st.Started))
		}
		if !st.Time.IsZero() {
			right += " " + st.Time.In(loc).Format("15:04:05")
		}
	}
	lines = append(lines, spread(title, right, width))
	if v.Err != nil {
		add("cannot reach %s: %v (retrying)", v.Addr, v.Err)
	} else if v.Waiting {
		add("connecting to %s ...", v.Addr)
	}
	if st == nil {
		return fitLines(lines, v, width)
	}
	now := st.Time

	health := []string{"not ready", "unhealthy"}
	if st.Ready {
		health[0] = "ready"
	}
	if st.Healthy {
		health[1] = "healthy"
	}
	add("%s, %s", health[0], health[1])
	for _, p := range st.Problems {
		add("  ! %s", p)
	}

	cfg := "config " + orDash(st.Config.Hash)
	if !st.Config.LoadedAt.IsZero() {
		cfg += " loaded " + topClock(st.Config.LoadedAt, now, loc)
	}
	if st.Config.IntervalSeconds > 0 {
		cfg += ", interval " + topAgo(time.Duration(st.Config.IntervalSeconds*float64(time.Second)))
	}
	if st.Config.Path != "" {
		cfg += ", " + st.Config.Path
	}
	lines = append(lines, cfg)
	if f := st.Flush; f.At.IsZero() {
		add("flush: none yet")
	} else {
		add("flush %s: %s series, %s points in %s, %s with sinks",
			topClock(f.At, now, loc), human.Count(f.Series), human.Count(f.Points),
			topSeconds(f.DurationSeconds), topSeconds(f.TotalDurationSeconds))
	}

	lines = append(lines, "")
	lines = append(lines, blockTable(st, width)...)

	// Why the blocks that are not running well are not.
	var why []string
	for _, b := range topBlocks(st) {
		if b.state != "running" && b.p.LastError != "" {
			w := b.p.Address + ": " + b.p.LastError
			if b.p.LastErrorAt != nil && !now.IsZero() {
				w += " (" + topAgo(now.Sub(*b.p.LastErrorAt)) + " ago)"
			}
			why = append(why, w)
		}
	}
	if len(why) > 0 {
		lines = append(lines, "")
		lines = append(lines, why...)
	}

	if f := st.Forward; f != nil {
		w := fmt.Sprintf("forward (%s) to %d members: %d pending", orDash(f.Protocol), len(f.Members), f.Pending)
		if e := sumCounts(f.Errors); e > 0 {
			w += fmt.Sprintf(", %s errors (%s)", human.Count(e), countsText(f.Errors))
		}
		lines = append(lines, "", w)
	}
	if r := st.Receive; r != nil {
		mode := "aggregating"
		if !r.Aggregate {
			mode = "proxying"
		}
		if st.Forward == nil {
			lines = append(lines, "")
		}
		add("receive on %s, %s: %s series/s, %s in all", r.Address, mode, human.Rate(r.SeriesPerSecond), human.Count(r.Series))
	}

	if len(st.DropRules) > 0 {
		rows := make([][]string, len(st.DropRules))
		for i, r := range st.DropRules {
			rows[i] = []string{r.Name, human.Count(r.Dropped), human.Rate(r.PerSecond)}
		}
		lines = append(lines, "")
		lines = append(lines, nameTable([]string{"DROP RULE", "DROPPED", "PER SEC"}, rows, width)...)
	}
	if len(st.TopNames) > 0 {
		names := st.TopNames[:min(len(st.TopNames), topTopNames)]
		rows := make([][]string, len(names))
		for i, n := range names {
			rows[i] = []string{n.Name, human.Count(n.Series)}
		}
		lines = append(lines, "")
		lines = append(lines, nameTable([]string{"TOP NAMES", "SERIES"}, rows, width)...)
	}
	return fitLines(lines, v, width)
}

// fitLines cuts every line to width and, on a screen of known height,
// leaves out the lines below it, saying how many, and the keys' help.
func fitLines(lines []string, v topView, width int) []string {
	if v.Live {
		lines = append(lines, "", "q: quit")
	}
	if v.Height > 0 && len(lines) > v.Height {
		more := len(lines) - v.Height + 1
		lines = append(lines[:v.Height-1:v.Height-1], fmt.Sprintf("... %d more lines", more))
	}
	for i, l := range lines {
		lines[i] = fitEnd(l, width)
	}
	return lines
}

// topBlock is a row of the block table.
type topBlock struct {
	p     status.Plugin
	kind  string
	state string
	cells []string
}

// topBlocks is one row per source then per sink, in the status's order.
func topBlocks(st *status.Status) []topBlock {
	var bs []topBlock
	for _, s := range st.Sources {
		state := blockState(s.Plugin, false, st)
		bs = append(bs, topBlock{p: s.Plugin, kind: "source", state: state, cells: []string{
			s.Address, "source", state, human.Rate(s.ReceivedPerSecond), human.Rate(s.ProcessedPerSecond),
			human.Count(s.Errors), dropsText(s.Dropped), human.Count(s.Restarts), pidText(s.Pid),
		}})
	}
	for _, s := range st.Sinks {
		state := blockState(s.Plugin, true, st)
		bs = append(bs, topBlock{p: s.Plugin, kind: "sink", state: state, cells: []string{
			s.Address, "sink", state, human.Rate(s.PointsPerSecond), "-",
			human.Count(s.FlushErrors), dropsText(s.Dropped), human.Count(s.Restarts), pidText(s.Pid),
		}})
	}
	return bs
}

// blockState is the state the daemon gives, and for a daemon that gives
// none: "down" while the process is not running, "failing" while a sink's
// last flush failed (its error clears when one succeeds) or for a source
// whose last error is recent (its error stays once set), and "running"
// otherwise.
func blockState(p status.Plugin, sink bool, st *status.Status) string {
	switch {
	case p.State != "":
		return p.State
	case !p.Running:
		return "down"
	case p.LastError == "":
		return "running"
	case sink:
		return "failing"
	}
	recent := max(30*time.Second, time.Duration(2*st.Config.IntervalSeconds*float64(time.Second)))
	if p.LastErrorAt != nil && !st.Time.IsZero() && st.Time.Sub(*p.LastErrorAt) < recent {
		return "failing"
	}
	return "running"
}

// The block table's columns; NAME and DROPS give up width when the screen
// has too little, the others keep theirs.
var topColumns = []struct {
	head  string
	right bool
	min   int
}{
	{"NAME", false, 0}, {"KIND", false, 6}, {"STATE", false, 7}, {"IN/s", true, 6}, {"OUT/s", true, 6},
	{"ERRORS", true, 0}, {"DROPS", false, 0}, {"RESTARTS", true, 0}, {"PID", true, 0},
}

const (
	topColName  = 0
	topColDrops = 6
)

// blockTable lays out one row per source and per sink in width columns.
func blockTable(st *status.Status, width int) []string {
	blocks := topBlocks(st)
	widths := make([]int, len(topColumns))
	for i, c := range topColumns {
		widths[i] = max(c.min, runeLen(c.head))
		for _, b := range blocks {
			widths[i] = max(widths[i], runeLen(b.cells[i]))
		}
	}
	// What NAME and DROPS can have between them: DROPS keeps up to two
	// fifths so that the reason still shows, NAME takes the rest.
	fixed := len(widths) - 1
	for i, w := range widths {
		if i != topColName && i != topColDrops {
			fixed += w
		}
	}
	if budget := width - fixed; widths[topColName]+widths[topColDrops] > budget {
		drops := min(widths[topColDrops], max(runeLen("DROPS"), budget*2/5))
		widths[topColName] = max(runeLen("NAME"), min(widths[topColName], budget-drops))
		widths[topColDrops] = max(runeLen("DROPS"), min(widths[topColDrops], budget-widths[topColName]))
	}
	row := func(cells []string) string {
		var b strings.Builder
		for i, c := range topColumns {
			s := cells[i]
			switch i {
			case topColName:
				s = fitAddress(s, widths[i])
			default:
				s = fitEnd(s, widths[i])
			}
			if i > 0 {
				b.WriteByte(' ')
			}
			pad := strings.Repeat(" ", widths[i]-runeLen(s))
			if c.right {
				b.WriteString(pad + s)
			} else {
				b.WriteString(s + pad)
			}
		}
		return strings.TrimRight(b.String(), " ")
	}
	head := make([]string, len(topColumns))
	for i, c := range topColumns {
		head[i] = c.head
	}
	lines := []string{row(head)}
	for _, b := range blocks {
		lines = append(lines, row(b.cells))
	}
	if len(blocks) == 0 {
		lines = append(lines, "(no sources or sinks)")
	}
	return lines
}

// nameTable lays out rows of a name and right-aligned numbers, the name
// cut to what the numbers leave.
func nameTable(head []string, rows [][]string, width int) []string {
	widths := make([]int, len(head))
	for i, h := range head {
		widths[i] = runeLen(h)
		for _, r := range rows {
			widths[i] = max(widths[i], runeLen(r[i]))
		}
	}
	rest := width
	for _, w := range widths[1:] {
		rest -= w + 2
	}
	widths[0] = max(runeLen(head[0]), min(widths[0], rest))
	row := func(cells []string) string {
		var b strings.Builder
		name := fitEnd(cells[0], widths[0])
		b.WriteString(name + strings.Repeat(" ", widths[0]-runeLen(name)))
		for i, c := range cells[1:] {
			b.WriteString(strings.Repeat(" ", 2+widths[i+1]-runeLen(c)) + c)
		}
		return b.String()
	}
	lines := []string{row(head)}
	for _, r := range rows {
		lines = append(lines, row(r))
	}
	return lines
}

// dropsText is the sum of counts and the reason that counts most, without
// a "dropped_" the column's name already says: "325 by_rule".
func dropsText(counts map[string]uint64) string {
	total := sumCounts(counts)
	if total == 0 {
		return "0"
	}
	var top string
	for r, n := range counts {
		if n > counts[top] || (n == counts[top] && r < top) || top == "" {
			top = r
		}
	}
	return human.Count(total) + " " + strings.TrimPrefix(top, "dropped_")
}

func sumCounts(counts map[string]uint64) uint64 {
	var total uint64
	for _, n := range counts {
		total += n
	}
	return total
}

// countsText lists counts by reason, most first: "unavailable 3, timeout 1".
func countsText(counts map[string]uint64) string {
	keys := make([]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if counts[keys[i]] != counts[keys[j]] {
			return counts[keys[i]] > counts[keys[j]]
		}
		return keys[i] < keys[j]
	})
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + " " + human.Count(counts[k])
	}
	return strings.Join(parts, ", ")
}

func pidText(pid int) string {
	if pid <= 0 {
		return "-"
	}
	return strconv.Itoa(pid)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// topAgo writes a duration to the second, as people read it: 42s, 10m3s,
// 2h5m, 3d4h.
func topAgo(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	s := int64(d.Round(time.Second) / time.Second)
	switch {
	case s < 60:
		return fmt.Sprintf("%ds", s)
	case s < 3600:
		if s%60 == 0 {
			return fmt.Sprintf("%dm", s/60)
		}
		return fmt.Sprintf("%dm%ds", s/60, s%60)
	case s < 86400:
		return fmt.Sprintf("%dh%dm", s/3600, s%3600/60)
	}
	return fmt.Sprintf("%dd%dh", s/86400, s%86400/3600)
}

// topSeconds writes a short duration: 12ms, 0.3ms, 1.50s.
func topSeconds(sec float64) string {
	if sec < 1 {
		return strconv.FormatFloat(sec*1000, 'g', 3, 64) + "ms"
	}
	return strconv.FormatFloat(sec, 'f', 2, 64) + "s"
}

// topClock writes t as a time of day, with the date when it is not now's,
// and how long before now it was.
func topClock(t, now time.Time, loc *time.Location) string {
	lt := t.In(loc)
	s := lt.Format("15:04:05")
	if ln := now.In(loc); !now.IsZero() && (lt.YearDay() != ln.YearDay() || lt.Year() != ln.Year()) {
		s = lt.Format("2006-01-02 15:04:05")
	}
	if !now.IsZero() {
		s += " (" + topAgo(now.Sub(t)) + " ago)"
	}
	return s
}

// spread puts left at the start and right at the end of a line of width
// columns, or after two spaces when they do not fit.
func spread(left, right string, width int) string {
	gap := width - runeLen(left) - runeLen(right)
	if right == "" {
		return left
	}
	return left + strings.Repeat(" ", max(2, gap)) + right
}

func runeLen(s string) int { return utf8.RuneCountInString(s) }

func lastIndexRune(r []rune, c rune) int {
	for i := len(r) - 1; i >= 0; i-- {
		if r[i] == c {
			return i
		}
	}
	return -1
}

// fitEnd cuts s to w columns, ending it with … when cut.
func fitEnd(s string, w int) string {
	if runeLen(s) <= w {
		return s
	}
	if w <= 0 {
		return ""
	}
	r := []rune(s)
	return string(r[:w-1]) + "…"
}

// fitAddress cuts a block address to w columns in its type, keeping its
// kind and name, which tell blocks apart: sink.prometheus_rem….prom.
func fitAddress(s string, w int) string {
	if runeLen(s) <= w {
		return s
	}
	r := []rune(s)
	i, j := slices.Index(r, '.'), lastIndexRune(r, '.')
	if i > 0 && j > i {
		head, mid, tail := r[:i+1], r[i+1:j], r[j:]
		if keep := w - len(head) - len(tail) - 1; keep >= 0 {
			return string(head) + string(mid[:keep]) + "…" + string(tail)
		}
	}
	return fitEnd(s, w)
}
