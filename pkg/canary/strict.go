package canary

import (
	"bytes"
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"sigs.k8s.io/yaml"
)

// DecodeStrict decodes YAML into out, rejecting duplicate keys and
// reporting, all together and each with its path, every unknown field
// (e.g. "spec.steps[2].pase"), every value of the wrong type (e.g.
// `spec.steps[2].setWeight: want an integer, got "ten"`) and every value
// its field's own decoder rejects (a bad duration, say).
func DecodeStrict(data []byte, out any) error {
	return decodeStrict(data, out)
}

func decodeStrict(data []byte, out any) error {
	j, err := yaml.YAMLToJSONStrict(data)
	if err != nil {
		return fmt.Errorf("decode: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(j))
	dec.UseNumber() // keep integers exact, so that 1.5 and 1e99 are told from ints
	var generic any
	if err := dec.Decode(&generic); err != nil {
		return fmt.Errorf("decode: %w", err)
	}
	if errs := schemaErrors(generic, reflect.TypeOf(out).Elem(), ""); len(errs) > 0 {
		return errors.Join(errs...)
	}
	if err := json.Unmarshal(j, out); err != nil {
		return fmt.Errorf("decode: %w", err)
	}
	return nil
}

var (
	jsonUnmarshaler = reflect.TypeFor[json.Unmarshaler]()
	textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// schemaErrors walks a decoded JSON value against the Go type it will be
// decoded into and returns every unknown field and every type mismatch.
// A null is accepted anywhere: it leaves the field at its zero value.
func schemaErrors(v any, t reflect.Type, path string) []error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if v == nil {
		return nil
	}
	if reflect.PointerTo(t).Implements(jsonUnmarshaler) {
		return unmarshalerErrors(v, t, path)
	}
	if reflect.PointerTo(t).Implements(textUnmarshaler) {
		s, ok := v.(string)
		if !ok {
			return []error{typeError(path, "a string", v)}
		}
		if err := reflect.New(t).Interface().(encoding.TextUnmarshaler).UnmarshalText([]byte(s)); err != nil {
			return []error{fmt.Errorf("%s: %w", at(path), err)}
		}
		return nil
	}
	switch t.Kind() {
	case reflect.Struct:
		return structErrors(v, t, path)
	case reflect.Map:
		return mapErrors(v, t, path)
	case reflect.Slice, reflect.Array:
		list, ok := v.([]any)
		if !ok {
			return []error{typeError(path, "a list", v)}
		}
		var out []error
		for i, e := range list {
			out = append(out, schemaErrors(e, t.Elem(), fmt.Sprintf("%s[%d]", path, i))...)
		}
		return out
	case reflect.Interface:
		return nil
	}
	if err := scalarError(v, t, path); err != nil {
		return []error{err}
	}
	return nil
}

// unmarshalerErrors runs a type's own UnmarshalJSON on v.
func unmarshalerErrors(v any, t reflect.Type, path string) []error {
	b, err := json.Marshal(v)
	if err == nil {
		err = reflect.New(t).Interface().(json.Unmarshaler).UnmarshalJSON(b)
	}
	if err != nil {
		return []error{fmt.Errorf("%s: %w", at(path), err)}
	}
	return nil
}

// structErrors checks a mapping against a struct: unknown keys, then each
// known field's value, in key order.
func structErrors(v any, t reflect.Type, path string) []error {
	obj, ok := v.(map[string]any)
	if !ok {
		return []error{typeError(path, "a mapping", v)}
	}
	fields := jsonFields(t)
	var out []error
	for _, k := range sortedKeys(obj) {
		ft, ok := fields[k]
		if !ok {
			out = append(out, fmt.Errorf("%s: unknown field", join(path, k)))
			continue
		}
		out = append(out, schemaErrors(obj[k], ft, join(path, k))...)
	}
	return out
}

// mapErrors checks each value of a mapping against a Go map's element type.
func mapErrors(v any, t reflect.Type, path string) []error {
	obj, ok := v.(map[string]any)
	if !ok {
		return []error{typeError(path, "a mapping", v)}
	}
	var out []error
	for _, k := range sortedKeys(obj) {
		out = append(out, schemaErrors(obj[k], t.Elem(), join(path, k))...)
	}
	return out
}

// scalarError checks a string, boolean or number against its Go kind, the
// way encoding/json would decode it.
func scalarError(v any, t reflect.Type, path string) error {
	switch t.Kind() {
	case reflect.String:
		if _, ok := v.(string); !ok {
			return typeError(path, "a string", v)
		}
	case reflect.Bool:
		if _, ok := v.(bool); !ok {
			return typeError(path, "a boolean (true or false)", v)
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, ok := v.(json.Number)
		if !ok {
			return typeError(path, "an integer", v)
		}
		if _, err := strconv.ParseInt(n.String(), 10, t.Bits()); err != nil {
			return numberError(path, "an integer", n, err)
		}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		n, ok := v.(json.Number)
		if !ok {
			return typeError(path, "a non-negative integer", v)
		}
		if _, err := strconv.ParseUint(n.String(), 10, t.Bits()); err != nil {
			return numberError(path, "a non-negative integer", n, err)
		}
	case reflect.Float32, reflect.Float64:
		n, ok := v.(json.Number)
		if !ok {
			return typeError(path, "a number", v)
		}
		if _, err := strconv.ParseFloat(n.String(), t.Bits()); err != nil {
			return numberError(path, "a number", n, err)
		}
	}
	return nil
}

// numberError tells a number out of range from one of the wrong kind
// (1.5 or 1e3 for an integer).
func numberError(path, want string, n json.Number, err error) error {
	if errors.Is(err, strconv.ErrRange) {
		return fmt.Errorf("%s: want %s, got %s, which is out of range", at(path), want, n)
	}
	return typeError(path, want, n)
}

// typeError says what a field wants and what it got.
func typeError(path, want string, got any) error {
	return fmt.Errorf("%s: want %s, got %s", at(path), want, describe(got))
}

// describe renders a decoded JSON value for an error message.
func describe(v any) string {
	switch x := v.(type) {
	case string:
		return strconv.Quote(x)
	case json.Number:
		return x.String()
	case bool:
		return strconv.FormatBool(x)
	case []any:
		return "a list"
	case map[string]any:
		return "a mapping"
	}
	return fmt.Sprintf("%v", v)
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func jsonFields(t reflect.Type) map[string]reflect.Type {
	m := map[string]reflect.Type{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		m[name] = f.Type
	}
	return m
}

func join(path, k string) string {
	if path == "" {
		return k
	}
	return path + "." + k
}

// at names a path in a message; the empty path is the whole document.
func at(path string) string {
	if path == "" {
		return "(document)"
	}
	return path
}
