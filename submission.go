package evident

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/evident-dev/evident/internal/strictjson"
)

// Limits on a [Submission].
const (
	// MaxPayloadSize is the largest payload a submission carries: the
	// largest link a verifier reads.
	MaxPayloadSize = 32 << 20
	// MaxSubmissionSize is the largest submission: an entry, its payload in
	// base64, and the members' names.
	MaxSubmissionSize = MaxEntrySize + (MaxPayloadSize+2)/3*4 + 64
)

// Submission is what a client posts to the log: an entry and the payload
// it records (the bytes whose SHA-256 is payload_sha256), so that the log
// checks the signature over the signed message itself — Ed25519, or DSSE's
// PAE, which no digest in the entry covers — before the entry is
// sequenced. The log records only the entry. A bare entry is still
// accepted where its payload digest is enough to check the signature: a
// link signed with ECDSA or RSA.
type Submission struct {
	Entry   json.RawMessage `json:"entry"`
	Payload []byte          `json:"payload"`
}

// Marshal encodes a submission of e and payload: the canonical entry, then
// the payload in standard base64.
func (s *Submission) Marshal() ([]byte, error) { return json.Marshal(s) }

// NewSubmission returns the submission of e (canonicalised) and payload.
func NewSubmission(e *Entry, payload []byte) (*Submission, error) {
	canonical, err := e.Marshal()
	if err != nil {
		return nil, err
	}
	return &Submission{Entry: canonical, Payload: payload}, nil
}

// ParseSubmission reads what a client posted: a [Submission], whose first
// member is "entry" or "payload", or a bare entry (payload nil). It
// returns the entry, its canonical encoding and the payload. A submission
// is decoded strictly (no duplicate, unknown or other-case members, no
// trailing data, both members present, the payload 1 to [MaxPayloadSize]
// bytes), its entry as [ParseEntry] does; it does not check that the
// payload is the entry's ([Entry.SignedMessage] does). Every error wraps
// [ErrInvalidEntry].
func ParseSubmission(body []byte) (e *Entry, canonical, payload []byte, err error) {
	if !IsSubmission(body) {
		e, canonical, err = ParseEntry(body)
		return e, canonical, nil, err
	}
	if e, canonical, payload, ok := parseCanonicalSubmission(body); ok {
		return e, canonical, payload, nil
	}
	var s Submission
	doc, err := strictjson.Unmarshal(body, &s, strictjson.Limits{MaxSize: MaxSubmissionSize, MaxDepth: maxEntryDepth + 1})
	if err == nil {
		err = strictjson.Faithful(doc, s, "$", true)
	}
	switch {
	case err != nil:
		return nil, nil, nil, fmt.Errorf("%w: submission: %v", ErrInvalidEntry, err)
	case len(s.Entry) == 0 || string(s.Entry) == "null":
		return nil, nil, nil, bad("submission: entry is missing")
	case len(s.Payload) == 0:
		return nil, nil, nil, bad("submission: payload is missing or empty")
	case len(s.Payload) > MaxPayloadSize:
		return nil, nil, nil, bad("submission: payload is %d bytes, over the limit of %d", len(s.Payload), MaxPayloadSize)
	}
	if e, canonical, err = ParseEntry(s.Entry); err != nil {
		return nil, nil, nil, err
	}
	return e, canonical, s.Payload, nil
}

// IsSubmission reports whether body, or its first bytes, begins a
// [Submission] rather than a bare entry: its first member is named (in any
// case) "entry" or "payload", which no entry has.
func IsSubmission(body []byte) bool {
	if bytes.HasPrefix(body, []byte(`{"payload_type":`)) || bytes.HasPrefix(body, []byte(`{"version":`)) {
		return false // a canonical entry, without a decoder
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return false
	}
	k, err := dec.Token()
	name, ok := k.(string)
	return err == nil && ok && (strings.EqualFold(name, "entry") || strings.EqualFold(name, "payload"))
}

// parseCanonicalSubmission decodes body only if it is exactly what
// [Submission.Marshal] writes — {"entry":CANONICAL,"payload":"BASE64"},
// the entry in canonical form, the payload canonical padded base64 of 1 to
// MaxPayloadSize bytes — and the entry passes Check; otherwise it reports
// false and the caller takes the general decoder. It is the fast path for
// evident's own clients, which saves decoding every submission twice;
// FuzzParseSubmission checks that it never accepts what the general path
// would refuse or read otherwise.
func parseCanonicalSubmission(body []byte) (*Entry, []byte, []byte, bool) {
	const head, mid = `{"entry":`, `,"payload":"`
	i := bytes.LastIndex(body, []byte(mid))
	if !bytes.HasPrefix(body, []byte(head)) || i < len(head) || !bytes.HasSuffix(body, []byte(`"}`)) || i+len(mid) > len(body)-2 {
		return nil, nil, nil, false
	}
	canonical := body[len(head):i]
	e, ok := parseCanonical(canonical)
	if !ok || e.Check() != nil {
		return nil, nil, nil, false
	}
	b64 := body[i+len(mid) : len(body)-2]
	payload := make([]byte, base64.StdEncoding.DecodedLen(len(b64)))
	n, err := base64.StdEncoding.Strict().Decode(payload, b64)
	if err != nil || n == 0 || n > MaxPayloadSize || base64.StdEncoding.EncodedLen(n) != len(b64) {
		return nil, nil, nil, false
	}
	return e, bytes.Clone(canonical), payload[:n], true
}
