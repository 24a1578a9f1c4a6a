package tlog

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// This file implements C2SP tlog-cosignature/v1 (https://c2sp.org/tlog-cosignature)
// verification: a witness's timestamped Ed25519 signature on a checkpoint,
// carried as one more signature line of the checkpoint's signed note
// (https://c2sp.org/signed-note).
//
// The verifier key is name+hash+base64(0x04 ‖ 32-byte Ed25519 public key),
// where hash is the first 4 bytes of SHA-256(name ‖ "\n" ‖ 0x04 ‖ key), in
// hex. A signature line is "— name base64(keyhash ‖ sig)" where keyhash is
// those 4 bytes and sig is the 8-byte big-endian Unix time T followed by the
// 64-byte Ed25519 signature of
//
//	cosignature/v1
//	time T
//	<the checkpoint body>

// CosignatureAlgorithm is the signed-note key type of tlog-cosignature/v1.
const CosignatureAlgorithm = 0x04

// ErrCosignatureKey wraps every error parsing a cosignature verifier key.
var ErrCosignatureKey = errors.New("malformed cosignature verifier key")

// CosignatureVerifier verifies tlog-cosignature/v1 signatures of one
// witness. It is a golang.org/x/mod/sumdb/note Verifier, so note.Open can
// check cosignatures too; [VerifyCosignatures] also returns their times.
type CosignatureVerifier struct {
	name string
	hash uint32
	key  ed25519.PublicKey
}

// NewCosignatureVerifier parses a witness's verifier key,
// name+hash+base64(0x04 ‖ Ed25519 public key), as litewitness prints it. The
// hash must match the key.
func NewCosignatureVerifier(vkey string) (*CosignatureVerifier, error) {
	name, rest, ok1 := strings.Cut(vkey, "+")
	hashHex, keyB64, ok2 := strings.Cut(rest, "+")
	if !ok1 || !ok2 || !validKeyName(name) || len(hashHex) != 8 {
		return nil, fmt.Errorf("%w: want name+hash+base64", ErrCosignatureKey)
	}
	h, err := strconv.ParseUint(hashHex, 16, 32)
	if err != nil || strings.ToLower(hashHex) != hashHex {
		return nil, fmt.Errorf("%w: hash %q is not 8 lowercase hex digits", ErrCosignatureKey, hashHex)
	}
	key, err := base64.StdEncoding.Strict().DecodeString(keyB64)
	if err != nil || len(key) != 1+ed25519.PublicKeySize {
		return nil, fmt.Errorf("%w: the key must be 33 bytes in base64", ErrCosignatureKey)
	}
	if key[0] != CosignatureAlgorithm {
		return nil, fmt.Errorf("%w: key type 0x%02x is not tlog-cosignature/v1 (0x04)", ErrCosignatureKey, key[0])
	}
	v := &CosignatureVerifier{name: name, hash: uint32(h), key: ed25519.PublicKey(key[1:])}
	if v.hash != cosignatureKeyHash(name, v.key) {
		return nil, fmt.Errorf("%w: hash %s does not match the key", ErrCosignatureKey, hashHex)
	}
	return v, nil
}

// NewCosignatureVerifierFromKey returns the verifier of an Ed25519 public key
// under name.
func NewCosignatureVerifierFromKey(name string, key ed25519.PublicKey) (*CosignatureVerifier, error) {
	if !validKeyName(name) || len(key) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("%w: bad name or key length", ErrCosignatureKey)
	}
	return &CosignatureVerifier{name: name, hash: cosignatureKeyHash(name, key), key: key}, nil
}

func cosignatureKeyHash(name string, key ed25519.PublicKey) uint32 {
	h := sha256.New()
	h.Write([]byte(name + "\n"))
	h.Write([]byte{CosignatureAlgorithm})
	h.Write(key)
	return binary.BigEndian.Uint32(h.Sum(nil))
}

// validKeyName is signed-note's rule: non-empty, no Unicode space, no plus.
func validKeyName(name string) bool {
	return name != "" && utf8.ValidString(name) && strings.IndexFunc(name, unicode.IsSpace) < 0 && !strings.Contains(name, "+")
}

// Name is the witness's key name.
func (v *CosignatureVerifier) Name() string { return v.name }

// KeyHash is the 4-byte key hash that prefixes its signatures.
func (v *CosignatureVerifier) KeyHash() uint32 { return v.hash }

// PublicKey is the witness's Ed25519 public key. The signed message does
// not name the witness, so one key under two names makes two verifiers
// that accept the same signature: count witnesses by key as well as by
// name.
func (v *CosignatureVerifier) PublicKey() ed25519.PublicKey { return v.key }

// String is the verifier key, name+hash+base64.
func (v *CosignatureVerifier) String() string {
	return fmt.Sprintf("%s+%08x+%s", v.name, v.hash, base64.StdEncoding.EncodeToString(append([]byte{CosignatureAlgorithm}, v.key...)))
}

