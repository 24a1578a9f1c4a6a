// Package evident holds the formats that every part of evident shares: the
// Entry that the transparency log records for each signed in-toto link or
// DSSE attestation.
//
// The formats are small, documented and free of I/O. An Entry is encoded as
// canonical JSON (the output of [Entry.Marshal]); that exact byte string is one
// Merkle leaf of the log (RFC 6962 leaf hash) and must fit in a C2SP
// tlog-tiles entry bundle, so it is at most [MaxEntrySize] bytes.
//
// An entry has one of two versions. Version 1 (no "version" member, as every
// entry logged before version 2 existed) carries one RFC 3161 token in
// "timestamp" and signs an in-toto link. Version 2 ("version":2) carries 1 to
// [MaxTimestamps] tokens in "timestamps", from independent timestamp
// authorities, and signs a link or a DSSE envelope's payload ([PAE]).
package evident

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/evident-dev/evident/internal/strictjson"
	"github.com/evident-dev/evident/tlog"
)

// Limits on an Entry. Every one is checked by [ParseEntry].
const (
	// MaxEntrySize is the largest canonical entry: a tlog-tiles entry bundle
	// prefixes each entry with a 16-bit length.
	MaxEntrySize = tlog.MaxEntrySize
	// MaxChainLength is the most certificates a signer chain may hold
	// (leaf plus intermediates).
	MaxChainLength = 8
	// MaxCertificateSize is the largest DER certificate accepted in a chain.
	MaxCertificateSize = 16 << 10
	// MaxSignatureSize covers RSA-4096 with room to spare.
	MaxSignatureSize = 1024
	// MaxPublicKeySize is the largest PKIX public key accepted.
	MaxPublicKeySize = 4096
	// MaxTimestampSize is the largest RFC 3161 token accepted.
	MaxTimestampSize = 32 << 10
	// MaxTimestamps is the most tokens a version 2 entry may carry.
	MaxTimestamps = 8
	// maxShortString bounds payload_type and key_id.
	maxShortString = 256
	// maxEntryDepth bounds the nesting of an entry's JSON (it needs 2).
	maxEntryDepth = 4
)

// Entry is what the log records for one signature: the signed payload's type
// and digest, the signature, who made it, and when (RFC 3161 tokens over the
// signature bytes). The payload itself (the in-toto link or the DSSE
// payload) travels beside the entry, content-addressed by PayloadSHA256.
type Entry struct {
	// Version is 2 for a version 2 entry; 0 (absent) is version 1, so the
	// entries logged before versions existed keep their canonical bytes and
	// leaf hashes. No other value is valid, 1 included: version 1 has one
	// spelling.
	Version int `json:"version,omitempty"`
	// PayloadType names what was signed, e.g. [PayloadTypeLink] for the
	// canonical signed bytes of an in-toto Metablock.
	PayloadType string `json:"payload_type"`
	// PayloadSHA256 is the lowercase hex SHA-256 of the signed payload bytes.
	PayloadSHA256 string `json:"payload_sha256"`
	// Signature is the signature over the payload bytes.
	Signature []byte `json:"signature"`
	// KeyID is the signer's key identifier as the payload format defines it
	// (the in-toto keyid for links).
	KeyID string `json:"key_id"`
	// CertChain is the signer's certificate chain, leaf first, DER encoded.
	// Exactly one of CertChain and PublicKey is set.
	CertChain [][]byte `json:"cert_chain,omitempty"`
	// PublicKey is the signer's PKIX DER public key, for key-only functionaries.
	PublicKey []byte `json:"public_key,omitempty"`
	// Timestamp, in a version 1 entry only, is a DER RFC 3161
	// TimeStampToken whose message imprint is the SHA-256 of Signature.
	Timestamp []byte `json:"timestamp,omitempty"`
	// Timestamps, in a version 2 entry only, are 1 to [MaxTimestamps] such
	// tokens, each from a timestamp authority the signer asked.
	Timestamps [][]byte `json:"timestamps,omitempty"`
}

// Payload types an entry may record.
const (
	// PayloadTypeLink is the payload type of an in-toto Metablock link:
	// the payload is the canonical JSON of its "signed" field, and the
	// signature is over those bytes. Versions 1 and 2.
	PayloadTypeLink = "application/vnd.in-toto.link+json"
	// PayloadTypeDSSE is the payload type of an in-toto attestation in a
	// DSSE envelope: the payload is the envelope's payload (the in-toto
	// Statement bytes), and the signature is over PAE(PayloadTypeDSSE,
	// payload). Version 2 only.
	PayloadTypeDSSE = "application/vnd.in-toto+json"
)

