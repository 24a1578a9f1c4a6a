package linkstore

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/secure-systems-lab/go-securesystemslib/cjson"
)

// ErrNotCanonicalizable: the upload is not a JSON Metablock that has one
// canonical form (a duplicated key, a key other than "signed" and
// "signatures", trailing data, nesting over maxDepth).
var ErrNotCanonicalizable = errors.New("not a well-formed in-toto Metablock")

// maxDepth bounds the nesting of an uploaded link (in-toto links nest a few
// levels: byproducts, environment).
const maxDepth = 64

// Canonical returns the canonical form of an in-toto Metablock — the
// object {"signatures": …, "signed": …} as compact JSON with sorted keys,
// the bytes the store keeps and serves — and its payload, the canonical JSON of "signed"
// (the bytes its signatures are over). Duplicated object keys anywhere are
// refused: they are read one way by the signers' canonical encoder (the last
// wins) and another by a struct decoder (merged), so a document holding one
// has no single meaning.
func Canonical(link []byte) (doc, payload []byte, err error) {
	v, err := decodeStrict(link)
	if err != nil {
		return nil, nil, err
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, nil, fmt.Errorf("%w: not a JSON object", ErrNotCanonicalizable)
	}
	if _, ok := m["signed"]; !ok || len(m) != 2 {
		return nil, nil, fmt.Errorf(`%w: want exactly the keys "signatures" and "signed"`, ErrNotCanonicalizable)
	}
	if _, ok := m["signatures"]; !ok {
		return nil, nil, fmt.Errorf(`%w: want exactly the keys "signatures" and "signed"`, ErrNotCanonicalizable)
	}
	payload, err = cjson.EncodeCanonical(m["signed"])
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrNotCanonicalizable, err)
	}
	// The stored form is the compact JSON of the decoded document, keys
	// sorted, nothing HTML-escaped: one encoding for one meaning, and JSON
	// every decoder reads (canonical JSON itself leaves control characters
	// in strings raw, as PEM's newlines).
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(m); err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrNotCanonicalizable, err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), payload, nil
}

// decodeStrict decodes one JSON value as cjson does (numbers kept as
// written), refusing duplicated keys, deep nesting and trailing data.
func decodeStrict(b []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	v, err := decodeValue(dec, 0)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("%w: data after the document", ErrNotCanonicalizable)
	}
	return v, nil
}

func decodeValue(dec *json.Decoder, depth int) (any, error) {
	if depth > maxDepth {
		return nil, fmt.Errorf("%w: nested deeper than %d", ErrNotCanonicalizable, maxDepth)
	}
	t, err := dec.Token()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotCanonicalizable, err)
	}
	switch t {
	case json.Delim('{'):
		m := map[string]any{}
		for dec.More() {
			kt, err := dec.Token()
			if err != nil {
				return nil, fmt.Errorf("%w: %v", ErrNotCanonicalizable, err)
			}
			k := kt.(string) // the decoder only yields string keys
			if _, dup := m[k]; dup {
				return nil, fmt.Errorf("%w: the key %q appears twice in one object", ErrNotCanonicalizable, k)
			}
			if m[k], err = decodeValue(dec, depth+1); err != nil {
				return nil, err
			}
		}
		_, err := dec.Token() // '}'
		return m, err
	case json.Delim('['):
		a := []any{}
		for dec.More() {
			v, err := decodeValue(dec, depth+1)
			if err != nil {
				return nil, err
			}
			a = append(a, v)
		}
		_, err := dec.Token() // ']'
		return a, err
	default:
		return t, nil
	}
}
