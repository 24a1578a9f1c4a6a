// Package tlog holds the transparency-log formats that both the log server
// and the offline verifier need, free of storage and network code: C2SP
// tlog-checkpoint bodies and signed notes (https://c2sp.org/tlog-checkpoint)
// and RFC 6962 inclusion and consistency proof verification.
package tlog

import (
	"errors"
	"fmt"

	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
)

var hasher = rfc6962.DefaultHasher

// ErrInconsistent reports that the log showed two views that cannot both be
// true: a smaller tree than one seen before, the same size with another
// root, or a consistency proof that does not verify.
var ErrInconsistent = errors.New("log is inconsistent")

// ErrBadProof reports an inclusion proof that does not verify.
var ErrBadProof = errors.New("proof does not verify")

// LeafHash returns the RFC 6962 leaf hash of an entry.
func LeafHash(entry []byte) []byte { return hasher.HashLeaf(entry) }

// VerifyInclusion checks that leafHash is at index in the tree of checkpoint
// cp. It wraps ErrBadProof on failure.
func VerifyInclusion(index uint64, cp Checkpoint, leafHash []byte, p [][]byte) error {
	if index >= cp.Size {
		return fmt.Errorf("%w: index %d is not below checkpoint size %d", ErrBadProof, index, cp.Size)
	}
	if err := proof.VerifyInclusion(hasher, index, cp.Size, leafHash, p, cp.Hash[:]); err != nil {
		return fmt.Errorf("%w: inclusion of index %d in size %d: %v", ErrBadProof, index, cp.Size, err)
	}
	return nil
}

// VerifyConsistency checks that the tree of checkpoint b extends the tree of
// checkpoint a. Equal sizes must have equal roots; a smaller b is a rollback.
// It wraps ErrInconsistent on failure.
func VerifyConsistency(a, b Checkpoint, p [][]byte) error {
	switch {
	case a.Origin != b.Origin:
		return fmt.Errorf("%w: origins %q and %q differ", ErrInconsistent, a.Origin, b.Origin)
	case b.Size < a.Size:
		return fmt.Errorf("%w: rollback from size %d to %d", ErrInconsistent, a.Size, b.Size)
	case a.Size == b.Size:
		if a.Hash != b.Hash || len(p) != 0 {
			return fmt.Errorf("%w: split view: two roots for size %d", ErrInconsistent, a.Size)
		}
		return nil
	case a.Size == 0:
		if len(p) != 0 {
			return fmt.Errorf("%w: non-empty proof from the empty tree", ErrInconsistent)
		}
		return nil
	}
	if err := proof.VerifyConsistency(hasher, a.Size, b.Size, p, a.Hash[:], b.Hash[:]); err != nil {
		return fmt.Errorf("%w: consistency from %d to %d: %v", ErrInconsistent, a.Size, b.Size, err)
	}
	return nil
}