// Entry versions.
const (
	// Version1 is written as no "version" member at all.
	Version1 = 0
	Version2 = 2
)

// ErrInvalidEntry is wrapped by every error [ParseEntry] returns. It is
// [tlog.ErrInvalidEntry], the log's refusal too.
var ErrInvalidEntry = tlog.ErrInvalidEntry

// ParseEntry decodes one JSON entry strictly (no duplicate or unknown
// fields, no present-but-empty signer field, no trailing data, every limit
// above enforced) and returns it with its canonical
// encoding. Every error wraps [ErrInvalidEntry] and says which field is wrong.
func ParseEntry(data []byte) (*Entry, []byte, error) {
	if len(data) > MaxEntrySize {
		return nil, nil, fmt.Errorf("%w: %d bytes is over the limit of %d", ErrInvalidEntry, len(data), MaxEntrySize)
	}
	if e, ok := parseCanonical(data); ok {
		if err := e.Check(); err != nil {
			return nil, nil, err
		}
		return e, bytes.Clone(data), nil
	}
	var e Entry
	doc, err := strictjson.Unmarshal(data, &e, strictjson.Limits{MaxSize: MaxEntrySize, MaxDepth: maxEntryDepth})
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrInvalidEntry, err)
	}
	if err := e.Check(); err != nil {
		return nil, nil, err
	}
	if obj, ok := doc.(map[string]any); ok {
		if err := checkMembers(obj); err != nil {
			return nil, nil, err
		}
	}
	canonical, err := e.Marshal()
	if err != nil {
		return nil, nil, err
	}
	return &e, canonical, nil
}

// entryFields are the entry's member names; optionalFields those that are
// left out when empty.
var (
	entryFields    = []string{"version", "payload_type", "payload_sha256", "signature", "key_id", "cert_chain", "public_key", "timestamp", "timestamps"}
	optionalFields = map[string]bool{"version": true, "cert_chain": true, "public_key": true, "timestamp": true, "timestamps": true}
)

// checkMembers refuses what encoding/json would decode without complaint
// but a reader of the document could take otherwise: two members that
// name one field in different cases (encoding/json keeps the last, a
// case-sensitive reader sees an unknown member), and an optional field
// present but empty ("public_key": "" beside a cert_chain is not the same
// entry as one without it, nor is "timestamps": [] in a version 1 entry or
// "version": 0). Its cost is n log n in the number of members.
func checkMembers(obj map[string]any) error {
	seen := map[string]string{}
	for _, k := range slices.Sorted(maps.Keys(obj)) {
		v := obj[k]
		for _, f := range entryFields {
			if !strings.EqualFold(k, f) {
				continue
			}
			if other, ok := seen[f]; ok {
				return bad("members %q and %q both name %s", other, k, f)
			}
			seen[f] = k
			if optionalFields[f] && strictjson.Empty(v) {
				return bad("%s is present but empty (leave it out)", f)
			}
		}
	}
	return nil
}

// Check reports whether e has the Entry shape of its version: every
// required field present, none that the version lacks, every limit
// respected. It does not verify signatures or certificates.
func (e *Entry) Check() error {
	switch {
	case e.PayloadType == "":
		return bad("payload_type is missing")
	case len(e.PayloadType) > maxShortString || !printable(e.PayloadType):
		return bad("payload_type must be at most %d printable ASCII characters", maxShortString)
	case e.PayloadType != PayloadTypeLink && e.PayloadType != PayloadTypeDSSE:
		return bad("payload_type %q is unknown (the log records %q and %q)", e.PayloadType, PayloadTypeLink, PayloadTypeDSSE)
	case len(e.PayloadSHA256) != 64 || !lowerHex(e.PayloadSHA256):
		return bad("payload_sha256 must be 64 lowercase hex digits")
	case len(e.Signature) == 0:
		return bad("signature is missing")
	case len(e.Signature) > MaxSignatureSize:
		return bad("signature is %d bytes, over the limit of %d", len(e.Signature), MaxSignatureSize)
	case len(e.KeyID) > maxShortString || !printable(e.KeyID):
		return bad("key_id must be at most %d printable ASCII characters", maxShortString)
	case len(e.CertChain) == 0 && len(e.PublicKey) == 0:
		return bad("one of cert_chain and public_key is required")
	case len(e.CertChain) > 0 && len(e.PublicKey) > 0:
		return bad("cert_chain and public_key are mutually exclusive")
	case len(e.CertChain) > MaxChainLength:
		return bad("cert_chain has %d certificates, over the limit of %d", len(e.CertChain), MaxChainLength)
	case len(e.PublicKey) > MaxPublicKeySize:
		return bad("public_key is %d bytes, over the limit of %d", len(e.PublicKey), MaxPublicKeySize)
	}
	for i, c := range e.CertChain {
		if len(c) == 0 || len(c) > MaxCertificateSize {
			return bad("cert_chain[%d] must be 1 to %d bytes", i, MaxCertificateSize)
		}
	}
	switch e.Version {
	case Version1:
		return e.checkV1()
	case Version2:
		return e.checkV2()
	}
	return bad("version %d is unknown (want %d, or no version for version 1)", e.Version, Version2)
}

