package schema

import (
	"reflect"
	"testing"

	"github.com/zclconf/go-cty/cty"
)

type config struct {
	Path    string            `hcl:"path"`
	Mode    string            `hcl:"mode,optional"`
	Limit   int               `hcl:"limit,optional"`
	Tags    []string          `hcl:"tags,optional"`
	Headers map[string]string `hcl:"headers,optional" sensitive:"true"`
	ignored int               //lint:ignore U1000 an untagged field, which Of must skip
}

func TestOf(t *testing.T) {
	s, err := Of(&config{})
	if err != nil {
		t.Fatal(err)
	}
	want := Schema{
		{Name: "path", Type: cty.String, Required: true},
		{Name: "mode", Type: cty.String},
		{Name: "limit", Type: cty.Number},
		{Name: "tags", Type: cty.List(cty.String)},
		{Name: "headers", Type: cty.Map(cty.String), Sensitive: true},
	}
	if !reflect.DeepEqual(s, want) {
		t.Fatalf("got %#v", s)
	}
	if _, err := Of(config{}); err == nil {
		t.Fatal("a non-pointer config was accepted")
	}
}

func TestValuesRoundTripKeepsDefaults(t *testing.T) {
	data, err := MarshalValues(map[string]cty.Value{
		"path":  cty.StringVal("/tmp/x"),
		"limit": cty.NumberIntVal(7),
		"tags":  cty.ListVal([]cty.Value{cty.StringVal("a"), cty.StringVal("b")}),
		"mode":  cty.NullVal(cty.String),
	})
	if err != nil {
		t.Fatal(err)
	}
	c := &config{Mode: "append"}
	if err := UnmarshalValues(data, c); err != nil {
		t.Fatal(err)
	}
	want := &config{Path: "/tmp/x", Mode: "append", Limit: 7, Tags: []string{"a", "b"}}
	if !reflect.DeepEqual(c, want) {
		t.Fatalf("got %+v, want %+v", c, want)
	}
}

func TestTypeRoundTrip(t *testing.T) {
	for _, ty := range []cty.Type{cty.String, cty.List(cty.Number), cty.Map(cty.Bool)} {
		b, err := TypeJSON(ty)
		if err != nil {
			t.Fatal(err)
		}
		got, err := ParseType(b)
		if err != nil || !got.Equals(ty) {
			t.Fatalf("%s: got %s, %v", ty.FriendlyName(), got.FriendlyName(), err)
		}
	}
}

type tlsConfig struct {
	CertFile string `hcl:"cert_file"`
	CAFile   string `hcl:"client_ca_file,optional"`
}

type withBlock struct {
	Listen []string   `hcl:"listen"`
	TLS    *tlsConfig `hcl:"tls,block"`
}

func TestNestedBlock(t *testing.T) {
	s, err := Of(&withBlock{})
	if err != nil {
		t.Fatal(err)
	}
	if len(s) != 2 || !s[1].Block || len(s[1].Nested) != 2 || !s[1].Nested[0].Required {
		t.Fatalf("schema %#v", s)
	}
	bs := s.BodySchema()
	if len(bs.Blocks) != 1 || bs.Blocks[0].Type != "tls" || len(bs.Attributes) != 1 {
		t.Fatalf("body schema %#v", bs)
	}
	data, err := MarshalValues(map[string]cty.Value{
		"listen": cty.ListVal([]cty.Value{cty.StringVal("tcp://127.0.0.1:1")}),
		"tls": cty.ObjectVal(map[string]cty.Value{
			"cert_file":      cty.StringVal("/c.pem"),
			"client_ca_file": cty.NullVal(cty.String),
		}),
	})
	if err != nil {
		t.Fatal(err)
	}
	c := &withBlock{}
	if err := UnmarshalValues(data, c); err != nil {
		t.Fatalf("%s: %v", data, err)
	}
	if c.TLS == nil || c.TLS.CertFile != "/c.pem" || c.TLS.CAFile != "" {
		t.Fatalf("decoded %+v from %s", c.TLS, data)
	}
	c = &withBlock{}
	if err := UnmarshalValues([]byte(`{"listen":["x"]}`), c); err != nil || c.TLS != nil {
		t.Fatalf("absent block: %+v, %v", c.TLS, err)
	}
}

type shared struct {
	Timeout string `hcl:"timeout,optional"`
	TLS     *struct {
		CAFile string `hcl:"ca_file,optional"`
	} `hcl:"tls,block"`
}

type embedding struct {
	Address string `hcl:"address"`
	shared
	Headers map[string]string `hcl:"headers,optional"`
}

// TestEmbeddedAttributes checks that an embedded struct's attributes and
// blocks are the embedding struct's own, in the schema and in decoding.
func TestEmbeddedAttributes(t *testing.T) {
	s, err := Of(&embedding{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, a := range s {
		names = append(names, a.Name)
	}
	if want := []string{"address", "timeout", "tls", "headers"}; !reflect.DeepEqual(names, want) {
		t.Fatalf("attributes %v, want %v", names, want)
	}
	c := &embedding{shared: shared{Timeout: "10s"}, Headers: map[string]string{"default": "x"}}
	data := []byte(`{"address":"a","tls":{"ca_file":"/ca.pem"},"headers":{"X-A":"b"}}`)
	if err := UnmarshalValues(data, c); err != nil {
		t.Fatal(err)
	}
	if c.Address != "a" || c.Timeout != "10s" || c.TLS == nil || c.TLS.CAFile != "/ca.pem" ||
		!reflect.DeepEqual(c.Headers, map[string]string{"X-A": "b"}) {
		t.Fatalf("decoded %+v (tls %+v)", c, c.TLS)
	}
	if err := UnmarshalValues([]byte(`{"address":"a","timeot":"1s"}`), &embedding{}); err == nil {
		t.Fatal("an unknown attribute was accepted")
	}
	if err := UnmarshalValues([]byte(`{}`), &embedding{}); err == nil {
		t.Fatal("a missing required attribute was accepted")
	}
}

type twice struct {
	Timeout string `hcl:"timeout,optional"`
	shared
}

func TestDuplicateAttributeRefused(t *testing.T) {
	if _, err := Of(&twice{}); err == nil {
		t.Fatal("an attribute declared twice was accepted")
	}
}
