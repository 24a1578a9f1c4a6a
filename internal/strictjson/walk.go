package strictjson

import (
	"bytes"
	"encoding"
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// This file compares a Go value with a document the way [Faithful]
// defines, without encoding the value first: structs, maps with string
// keys, slices, strings, integers, booleans, pointers and interfaces are
// walked as encoding/json would encode them; anything else (a type that
// encodes itself, floats, []byte, a ",string" field) is encoded by
// encoding/json and compared as JSON. FuzzParseLink and the other fuzz
// targets hold it to what encoding/json says.

var (
	numberType        = reflect.TypeFor[json.Number]()
	marshalerType     = reflect.TypeFor[json.Marshaler]()
	textMarshalerType = reflect.TypeFor[encoding.TextMarshaler]()
)

// field is one JSON member of a struct type.
type field struct {
	name      string
	index     []int
	omitEmpty bool
}

// structFields returns a struct type's members as encoding/json encodes
// them, or ok false for a type the walk leaves to encoding/json.
func structFields(t reflect.Type) ([]field, bool) {
	if c, hit := fieldCache.Load(t); hit {
		e := c.(fieldsEntry)
		return e.fields, e.ok
	}
	fields, ok := collectFields(t, nil)
	names := map[string]bool{}
	for _, f := range fields {
		if names[f.name] {
			ok = false // a conflict encoding/json resolves by its own rules
		}
		names[f.name] = true
	}
	fieldCache.Store(t, fieldsEntry{fields, ok})
	return fields, ok
}

type fieldsEntry struct {
	fields []field
	ok     bool
}

var fieldCache sync.Map // reflect.Type → fieldsEntry

func collectFields(t reflect.Type, prefix []int) ([]field, bool) {
	var out []field
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		tag := sf.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		index := append(append([]int(nil), prefix...), i)
		if sf.Anonymous && name == "" {
			if sf.Type.Kind() != reflect.Struct {
				return nil, false
			}
			inner, ok := collectFields(sf.Type, index)
			if !ok {
				return nil, false
			}
			out = append(out, inner...)
			continue
		}
		if !sf.IsExported() {
			continue
		}
		omit := false
		for _, o := range strings.Split(opts, ",") {
			switch o {
			case "omitempty":
				omit = true
			case "", "-":
			default: // string, omitzero, …
				return nil, false
			}
		}
		if name == "" {
			name = sf.Name
		}
		out = append(out, field{name: name, index: index, omitEmpty: omit})
	}
	return out, true
}

// encodesItself reports whether encoding/json hands v to a method of its own.
func encodesItself(v reflect.Value) bool {
	t := v.Type()
	if t.Implements(marshalerType) || t.Implements(textMarshalerType) {
		return true
	}
	pt := reflect.PointerTo(t)
	return v.CanAddr() && (pt.Implements(marshalerType) || pt.Implements(textMarshalerType))
}

// viaJSON compares doc with v as encoding/json encodes it.
func (c *comparer) viaJSON(doc any, v reflect.Value) error {
	got, err := encodeTree(v.Interface())
	if err != nil {
		return fmt.Errorf("%w: %v", ErrNotFaithful, err)
	}
	return c.same(doc, got)
}

func encodeTree(v any) (any, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var got any
	err = dec.Decode(&got)
	return got, err
}

// emptyValue reports whether v encodes as an empty JSON value.
func emptyValue(v reflect.Value) bool {
	got, err := encodeTree(v.Interface())
	return err == nil && Empty(got)
}

// mismatch is the error for doc and v that are not the same value.
func (c *comparer) mismatch(doc any, v reflect.Value) error {
	got, err := encodeTree(v.Interface())
	if err != nil {
		return fmt.Errorf("%w: %v", ErrNotFaithful, err)
	}
	return fmt.Errorf("%w: %s is %s, decoded as %s", ErrNotFaithful, c.where(""), brief(doc), brief(got))
}

// notObject handles doc or v not being a JSON object or array of the
// kind expected: the same only as empty values (with emptyOK) or as nulls.
func (c *comparer) notObject(doc any, v reflect.Value, isNull bool) error {
	if isNull && doc == nil || c.emptyOK && Empty(doc) && emptyValue(v) {
		return nil
	}
	return c.mismatch(doc, v)
}

