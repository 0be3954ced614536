package admin

import (
	"html/template"
	"io"

	"github.com/veneurd/veneurd/core/status"
)

var page = template.Must(template.New("page").Parse(`<!DOCTYPE html>
<html><head><meta charset="utf-8"><meta http-equiv="refresh" content="2"><title>veneurd {{.Hostname}}</title></head>
<body><h1>veneurd on {{.Hostname}}</h1></body></html>`))

// writePage writes the status page of st.
func writePage(w io.Writer, st *status.Status) error { return page.Execute(w, st) }
