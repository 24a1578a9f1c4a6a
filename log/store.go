package log

import (
	"errors"

	"github.com/transparency-dev/merkle/compact"
)

// Errors a [Store] returns that callers branch on.
var (
	// ErrNotFound: a requested entry or node is not in the store.
	ErrNotFound = errors.New("not found")
	// ErrConflict: a batch does not start at the store's current size.
	ErrConflict = errors.New("batch does not start at the tree size")
	// ErrStored: a batch holds an entry the store already has; nothing was
	// written. The log looks entries up before it signs, so a store that
	// checks as it commits (PostgreSQL) returns it only if that lookup was
	// wrong; the log treats it as a failed commit.
	ErrStored = errors.New("batch holds an entry that is already stored")
)

// Head is the durable state of the tree.
type Head struct {
	// Size is the number of entries.
	Size uint64
	// Checkpoint is the signed note covering exactly Size entries; nil only
	// for a store that was never committed to.
	Checkpoint []byte
	// Time is when Checkpoint was signed, in Unix nanoseconds. The sequencer
	// refuses to sign when the clock reads earlier than this.
	Time int64
}

// Node is one stored tree hash: a leaf hash (level 0) or the root of a
// complete (perfect) subtree.
type Node struct {
	ID   compact.NodeID
	Hash []byte
}

// Batch is one group commit: entries appended at the end of the tree, the
// nodes they complete, and the checkpoint that covers them.
type Batch struct {
	// Start is the index of Entries[0]; it must equal the store's size.
	Start uint64
	// Entries are the canonical entry bytes, in index order.
	Entries [][]byte
	// LeafHashes[i] is the RFC 6962 leaf hash of Entries[i]; the store
	// indexes it so [Store.Lookup] finds the entry.
	LeafHashes [][]byte
	// Nodes are every leaf and complete subtree the batch adds.
	Nodes []Node
	// Head is the new head: Size = Start + len(Entries).
	Head Head
}

// Store is where the log keeps its tree. One sequencer writes; any number of
// goroutines read concurrently.
//
// Durability contract: when Commit returns nil, everything in the batch —
// entries, leaf-hash index, nodes and head — is on stable storage and visible
// to readers, all at once. When Commit returns an error, the batch may have
// been written entirely or not at all, never in part; the caller learns which
// by calling Head. Readers never observe a head whose entries and nodes are
// not all readable.
//
// Errors: ErrNotFound for a missing entry or node, ErrConflict for a batch
// that does not start at the current size, anything else for a storage fault.
type Store interface {
	// Head returns the latest committed head; a new store returns Head{}.
	Head() (Head, error)
	// Commit durably and atomically applies b (see the contract above).
	Commit(b *Batch) error
	// Entries returns the n entries starting at index start. It returns
	// ErrNotFound if any of them is not stored.
	Entries(start uint64, n int) ([][]byte, error)
	// Nodes returns the hashes of the given nodes, in order, or ErrNotFound
	// if any of them is not stored.
	Nodes(ids []compact.NodeID) ([][]byte, error)
	// Lookup returns, for each leaf hash, the index of the entry with that
	// leaf hash, or -1 where there is none.
	Lookup(leafHashes [][]byte) ([]int64, error)
	// Close releases the store. Calls after Close fail.
	Close() error
}
