package dsse

import (
	"fmt"
	"slices"
	"sort"

	"github.com/evident-dev/evident/internal/strictjson"
)

// The package reads each document once: internal/strictjson decodes the
// bytes generically (refusing a key twice at any depth, trailing data, and
// anything over the limits), and the members are then taken from that one
// decoding by their exact names and JSON types. A member of another name —
// an unknown one, or a known one in another case, which encoding/json
// would match — is refused; null reads as an absent member. No second
// decoder reads the bytes, so none can read them otherwise, and what a
// parser returns is what the document says by construction (what
// strictjson.Faithful checks of a struct decoded by encoding/json).

// members reads the members of one JSON object; the first error sticks.
type members struct {
	m     map[string]any
	at    string // the object's path, for errors
	found int    // members of m read so far
	// known are the names read so far (each at most once), to name an
	// unknown member.
	known  [maxMembers]string
	nknown int
	err    error
}

// maxMembers is the most members a type of the package has.
const maxMembers = 8

// readObject starts reading v, a value from strictjson.Decode at path at,
// which must be a JSON object.
func readObject(v any, at string) members {
	m, ok := v.(map[string]any)
	r := members{m: m, at: at}
	if !ok {
		r.err = fmt.Errorf("%s is not a JSON object", at)
	}
	return r
}

// get returns member k, or nil if it is absent or null. Each name is read
// once.
func (r *members) get(k string) any {
	r.known[r.nknown] = k
	r.nknown++
	if r.err != nil {
		return nil
	}
	v, ok := r.m[k]
	if ok {
		r.found++
	}
	return v
}

func (r *members) failf(k, format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf("%s "+format, append([]any{strictjson.Member(r.at, k)}, args...)...)
	}
}

// str returns member k, a string, and whether it is present (not null).
func (r *members) str(k string) (string, bool) {
	switch v := r.get(k).(type) {
	case nil:
		return "", false
	case string:
		return v, true
	}
	r.failf(k, "is not a string")
	return "", false
}

// list returns member k, an array (nil if absent).
func (r *members) list(k string) []any {
	switch v := r.get(k).(type) {
	case nil:
		return nil
	case []any:
		return v
	}
	r.failf(k, "is not an array")
	return nil
}

// strings returns member k, an array of strings (nil if absent or empty).
func (r *members) strings(k string) []string {
	l := r.list(k)
	if len(l) == 0 {
		return nil
	}
	out := make([]string, len(l))
	for i, e := range l {
		s, ok := e.(string)
		if !ok {
			r.failf(k, "[%d] is not a string", i)
			return nil
		}
		out[i] = s
	}
	return out
}

// object returns member k, a JSON object as decoded (nil if absent or
// empty): free-form members such as annotations and byproducts.
func (r *members) object(k string) map[string]any {
	switch v := r.get(k).(type) {
	case nil:
		return nil
	case map[string]any:
		if len(v) == 0 {
			return nil
		}
		return v
	}
	r.failf(k, "is not a JSON object")
	return nil
}

// stringMap returns member k, an object of string members (nil if absent
// or empty): a DigestSet.
func (r *members) stringMap(k string) map[string]string {
	o := r.object(k)
	if len(o) == 0 {
		return nil
	}
	out := make(map[string]string, len(o))
	for name, v := range o {
		s, ok := v.(string)
		if !ok {
			r.failf(k, "member %q is not a string", name)
			return nil
		}
		out[name] = s
	}
	return out
}

// base64 returns member k, a string of canonical padded standard base64,
// decoded (nil if absent or empty).
func (r *members) base64(k string) []byte {
	s, _ := r.str(k)
	if s == "" {
		return nil
	}
	b, err := decodeBase64(s)
	if err != nil {
		r.failf(k, "%v", err)
	}
	return b
}

// done returns the first error, or names a member that was not read: one
// the document has and the type does not.
func (r *members) done() error {
	if r.err != nil || r.found == len(r.m) {
		return r.err
	}
	var unknown []string
	for k := range r.m {
		if !slices.Contains(r.known[:r.nknown], k) {
			unknown = append(unknown, k)
		}
	}
	sort.Strings(unknown)
	return fmt.Errorf("%s is unknown (a member of no such name, or a known one in another case)", strictjson.Member(r.at, unknown[0]))
}
