package dsse

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strconv"

	"github.com/evident-dev/evident/internal/strictjson"
)

// StatementType is the _type of an in-toto Statement v1.
const StatementType = "https://in-toto.io/Statement/v1"

// Limits of a Statement, each checked by [ParseStatement].
const (
	// MaxSubjects bounds a Statement's subjects (a link's products).
	MaxSubjects = 100000
	// MaxDigests bounds the digests of one resource descriptor.
	MaxDigests = 8
	// maxStatementDepth bounds the nesting of a Statement: predicates are
	// free-form, but 64 levels is beyond any real one.
	maxStatementDepth = 64
	// maxDigestSize bounds one hex digest (SHA-512 is 128 digits).
	maxDigestSize = 256
	// maxURISize bounds predicateType.
	maxURISize = 1024
)

// ErrInvalidStatement is wrapped by every error [ParseStatement] returns.
var ErrInvalidStatement = errors.New("invalid in-toto Statement")

// Statement is an in-toto Statement v1: what was attested (the subjects,
// by digest), the kind of claim (PredicateType, a URI) and the claim
// itself (Predicate, one JSON object, kept as its bytes for the caller to
// parse strictly by its type).
type Statement struct {
	Type          string               `json:"_type"`
	Subject       []ResourceDescriptor `json:"subject"`
	PredicateType string               `json:"predicateType"`
	Predicate     json.RawMessage      `json:"predicate,omitempty"`

	decoded decodedPredicate // set by ParseStatement
}

// ResourceDescriptor is an in-toto ResourceDescriptor v1: a subject of a
// Statement, or a material of a link predicate.
type ResourceDescriptor struct {
	Name             string            `json:"name,omitempty"`
	URI              string            `json:"uri,omitempty"`
	Digest           map[string]string `json:"digest,omitempty"`
	Content          []byte            `json:"content,omitempty"`
	DownloadLocation string            `json:"downloadLocation,omitempty"`
	MediaType        string            `json:"mediaType,omitempty"`
	Annotations      map[string]any    `json:"annotations,omitempty"`
}

// ParseStatement decodes a Statement v1 from the payload bytes exactly as
// signed, strictly: one decoding (no duplicate member at any depth, no
// trailing data, within the limits), each member read from it by its exact
// name and type (no unknown member, none in another case), and Predicate
// the very bytes of the payload's predicate; _type is
// [StatementType]; at least one and at most [MaxSubjects] subjects, each
// with a digest, and no two with one name (a name meaning two digests
// would match the artifact rules both ways); predicateType an absolute
// URI; the predicate, when present, one JSON object. Digests must be
// lowercase hex (sha256: 64 digits, sha512: 128). Every error wraps
// [ErrInvalidStatement].
func ParseStatement(payload []byte) (*Statement, error) {
	bad := func(format string, args ...any) (*Statement, error) {
		return nil, fmt.Errorf("%w: "+format, append([]any{ErrInvalidStatement}, args...)...)
	}
	doc, err := strictjson.Decode(payload, strictjson.Limits{MaxSize: MaxPayloadSize, MaxDepth: maxStatementDepth})
	if err != nil {
		return bad("%v", err)
	}
	var st Statement
	r := readObject(doc, "$")
	st.Type, _ = r.str("_type")
	subjects := r.list("subject")
	st.PredicateType, _ = r.str("predicateType")
	pred := r.get("predicate")
	if err := r.done(); err != nil {
		return bad("%v", err)
	}
	switch {
	case st.Type != StatementType:
		return bad("_type is %q, want %q", st.Type, StatementType)
	case len(subjects) == 0:
		return bad("it has no subject")
	case len(subjects) > MaxSubjects:
		return bad("%d subjects, over the limit of %d", len(subjects), MaxSubjects)
	}
	if err := checkURI(st.PredicateType); err != nil {
		return bad("predicateType: %v", err)
	}
	if st.Subject, err = readDescriptors(subjects, "$.subject"); err != nil {
		return bad("%v", err)
	}
	if err := checkDescriptors("subject", st.Subject, true); err != nil {
		return bad("%v", err)
	}
	if _, isObject := pred.(map[string]any); !isObject && pred != nil {
		return bad("predicate is not a JSON object")
	}
	if raw, ok := strictjson.MemberBytes(payload, "predicate"); ok { // the very bytes signed
		st.Predicate = bytes.Clone(raw)
		st.decoded = decodedPredicate{doc: pred, bytes: st.Predicate}
	}
	return &st, nil
}

// decodedPredicate is a Statement's predicate as ParseStatement decoded
// it, with the bytes it decoded, so that Link need not decode them again.
type decodedPredicate struct {
	doc   any
	bytes []byte
}

