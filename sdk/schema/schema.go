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
	"errors"
	"fmt"
	"reflect"
	"strings"

	"github.com/hashicorp/hcl/v2"
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

// Of derives the schema of config, a pointer to a struct. The attributes of
// an embedded struct (an anonymous field without an `hcl` tag) are the
// struct's own, so that attributes several plugins share are declared once
// (as sdk/delivery's are).
func Of(config any) (Schema, error) {
	v := reflect.ValueOf(config)
	if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
		return nil, fmt.Errorf("config must be a pointer to a struct, not %T", config)
	}
	fs, err := fieldsOf(v.Elem().Type())
	if err != nil {
		return nil, err
	}
	var s Schema
	for _, f := range fs {
		if f.block {
			nested, err := Of(reflect.New(f.typ.Elem()).Interface())
			if err != nil {
				return nil, fmt.Errorf("block %s: %w", f.name, err)
			}
			for _, a := range nested {
				if a.Block {
					return nil, fmt.Errorf("block %s: blocks cannot nest further", f.name)
				}
			}
			s = append(s, Attribute{Name: f.name, Type: nested.ObjectType(), Block: true, Nested: nested,
				Description: f.tag.Get("description")})
			continue
		}
		ty, err := typeOf(f.typ)
		if err != nil {
			return nil, fmt.Errorf("field %s: %w", f.goName, err)
		}
		s = append(s, Attribute{
			Name:        f.name,
			Type:        ty,
			Required:    f.required,
			Sensitive:   f.tag.Get("sensitive") == "true",
			Description: f.tag.Get("description"),
		})
	}
	return s, nil
}

// field is an attribute or block of a configuration struct.
type field struct {
	name     string
	goName   string
	index    []int // for reflect.Value.FieldByIndex
	typ      reflect.Type
	tag      reflect.StructTag
	block    bool
	required bool
}

// fieldsOf lists the attributes and blocks of struct type t, those of its
// embedded structs in place.
func fieldsOf(t reflect.Type) ([]field, error) {
	var out []field
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("hcl")
		if tag == "" {
			if f.Anonymous && f.Type.Kind() == reflect.Struct {
				inner, err := fieldsOf(f.Type)
				if err != nil {
					return nil, err
				}
				for _, in := range inner {
					in.index = append([]int{i}, in.index...)
					out = append(out, in)
				}
			}
			continue
		}
		name, kind, _ := strings.Cut(tag, ",")
		switch kind {
		case "block":
			if f.Type.Kind() != reflect.Pointer || f.Type.Elem().Kind() != reflect.Struct {
				return nil, fmt.Errorf("field %s: a block must be a pointer to a struct", f.Name)
			}
		case "", "optional", "attr":
		default:
			return nil, fmt.Errorf("field %s: only attributes and blocks are supported, not %q", f.Name, kind)
		}
		out = append(out, field{name: name, goName: f.Name, index: []int{i}, typ: f.Type, tag: f.Tag,
			block: kind == "block", required: kind == "" || kind == "attr"})
	}
	for i, f := range out {
		for _, g := range out[:i] {
			if g.name == f.name {
				return nil, fmt.Errorf("fields %s and %s: %q is declared twice", g.goName, f.goName, f.name)
			}
		}
	}
	return out, nil
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
// pointer to a struct holding defaults, through the same `hcl` tags: an
// attribute that is absent keeps its default.
func UnmarshalValues(data []byte, config any) error {
	v := reflect.ValueOf(config)
	if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
		return fmt.Errorf("config must be a pointer to a struct, not %T", config)
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(data, &obj); err != nil {
		return err
	}
	return unmarshalInto(obj, v.Elem())
}

func unmarshalInto(obj map[string]json.RawMessage, v reflect.Value) error {
	fs, err := fieldsOf(v.Type())
	if err != nil {
		return err
	}
	var errs []error
	known := make(map[string]bool, len(fs))
	for _, f := range fs {
		known[f.name] = true
		raw, ok := obj[f.name]
		if !ok || string(raw) == "null" {
			if f.required {
				errs = append(errs, fmt.Errorf("the argument %q is required", f.name))
			}
			continue
		}
		fv := v.FieldByIndex(f.index)
		if f.block {
			var inner map[string]json.RawMessage
			if err := json.Unmarshal(raw, &inner); err != nil {
				errs = append(errs, fmt.Errorf("block %s: %w", f.name, err))
				continue
			}
			if fv.IsNil() {
				fv.Set(reflect.New(f.typ.Elem()))
			}
			if err := unmarshalInto(inner, fv.Elem()); err != nil {
				errs = append(errs, fmt.Errorf("block %s: %w", f.name, err))
			}
			continue
		}
		if fv.Kind() == reflect.Map {
			fv.SetZero() // a given map replaces the default, as a list does
		}
		if err := json.Unmarshal(raw, fv.Addr().Interface()); err != nil {
			errs = append(errs, fmt.Errorf("attribute %q: %w", f.name, err))
		}
	}
	for name := range obj {
		if !known[name] {
			errs = append(errs, fmt.Errorf("an argument named %q is not expected here", name))
		}
	}
	return errors.Join(errs...)
}

// TypeJSON and ParseType carry a cty.Type across the wire.
func TypeJSON(t cty.Type) ([]byte, error) { return t.MarshalJSON() }

// ParseType is the inverse of TypeJSON.
func ParseType(b []byte) (cty.Type, error) {
	var t cty.Type
	err := t.UnmarshalJSON(b)
	return t, err
}
