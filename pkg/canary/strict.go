package canary

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"

	"sigs.k8s.io/yaml"
)

// DecodeStrict decodes YAML into out, rejecting duplicate keys and
// reporting every unknown field, and every value its field's own decoder
// rejects (a bad duration, say), with its path, e.g. "spec.steps[2].pase".
func DecodeStrict(data []byte, out any) error {
	return decodeStrict(data, out)
}

func decodeStrict(data []byte, out any) error {
	j, err := yaml.YAMLToJSONStrict(data)
	if err != nil {
		return fmt.Errorf("decode: %w", err)
	}
	var generic any
	if err := json.Unmarshal(j, &generic); err != nil {
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

var jsonUnmarshaler = reflect.TypeOf((*json.Unmarshaler)(nil)).Elem()

// schemaErrors walks a decoded JSON value against a Go type.
func schemaErrors(v any, t reflect.Type, path string) []error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if reflect.PointerTo(t).Implements(jsonUnmarshaler) {
		b, err := json.Marshal(v)
		if err == nil {
			err = reflect.New(t).Interface().(json.Unmarshaler).UnmarshalJSON(b)
		}
		if err != nil {
			return []error{fmt.Errorf("%s: %w", path, err)}
		}
		return nil
	}
	var out []error
	switch val := v.(type) {
	case map[string]any:
		if t.Kind() == reflect.Map {
			for k, e := range val {
				out = append(out, schemaErrors(e, t.Elem(), join(path, k))...)
			}
			break
		}
		if t.Kind() != reflect.Struct {
			return nil
		}
		fields := jsonFields(t)
		keys := make([]string, 0, len(val))
		for k := range val {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			ft, ok := fields[k]
			if !ok {
				out = append(out, fmt.Errorf("%s: unknown field", join(path, k)))
				continue
			}
			out = append(out, schemaErrors(val[k], ft, join(path, k))...)
		}
	case []any:
		if t.Kind() != reflect.Slice {
			return nil
		}
		for i, e := range val {
			out = append(out, schemaErrors(e, t.Elem(), fmt.Sprintf("%s[%d]", path, i))...)
		}
	}
	return out
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