// Verify reports whether sig (8-byte time ‖ 64-byte Ed25519 signature, the
// key hash already stripped, as note.Open passes it) is a valid cosignature
// of the checkpoint body msg.
func (v *CosignatureVerifier) Verify(msg, sig []byte) bool {
	_, ok := v.verify(msg, sig)
	return ok
}

func (v *CosignatureVerifier) verify(msg, sig []byte) (time.Time, bool) {
	if len(sig) != 8+ed25519.SignatureSize {
		return time.Time{}, false
	}
	// The signed message is only defined for a checkpoint body.
	if _, err := ParseCheckpoint(msg); err != nil {
		return time.Time{}, false
	}
	t := binary.BigEndian.Uint64(sig)
	if t > 1<<62 {
		return time.Time{}, false
	}
	if !ed25519.Verify(v.key, CosignedMessage(t, msg), sig[8:]) {
		return time.Time{}, false
	}
	return time.Unix(int64(t), 0).UTC(), true
}

// CosignedMessage is what a witness signs at Unix time t for the checkpoint
// body: "cosignature/v1\ntime T\n" followed by the body.
func CosignedMessage(t uint64, body []byte) []byte {
	m := make([]byte, 0, 40+len(body))
	m = append(m, "cosignature/v1\ntime "...)
	m = strconv.AppendUint(m, t, 10)
	m = append(m, '\n')
	return append(m, body...)
}

// Cosignature is one valid cosignature on a checkpoint.
type Cosignature struct {
	// Name is the witness's key name.
	Name string
	// Time is when the witness signed, as it says (whole seconds).
	Time time.Time
	// Line is the signature line as it appears in the note, with its newline.
	Line string
}

// SignatureLine is one "— name base64" line of a signed note.
type SignatureLine struct {
	Name    string
	KeyHash uint32
	Sig     []byte // after the key hash
	Line    string // as it appears, with its newline
}

// SplitNote splits a signed note into its text (ending in a newline) and its
// signature lines, strictly: at most MaxCheckpointSize bytes, at least one
// signature line, each well formed. It verifies nothing.
func SplitNote(signed []byte) ([]byte, []SignatureLine, error) {
	if len(signed) > MaxCheckpointSize {
		return nil, nil, fmt.Errorf("%w: %d bytes is over the limit of %d", ErrMalformedCheckpoint, len(signed), MaxCheckpointSize)
	}
	i := bytes.LastIndex(signed, []byte("\n\n"))
	if i < 0 || len(signed) == i+2 || signed[len(signed)-1] != '\n' {
		return nil, nil, fmt.Errorf("%w: not a signed note", ErrMalformedCheckpoint)
	}
	text, sigs := signed[:i+1], signed[i+2:]
	var lines []SignatureLine
	for _, l := range strings.SplitAfter(string(sigs), "\n") {
		if l == "" {
			continue
		}
		rest, ok := strings.CutPrefix(l, "— ")
		name, b64, ok2 := strings.Cut(strings.TrimSuffix(rest, "\n"), " ")
		if !ok || !ok2 || !validKeyName(name) {
			return nil, nil, fmt.Errorf("%w: malformed signature line %q", ErrMalformedCheckpoint, strings.TrimSpace(l))
		}
		raw, err := base64.StdEncoding.Strict().DecodeString(b64)
		if err != nil || len(raw) < 5 {
			return nil, nil, fmt.Errorf("%w: malformed signature line %q", ErrMalformedCheckpoint, strings.TrimSpace(l))
		}
		lines = append(lines, SignatureLine{Name: name, KeyHash: binary.BigEndian.Uint32(raw), Sig: raw[4:], Line: l})
	}
	return text, lines, nil
}

// VerifyCosignatures returns the valid cosignatures of the signed checkpoint
// note by the given witnesses: at most one per witness (its earliest), in the
// order of witnesses. Lines by other keys are ignored, as signed-note
// requires, and so are lines by a witness that do not verify (invalid lists
// them). It does not check the log's own signature: see [OpenCheckpoint].
func VerifyCosignatures(signed []byte, witnesses []*CosignatureVerifier) (valid []Cosignature, invalid []string, err error) {
	text, lines, err := SplitNote(signed)
	if err != nil {
		return nil, nil, err
	}
	for _, w := range witnesses {
		var best *Cosignature
		for _, l := range lines {
			if l.Name != w.name || l.KeyHash != w.hash {
				continue
			}
			t, ok := w.verify(text, l.Sig)
			if !ok {
				invalid = append(invalid, w.name)
				continue
			}
			if best == nil || t.Before(best.Time) {
				best = &Cosignature{Name: w.name, Time: t, Line: l.Line}
			}
		}
		if best != nil {
			valid = append(valid, *best)
		}
	}
	return valid, invalid, nil
}

// AddSignatureLines returns the signed note with lines (complete signature
// lines, each ending in a newline) appended, skipping any already present.
func AddSignatureLines(signed []byte, lines ...string) []byte {
	out := bytes.Clone(signed)
	for _, l := range lines {
		if !strings.HasSuffix(l, "\n") || bytes.Contains(out, []byte("\n"+l)) {
			continue
		}
		out = append(out, l...)
	}
	return out
}