// of returns the decoding if b is still the bytes decoded.
func (d decodedPredicate) of(b []byte) (any, bool) {
	if len(b) == 0 || len(b) != len(d.bytes) || &b[0] != &d.bytes[0] {
		return nil, false
	}
	return d.doc, true
}

// readDescriptors reads a list of resource descriptors at path at.
func readDescriptors(l []any, at string) ([]ResourceDescriptor, error) {
	out := make([]ResourceDescriptor, len(l))
	for i, v := range l {
		r := readObject(v, at+"["+strconv.Itoa(i)+"]")
		rd := &out[i]
		rd.Name, _ = r.str("name")
		rd.URI, _ = r.str("uri")
		rd.Digest = r.stringMap("digest")
		rd.Content = r.base64("content")
		rd.DownloadLocation, _ = r.str("downloadLocation")
		rd.MediaType, _ = r.str("mediaType")
		rd.Annotations = r.object("annotations")
		if err := r.done(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// checkDescriptors checks a list of resource descriptors: each has a
// digest (and a name, if needNames is false only when it has one), no name
// is used twice, digests are well formed.
func checkDescriptors(what string, rds []ResourceDescriptor, needDigest bool) error {
	names := make(map[string]bool, len(rds))
	for i, rd := range rds {
		if needDigest && len(rd.Digest) == 0 {
			return fmt.Errorf("%s[%d] has no digest", what, i)
		}
		if err := checkDigests(rd.Digest); err != nil {
			return fmt.Errorf("%s[%d]: %v", what, i, err)
		}
		if rd.Name == "" {
			continue
		}
		if names[rd.Name] {
			return fmt.Errorf("%s[%d]: the name %q is used twice", what, i, rd.Name)
		}
		names[rd.Name] = true
	}
	return nil
}

// checkDigests checks a DigestSet: at most MaxDigests, each a lowercase
// hex string of the algorithm's length where evident knows it.
func checkDigests(d map[string]string) error {
	if len(d) > MaxDigests {
		return fmt.Errorf("%d digests, over the limit of %d", len(d), MaxDigests)
	}
	algs := make([]string, 0, len(d))
	for alg := range d {
		algs = append(algs, alg)
	}
	sort.Strings(algs)
	for _, alg := range algs {
		v := d[alg]
		want := map[string]int{"sha256": 64, "sha384": 96, "sha512": 128, "sha1": 40}[alg]
		switch {
		case alg == "":
			return errors.New("a digest has no algorithm")
		case v == "" || len(v) > maxDigestSize || !lowerHex(v):
			return fmt.Errorf("digest %s is not lowercase hex", alg)
		case want != 0 && len(v) != want:
			return fmt.Errorf("digest %s has %d hex digits, want %d", alg, len(v), want)
		}
	}
	return nil
}

func lowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

func checkURI(s string) error {
	if s == "" {
		return errors.New("missing")
	}
	if len(s) > maxURISize {
		return fmt.Errorf("over %d bytes", maxURISize)
	}
	u, err := url.Parse(s)
	if err != nil || !u.IsAbs() {
		return fmt.Errorf("%q is not an absolute URI", s)
	}
	return nil
}

// SubjectSHA256 reports whether a subject of st has the SHA-256 digest
// (lowercase hex) and, if name is not "", that name.
func (st *Statement) SubjectSHA256(name, digest string) bool {
	for _, s := range st.Subject {
		if s.Digest["sha256"] == digest && (name == "" || s.Name == name) {
			return true
		}
	}
	return false
}

// ParsePredicate decodes a predicate, one JSON object, strictly (as
// ParseStatement decodes a Statement) into v, which must describe every
// member it may have: an unknown member is refused.
func ParsePredicate(predicate []byte, v any) error {
	doc, err := strictjson.Unmarshal(predicate, v, strictjson.Limits{MaxSize: MaxPayloadSize, MaxDepth: maxStatementDepth})
	if err == nil {
		err = strictjson.Faithful(doc, v, "$.predicate", true)
	}
	if err == nil {
		if _, ok := doc.(map[string]any); !ok {
			err = errors.New("not a JSON object")
		}
	}
	if err != nil {
		return fmt.Errorf("%w: predicate: %v", ErrInvalidStatement, err)
	}
	return nil
}

// CheckPredicateObject checks that b is one JSON object, decoded strictly
// (no key twice at any depth, no trailing data, within the limits): what
// evident attest signs for a predicate type it does not know.
func CheckPredicateObject(b []byte) error {
	doc, err := strictjson.Decode(b, strictjson.Limits{MaxSize: MaxPayloadSize, MaxDepth: maxStatementDepth - 1})
	if err != nil {
		return fmt.Errorf("%w: predicate: %v", ErrInvalidStatement, err)
	}
	if _, ok := doc.(map[string]any); !ok {
		return fmt.Errorf("%w: predicate: not a JSON object", ErrInvalidStatement)
	}
	return nil
}
