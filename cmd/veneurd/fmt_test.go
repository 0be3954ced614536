package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestFmt(t *testing.T) {
	dir := t.TempDir()
	messy := filepath.Join(dir, "messy.hcl")
	writeFile(t, messy, "veneurd {\ninterval = \"10s\"\n    hostname=\"h\"\n}\n")
	tidy := filepath.Join(dir, "tidy.hcl")
	writeFile(t, tidy, "sink \"debug\" \"stdout\" {}\n")
	broken := filepath.Join(t.TempDir(), "broken.hcl")
	writeFile(t, broken, "veneurd {\n  interval = \n")

	var out, errs strings.Builder
	if code := dispatch([]string{"fmt", "-check", dir}, &out, &errs); code != 1 || strings.TrimSpace(out.String()) != messy {
		t.Fatalf("fmt -check: exit %d, listed %q", code, out.String())
	}
	out.Reset()
	if code := dispatch([]string{"fmt", dir}, &out, &errs); code != 0 {
		t.Fatalf("fmt: exit %d: %s", code, errs.String())
	}
	got, _ := os.ReadFile(messy)
	if want := "veneurd {\n  interval = \"10s\"\n  hostname = \"h\"\n}\n"; string(got) != want {
		t.Fatalf("formatted:\n%s\nwant:\n%s", got, want)
	}
	out.Reset()
	if code := dispatch([]string{"fmt", "-check", dir}, &out, &errs); code != 0 || out.Len() != 0 {
		t.Fatalf("fmt -check after fmt: exit %d, listed %q", code, out.String())
	}
	errs.Reset()
	if code := dispatch([]string{"fmt", broken}, &out, &errs); code != 1 || !strings.Contains(errs.String(), broken+":2:") {
		t.Fatalf("fmt of a broken file: exit %d: %s", code, errs.String())
	}
	if b, _ := os.ReadFile(broken); string(b) != "veneurd {\n  interval = \n" {
		t.Fatal("a broken file was rewritten")
	}
}
