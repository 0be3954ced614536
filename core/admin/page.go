package admin

import (
	"bytes"
	_ "embed"
	"fmt"
	"html/template"
	"io"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/veneurd/veneurd/core/status"
	"github.com/veneurd/veneurd/internal/human"
)

// The page is one server-rendered document: the graph is SVG laid out here,
// the styles are inline, and a meta refresh reloads it, so it needs no
// script, no build step and no other host, and reads the same with
// JavaScript switched off.
//
//go:embed page.html.tmpl
var pageSource string

var page = template.Must(template.New("page").Funcs(template.FuncMap{
	"count":    human.Count,
	"rate":     human.Rate,
	"dur":      human.Duration,
	"when":     formatTime,
	"ago":      ago,
	"kv":       sortedCounts,
	"join":     strings.Join,
	"pct":      percent,
	"inc":      func(i int) int { return i + 1 },
	"limit":    humanLimit,
	"reason":   reason,
	"exact":    func(u uint64) string { return strconv.FormatUint(u, 10) },
	"hasError": func(p status.Plugin) bool { return p.LastError != "" },
}).Parse(pageSource))

// writePage writes the status page of st. The page is rendered whole before
// anything is written, so that a template error never leaves half a page.
func writePage(w io.Writer, st *status.Status) error {
	var b bytes.Buffer
	if err := page.Execute(&b, newPageData(st)); err != nil {
		io.WriteString(w, "status page: "+err.Error()+"\n")
		return err
	}
	_, err := w.Write(b.Bytes())
	return err
}

// pageData is what the template renders: the status, the time it is "now"
// for relative times, the graph laid out, and each plugin's state.
type pageData struct {
	*status.Status
	Now   time.Time
	Graph graph
	// States are the state classes of the sources and sinks, by address.
	States map[string]string
	// TopMax is the largest series count among the top names, for their
	// bars.
	TopMax uint64
}

func newPageData(st *status.Status) *pageData {
	d := &pageData{Status: st, Now: st.Time, States: map[string]string{}}
	if d.Now.IsZero() {
		d.Now = time.Now()
	}
	for _, s := range st.Sources {
		d.States[s.Address] = pluginState(s.Plugin)
	}
	for _, s := range st.Sinks {
		d.States[s.Address] = pluginState(s.Plugin)
	}
	for _, n := range st.TopNames {
		d.TopMax = max(d.TopMax, n.Series)
	}
	d.Graph = layout(st, d.Now)
	return d
}

// Node states, the classes that colour a node and its table row.
const (
	stateRunning = "running"
	stateDown    = "down"
	stateFailing = "failing"
)

// pluginState is the state the daemon gives the plugin; for a status
// without one, down while the process is not running, failing while its
// last error stands, running otherwise.
func pluginState(p status.Plugin) string {
	switch {
	case p.State == stateRunning || p.State == stateDown || p.State == stateFailing:
		return p.State
	case !p.Running:
		return stateDown
	case p.LastError != "":
		return stateFailing
	default:
		return stateRunning
	}
}

// Graph geometry, in SVG user units (about pixels at the page's width):
// three columns of nodes, sources and receive on the left, the pipeline in
// the middle, sinks and forward on the right.
const (
	graphWidth = 1280
	nodeWidth  = 300
	leftX      = 12
	midX       = (graphWidth - nodeWidth) / 2
	rightX     = graphWidth - nodeWidth - 12
	marginY    = 14
	nodeGap    = 16
	titleTop   = 19 // baseline of the title below the node's top
	lineTop    = 38 // baseline of the first line
	lineHeight = 16
	padBottom  = 10
	portGap    = 24 // least distance between two edges at the pipeline
	// Characters that fit in a node at the fonts' sizes (12.5 and 11.5 px
	// monospace, 0.6 em wide).
	titleChars = 36
	lineChars  = 40
)

// graph is the pipeline's graph laid out.
type graph struct {
	Width, Height int
	Nodes         []*node
	Edges         []*edge
}

// node is a box of the graph.
type node struct {
	Kind    string // source, sink, pipeline, forward or receive
	State   string // running, down or failing
	Address string
	// Pid and Restarts are set for plugin nodes (HasProcess).
	HasProcess bool
	Pid        int
	Restarts   uint64
	X, Y, W, H int
	Title      string // the address, cut to fit
	Tip        string // what a hover shows: the address and the whole error
	Lines      []line
}

