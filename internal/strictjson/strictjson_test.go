package strictjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/secure-systems-lab/go-securesystemslib/cjson"
)

var lim = Limits{MaxSize: 1 << 20, MaxDepth: 8}

// TestDecodeRefuses covers P1 at its root: every way one document could be
// read two ways, or cost without bound, is refused, and the error says where.
func TestDecodeRefuses(t *testing.T) {
	for _, c := range []struct {
		name, in string
		want     error
		msg      string
	}{
		{"duplicate top-level key", `{"a":1,"a":2}`, ErrDuplicateKey, `duplicate key "a" at $`},
		{"duplicate nested key", `{"signed":{"products":{},"products":{"x":{}}}}`, ErrDuplicateKey, `duplicate key "products" at $.signed`},
		{"duplicate key inside an array", `{"steps":[{"name":"a"},{"name":"b","name":"c"}]}`, ErrDuplicateKey, `duplicate key "name" at $.steps[1]`},
		{"duplicate key spelled with an escape", `{"a":1,"\u0061":2}`, ErrDuplicateKey, `duplicate key "a"`},
		{"duplicate odd key", `{"p":{"src/x":1,"src/x":2}}`, ErrDuplicateKey, `at $.p`},
		{"trailing value", `{} {}`, ErrTrailingData, ""},
		{"trailing garbage", `{}x`, ErrTrailingData, ""},
		{"too deep", strings.Repeat("[", 9) + strings.Repeat("]", 9), ErrTooDeep, "over the limit of 8 levels"},
		{"too large", `"` + strings.Repeat("a", 1<<20) + `"`, ErrTooLarge, "over the limit"},
		{"truncated", `{"a":`, nil, "unexpected EOF"},
		{"empty", ``, nil, "EOF"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Decode([]byte(c.in), lim)
			if err == nil || (c.want != nil && !errors.Is(err, c.want)) || !strings.Contains(err.Error(), c.msg) {
				t.Errorf("Decode(%.40s) = %v, want %v containing %q", c.in, err, c.want, c.msg)
			}
		})
	}
	// Many keys: a repeat is found past the small-object scan, and 200,000
	// distinct keys cost linear time.
	var many strings.Builder
	many.WriteString(`{"p":{`)
	for i := 0; i < 200000; i++ {
		fmt.Fprintf(&many, `"k%d":1,`, i)
	}
	if _, err := Decode([]byte(many.String()+`"k50":2}}`), Limits{MaxSize: 8 << 20, MaxDepth: 8}); !errors.Is(err, ErrDuplicateKey) || !strings.Contains(err.Error(), `duplicate key "k50" at $.p`) {
		t.Errorf("Decode(200,000 keys and k50 again) = %v", err)
	}
	if _, err := Decode([]byte(many.String()+`"last":2}}`), Limits{MaxSize: 8 << 20, MaxDepth: 8}); err != nil {
		t.Errorf("Decode(200,001 keys) = %v", err)
	}
	// Exactly at the limits is fine; keys differing in case are two keys.
	for _, in := range []string{strings.Repeat("[", 8) + strings.Repeat("]", 8), `{"a":1,"A":2}`, `{"a":{"a":{"a":1}}}`} {
		if _, err := Decode([]byte(in), lim); err != nil {
			t.Errorf("Decode(%s) = %v", in, err)
		}
	}
}

type inner struct {
	Name  string   `json:"name"`
	Tags  []string `json:"tags,omitempty"`
	Count int      `json:"count"`
}

type outer struct {
	Items map[string]inner `json:"items"`
	Note  string           `json:"note"`
	Extra any              `json:"extra"`
}

// TestFaithful covers P1 for a decoded struct: a key in another case (which
// encoding/json matches), a number that does not round-trip and a member the
// struct drops are differences; absent and empty members are not, with
// emptyIsAbsent.
func TestFaithful(t *testing.T) {
	for _, c := range []struct {
		name, in      string
		emptyIsAbsent bool
		msg           string // "" for faithful
	}{
		{"identical", `{"items":{"x":{"name":"n","tags":["a"],"count":2}},"note":"","extra":null}`, false, ""},
		{"absent members", `{"items":{"x":{"name":"n"}}}`, true, ""},
		{"absent members, exactly", `{"items":{"x":{"name":"n"}}}`, false, "not in the document"},
		{"empty omitempty member", `{"items":{"x":{"name":"n","tags":[]}}}`, true, ""},
		{"empty omitempty member, exactly", `{"items":{"x":{"name":"n","tags":[],"count":0}},"note":"","extra":null}`, false, `$.items.x.tags is not carried`},
		{"key in another case", `{"items":{},"Note":"x"}`, true, `$.Note is not carried`},
		{"empty key in another case", `{"items":{},"NOTE":""}`, true, `$.NOTE is not carried`},
		{"number that does not round-trip", `{"items":{},"extra":1.0e0}`, true, ""},
		{"negative zero", `{"items":{"x":{"name":"n","count":-0}}}`, true, `$.items.x.count is -0, decoded as 0`},
	} {
		t.Run(c.name, func(t *testing.T) {
			var o outer
			doc, err := Unmarshal([]byte(c.in), &o, lim)
			if err != nil {
				t.Fatal(err)
			}
			err = Faithful(doc, o, "$", c.emptyIsAbsent)
			if c.msg == "" && err != nil || c.msg != "" && (!errors.Is(err, ErrNotFaithful) || !strings.Contains(err.Error(), c.msg)) {
				t.Errorf("Faithful(%s) = %v, want %q", c.in, err, c.msg)
			}
		})
	}
}

