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
	"reflect"
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
// len(data): encoding/json's decoding, then a scan of the object keys
// (with no key twice, the decoding had nothing to merge).
func Decode(data []byte, lim Limits) (any, error) {
	if len(data) > lim.MaxSize {
		return nil, fmt.Errorf("%w: %d bytes, over the limit of %d", ErrTooLarge, len(data), lim.MaxSize)
	}
	// Syntax first, with encoding/json's own messages ("unexpected EOF").
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, ErrTrailingData
	}
	// Then the keys, which encoding/json let the last of two win.
	if err := checkKeys(data, lim.MaxDepth); err != nil {
		return nil, err
	}
	return v, nil
}

// path is where a value is, built into a string only for an error.
type path []segment

type segment struct {
	key   string
	index int // for an array element, with key ""
	elem  bool
}

func (p path) String() string {
	s := "$"
	for _, seg := range p {
		if seg.elem {
			s += "[" + strconv.Itoa(seg.index) + "]"
		} else {
			s = Member(s, seg.key)
		}
	}
	return s
}

// frame is an object or array being scanned: its keys so far, or the
// index of its current element.
type frame struct {
	object  bool
	wantKey bool
	nkeys   int
	last    string              // the current member's key
	keys    []string            // the keys so far, for a small object
	set     map[string]struct{} // the keys so far, once there are many
	index   int
}

// seen records k and reports whether it was there already; linear for a
// few keys, a map beyond, so a million keys cost no quadratic time.
func (f *frame) seen(k string) bool {
	f.last = k
	f.nkeys++
	if f.set == nil {
		for _, s := range f.keys {
			if s == k {
				return true
			}
		}
		if f.keys = append(f.keys, k); len(f.keys) <= 16 {
			return false
		}
		f.set = make(map[string]struct{}, 32)
		for _, s := range f.keys {
			f.set[s] = struct{}{}
		}
		f.keys = nil
		return false
	}
	if _, ok := f.set[k]; ok {
		return true
	}
	f.set[k] = struct{}{}
	return false
}

// checkKeys scans data, valid JSON, for an object key that occurs twice
// in one object (compared as decoded: "a" and "\u0061" are one key) and
// for nesting deeper than max.
func checkKeys(data []byte, max int) error {
	var stack []frame
	where := func() path {
		p := make(path, 0, len(stack))
		for _, f := range stack {
			if f.object {
				if f.nkeys > 0 {
					p = append(p, segment{key: f.last})
				}
			} else {
				p = append(p, segment{index: f.index, elem: true})
			}
		}
		return p
	}
	for i := 0; i < len(data); i++ {
		switch data[i] {
		case '{', '[':
			if len(stack) >= max {
				return fmt.Errorf("%w: %s is over the limit of %d levels", ErrTooDeep, where(), max)
			}
			stack = append(stack, frame{object: data[i] == '{', wantKey: data[i] == '{'})
		case '}', ']':
			stack = stack[:len(stack)-1]
		case ',':
			if top := &stack[len(stack)-1]; top.object {
				top.wantKey = true
			} else {
				top.index++
			}
		case '"':
			j, escaped := i+1, false
			for ; data[j] != '"'; j++ {
				if data[j] == '\\' {
					j++
					escaped = true
				} else if data[j] >= 0x80 {
					escaped = true // invalid UTF-8 decodes to U+FFFD: decode to compare
				}
			}
			if n := len(stack); n > 0 && stack[n-1].wantKey {
				top := &stack[n-1]
				var k string
				if escaped {
					if err := json.Unmarshal(data[i:j+1], &k); err != nil {
						return err
					}
				} else {
					k = string(data[i+1 : j])
				}
				if top.seen(k) {
					stack = stack[:n-1]
					return fmt.Errorf("%w %q at %s", ErrDuplicateKey, k, where())
				}
				top.wantKey = false
			}
			i = j
		}
	}
	return nil
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
	c := comparer{at: at, emptyOK: emptyIsAbsent}
	return c.value(doc, reflect.ValueOf(v))
}

// comparer compares a document with a decoded value; at is the path the
// caller named the document by, path where the comparison is below it.
type comparer struct {
	at      string
	path    path
	emptyOK bool
}

func (c *comparer) where(k string) string {
	p := path.String(c.path)
	p = c.at + p[1:] // the caller's name for "$"
	if k != "" {
		p = Member(p, k)
	}
	return p
}

