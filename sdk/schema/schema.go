// Package schema turns a plugin's configuration struct into a schema that
// crosses the plugin boundary, and back into values.
//
// The struct's `hcl` tags (as gohcl reads them) name the attributes: a tag
// with ",optional" is optional, any other attribute is required. A field
// tagged `sensitive:"true"` is redacted when veneurd shows the config. The
// field's Go type gives the attribute's type: string, bool, integer and float
// kinds, and slices and maps of those. A field tagged ",block" whose type is
// a pointer to a struct is an optional nested block holding attributes
// (`tls { cert_file = "..." }`).
package schema

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/gohcl"
	hcljson "github.com/hashicorp/hcl/v2/json"
	"github.com/zclconf/go-cty/cty"
	ctyjson "github.com/zclconf/go-cty/cty/json"
)

// Attribute describes one configuration attribute.
type Attribute struct {
	Name        string
	Type        cty.Type // for a block, the object type of its attributes
	Required    bool
	Sensitive   bool
	Description string
	// Block is set for a nested block; Nested are its attributes.
	Block  bool
	Nested Schema
}

// Schema is an ordered list of attributes.
type Schema []Attribute

// Of derives the schema of config, a pointer to a struct.
func Of(config any) (Schema, error) {
	v := reflect.ValueOf(config)
	if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
		return nil, fmt.Errorf("config must be a pointer to a struct, not %T", config)
	}
	t := v.Elem().Type()
	var s Schema
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("hcl")
		if tag == "" {
			continue
		}
		name, kind, _ := strings.Cut(tag, ",")
		if kind == "block" {
			if f.Type.Kind() != reflect.Pointer || f.Type.Elem().Kind() != reflect.Struct {
				return nil, fmt.Errorf("field %s: a block must be a pointer to a struct", f.Name)
			}
			nested, err := Of(reflect.New(f.Type.Elem()).Interface())
			if err != nil {
				return nil, fmt.Errorf("block %s: %w", name, err)
			}
			for _, a := range nested {
				if a.Block {
					return nil, fmt.Errorf("block %s: blocks cannot nest further", name)
				}
			}
			s = append(s, Attribute{Name: name, Type: nested.ObjectType(), Block: true, Nested: nested,
				Description: f.Tag.Get("description")})
			continue
		}
		if kind != "" && kind != "optional" && kind != "attr" {
			return nil, fmt.Errorf("field %s: only attributes and blocks are supported, not %q", f.Name, kind)
		}
		ty, err := typeOf(f.Type)
		if err != nil {
			return nil, fmt.Errorf("field %s: %w", f.Name, err)
		}
		s = append(s, Attribute{
			Name:        name,
			Type:        ty,
			Required:    kind != "optional",
			Sensitive:   f.Tag.Get("sensitive") == "true",
			Description: f.Tag.Get("description"),
		})
	}
	return s, nil
}

func typeOf(t reflect.Type) (cty.Type, error) {
	switch t.Kind() {
	case reflect.String:
		return cty.String, nil
	case reflect.Bool:
		return cty.Bool, nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64:
		return cty.Number, nil
	case reflect.Slice:
		et, err := typeOf(t.Elem())
		if err != nil {
			return cty.NilType, err
		}
		return cty.List(et), nil
	case reflect.Map:
		if t.Key().Kind() != reflect.String {
			return cty.NilType, fmt.Errorf("map keys must be strings")
		}
		et, err := typeOf(t.Elem())
		if err != nil {
			return cty.NilType, err
		}
		return cty.Map(et), nil
	}
	return cty.NilType, fmt.Errorf("unsupported type %s", t)
}

// BodySchema is the hcl.BodySchema of s.
func (s Schema) BodySchema() *hcl.BodySchema {
	bs := &hcl.BodySchema{}
	for _, a := range s {
		if a.Block {
			bs.Blocks = append(bs.Blocks, hcl.BlockHeaderSchema{Type: a.Name})
			continue
		}
		bs.Attributes = append(bs.Attributes, hcl.AttributeSchema{Name: a.Name, Required: a.Required})
	}
	return bs
}

// ObjectType is the object type of s's attributes, all optional but the
// required ones.
func (s Schema) ObjectType() cty.Type {
	attrs := map[string]cty.Type{}
	var optional []string
	for _, a := range s {
		attrs[a.Name] = a.Type
		if !a.Required {
			optional = append(optional, a.Name)
		}
	}
	return cty.ObjectWithOptionalAttrs(attrs, optional)
}

// Lookup returns the attribute called name.
func (s Schema) Lookup(name string) (Attribute, bool) {
	for _, a := range s {
		if a.Name == name {
			return a, true
		}
	}
	return Attribute{}, false
}

// MarshalValues encodes attribute values as one JSON object, leaving out
// nulls so that the plugin's defaults stand. A block's value is an object
// and is encoded the same way.
func MarshalValues(values map[string]cty.Value) ([]byte, error) {
	obj := make(map[string]json.RawMessage, len(values))
	for name, v := range values {
		if v.IsNull() {
			continue
		}
		if v.Type().IsObjectType() {
			b, err := MarshalValues(v.AsValueMap())
			if err != nil {
				return nil, fmt.Errorf("block %s: %w", name, err)
			}
			obj[name] = b
			continue
		}
		b, err := ctyjson.Marshal(v, v.Type())
		if err != nil {
			return nil, fmt.Errorf("attribute %s: %w", name, err)
		}
		obj[name] = b
	}
	return json.Marshal(obj)
}

// UnmarshalValues decodes a JSON object made by MarshalValues into config, a
// pointer to a struct holding defaults, through the same `hcl` tags.
func UnmarshalValues(data []byte, config any) error {
	f, diags := hcljson.Parse(data, "config.json")
	if diags.HasErrors() {
		return diags
	}
	if diags := gohcl.DecodeBody(f.Body, nil, config); diags.HasErrors() {
		return diags
	}
	return nil
}

// TypeJSON and ParseType carry a cty.Type across the wire.
func TypeJSON(t cty.Type) ([]byte, error) { return t.MarshalJSON() }

// ParseType is the inverse of TypeJSON.
func ParseType(b []byte) (cty.Type, error) {
	var t cty.Type
	err := t.UnmarshalJSON(b)
	return t, err
}
