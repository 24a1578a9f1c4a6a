package evident

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
)

// errPayloadDigest: an entry's payload_sha256 is not a hex SHA-256.
var errPayloadDigest = errors.New("payload_sha256 is not a SHA-256")

// PayloadSum returns the decoded PayloadSHA256: the SHA-256 of the signed
// payload, by which the link store keeps it. An entry that
// [ParseEntry] accepted always has one; any other may fail.
func (e *Entry) PayloadSum() ([sha256.Size]byte, error) {
	var d [sha256.Size]byte
	if len(e.PayloadSHA256) != hex.EncodedLen(len(d)) {
		return d, errPayloadDigest
	}
	if _, err := hex.Decode(d[:], []byte(e.PayloadSHA256)); err != nil {
		return d, errPayloadDigest
	}
	return d, nil
}

// IsPayload reports whether payload is the entry's signed payload: whether
// its SHA-256 is PayloadSHA256.
func (e *Entry) IsPayload(payload []byte) bool {
	d := sha256.Sum256(payload)
	return hex.EncodeToString(d[:]) == e.PayloadSHA256
}
