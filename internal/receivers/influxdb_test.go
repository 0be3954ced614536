package receivers

import (
	"fmt"
	"maps"
	"reflect"
	"testing"
	"time"
)

// TestInfluxDB writes line protocol to a real InfluxDB and queries it back:
// the findings in Influx's doc comment.
func TestInfluxDB(t *testing.T) {
	i := InfluxDB(t)
	ns := time.Now().UnixNano()
	sec := ns / 1e9
	write := i.URL + "/write?db=" + i.DB
	post(t, write, "text/plain", []byte(fmt.Sprintf(
		"m.a,host=h1,k=v.w value=1.5 %d\n"+
			"m.a,k=v.w,host=h1 value=2.5 %d\n"+ // same series and time: replaces
			"m.a,host=h1,k=v.w value=3.5 %d\n"+
			"m2,a\\ b=c\\,d f=1,i=2i,b=true,s=\"str\" %d\n"+
			"m.old value=1 1\n", ns, ns, ns+1, ns)), 204)
	post(t, write+"&precision=s", "text/plain", []byte(fmt.Sprintf("m.sec value=4 %d\n", sec)), 204)

	rows := i.Query(t, i.DB, `SELECT "value" FROM "m.a" GROUP BY *`)
	want := []Row{{Name: "m.a", Tags: map[string]string{"host": "h1", "k": "v.w"}, Columns: []string{"time", "value"},
		Values: [][]any{{ns, 2.5}, {ns + 1, 3.5}}}}
	if !reflect.DeepEqual(rows, want) {
		t.Errorf("m.a: got\n%swant\n%s", show(rows), show(want))
	}
	rows = i.Query(t, i.DB, `SELECT * FROM "m2"`)
	if len(rows) != 1 || rows[0].Get(0, "time") != ns || rows[0].Get(0, "a b") != "c,d" ||
		rows[0].Get(0, "f") != 1.0 || rows[0].Get(0, "i") != 2.0 || rows[0].Get(0, "b") != true || rows[0].Get(0, "s") != "str" {
		t.Errorf("m2: %s", show(rows))
	}
	if rows := i.Query(t, i.DB, `SELECT * FROM "m.old"`); len(rows) != 1 || rows[0].Get(0, "time") != int64(1) {
		t.Errorf("m.old: %s", show(rows))
	}
	if rows := i.Query(t, i.DB, `SELECT * FROM "m.sec"`); len(rows) != 1 || rows[0].Get(0, "time") != sec*1e9 {
		t.Errorf("m.sec: %s", show(rows))
	}
	series := i.Query(t, i.DB, `SHOW SERIES`)
	if len(series) != 1 || len(series[0].Values) != 4 {
		t.Errorf("series: %s", show(series))
	}

	// A field of another type is refused, the rest of the request stored.
	post(t, write, "text/plain", []byte(fmt.Sprintf("m.a,host=h1,k=v.w value=9i %d\nm.ok value=1 %d\n", ns+2, ns)), 400)
	if rows := i.Query(t, i.DB, `SELECT * FROM "m.ok"`); len(rows) != 1 {
		t.Errorf("m.ok: %s", show(rows))
	}
	// No such database.
	post(t, i.URL+"/write?db=nope", "text/plain", []byte("m value=1\n"), 404)

	i.CreateDatabase(t, "other")
	post(t, i.URL+"/write?db=other", "text/plain", []byte(fmt.Sprintf("o value=1 %d\n", ns)), 204)
	got := i.WaitQuery(t, "other", `SELECT "value" FROM "o" GROUP BY *`, wait, func(r []Row) bool { return len(r) == 1 })
	if !maps.Equal(got[0].Tags, map[string]string{}) && got[0].Tags != nil {
		t.Errorf("o: %s", show(got))
	}
}

// TestInfluxDBRestart stops InfluxDB and starts it again: what it had is
// still there, and it takes writes again.
func TestInfluxDBRestart(t *testing.T) {
	i := InfluxDB(t)
	ns := time.Now().UnixNano()
	post(t, i.URL+"/write?db="+i.DB, "text/plain", []byte(fmt.Sprintf("restart value=1 %d\n", ns-1)), 204)
	i.Stop()
	if err := httpOK(i.URL + "/ping"); err == nil {
		t.Fatal("influxd still answers after Stop")
	}
	i.Start()
	post(t, i.URL+"/write?db="+i.DB, "text/plain", []byte(fmt.Sprintf("restart value=2 %d\n", ns)), 204)
	rows := i.Query(t, i.DB, `SELECT * FROM "restart"`)
	if len(rows) != 1 || !reflect.DeepEqual(rows[0].Values, [][]any{{ns - 1, 1.0}, {ns, 2.0}}) {
		t.Errorf("after restart: %s", show(rows))
	}
}