func (c *comparer) same(doc, got any) error {
	_, docObj := doc.(map[string]any)
	_, gotObj := got.(map[string]any)
	if c.emptyOK && Empty(doc) && Empty(got) && !(docObj && gotObj) { // two objects: member by member
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
				c.path = append(c.path, segment{key: k})
				if err := c.same(dv, gv); err != nil {
					return err
				}
				c.path = c.path[:len(c.path)-1]
			case din && !(c.emptyOK && Empty(dv) && !foldMatch(g, k)):
				return notCarried(c.where(k))
			case gin && !(c.emptyOK && Empty(gv)):
				return notInDocument(c.where(k))
			}
		}
		return nil
	case []any:
		g, ok := got.([]any)
		if !ok {
			break
		}
		if len(d) != len(g) {
			return fmt.Errorf("%w: %s has %d elements, decoded as %d", ErrNotFaithful, c.where(""), len(d), len(g))
		}
		for i := range d {
			c.path = append(c.path, segment{index: i, elem: true})
			if err := c.same(d[i], g[i]); err != nil {
				return err
			}
			c.path = c.path[:len(c.path)-1]
		}
		return nil
	default:
		if doc == got {
			return nil
		}
	}
	return fmt.Errorf("%w: %s is %s, decoded as %s", ErrNotFaithful, c.where(""), brief(doc), brief(got))
}

func notCarried(at string) error {
	return fmt.Errorf("%w: %s is not carried by the decoded value (an unknown field, or a key in another case?)", ErrNotFaithful, at)
}

func notInDocument(at string) error {
	return fmt.Errorf("%w: %s is in the decoded value but not in the document", ErrNotFaithful, at)
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

// Canonical returns the OLPC canonical JSON encoding of v, a value from
// [Decode] — the encoding in-toto signs, as securesystemslib's cjson gives
// it: object keys sorted bytewise, no whitespace, strings with only '\' and
// '"' escaped, integers only (a fraction or exponent is an error).
func Canonical(v any) ([]byte, error) {
	return appendCanonical(nil, v)
}

func appendCanonical(b []byte, v any) ([]byte, error) {
	var err error
	switch x := v.(type) {
	case nil:
		return append(b, "null"...), nil
	case bool:
		return strconv.AppendBool(b, x), nil
	case string:
		b = append(b, '"')
		for i := 0; i < len(x); i++ {
			if c := x[i]; c == '\\' || c == '"' {
				b = append(b, '\\')
			}
			b = append(b, x[i])
		}
		return append(b, '"'), nil
	case json.Number:
		if _, err := x.Int64(); err != nil {
			return nil, fmt.Errorf("canonical JSON has integers only, not %s", x)
		}
		return append(b, x...), nil
	case []any:
		b = append(b, '[')
		for i, e := range x {
			if i > 0 {
				b = append(b, ',')
			}
			if b, err = appendCanonical(b, e); err != nil {
				return nil, err
			}
		}
		return append(b, ']'), nil
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		b = append(b, '{')
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b, _ = appendCanonical(b, k)
			b = append(b, ':')
			if b, err = appendCanonical(b, x[k]); err != nil {
				return nil, err
			}
		}
		return append(b, '}'), nil
	}
	return nil, fmt.Errorf("canonical JSON cannot encode %T", v)
}

// MemberBytes returns the bytes of the value of member key of data's
// top-level object — the very bytes of data, as a json.RawMessage decoded
// from data would hold them — and whether there is one. data must be a
// document [Decode] accepted (so one JSON value, no key twice); for any
// other, the answer means nothing. Its cost is one scan of data with no
// decoding, but for keys written with escapes.
func MemberBytes(data []byte, key string) ([]byte, bool) {
	depth, start := 0, -1
	wantKey, match := false, false
	for i := 0; i < len(data); i++ {
		switch c := data[i]; c {
		case '{', '[':
			depth++
			wantKey = depth == 1 && c == '{'
		case '}', ']':
			depth--
			if depth == 0 && start >= 0 {
				return bytes.TrimSpace(data[start:i]), true
			}
		case ',':
			if depth == 1 {
				if start >= 0 {
					return bytes.TrimSpace(data[start:i]), true
				}
				wantKey = true
			}
		case ':':
			if depth == 1 && match {
				start = i + 1
			}
		case '"':
			j, escaped := i+1, false
			for ; j < len(data) && data[j] != '"'; j++ {
				if data[j] == '\\' {
					j++
					escaped = true
				} else if data[j] >= 0x80 {
					escaped = true // invalid UTF-8 decodes to U+FFFD: decode to compare
				}
			}
			if j >= len(data) {
				return nil, false // not a document Decode accepted
			}
			if wantKey {
				k := string(data[i+1 : j])
				if escaped && json.Unmarshal(data[i:j+1], &k) != nil {
					return nil, false
				}
				match, wantKey = k == key, false
			}
			i = j
		}
	}
	return nil, false
}
