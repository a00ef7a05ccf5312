package rivet

import (
	"reflect"
	"unsafe"
)

// cloneValue returns a copy of *src that shares no map, slice or array
// storage with it, the way RivetKit structuredClones vars and connState:
// Options.Vars is copied for every actor start and Options.ConnState for
// every connection, so that one actor writing into a map of its vars
// never writes into another's.
//
// What is copied: maps, slices, arrays, structs (unexported fields too)
// and the values held by interfaces, recursively. What is shared:
// pointers, channels and functions, which keep pointing at the same
// object — a *sql.DB or a shared counter put in Vars stays one object, as
// in any Go value copy. Two references to one map or slice become two
// references to one copy, and a map that contains itself is copied once.
func cloneValue[T any](src *T) T {
	var dst T
	c := cloner{maps: map[unsafe.Pointer]reflect.Value{}}
	c.copy(reflect.ValueOf(&dst).Elem(), reflect.ValueOf(src).Elem())
	return dst
}

type sliceID struct {
	p   unsafe.Pointer
	n   int
	typ reflect.Type
}

type cloner struct {
	maps   map[unsafe.Pointer]reflect.Value
	slices map[sliceID]reflect.Value
}

// copy sets dst, settable and of src's type, to a copy of src.
func (c *cloner) copy(dst, src reflect.Value) {
	switch src.Kind() {
	case reflect.Map:
		if src.IsNil() {
			return
		}
		if m, ok := c.maps[src.UnsafePointer()]; ok {
			dst.Set(m)
			return
		}
		m := reflect.MakeMapWithSize(src.Type(), src.Len())
		c.maps[src.UnsafePointer()] = m
		kt, vt := src.Type().Key(), src.Type().Elem()
		it := src.MapRange()
		for it.Next() {
			k, v := reflect.New(kt).Elem(), reflect.New(vt).Elem()
			c.copy(k, it.Key())
			c.copy(v, it.Value())
			m.SetMapIndex(k, v)
		}
		dst.Set(m)
	case reflect.Slice:
		if src.IsNil() {
			return
		}
		id := sliceID{src.UnsafePointer(), src.Len(), src.Type()}
		if s, ok := c.slices[id]; ok {
			dst.Set(s)
			return
		}
		s := reflect.MakeSlice(src.Type(), src.Len(), src.Len())
		if c.slices == nil {
			c.slices = map[sliceID]reflect.Value{}
		}
		c.slices[id] = s
		if flat(src.Type().Elem()) {
			reflect.Copy(s, src)
		} else {
			for i := range src.Len() {
				c.copy(s.Index(i), src.Index(i))
			}
		}
		dst.Set(s)
	case reflect.Array:
		if flat(src.Type()) {
			dst.Set(src)
			return
		}
		src = addressable(src)
		for i := range src.Len() {
			c.copy(dst.Index(i), src.Index(i))
		}
	case reflect.Struct:
		if flat(src.Type()) {
			dst.Set(src)
			return
		}
		src = addressable(src)
		for i := range src.NumField() {
			c.copy(open(dst.Field(i)), open(src.Field(i)))
		}
	case reflect.Interface:
		if src.IsNil() {
			return
		}
		e := src.Elem()
		v := reflect.New(e.Type()).Elem()
		c.copy(v, e)
		dst.Set(v)
	default:
		// Numbers, strings, pointers, channels, functions: as Go copies them.
		dst.Set(src)
	}
}

// addressable returns v itself if addressable, else an addressable copy
// (the fields of a struct held by a map or an interface).
func addressable(v reflect.Value) reflect.Value {
	if v.CanAddr() {
		return v
	}
	a := reflect.New(v.Type()).Elem()
	a.Set(v)
	return a
}

// open makes an unexported struct field readable and settable as a whole
// value; its struct must be addressable.
func open(f reflect.Value) reflect.Value {
	if f.CanSet() {
		return f
	}
	return reflect.NewAt(f.Type(), unsafe.Pointer(f.UnsafeAddr())).Elem()
}

// flat reports whether values of t hold no map, slice or interface, so
// that a plain Go copy shares nothing with the original.
func flat(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.Map, reflect.Slice, reflect.Interface:
		return false
	case reflect.Array:
		return flat(t.Elem())
	case reflect.Struct:
		for i := range t.NumField() {
			if !flat(t.Field(i).Type) {
				return false
			}
		}
	}
	return true
}