// Class is the node's class attribute: "node <kind> <state>".
func (n *node) Class() string { return "node " + n.Kind + " " + n.State }

// TitleX and TitleY place the node's title.
func (n *node) TitleX() int { return n.X + 12 }
func (n *node) TitleY() int { return n.Y + titleTop }

// line is a line of text in a node, in spans that are styled apart.
type line struct {
	X, Y  int
	Spans []span
}

// span is a run of text and its class (label, value, err, head, ok...).
type span struct{ Text, Class string }

// edge is an edge of the graph and its rate.
type edge struct {
	From, To    string
	Rate        float64
	Path        string
	Width       string // stroke width: thicker for more traffic
	Class       string // wire classes: idle at zero, broken to or from a node that is down
	LabelX      int
	LabelY      int
	LabelAnchor string // text-anchor: start, middle or end
	Label       string // "990 samples/s"
}

// DataRate is the rate as the data-rate attribute gives it: a plain decimal
// that any parser reads back.
func (e *edge) DataRate() string { return strconv.FormatFloat(e.Rate, 'f', -1, 64) }

// layout builds the graph of st: one node per block, one edge per
// st.Edges entry whose ends are both nodes.
func layout(st *status.Status, now time.Time) graph {
	var left, right []*node
	for _, s := range st.Sources {
		left = append(left, sourceNode(s, now))
	}
	if st.Receive != nil {
		left = append(left, receiveNode(st.Receive))
	}
	for _, s := range st.Sinks {
		right = append(right, sinkNode(s, now))
	}
	if st.Forward != nil {
		right = append(right, forwardNode(st.Forward))
	}
	pipe := pipelineNode(st)

	byAddr := map[string]*node{pipe.Address: pipe}
	for _, n := range append(slices.Clone(left), right...) {
		byAddr[n.Address] = n
	}
	var edges []*edge
	var in, out []*edge // edges that end at and leave the pipeline
	for _, e := range st.Edges {
		from, to := byAddr[e.From], byAddr[e.To]
		if from == nil || to == nil || from == to {
			continue
		}
		g := &edge{From: e.From, To: e.To, Rate: e.PerSecond, Label: human.Rate(e.PerSecond) + " " + e.Unit + "/s"}
		if math.IsNaN(g.Rate) || math.IsInf(g.Rate, 0) {
			g.Rate = 0
		}
		edges = append(edges, g)
		if to == pipe {
			in = append(in, g)
		}
		if from == pipe {
			out = append(out, g)
		}
	}

	// The pipeline is as tall as its text, or as the edges it gathers
	// need to stay apart.
	pipe.H = max(pipe.H, (max(len(in), len(out))+1)*portGap)
	leftH, rightH := stack(left), stack(right)
	height := max(leftH, rightH, pipe.H) + 2*marginY
	place(left, leftX, (height-leftH)/2)
	place(right, rightX, (height-rightH)/2)
	place([]*node{pipe}, midX, (height-pipe.H)/2)

	// Where each edge meets the pipeline: level with the node at its other
	// end when the pipeline reaches that far, so that most edges run
	// straight, and at least portGap from the next.
	inY := ports(pipe, in, func(e *edge) *node { return byAddr[e.From] })
	outY := ports(pipe, out, func(e *edge) *node { return byAddr[e.To] })
	for _, e := range edges {
		from, to := byAddr[e.From], byAddr[e.To]
		x1, y1 := from.X+from.W, from.Y+from.H/2
		if y, ok := outY[e]; ok {
			y1 = y
		}
		x2, y2 := to.X, to.Y+to.H/2
		if y, ok := inY[e]; ok {
			y2 = y
		}
		x2 -= 6 // room for the arrowhead
		dx := (x2 - x1) / 2
		e.Path = fmt.Sprintf("M%d %d C%d %d %d %d %d %d", x1, y1, x1+dx, y1, x2-dx, y2, x2, y2)
		// The label sits by the node at the outer end, where the curve
		// runs level and no other edge passes, on the side the curve
		// leaves free.
		e.LabelX, e.LabelY, e.LabelAnchor = (x1+x2)/2, (y1+y2)/2-6, "middle"
		switch {
		case to == pipe:
			e.LabelX, e.LabelY, e.LabelAnchor = x1+8, labelY(y1, y2), "start"
		case from == pipe:
			e.LabelX, e.LabelY, e.LabelAnchor = x2-10, labelY(y2, y1), "end"
		}
		e.Width = strconv.FormatFloat(1.25+min(3, math.Log10(1+e.Rate)/2), 'f', 2, 64)
		e.Class = "wire"
		if e.Rate == 0 {
			e.Class += " idle"
		}
		if from.State == stateDown || to.State == stateDown {
			e.Class += " broken"
		}
	}
	nodes := append(append(left, pipe), right...)
	return graph{Width: graphWidth, Height: height, Nodes: nodes, Edges: edges}
}