// FuzzDecode checks Decode against encoding/json: what Decode accepts,
// encoding/json accepts with the same value (no duplicate key means no
// merge to disagree about), and Decode never panics.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{`{"a":[1,{"b":"c"}],"d":null}`, `{"a":1,"a":2}`, `[[[[]]]]`, `"x"`, `{"a":{"a":{}}}`, `1e400`} {
		f.Add([]byte(s))
	}
	f.Add([]byte(`{"a":{"b":1,"c":[{"d":1,"\u0064":2}]}}`))
	f.Add([]byte(`{"\xff":1,"\xfe":2}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		doc, err := Decode(data, lim)
		if ref := refDuplicate(data); ref != nil && !errors.Is(err, ErrDuplicateKey) && !errors.Is(err, ErrTooDeep) {
			t.Fatalf("Decode(%q) = %v, but key %v repeats", data, err, ref)
		} else if errors.Is(err, ErrDuplicateKey) && ref == nil {
			t.Fatalf("Decode(%q) = %v, but no key repeats", data, err)
		}
		if err != nil {
			return
		}
		var v any
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.UseNumber()
		if err := dec.Decode(&v); err != nil {
			t.Fatalf("Decode accepted %q, encoding/json: %v", data, err)
		}
		if err := Faithful(doc, v, "$", false); err != nil {
			t.Fatalf("Decode(%q) and encoding/json disagree: %v", data, err)
		}
		checkMemberBytes(t, data, doc)
		// Canonical is securesystemslib's canonical JSON, which in-toto signs.
		got, err := Canonical(doc)
		want, werr := cjson.EncodeCanonical(v)
		if (err == nil) != (werr == nil) || !bytes.Equal(got, want) {
			t.Fatalf("Canonical(%q) = %q, %v; cjson gives %q, %v", data, got, err, want, werr)
		}
	})
}

// checkMemberBytes: MemberBytes finds every top-level member, and no
// other, with the bytes encoding/json gives a json.RawMessage.
func checkMemberBytes(t *testing.T, data []byte, doc any) {
	obj, _ := doc.(map[string]any)
	var raw map[string]json.RawMessage
	if obj != nil {
		if err := json.Unmarshal(data, &raw); err != nil {
			t.Fatal(err)
		}
	}
	for _, k := range []string{"a", "b", "d", "predicate", "\u0061", "missing"} {
		got, ok := MemberBytes(data, k)
		_, want := obj[k]
		if ok != want || ok && !bytes.Equal(got, raw[k]) {
			t.Fatalf("MemberBytes(%q, %q) = %q, %v; want %q, %v", data, k, got, ok, raw[k], want)
		}
	}
	for k := range obj {
		if got, ok := MemberBytes(data, k); !ok || !bytes.Equal(got, raw[k]) {
			t.Fatalf("MemberBytes(%q, %q) = %q, %v; want %q", data, k, got, ok, raw[k])
		}
	}
}

// refDuplicate is a reference duplicate-key finder over encoding/json's
// tokens: the first key that repeats in one object, or nil.
func refDuplicate(data []byte) *string {
	if !json.Valid(data) {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	var walk func() *string
	walk = func() *string {
		tok, err := dec.Token()
		if err != nil {
			return nil
		}
		switch tok {
		case json.Delim('{'):
			keys := map[string]bool{}
			var dup *string
			for dec.More() {
				kt, _ := dec.Token()
				k := kt.(string)
				if keys[k] && dup == nil {
					dup = &k
				}
				keys[k] = true
				if d := walk(); d != nil && dup == nil {
					dup = d
				}
			}
			dec.Token()
			return dup
		case json.Delim('['):
			var dup *string
			for dec.More() {
				if d := walk(); d != nil && dup == nil {
					dup = d
				}
			}
			dec.Token()
			return dup
		}
		return nil
	}
	return walk()
}

// MemberBytes returns a top-level member's very bytes — the bytes a
// Statement's predicate is kept as — whatever nests before it or looks
// like it inside strings, and nothing for a member only nested or absent.
func TestMemberBytes(t *testing.T) {
	for _, c := range []struct {
		in, key, want string
		ok            bool
	}{
		{`{"a":1,"predicate":{"x":[1,{"predicate":2}]} }`, "predicate", `{"x":[1,{"predicate":2}]}`, true},
		{`{"s":"\"predicate\":3,","predicate" : null }`, "predicate", `null`, true},
		{`{"pred\u0069cate":"v","b":{}}`, "predicate", `"v"`, true},
		{` { "b" : [ "predicate" , {"predicate":1} ] } `, "predicate", ``, false},
		{`{"b":{"predicate":1}}`, "predicate", ``, false},
		{`["predicate",1]`, "predicate", ``, false},
		{`{"Predicate":1}`, "predicate", ``, false},
		{`{"a":"x","b":[{}],"c":true}`, "c", `true`, true},
	} {
		got, ok := MemberBytes([]byte(c.in), c.key)
		if string(got) != c.want || ok != c.ok {
			t.Errorf("MemberBytes(%s, %q) = %q, %v; want %q, %v", c.in, c.key, got, ok, c.want, c.ok)
		}
	}
}
