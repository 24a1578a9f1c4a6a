// Package strictjson decodes JSON (RFC 8259) the way a signature check needs
// it: exactly one value, no object key twice at any depth (RFC 8259 §4 leaves
// duplicates to the implementation, and implementations disagree: Go's
// encoding/json merges a repeated object into the first, canonical JSON
// keeps the last), nothing after the value, and explicit limits on size and
// nesting. [Faithful] then checks that a Go value decoded from the document
// re-encodes to what the document says, so that what a verifier acts on is
// what was signed: nothing merged, dropped or added.
package strictjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
)

// Errors wrapped by [Decode], [Unmarshal] and [Faithful].
var (
	ErrDuplicateKey = errors.New("duplicate key")
	ErrTrailingData = errors.New("trailing data after the JSON value")
	ErrTooLarge     = errors.New("JSON document too large")
	ErrTooDeep      = errors.New("JSON nested too deeply")
	// ErrNotFaithful: the decoded Go value does not say what the document
	// says (a member it dropped, added, or read differently, such as a key
	// matched case-insensitively by encoding/json).
	ErrNotFaithful = errors.New("decoded value differs from the document")
)

// Limits bound a document. Both are required: a zero field means zero.
type Limits struct {
	// MaxSize is the largest document, in bytes.
	MaxSize int
	// MaxDepth is the deepest nesting of objects and arrays (a scalar is
	// at depth 0, the members of the top-level object at depth 1).
	MaxDepth int
}

// Decode returns the one JSON value in data as map[string]any, []any,
// string, json.Number, bool or nil, refusing a syntax error, a duplicate
// key at any depth, trailing data, and anything over the limits. Errors
// name where: `duplicate key "products" at $.signed`. Its cost is linear in
// len(data): one syntax scan, then one pass over the tokens.
func Decode(data []byte, lim Limits) (any, error) {
	if len(data) > lim.MaxSize {
		return nil, fmt.Errorf("%w: %d bytes, over the limit of %d", ErrTooLarge, len(data), lim.MaxSize)
	}
	// Syntax first, with encoding/json's own messages ("unexpected EOF").
	dec := json.NewDecoder(bytes.NewReader(data))
	var raw json.RawMessage
	if err := dec.Decode(&raw); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, ErrTrailingData
	}
	d := decoder{dec: json.NewDecoder(bytes.NewReader(raw)), max: lim.MaxDepth}
	d.dec.UseNumber()
	return d.value("$", 0)
}

type decoder struct {
	dec *json.Decoder
	max int
}

func (d *decoder) value(at string, depth int) (any, error) {
	tok, err := d.dec.Token()
	if err != nil {
		return nil, err
	}
	delim, ok := tok.(json.Delim)
	if !ok {
		return tok, nil
	}
	if depth >= d.max {
		return nil, fmt.Errorf("%w: %s is over the limit of %d levels", ErrTooDeep, at, d.max)
	}
	switch delim {
	case '{':
		obj := map[string]any{}
		for d.dec.More() {
			kt, err := d.dec.Token()
			if err != nil {
				return nil, err
			}
			k, _ := kt.(string)
			if _, dup := obj[k]; dup {
				return nil, fmt.Errorf("%w %q at %s", ErrDuplicateKey, k, at)
			}
			if obj[k], err = d.value(Member(at, k), depth+1); err != nil {
				return nil, err
			}
		}
		_, err = d.dec.Token() // '}'
		return obj, err
	case '[':
		arr := []any{}
		for i := 0; d.dec.More(); i++ {
			v, err := d.value(at+"["+strconv.Itoa(i)+"]", depth+1)
			if err != nil {
				return nil, err
			}
			arr = append(arr, v)
		}
		_, err = d.dec.Token() // ']'
		return arr, err
	}
	return nil, fmt.Errorf("unexpected %v at %s", delim, at)
}

// Member returns the path of member k of the value at path at: `$.signed`,
// or `$.products["src/x.go"]` for a key that is no identifier.
func Member(at, k string) string {
	ident := k != ""
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !(c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || i > 0 && '0' <= c && c <= '9') {
			ident = false
			break
		}
	}
	if ident {
		return at + "." + k
	}
	return at + "[" + strconv.Quote(k) + "]"
}