// labelY places an edge's label at height y, where the edge meets a node,
// above it unless the edge's other end, at height other, is above.
func labelY(y, other int) int {
	if other < y-2 {
		return y + 15
	}
	return y - 6
}

// stack returns the height of a column of nodes.
func stack(ns []*node) int {
	h := 0
	for i, n := range ns {
		if i > 0 {
			h += nodeGap
		}
		h += n.H
	}
	return h
}

// place puts a column of nodes at x from y down, and their lines in them.
func place(ns []*node, x, y int) {
	for _, n := range ns {
		n.X, n.Y, n.W = x, y, nodeWidth
		for i := range n.Lines {
			n.Lines[i].X, n.Lines[i].Y = x+12, y+lineTop+i*lineHeight
		}
		y += n.H + nodeGap
	}
}

// ports returns the height at which each of es meets the pipeline node.
func ports(pipe *node, es []*edge, other func(*edge) *node) map[*edge]int {
	mid := func(n *node) int { return n.Y + n.H/2 }
	es = slices.Clone(es)
	slices.SortStableFunc(es, func(a, b *edge) int { return mid(other(a)) - mid(other(b)) })
	top, bottom := pipe.Y+portGap/2, pipe.Y+pipe.H-portGap/2
	ys := make([]int, len(es))
	for i, e := range es {
		ys[i] = min(max(mid(other(e)), top), bottom)
		if i > 0 {
			ys[i] = max(ys[i], ys[i-1]+portGap)
		}
	}
	// Pushed past the bottom: pull back up, keeping the gaps.
	for i := len(ys) - 1; i >= 0; i-- {
		limit := bottom
		if i < len(ys)-1 {
			limit = ys[i+1] - portGap
		}
		ys[i] = min(ys[i], limit)
	}
	out := make(map[*edge]int, len(es))
	for i, e := range es {
		out[e] = ys[i]
	}
	return out
}

// newNode returns a node with its lines, sized to hold them.
func newNode(kind, state, address string, lines ...[]span) *node {
	n := &node{Kind: kind, State: state, Address: address, Title: cut(address, titleChars), Tip: address}
	for _, l := range lines {
		if l != nil {
			n.Lines = append(n.Lines, line{Spans: cutSpans(l, lineChars)})
		}
	}
	n.H = lineTop + (len(n.Lines)-1)*lineHeight + padBottom
	if len(n.Lines) == 0 {
		n.H = titleTop + padBottom + 4
	}
	return n
}

// stateLine is a plugin node's first line: its state, pid and restarts.
func stateLine(p status.Plugin) []span {
	st := pluginState(p)
	l := []span{{st, "st-" + st}}
	if p.Pid != 0 {
		l = append(l, span{"  pid ", "label"}, span{strconv.Itoa(p.Pid), "value"})
	}
	restarts := "value"
	if p.Restarts > 0 {
		restarts = "warn"
	}
	return append(l, span{"  restarts ", "label"}, span{human.Count(p.Restarts), restarts})
}

// errorLine is a plugin node's last error and how long ago, or nil.
func errorLine(p status.Plugin, now time.Time) []span {
	if p.LastError == "" {
		return nil
	}
	when := ""
	if p.LastErrorAt != nil {
		when = ago(*p.LastErrorAt, now) + ": "
	}
	return []span{{when + p.LastError, "err"}}
}

// droppedLine lists counts by reason, or nil when there are none.
func droppedLine(m map[string]uint64) []span {
	kvs := sortedCounts(m)
	if len(kvs) == 0 {
		return nil
	}
	l := []span{{"dropped", "label"}}
	for _, kv := range kvs {
		l = append(l, span{" " + reason(kv.Key) + " ", "label"}, span{human.Count(kv.Value), "warn"})
	}
	return l
}