func (e *Entry) checkV1() error {
	switch {
	case e.Timestamps != nil:
		return bad("timestamps needs \"version\":%d (a version 1 entry has one timestamp)", Version2)
	case e.PayloadType != PayloadTypeLink:
		return bad("payload_type %q needs \"version\":%d", e.PayloadType, Version2)
	case len(e.Timestamp) == 0:
		return bad("timestamp is missing")
	case len(e.Timestamp) > MaxTimestampSize:
		return bad("timestamp is %d bytes, over the limit of %d", len(e.Timestamp), MaxTimestampSize)
	}
	return nil
}

func (e *Entry) checkV2() error {
	switch {
	case e.Timestamp != nil:
		return bad("a version %d entry has timestamps, not timestamp", Version2)
	case len(e.Timestamps) == 0:
		return bad("timestamps is missing (a version %d entry has 1 to %d tokens)", Version2, MaxTimestamps)
	case len(e.Timestamps) > MaxTimestamps:
		return bad("timestamps has %d tokens, over the limit of %d", len(e.Timestamps), MaxTimestamps)
	}
	for i, t := range e.Timestamps {
		if len(t) == 0 || len(t) > MaxTimestampSize {
			return bad("timestamps[%d] must be 1 to %d bytes", i, MaxTimestampSize)
		}
	}
	return nil
}

// bad returns an error wrapping [ErrInvalidEntry].
func bad(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalidEntry}, args...)...)
}

// Tokens returns the entry's RFC 3161 tokens: the one of a version 1 entry,
// the 1 to [MaxTimestamps] of a version 2 entry. The slice is the entry's own.
func (e *Entry) Tokens() [][]byte {
	if e.Version == Version1 {
		if e.Timestamp == nil {
			return nil
		}
		return [][]byte{e.Timestamp}
	}
	return e.Timestamps
}

// SignedMessage checks that payload is the entry's payload (its SHA-256 is
// PayloadSHA256) and returns the bytes the signature covers: the payload
// itself for [PayloadTypeLink], PAE(PayloadTypeDSSE, payload) for
// [PayloadTypeDSSE]. Errors wrap [ErrPayloadMismatch] or [ErrInvalidEntry].
func (e *Entry) SignedMessage(payload []byte) ([]byte, error) {
	if !e.IsPayload(payload) {
		return nil, fmt.Errorf("%w: SHA-256 %x, the entry records %s", ErrPayloadMismatch, sha256.Sum256(payload), e.PayloadSHA256)
	}
	switch e.PayloadType {
	case PayloadTypeLink:
		return payload, nil
	case PayloadTypeDSSE:
		return PAE(e.PayloadType, payload), nil
	}
	return nil, bad("payload_type %q is unknown", e.PayloadType)
}

// ErrPayloadMismatch is wrapped by [Entry.SignedMessage] when the payload
// is not the one the entry records.
var ErrPayloadMismatch = errors.New("payload is not the entry's")

// PAE is DSSE v1's pre-authentication encoding, the bytes a DSSE signature
// covers: "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body, each LEN the
// byte length in ASCII decimal.
func PAE(payloadType string, payload []byte) []byte {
	b := make([]byte, 0, len(payloadType)+len(payload)+32)
	b = append(b, "DSSEv1 "...)
	b = strconv.AppendInt(b, int64(len(payloadType)), 10)
	b = append(b, ' ')
	b = append(b, payloadType...)
	b = append(b, ' ')
	b = strconv.AppendInt(b, int64(len(payload)), 10)
	b = append(b, ' ')
	return append(b, payload...)
}