// Unmarshal checks data with [Decode] and decodes it into v with
// encoding/json, refusing unknown fields; numbers in interface values stay
// json.Number, as written. It returns the decoded document for [Faithful].
func Unmarshal(data []byte, v any, lim Limits) (any, error) {
	doc, err := Decode(data, lim)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return nil, err
	}
	return doc, nil
}

// Faithful checks that v, encoded by encoding/json, is the document doc
// (from [Decode]) as JSON values: the same members with the same values, key
// case included, in any order and spacing — so equal canonical JSON
// encodings. With emptyIsAbsent, a member that is absent on one side may be
// empty on the other (null, "", 0, false, [] or {}, or an object of empty
// members): encoding/json decodes an absent field as its zero value and
// omits an empty one tagged omitempty, and both mean the same to Go code;
// but an empty member whose key is another case of a decoded key is still a
// difference.
// The error names the first difference, under the path at.
func Faithful(doc, v any, at string, emptyIsAbsent bool) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrNotFaithful, err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var got any
	if err := dec.Decode(&got); err != nil {
		return fmt.Errorf("%w: %v", ErrNotFaithful, err)
	}
	return same(doc, got, at, emptyIsAbsent)
}

func same(doc, got any, at string, emptyOK bool) error {
	_, docObj := doc.(map[string]any)
	_, gotObj := got.(map[string]any)
	if emptyOK && Empty(doc) && Empty(got) && !(docObj && gotObj) { // two objects: member by member
		return nil
	}
	switch d := doc.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			break
		}
		keys := make([]string, 0, len(d)+len(g))
		for k := range d {
			keys = append(keys, k)
		}
		for k := range g {
			if _, ok := d[k]; !ok {
				keys = append(keys, k)
			}
		}
		sort.Strings(keys)
		for _, k := range keys {
			dv, din := d[k]
			gv, gin := g[k]
			switch {
			case din && gin:
				if err := same(dv, gv, Member(at, k), emptyOK); err != nil {
					return err
				}
			case din && !(emptyOK && Empty(dv) && !foldMatch(g, k)):
				return fmt.Errorf("%w: %s is not carried by the decoded value (an unknown field, or a key in another case?)", ErrNotFaithful, Member(at, k))
			case gin && !(emptyOK && Empty(gv)):
				return fmt.Errorf("%w: %s is in the decoded value but not in the document", ErrNotFaithful, Member(at, k))
			}
		}
		return nil
	case []any:
		g, ok := got.([]any)
		if !ok {
			break
		}
		if len(d) != len(g) {
			return fmt.Errorf("%w: %s has %d elements, decoded as %d", ErrNotFaithful, at, len(d), len(g))
		}
		for i := range d {
			if err := same(d[i], g[i], at+"["+strconv.Itoa(i)+"]", emptyOK); err != nil {
				return err
			}
		}
		return nil
	default:
		if doc == got {
			return nil
		}
	}
	return fmt.Errorf("%w: %s is %s, decoded as %s", ErrNotFaithful, at, brief(doc), brief(got))
}

// foldMatch reports whether m has a key equal to k under Unicode case
// folding, as encoding/json matches field names: an empty member spelled so
// is no absent field but another spelling of one.
func foldMatch(m map[string]any, k string) bool {
	for g := range m {
		if strings.EqualFold(g, k) {
			return true
		}
	}
	return false
}

// Empty reports whether v, a value from [Decode], is what encoding/json
// makes of an absent field: null, "", 0, false, [], or an object of empty
// members.
func Empty(v any) bool {
	switch x := v.(type) {
	case nil:
		return true
	case string:
		return x == ""
	case json.Number:
		return x == "0"
	case bool:
		return !x
	case []any:
		return len(x) == 0
	case map[string]any:
		for _, m := range x {
			if !Empty(m) {
				return false
			}
		}
		return true
	}
	return false
}

// brief describes a JSON value in a few characters, for errors.
func brief(v any) string {
	switch x := v.(type) {
	case map[string]any:
		return "an object"
	case []any:
		return "an array"
	case string:
		if len(x) > 40 {
			x = x[:40] + "…"
		}
		return strconv.Quote(x)
	case nil:
		return "null"
	}
	s := fmt.Sprint(v)
	if len(s) > 40 {
		s = s[:40] + "…"
	}
	return strings.TrimSpace(s)
}
