package linkstore

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"

	"github.com/evident-dev/evident"
	"github.com/secure-systems-lab/go-securesystemslib/cjson"
)

// ErrNotCanonicalizable: the upload is not a JSON Metablock that has one
// canonical form (a duplicated key, a key other than "signed" and
// "signatures", trailing data, nesting over maxDepth).
var ErrNotCanonicalizable = errors.New("not a well-formed in-toto Metablock")

// maxDepth bounds the nesting of an uploaded link (in-toto links nest a few
// levels: byproducts, environment).
const maxDepth = 64

// Canonical returns the form the store keeps of an in-toto Metablock —
// {"signatures": [], "signed": …} as compact JSON with sorted keys, nothing
// HTML-escaped — and its payload, the canonical JSON of "signed" (the bytes
// its signatures are over, whose SHA-256 the entry logs).
//
// The stored form carries no signature: a signature is the log entry's
// (its key id and signature bytes, its certificate chain), one payload may
// be logged by several signers (a deterministic step run again), and the
// store is write-once per payload. A bundle joins the two ([Bundled]).
//
// Duplicated object keys anywhere are refused: they are read one way by
// the signers' canonical encoder (the last wins) and another by a struct
// decoder (merged), so a document holding one has no single meaning.
func Canonical(link []byte) (doc, payload []byte, err error) {
	m, err := decodeMetablock(link)
	if err != nil {
		return nil, nil, err
	}
	payload, err = cjson.EncodeCanonical(m["signed"])
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrNotCanonicalizable, err)
	}
	m["signatures"] = []any{}
	doc, err = encode(m)
	return doc, payload, err
}

// Bundled returns the link a bundle carries for a logged entry: the stored
// document doc with the entry's signature as in-toto writes it (key id, hex
// signature and, for an X.509 signer, the PEM of its certificate), in the
// stored form. Any signature doc holds is replaced.
func Bundled(doc []byte, e *evident.Entry) ([]byte, error) {
	m, err := decodeMetablock(doc)
	if err != nil {
		return nil, err
	}
	sig := map[string]any{"keyid": e.KeyID, "sig": hex.EncodeToString(e.Signature)}
	if len(e.CertChain) > 0 {
		sig["cert"] = string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: e.CertChain[0]}))
	}
	m["signatures"] = []any{sig}
	return encode(m)
}

// decodeMetablock decodes a Metablock strictly: exactly the keys "signed"
// and "signatures".
func decodeMetablock(b []byte) (map[string]any, error) {
	v, err := decodeStrict(b)
	if err != nil {
		return nil, err
	}
	m, ok := v.(map[string]any)
	_, signed := m["signed"]
	_, sigs := m["signatures"]
	if !ok || !signed || !sigs || len(m) != 2 {
		return nil, fmt.Errorf(`%w: want an object with exactly the keys "signatures" and "signed"`, ErrNotCanonicalizable)
	}
	return m, nil
}

// encode is the stored form: compact JSON, keys sorted, nothing
// HTML-escaped — one encoding for one meaning, and JSON every decoder
// reads (canonical JSON itself leaves control characters in strings raw,
// as PEM's newlines).
func encode(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotCanonicalizable, err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
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
		if _, err := dec.Token(); err != nil { // '}'
			return nil, fmt.Errorf("%w: %v", ErrNotCanonicalizable, err)
		}
		return m, nil
	case json.Delim('['):
		a := []any{}
		for dec.More() {
			v, err := decodeValue(dec, depth+1)
			if err != nil {
				return nil, err
			}
			a = append(a, v)
		}
		if _, err := dec.Token(); err != nil { // ']'
			return nil, fmt.Errorf("%w: %v", ErrNotCanonicalizable, err)
		}
		return a, nil
	default:
		return t, nil
	}
}