// Marshal returns the canonical encoding of e: encoding/json's output for the
// struct, fields in declaration order, binary fields in standard base64.
func (e *Entry) Marshal() ([]byte, error) {
	b, err := json.Marshal(e)
	if err != nil {
		return nil, fmt.Errorf("couldn't encode entry: %w", err)
	}
	if len(b) > MaxEntrySize {
		return nil, fmt.Errorf("%w: canonical form is %d bytes, over the limit of %d", ErrInvalidEntry, len(b), MaxEntrySize)
	}
	return b, nil
}

// PayloadDigest returns the decoded PayloadSHA256.
func (e *Entry) PayloadDigest() ([]byte, error) {
	return hex.DecodeString(e.PayloadSHA256)
}

func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

func lowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// parseCanonical decodes data only if it is exactly in canonical form, the
// byte string [Entry.Marshal] would produce; otherwise it reports false and
// the caller takes the general decoder. It is the fast path for clients that
// send canonical entries, which saves re-encoding; FuzzParseEntry checks that
// it never accepts what the general path would reject or re-encode.
func parseCanonical(data []byte) (*Entry, bool) {
	c := cursor{b: data, ok: true}
	var e Entry
	c.lit(`{`)
	if c.peek(`"version":2,`) {
		c.lit(`"version":2,`)
		e.Version = Version2
	}
	c.lit(`"payload_type":`)
	e.PayloadType = c.str()
	c.lit(`,"payload_sha256":`)
	e.PayloadSHA256 = c.str()
	c.lit(`,"signature":`)
	e.Signature = c.b64()
	c.lit(`,"key_id":`)
	e.KeyID = c.str()
	if c.peek(`,"cert_chain":[`) {
		c.lit(`,"cert_chain":`)
		e.CertChain = c.b64s()
	}
	if c.peek(`,"public_key":`) {
		c.lit(`,"public_key":`)
		e.PublicKey = c.b64()
		c.ok = c.ok && len(e.PublicKey) > 0 // "" is left to the general path to refuse
	}
	if c.peek(`,"timestamp":`) {
		c.lit(`,"timestamp":`)
		e.Timestamp = c.b64()
		c.ok = c.ok && len(e.Timestamp) > 0
	}
	if c.peek(`,"timestamps":[`) {
		c.lit(`,"timestamps":`)
		e.Timestamps = c.b64s()
	}
	c.lit("}")
	return &e, c.ok && len(c.b) == 0
}

// cursor reads canonical JSON; the first mismatch clears ok for good.
type cursor struct {
	b  []byte
	ok bool
}

func (c *cursor) peek(s string) bool { return c.ok && bytes.HasPrefix(c.b, []byte(s)) }

func (c *cursor) lit(s string) {
	if c.peek(s) {
		c.b = c.b[len(s):]
	} else {
		c.ok = false
	}
}

// str reads a string that encoding/json writes without escapes: printable
// ASCII but for the quote, backslash and the HTML characters <, > and &.
func (c *cursor) str() string {
	if !c.peek(`"`) {
		c.ok = false
		return ""
	}
	for i := 1; i < len(c.b); i++ {
		switch ch := c.b[i]; {
		case ch == '"':
			s := string(c.b[1:i])
			c.b = c.b[i+1:]
			return s
		case ch < 0x20 || ch > 0x7e || ch == '\\' || ch == '<' || ch == '>' || ch == '&':
			c.ok = false
			return ""
		}
	}
	c.ok = false
	return ""
}

// b64s reads a non-empty array of canonical base64 strings.
func (c *cursor) b64s() [][]byte {
	var out [][]byte
	c.lit("[")
	for c.ok {
		out = append(out, c.b64())
		if !c.peek(",") {
			break
		}
		c.lit(",")
	}
	c.lit("]")
	return out
}

// b64 reads a string holding canonical padded standard base64.
func (c *cursor) b64() []byte {
	s := c.str()
	if !c.ok {
		return nil
	}
	b, err := base64.StdEncoding.Strict().DecodeString(s)
	if err != nil || base64.StdEncoding.EncodedLen(len(b)) != len(s) {
		c.ok = false
		return nil
	}
	return b
}