func sourceNode(s status.Source, now time.Time) *node {
	n := newNode("source", pluginState(s.Plugin), s.Address,
		stateLine(s.Plugin),
		[]span{{"in ", "label"}, {human.Rate(s.ReceivedPerSecond) + "/s", "value"},
			{"  aggregated ", "label"}, {human.Rate(s.ProcessedPerSecond) + "/s", "value"}},
		[]span{{"errors ", "label"}, {human.Count(s.Errors), countClass(s.Errors)},
			{"  listen ", "label"}, {listenSummary(s.Listen), "value"}},
		droppedLine(s.Dropped),
		errorLine(s.Plugin, now))
	n.HasProcess, n.Pid, n.Restarts = true, s.Pid, s.Restarts
	n.Tip = tip(s.Address, s.LastError)
	return n
}

func sinkNode(s status.Sink, now time.Time) *node {
	n := newNode("sink", pluginState(s.Plugin), s.Address,
		stateLine(s.Plugin),
		[]span{{"last flush ", "label"}, {human.Count(s.LastFlushPoints) + " points", "value"},
			{" in ", "label"}, {human.Duration(s.LastFlushSeconds), "value"}},
		[]span{{"flushed ", "label"}, {human.Count(s.Flushed), "value"},
			{"  failed flushes ", "label"}, {human.Count(s.FlushErrors), countClass(s.FlushErrors)}},
		droppedLine(s.Dropped),
		errorLine(s.Plugin, now))
	n.HasProcess, n.Pid, n.Restarts = true, s.Pid, s.Restarts
	n.Tip = tip(s.Address, s.LastError)
	return n
}

// forwardNode is running: it is the daemon's own, and its trouble shows as
// batches pending and errors counted.
func forwardNode(f *status.Forward) *node {
	members := strconv.Itoa(len(f.Members)) + " members"
	if len(f.Members) == 1 {
		members = f.Members[0]
	}
	errs := []span{{"errors ", "label"}, {"0", "value"}}
	if kvs := sortedCounts(f.Errors); len(kvs) > 0 {
		errs = errs[:1]
		for i, kv := range kvs {
			if i > 0 {
				errs = append(errs, span{" ", "label"})
			}
			errs = append(errs, span{kv.Key + " ", "label"}, span{human.Count(kv.Value), "warn"})
		}
	}
	pending := "value"
	if f.Pending > 0 {
		pending = "warn"
	}
	return newNode("forward", stateRunning, status.NodeForward,
		[]span{{"to ", "label"}, {members, "value"}, {"  protocol ", "label"}, {f.Protocol, "value"}},
		[]span{{"batches pending ", "label"}, {strconv.Itoa(f.Pending), pending}},
		errs)
}

func receiveNode(r *status.Receive) *node {
	role := "aggregates (global)"
	if !r.Aggregate {
		role = "routes onward (proxy)"
	}
	return newNode("receive", stateRunning, status.NodeReceive,
		[]span{{"on ", "label"}, {r.Address, "value"}},
		[]span{{"series ", "label"}, {human.Rate(r.SeriesPerSecond) + "/s", "value"},
			{"  total ", "label"}, {human.Count(r.Series), "value"}},
		[]span{{role, "label"}})
}

// pipelineNode lists what happens between sources and sinks: the last
// flush, the drop rules with what they dropped, the routes with their
// sinks.
func pipelineNode(st *status.Status) *node {
	lines := [][]span{
		{{"aggregates every ", "label"}, {human.Duration(st.Config.IntervalSeconds), "value"}},
		{{"last flush ", "label"}, {human.Count(st.Flush.Series) + " series", "value"},
			{" → ", "label"}, {human.Count(st.Flush.Points) + " points", "value"}},
		{{"took ", "label"}, {human.Duration(st.Flush.DurationSeconds), "value"},
			{", with delivery ", "label"}, {human.Duration(st.Flush.TotalDurationSeconds), "value"}},
	}
	if l := limitsLine(st.Limits); l != nil {
		lines = append(lines, l)
	}
	lines = append(lines, []span{{"drop rules", "head"}})
	if len(st.DropRules) == 0 {
		lines = append(lines, []span{{"none", "label"}})
	}
	for _, r := range st.DropRules {
		lines = append(lines, []span{{"× ", "warn"}, {r.Name, "name"},
			{" " + human.Count(r.Dropped), countClass(r.Dropped)}, {" · " + human.Rate(r.PerSecond) + "/s", "label"}})
	}
	lines = append(lines, []span{{"routes", "head"}})
	if len(st.Routes) == 0 {
		lines = append(lines, []span{{"none: every sink gets every point", "label"}})
	}
	for _, r := range st.Routes {
		lines = append(lines, []span{{"→ ", "label"}, {r.Name, "name"},
			{" " + strconv.Itoa(len(r.Matched)) + " matched · " + strconv.Itoa(len(r.NotMatched)) + " not", "label"}})
	}
	return newNode("pipeline", stateRunning, status.NodePipeline, lines...)
}

