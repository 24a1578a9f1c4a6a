package log

import (
	"errors"
	"fmt"
	"sync"

	"github.com/transparency-dev/merkle/compact"
)

// MemStore is the in-memory twin of [BoltStore]: the same contract, no
// durability across processes. It is for tests and benchmarks.
type MemStore struct {
	mu      sync.RWMutex
	closed  bool
	head    Head
	entries [][]byte
	nodes   map[compact.NodeID][]byte
	leaves  map[string]int64
}

// NewMemStore returns an empty in-memory store.
func NewMemStore() *MemStore {
	return &MemStore{nodes: make(map[compact.NodeID][]byte), leaves: make(map[string]int64)}
}

var errClosed = errors.New("store is closed")

// Head implements [Store].
func (m *MemStore) Head() (Head, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.closed {
		return Head{}, errClosed
	}
	return m.head, nil
}

// Commit implements [Store].
func (m *MemStore) Commit(b *Batch) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return errClosed
	}
	if b.Start != m.head.Size {
		return fmt.Errorf("%w: batch starts at %d, size is %d", ErrConflict, b.Start, m.head.Size)
	}
	for i, e := range b.Entries {
		m.entries = append(m.entries, clone(e))
		m.leaves[string(b.LeafHashes[i])] = int64(b.Start) + int64(i)
	}
	for _, n := range b.Nodes {
		m.nodes[n.ID] = clone(n.Hash)
	}
	m.head = b.Head
	m.head.Checkpoint = clone(b.Head.Checkpoint)
	return nil
}

// Entries implements [Store].
func (m *MemStore) Entries(start uint64, n int) ([][]byte, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.closed {
		return nil, errClosed
	}
	if n < 0 || start >= uint64(len(m.entries)) || uint64(n) > uint64(len(m.entries))-start {
		return nil, fmt.Errorf("entries [%d, +%d): %w", start, n, ErrNotFound)
	}
	out := make([][]byte, n)
	for i := range out {
		out[i] = m.entries[start+uint64(i)]
	}
	return out, nil
}

// Nodes implements [Store].
func (m *MemStore) Nodes(ids []compact.NodeID) ([][]byte, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.closed {
		return nil, errClosed
	}
	out := make([][]byte, len(ids))
	for i, id := range ids {
		h, ok := m.nodes[id]
		if !ok {
			return nil, fmt.Errorf("node %d/%d: %w", id.Level, id.Index, ErrNotFound)
		}
		out[i] = h
	}
	return out, nil
}

// Lookup implements [Store].
func (m *MemStore) Lookup(leafHashes [][]byte) ([]int64, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.closed {
		return nil, errClosed
	}
	out := make([]int64, len(leafHashes))
	for i, h := range leafHashes {
		idx, ok := m.leaves[string(h)]
		if !ok {
			idx = -1
		}
		out[i] = idx
	}
	return out, nil
}

// Close implements [Store].
func (m *MemStore) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	return nil
}

func clone(b []byte) []byte { return append([]byte(nil), b...) }
