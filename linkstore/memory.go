package linkstore

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"sync"
)

// Memory is the in-memory Store, for tests and short-lived tools.
type Memory struct {
	mu        sync.RWMutex
	closed    bool
	docs      map[[32]byte][]byte
	artifacts map[[32]byte][]uint64 // ascending, deduplicated
}

// NewMemory returns an empty in-memory store.
func NewMemory() *Memory {
	return &Memory{docs: map[[32]byte][]byte{}, artifacts: map[[32]byte][]uint64{}}
}

var errClosed = errors.New("link store is closed")

// Put implements [Store.Put].
func (m *Memory) Put(ctx context.Context, digest [32]byte, index uint64, doc []byte, artifacts [][32]byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return errClosed
	}
	if old, ok := m.docs[digest]; ok && !bytes.Equal(old, doc) {
		return ErrConflict
	} else if !ok {
		m.docs[digest] = bytes.Clone(doc)
	}
	for _, a := range artifacts {
		ix := m.artifacts[a]
		if i, found := slices.BinarySearch(ix, index); !found {
			m.artifacts[a] = slices.Insert(ix, i, index)
		}
	}
	return nil
}

// Get implements [Store.Get].
func (m *Memory) Get(ctx context.Context, digest [32]byte) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.closed {
		return nil, errClosed
	}
	doc, ok := m.docs[digest]
	if !ok {
		return nil, ErrNotFound
	}
	return bytes.Clone(doc), nil
}

// ArtifactIndices implements [Store.ArtifactIndices].
func (m *Memory) ArtifactIndices(ctx context.Context, artifact [32]byte, limit int) ([]uint64, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.closed {
		return nil, errClosed
	}
	ix := m.artifacts[artifact]
	return append([]uint64{}, ix[:min(len(ix), max(limit, 0))]...), nil
}

// Close marks the store closed; later calls fail.
func (m *Memory) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	return nil
}
