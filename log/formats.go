package log

import (
	"github.com/evident-dev/evident/tlog"
	"golang.org/x/mod/sumdb/note"
)

// The checkpoint and proof formats live in package tlog, which the offline
// verifier shares; these names keep the log's API whole.
type Checkpoint = tlog.Checkpoint

const (
	HashSize          = tlog.HashSize
	MaxCheckpointSize = tlog.MaxCheckpointSize
)

var (
	ErrMalformedCheckpoint = tlog.ErrMalformedCheckpoint
	ErrCheckpointSignature = tlog.ErrCheckpointSignature
	ErrInconsistent        = tlog.ErrInconsistent
	ErrBadProof            = tlog.ErrBadProof
)

// ParseCheckpoint is [tlog.ParseCheckpoint].
func ParseCheckpoint(text []byte) (Checkpoint, error) { return tlog.ParseCheckpoint(text) }

// SignCheckpoint is [tlog.SignCheckpoint].
func SignCheckpoint(c Checkpoint, s note.Signer) ([]byte, error) { return tlog.SignCheckpoint(c, s) }

// OpenCheckpoint is [tlog.OpenCheckpoint].
func OpenCheckpoint(signed []byte, origin string, v note.Verifier) (Checkpoint, error) {
	return tlog.OpenCheckpoint(signed, origin, v)
}

// SameCheckpoint is [tlog.SameCheckpoint].
func SameCheckpoint(a, b Checkpoint) bool { return tlog.SameCheckpoint(a, b) }

// VerifyInclusion is [tlog.VerifyInclusion].
func VerifyInclusion(index uint64, cp Checkpoint, leafHash []byte, p [][]byte) error {
	return tlog.VerifyInclusion(index, cp, leafHash, p)
}

// VerifyConsistency is [tlog.VerifyConsistency].
func VerifyConsistency(a, b Checkpoint, p [][]byte) error { return tlog.VerifyConsistency(a, b, p) }

// LeafHash is [tlog.LeafHash].
func LeafHash(entry []byte) []byte { return tlog.LeafHash(entry) }