// value compares doc with v; see the top of this file.
func (c *comparer) value(doc any, v reflect.Value) error {
	if !v.IsValid() {
		return c.same(doc, nil)
	}
	if v.Type() == numberType {
		return c.same(doc, v.Interface())
	}
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return c.same(doc, nil)
		}
		if v.Kind() == reflect.Pointer && encodesItself(v) {
			return c.viaJSON(doc, v)
		}
		if e := v.Elem(); e.Type() == numberType {
			return c.same(doc, e.Interface())
		}
		return c.value(doc, v.Elem())
	}
	if encodesItself(v) {
		return c.viaJSON(doc, v)
	}
	switch v.Kind() {
	case reflect.String:
		if s, ok := doc.(string); ok && s == v.String() {
			return nil
		}
	case reflect.Bool:
		if b, ok := doc.(bool); ok && b == v.Bool() {
			return nil
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		if n, ok := doc.(json.Number); ok && string(n) == strconv.FormatInt(v.Int(), 10) {
			return nil
		}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		if n, ok := doc.(json.Number); ok && string(n) == strconv.FormatUint(v.Uint(), 10) {
			return nil
		}
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			return c.viaJSON(doc, v) // base64
		}
		d, ok := doc.([]any)
		if !ok || v.IsNil() {
			return c.notObject(doc, v, v.IsNil())
		}
		if len(d) != v.Len() {
			return fmt.Errorf("%w: %s has %d elements, decoded as %d", ErrNotFaithful, c.where(""), len(d), v.Len())
		}
		for i := range d {
			c.path = append(c.path, segment{index: i, elem: true})
			if err := c.value(d[i], v.Index(i)); err != nil {
				return err
			}
			c.path = c.path[:len(c.path)-1]
		}
		return nil
	case reflect.Map:
		if v.Type().Key().Kind() != reflect.String || v.Type().Key() != reflect.TypeFor[string]() {
			return c.viaJSON(doc, v)
		}
		return c.mapValue(doc, v)
	case reflect.Struct:
		return c.structValue(doc, v)
	default:
		return c.viaJSON(doc, v)
	}
	if c.emptyOK && Empty(doc) && emptyValue(v) {
		return nil
	}
	return c.mismatch(doc, v)
}

func (c *comparer) mapValue(doc any, v reflect.Value) error {
	d, ok := doc.(map[string]any)
	if !ok || v.IsNil() {
		return c.notObject(doc, v, v.IsNil())
	}
	keys := make([]string, 0, len(d))
	for k := range d {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		mv := v.MapIndex(reflect.ValueOf(k))
		if mv.IsValid() {
			c.path = append(c.path, segment{key: k})
			if err := c.value(d[k], mv); err != nil {
				return err
			}
			c.path = c.path[:len(c.path)-1]
			continue
		}
		folds := false
		for _, mk := range v.MapKeys() {
			folds = folds || strings.EqualFold(mk.String(), k)
		}
		if !(c.emptyOK && Empty(d[k]) && !folds) {
			return notCarried(c.where(k))
		}
	}
	if v.Len() != len(d) {
		var extra []string
		for it := v.MapRange(); it.Next(); {
			if _, ok := d[it.Key().String()]; !ok {
				extra = append(extra, it.Key().String())
			}
		}
		sort.Strings(extra)
		for _, k := range extra {
			if !(c.emptyOK && emptyValue(v.MapIndex(reflect.ValueOf(k)))) {
				return notInDocument(c.where(k))
			}
		}
	}
	return nil
}

func (c *comparer) structValue(doc any, v reflect.Value) error {
	fields, ok := structFields(v.Type())
	if !ok {
		return c.viaJSON(doc, v)
	}
	d, ok := doc.(map[string]any)
	if !ok {
		return c.notObject(doc, v, false)
	}
	byName := make(map[string]field, len(fields))
	present := make(map[string]bool, len(fields))
	names := make([]string, 0, len(fields)+len(d))
	for _, f := range fields {
		byName[f.name] = f
		present[f.name] = !(f.omitEmpty && isEmptyValue(v.FieldByIndex(f.index)))
		names = append(names, f.name)
	}
	for k := range d {
		if _, ok := byName[k]; !ok {
			names = append(names, k)
		}
	}
	sort.Strings(names)
	for _, k := range names {
		dv, din := d[k]
		f, known := byName[k]
		if !known {
			folds := false
			for name, gin := range present {
				folds = folds || gin && strings.EqualFold(name, k)
			}
			if !(c.emptyOK && Empty(dv) && !folds) {
				return notCarried(c.where(k))
			}
			continue
		}
		fv, gin := v.FieldByIndex(f.index), present[k]
		switch {
		case din && gin:
			c.path = append(c.path, segment{key: k})
			if err := c.value(dv, fv); err != nil {
				return err
			}
			c.path = c.path[:len(c.path)-1]
		case din && !(c.emptyOK && Empty(dv)):
			return notCarried(c.where(k))
		case gin && !din && !(c.emptyOK && emptyValue(fv)):
			return notInDocument(c.where(k))
		}
	}
	return nil
}

// isEmptyValue is encoding/json's test for omitempty.
func isEmptyValue(v reflect.Value) bool {
	switch v.Kind() {
	case reflect.Array, reflect.Map, reflect.Slice, reflect.String:
		return v.Len() == 0
	case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
		reflect.Float32, reflect.Float64, reflect.Interface, reflect.Pointer:
		return v.IsZero()
	}
	return false
}
