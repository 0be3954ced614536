package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os/signal"
	"strings"
	"syscall"

	"github.com/veneurd/veneurd/core/config"
	"github.com/veneurd/veneurd/core/status"
)

func tapCmd(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("tap", "[-addr HOST:PORT] -sink ADDRESS | -source ADDRESS [-json] [-n N] [MATCHER]",
		"Streams what flows through one block of a running veneurd, live, until interrupted:\n"+
			"the points a sink receives (after routing and its tag policy), or the samples a source\n"+
			"reads (before drop rules and limits). Delivery is not disturbed: a tap that falls\n"+
			"behind loses lines, and says how many.\n\n"+
			"MATCHER picks names: \"api.requests\" exactly, \"api.*\" by prefix, \"/regex/\"; all by default.\n"+
			"ADDRESS is a block's address, as in sink.datadog.main or source.dogstatsd.in.", stderr)
	addr := fs.String("addr", config.DefaultHTTPAddress, "the admin address (veneurd { http_address }) of the veneurd to tap")
	sink := fs.String("sink", "", "tap the points this sink receives")
	source := fs.String("source", "", "tap the samples this source reads")
	asJSON := fs.Bool("json", false, "write each line as a JSON object (see core/status.TapPoint)")
	limit := fs.Int("n", 0, "stop after N lines (0: until interrupted)")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	usageErr := usageError(stderr, "tap")
	if fs.NArg() > 1 {
		return usageErr("one MATCHER at most, not %q", strings.Join(fs.Args(), " "))
	}
	block := ""
	switch {
	case *sink != "" && *source != "":
		return usageErr("tap a sink or a source, not both")
	case *sink != "":
		block = blockAddress("sink", *sink)
	case *source != "":
		block = blockAddress("source", *source)
	default:
		msg := "name the block to tap with -sink ADDRESS or -source ADDRESS"
		if names := blockNames(*addr); len(names) > 0 {
			msg += "; this veneurd has " + strings.Join(names, ", ")
		}
		return usageErr("%s", msg)
	}
	q := url.Values{"block": {block}, "name": {fs.Arg(0)}}
	if *asJSON {
		q.Set("format", "json")
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+*addr+"/api/tap?"+q.Encode(), nil)
	if err != nil {
		return usageErr("invalid -addr %q: %v", *addr, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Fprintf(stderr, "veneurd tap: cannot reach %s: %v\n", *addr, err)
		return 1
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		fmt.Fprintf(stderr, "veneurd tap: %s: %s\n", *addr, strings.TrimSpace(string(msg)))
		return 1
	}
	out := bufio.NewWriter(stdout)
	defer out.Flush()
	r := bufio.NewReader(resp.Body)
	for n := 0; *limit == 0 || n < *limit; {
		line, err := r.ReadBytes('\n')
		if len(line) > 0 {
			out.Write(line)
			if !isLostLine(line) {
				n++
			}
			if r.Buffered() == 0 { // show what came as it comes
				out.Flush()
			}
		}
		if err != nil {
			if ctx.Err() == nil {
				out.Flush()
				fmt.Fprintf(stderr, "veneurd tap: %s ended the tap: %v\n", *addr, err)
				return 1
			}
			return 0
		}
	}
	return 0
}

// blockAddress completes a block's address given without its kind
// (datadog.main for sink.datadog.main).
func blockAddress(kind, addr string) string {
	if strings.HasPrefix(addr, kind+".") {
		return addr
	}
	return kind + "." + addr
}

// isLostLine reports whether a tap's line counts lost lines rather than
// carrying one.
func isLostLine(line []byte) bool {
	return strings.HasPrefix(string(line), "# lost ") || strings.HasPrefix(string(line), `{"lost":`)
}

// blockNames lists the sources and sinks of the veneurd at addr, for a
// usage error; none if it cannot be reached.
func blockNames(addr string) []string {
	resp, err := http.Get("http://" + addr + "/api/status")
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	var st status.Status
	if json.NewDecoder(resp.Body).Decode(&st) != nil {
		return nil
	}
	var names []string
	for _, s := range st.Sources {
		names = append(names, s.Address)
	}
	for _, k := range st.Sinks {
		names = append(names, k.Address)
	}
	return names
}
