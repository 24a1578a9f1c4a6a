package tlog

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
)

// MaxCheckpointSize bounds a signed checkpoint note accepted by
// [OpenCheckpoint]; C2SP notes are a few hundred bytes.
const MaxCheckpointSize = 16 << 10

// ErrMalformedCheckpoint is wrapped by every parsing error of a checkpoint body.
var ErrMalformedCheckpoint = errors.New("malformed checkpoint")

// ErrCheckpointSignature is wrapped when a checkpoint is not signed by the
// expected log key.
var ErrCheckpointSignature = errors.New("checkpoint not signed by the log key")

// Checkpoint is the body of a C2SP tlog-checkpoint
// (https://c2sp.org/tlog-checkpoint): origin, tree size, root hash and
// optional extension lines.
type Checkpoint struct {
	Origin     string
	Size       uint64
	Hash       [HashSize]byte
	Extensions []string
}

// HashSize is the size of an RFC 6962 SHA-256 tree hash.
const HashSize = 32

// Marshal returns the checkpoint body: each line ends in a newline.
func (c Checkpoint) Marshal() []byte {
	var b strings.Builder
	b.WriteString(c.Origin)
	b.WriteByte('\n')
	b.WriteString(strconv.FormatUint(c.Size, 10))
	b.WriteByte('\n')
	b.WriteString(base64.StdEncoding.EncodeToString(c.Hash[:]))
	b.WriteByte('\n')
	for _, e := range c.Extensions {
		b.WriteString(e)
		b.WriteByte('\n')
	}
	return []byte(b.String())
}

// ParseCheckpoint parses a checkpoint body strictly: a non-empty origin, a
// decimal size with no sign and no leading zeros, a base64 root of exactly 32
// bytes in canonical encoding, then zero or more non-empty extension lines,
// and a final newline.
func ParseCheckpoint(text []byte) (Checkpoint, error) {
	bad := func(format string, args ...any) (Checkpoint, error) {
		return Checkpoint{}, fmt.Errorf("%w: "+format, append([]any{ErrMalformedCheckpoint}, args...)...)
	}
	if len(text) == 0 || text[len(text)-1] != '\n' {
		return bad("body must end in a newline")
	}
	lines := strings.Split(string(text[:len(text)-1]), "\n")
	if len(lines) < 3 {
		return bad("want at least 3 lines, got %d", len(lines))
	}
	var c Checkpoint
	c.Origin = lines[0]
	if c.Origin == "" {
		return bad("empty origin")
	}
	for _, l := range lines {
		if !utf8Printable(l) {
			return bad("non-printable character")
		}
	}
	size := lines[1]
	if size == "" || len(size) > 20 || (len(size) > 1 && size[0] == '0') {
		return bad("size %q is not a canonical decimal number", size)
	}
	for i := 0; i < len(size); i++ {
		if size[i] < '0' || size[i] > '9' {
			return bad("size %q is not a canonical decimal number", size)
		}
	}
	n, err := strconv.ParseUint(size, 10, 64)
	if err != nil {
		return bad("size %q: %v", size, err)
	}
	c.Size = n
	h, err := base64.StdEncoding.DecodeString(lines[2])
	if err != nil || len(h) != HashSize || base64.StdEncoding.EncodeToString(h) != lines[2] {
		return bad("root hash must be %d bytes in canonical base64", HashSize)
	}
	copy(c.Hash[:], h)
	for _, ext := range lines[3:] {
		if ext == "" {
			return bad("empty extension line")
		}
		c.Extensions = append(c.Extensions, ext)
	}
	return c, nil
}

func utf8Printable(s string) bool {
	for _, r := range s {
		if r < 0x20 || r == 0x7f || r == 0xfffd {
			return false
		}
	}
	return true
}

// SignCheckpoint signs c as a C2SP signed note.
func SignCheckpoint(c Checkpoint, s note.Signer) ([]byte, error) {
	signed, err := note.Sign(&note.Note{Text: string(c.Marshal())}, s)
	if err != nil {
		return nil, fmt.Errorf("couldn't sign checkpoint: %w", err)
	}
	return signed, nil
}

// OpenCheckpoint verifies that signed is a note signed by v and parses its
// body, whose origin must equal origin. Signatures by unknown keys are
// ignored, as C2SP requires; the note must carry v's signature.
func OpenCheckpoint(signed []byte, origin string, v note.Verifier) (Checkpoint, error) {
	if len(signed) > MaxCheckpointSize {
		return Checkpoint{}, fmt.Errorf("%w: %d bytes is over the limit of %d", ErrMalformedCheckpoint, len(signed), MaxCheckpointSize)
	}
	n, err := note.Open(signed, note.VerifierList(v))
	if err != nil {
		var unverified *note.UnverifiedNoteError
		var invalid *note.InvalidSignatureError
		if errors.As(err, &unverified) || errors.As(err, &invalid) {
			return Checkpoint{}, fmt.Errorf("%w %s: %v", ErrCheckpointSignature, v.Name(), err)
		}
		return Checkpoint{}, fmt.Errorf("%w: %v", ErrMalformedCheckpoint, err)
	}
	c, err := ParseCheckpoint([]byte(n.Text))
	if err != nil {
		return Checkpoint{}, err
	}
	if c.Origin != origin {
		return Checkpoint{}, fmt.Errorf("%w: origin %q, want %q", ErrMalformedCheckpoint, c.Origin, origin)
	}
	return c, nil
}

// SameCheckpoint reports whether two checkpoint bodies commit to the same tree.
func SameCheckpoint(a, b Checkpoint) bool {
	return a.Origin == b.Origin && a.Size == b.Size && bytes.Equal(a.Hash[:], b.Hash[:])
}
