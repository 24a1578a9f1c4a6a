package log

import "github.com/evident-dev/evident/tlog"

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
	ParseCheckpoint        = tlog.ParseCheckpoint
	SignCheckpoint         = tlog.SignCheckpoint
	OpenCheckpoint         = tlog.OpenCheckpoint
	SameCheckpoint         = tlog.SameCheckpoint
	VerifyInclusion        = tlog.VerifyInclusion
	VerifyConsistency      = tlog.VerifyConsistency
	LeafHash               = tlog.LeafHash
)