// limitsLine states the cardinality limits, or nil when there are none.
func limitsLine(l status.Limits) []span {
	if l.MaxSeries == 0 && l.MaxSeriesPerName == 0 {
		return nil
	}
	s := []span{{"limits", "label"}}
	if l.MaxSeries > 0 {
		s = append(s, span{" series ", "label"}, span{human.Count(uint64(l.MaxSeries)), "value"})
	}
	if l.MaxSeriesPerName > 0 {
		s = append(s, span{" per name ", "label"}, span{human.Count(uint64(l.MaxSeriesPerName)), "value"})
	}
	return s
}

// reason is a dropped count's reason as words: dropped_by_rule is "by
// rule", series_limit "series limit".
func reason(key string) string {
	return strings.ReplaceAll(strings.TrimPrefix(key, "dropped_"), "_", " ")
}

func tip(address, lastError string) string {
	if lastError == "" {
		return address
	}
	return address + "\n" + lastError
}

// countClass marks a count of something that went wrong when it is not
// zero.
func countClass(u uint64) string {
	if u > 0 {
		return "warn"
	}
	return "value"
}

// listenSummary is a source's first socket, and how many more.
func listenSummary(l []string) string {
	switch len(l) {
	case 0:
		return "none"
	case 1:
		return l[0]
	default:
		return l[0] + " +" + strconv.Itoa(len(l)-1)
	}
}

// cut shortens s to n characters, ending it with an ellipsis when cut.
func cut(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

// cutSpans shortens a line to n characters, dropping the spans past it.
func cutSpans(l []span, n int) []span {
	var out []span
	for _, s := range l {
		c := utf8.RuneCountInString(s.Text)
		if c <= n {
			n -= c
			out = append(out, s)
			continue
		}
		if n > 0 {
			s.Text = cut(s.Text, n)
			return append(out, s)
		}
		// Full to the last character: that character says it goes on.
		if last := len(out) - 1; last >= 0 {
			r := []rune(out[last].Text)
			out[last].Text = string(r[:len(r)-1]) + "…"
		}
		return out
	}
	return out
}

// kv is a count and what it counts.
type kv struct {
	Key   string
	Value uint64
}

// sortedCounts lists m by key, so the page does not reorder between
// refreshes.
func sortedCounts(m map[string]uint64) []kv {
	out := make([]kv, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		out = append(out, kv{k, m[k]})
	}
	return out
}

// formatTime is t in UTC to the second, or a dash when it is zero.
func formatTime(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format("2006-01-02 15:04:05Z")
}

// ago is how long before now t was: "3 s ago", "5 min ago", "2 h ago",
// "4 d ago"; a dash when t is zero.
func ago(t, now time.Time) string {
	if t.IsZero() {
		return "—"
	}
	d := now.Sub(t)
	switch {
	case d < 0:
		return "in " + strings.TrimSuffix(ago(now, t), " ago")
	case d < time.Second:
		return "now"
	case d < time.Minute:
		return strconv.Itoa(int(d/time.Second)) + " s ago"
	case d < time.Hour:
		return strconv.Itoa(int(d/time.Minute)) + " min ago"
	case d < 48*time.Hour:
		return strconv.Itoa(int(d/time.Hour)) + " h ago"
	}
	return strconv.Itoa(int(d/(24*time.Hour))) + " d ago"
}

// humanLimit is a cardinality limit, "none" for zero.
func humanLimit(l int) string {
	if l <= 0 {
		return "none"
	}
	return human.Count(uint64(l))
}

// percent is part of whole, 0 to 100, for the width of a bar.
func percent(part, whole uint64) int {
	if whole == 0 {
		return 0
	}
	return int(math.Round(float64(part) * 100 / float64(whole)))
}
