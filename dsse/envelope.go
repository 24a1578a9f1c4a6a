// Package dsse holds evident's attestation formats: the DSSE envelope
// (Dead Simple Signing Envelope, secure-systems-lab/dsse v1.0), the in-toto
// Statement v1 it carries (https://in-toto.io/Statement/v1) and the in-toto
// link predicate v0.3 (https://in-toto.io/attestation/link/v0.3), which
// records a CI step as a Statement whose subjects are the step's products.
//
// It is a package of its own, beside link (which records and signs CI steps)
// and verify (which checks evidence offline), because both of them and the
// CLI's attest and submit commands read these formats, and the verifier
// must read them with no server code: the package does no I/O and imports
// neither net/http nor bbolt.
//
// Every parser here is strict, as for every other signed object of evident
// (threat P1): the JSON is decoded once, by internal/strictjson (no key
// twice at any depth, within size and depth limits), and each member is
// read from that decoding by its exact name and type (no unknown member,
// none in another case; see members.go); base64 must be canonical padded
// standard base64. A Statement is always parsed from the very payload
// bytes the envelope's signatures cover — the bytes whose SHA-256 a log
// entry records — never from a re-encoding.
//
// Signatures are over PAE(payloadType, payload) (the DSSE pre-authentication
// encoding, [evident.PAE]): ECDSA and RSA sign its SHA-256, Ed25519 signs it
// whole.
package dsse

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/evident-dev/evident/internal/strictjson"
)

// Limits of an envelope, each checked by [ParseEnvelope].
const (
	// MaxPayloadSize is the largest payload: the largest link a verifier
	// reads.
	MaxPayloadSize = 32 << 20
	// MaxEnvelopeSize bounds the envelope: the base64 payload, signatures
	// and their names.
	MaxEnvelopeSize = MaxPayloadSize/3*4 + 64<<10
	// MaxSignatures bounds the signatures of one envelope.
	MaxSignatures = 16
	// MaxSignatureSize covers RSA-4096 with room to spare.
	MaxSignatureSize = 1024
	// MaxKeyIDSize bounds a signature's key id.
	MaxKeyIDSize = 256
	// maxEnvelopeDepth is the nesting of an envelope: an object holding
	// an array of objects.
	maxEnvelopeDepth = 3
)

// ErrInvalidEnvelope is wrapped by every error [ParseEnvelope] returns.
var ErrInvalidEnvelope = errors.New("invalid DSSE envelope")

// Envelope is a DSSE envelope. Payload holds the decoded payload bytes.
type Envelope struct {
	PayloadType string      `json:"payloadType"`
	Payload     []byte      `json:"payload"`
	Signatures  []Signature `json:"signatures"`
}

// Signature is one signature of an envelope: the key id (which may be
// empty) and the decoded signature bytes.
type Signature struct {
	KeyID string `json:"keyid"`
	Sig   []byte `json:"sig"`
}

// ParseEnvelope decodes a DSSE envelope strictly: no duplicate or unknown
// member at any depth, no trailing data, payloadType and payload present, at
// least one and at most [MaxSignatures] signatures, each with a signature of
// at most [MaxSignatureSize] bytes; payload and sig in canonical padded
// standard base64 (DSSE allows URL-safe base64 too; evident refuses it, so
// that one envelope has one spelling). Every error wraps [ErrInvalidEnvelope].
func ParseEnvelope(b []byte) (*Envelope, error) {
	bad := func(format string, args ...any) (*Envelope, error) {
		return nil, fmt.Errorf("%w: "+format, append([]any{ErrInvalidEnvelope}, args...)...)
	}
	doc, err := strictjson.Decode(b, strictjson.Limits{MaxSize: MaxEnvelopeSize, MaxDepth: maxEnvelopeDepth})
	if err != nil {
		return bad("%v", err)
	}
	r := readObject(doc, "$")
	payloadType, _ := r.str("payloadType")
	payload, hasPayload := r.str("payload")
	sigs := r.list("signatures")
	switch err := r.done(); {
	case err != nil:
		return bad("%v", err)
	case payloadType == "":
		return bad("payloadType is missing")
	case !hasPayload:
		return bad("payload is missing")
	case len(sigs) == 0:
		return bad("it has no signature")
	case len(sigs) > MaxSignatures:
		return bad("%d signatures, over the limit of %d", len(sigs), MaxSignatures)
	}
	e := &Envelope{PayloadType: payloadType, Signatures: make([]Signature, 0, len(sigs))}
	if e.Payload, err = decodeBase64(payload); err != nil {
		return bad("payload: %v", err)
	}
	if len(e.Payload) > MaxPayloadSize {
		return bad("payload is %d bytes, over the limit of %d", len(e.Payload), MaxPayloadSize)
	}
	for i, v := range sigs {
		s, err := readSignature(v, i)
		if err != nil {
			return bad("%v", err)
		}
		e.Signatures = append(e.Signatures, s)
	}
	return e, nil
}

// readSignature reads signatures[i] of an envelope.
func readSignature(v any, i int) (Signature, error) {
	r := readObject(v, fmt.Sprintf("$.signatures[%d]", i))
	keyID, _ := r.str("keyid")
	sig, hasSig := r.str("sig")
	if err := r.done(); err != nil {
		return Signature{}, err
	}
	if !hasSig {
		return Signature{}, fmt.Errorf("signatures[%d].sig is missing", i)
	}
	b, err := decodeBase64(sig)
	switch {
	case err != nil:
		return Signature{}, fmt.Errorf("signatures[%d].sig: %v", i, err)
	case len(b) == 0 || len(b) > MaxSignatureSize:
		return Signature{}, fmt.Errorf("signatures[%d].sig must be 1 to %d bytes", i, MaxSignatureSize)
	case len(keyID) > MaxKeyIDSize:
		return Signature{}, fmt.Errorf("signatures[%d].keyid is over %d bytes", i, MaxKeyIDSize)
	}
	return Signature{KeyID: keyID, Sig: b}, nil
}

// decodeBase64 decodes canonical padded standard base64 only: no
// line breaks, no URL-safe alphabet, no missing padding, no stray bits.
func decodeBase64(s string) ([]byte, error) {
	b, err := base64.StdEncoding.Strict().DecodeString(s)
	if err != nil || base64.StdEncoding.EncodedLen(len(b)) != len(s) {
		return nil, errors.New("not canonical padded standard base64")
	}
	return b, nil
}

// Marshal encodes e as compact JSON (payloadType, payload, signatures, each
// signature keyid then sig), the form evident writes and bundles carry.
func (e *Envelope) Marshal() ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(e); err != nil {
		return nil, fmt.Errorf("couldn't encode the DSSE envelope: %w", err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// HasSignature reports whether e carries a signature with that key id and
// those signature bytes.
func (e *Envelope) HasSignature(keyID string, sig []byte) bool {
	for _, s := range e.Signatures {
		if s.KeyID == keyID && bytes.Equal(s.Sig, sig) {
			return true
		}
	}
	return false
}
