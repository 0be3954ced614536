package datadog

import (
	"math"
	"testing"

	"github.com/veneurd/veneurd/sdk"
)

func TestCheckRuns(t *testing.T) {
	f := func(p sdk.Point, want string) {
		t.Helper()
		old := status("old", 0, "")
		enc := &CheckRuns{}
		enc.Point(&old)
		checkOne(t, enc, p, `[`, want, `]`)
	}
	f(status("db.up", 2, "refused", "k:v"),
		`{"check":"db.up","status":2,"host_name":"h1","timestamp":1700000000,"tags":["k:v"],"message":"refused"}`)
	for v, want := range []string{"0", "1", "2", "3"} {
		f(status("db.up", float64(v), ""), `{"check":"db.up","status":`+want+`,"host_name":"h1","timestamp":1700000000,"tags":[]}`)
	}
	f(status("db.up", math.Copysign(0, -1), ""), `{"check":"db.up","status":0,"host_name":"h1","timestamp":1700000000,"tags":[]}`)
	// host: sets host_name; device: stays a tag (check_run has no device).
	f(status("db.up", 1, "", "a:b", "device:sda", "host:h2"),
		`{"check":"db.up","status":1,"host_name":"h2","timestamp":1700000000,"tags":["a:b","device:sda"]}`)
	f(status("db.up", 1, "", "host:h2", "host:"),
		`{"check":"db.up","status":1,"host_name":"h1","timestamp":1700000000,"tags":[]}`)
	// host_name is required: empty rather than left out.
	p := status("db.up", 0, "")
	p.Hostname, p.Timestamp = "", 0
	f(p, `{"check":"db.up","status":0,"host_name":"","tags":[]}`)
	p = status(oddName, 3, oddName, oddTag, "host:"+oddTag)
	f(p, `{"check":`+oddJSON+`,"status":3,"host_name":`+oddTagJ+`,"timestamp":1700000000,"tags":[`+oddTagJ+`],"message":`+oddJSON+`}`)

	// Refused: not a status, not a status value, no name.
	for _, v := range []float64{-1, 4, 1.5, 0.1, math.NaN(), math.Inf(1), 1e300} {
		f(status("db.up", v, ""), "")
	}
	f(gauge("db.up", 0), "")
	f(counter("db.up", 0), "")
	f(status("", 0, ""), "")
}
