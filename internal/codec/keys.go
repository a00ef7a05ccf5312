package codec

import (
	"reflect"
	"strconv"
	"strings"
	"sync"
)

// hasIntKeys caches whether a type holds a map with integer keys.
var hasIntKeys sync.Map // reflect.Type → bool

func intKeyed(t reflect.Type) bool {
	if v, ok := hasIntKeys.Load(t); ok {
		return v.(bool)
	}
	seen := map[reflect.Type]bool{}
	var walk func(t reflect.Type) bool
	walk = func(t reflect.Type) bool {
		if seen[t] {
			return false
		}
		seen[t] = true
		switch t.Kind() {
		case reflect.Pointer, reflect.Slice, reflect.Array:
			return walk(t.Elem())
		case reflect.Map:
			return isInt(t.Key()) || walk(t.Elem())
		case reflect.Struct:
			for i := range t.NumField() {
				if walk(t.Field(i).Type) {
					return true
				}
			}
		}
		return false
	}
	r := walk(t)
	hasIntKeys.Store(t, r)
	return r
}

func isInt(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return true
	}
	return false
}

// intKeys rewrites b, which did not decode into a value of type t (a
// pointer), turning decimal text keys into integers where t has maps with
// integer keys. It reports false when there is nothing to rewrite.
func intKeys(b []byte, t reflect.Type) ([]byte, bool) {
	if t == nil || t.Kind() != reflect.Pointer || !intKeyed(t.Elem()) {
		return nil, false
	}
	var v any
	if anyMode.Unmarshal(b, &v) != nil {
		return nil, false
	}
	changed := false
	v = rekey(v, t.Elem(), &changed, 0)
	if !changed {
		return nil, false
	}
	out, err := encMode.Marshal(v)
	return out, err == nil
}

func rekey(v any, t reflect.Type, changed *bool, depth int) any {
	if depth > 256 {
		return v
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Slice, reflect.Array:
		if a, ok := v.([]any); ok {
			for i, e := range a {
				a[i] = rekey(e, t.Elem(), changed, depth+1)
			}
		}
	case reflect.Map:
		m, ok := v.(map[any]any)
		if !ok {
			return v
		}
		out := make(map[any]any, len(m))
		for k, e := range m {
			if s, ok := k.(string); ok && isInt(t.Key()) {
				if n, err := strconv.ParseInt(s, 10, 64); err == nil {
					k, *changed = n, true
				} else if u, err := strconv.ParseUint(s, 10, 64); err == nil {
					k, *changed = u, true
				}
			}
			out[k] = rekey(e, t.Elem(), changed, depth+1)
		}
		return out
	case reflect.Struct:
		if a, ok := v.([]any); ok && toArray(t) { // fields in order
			j := 0
			for i := range t.NumField() {
				if f := t.Field(i); f.Name != "_" && f.IsExported() && j < len(a) {
					a[j] = rekey(a[j], f.Type, changed, depth+1)
					j++
				}
			}
			return a
		}
		m, ok := v.(map[any]any)
		if !ok {
			return v
		}
		fields := fieldsByName(t)
		for k, e := range m {
			name, ok := k.(string)
			if !ok {
				continue
			}
			f, ok := fields[name]
			if !ok {
				f, ok = fields[strings.ToLower(name)]
			}
			if ok {
				m[k] = rekey(e, f.Type, changed, depth+1)
			}
		}
	}
	return v
}
