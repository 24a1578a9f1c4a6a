package log

import (
	"bytes"
	"sort"
	"sync"
)

// WitnessedStore is an optional extension of [Store] that keeps the
// checkpoints witnesses cosigned, each as one signed note (the log's
// signature and the cosignatures), by tree size. It lets a server prove,
// long after, in which witnessed checkpoint an entry first appeared. A Store
// that does not implement it leaves the server to keep them in memory.
//
// When PutWitnessed returns nil the note is durable and replaces any note
// stored for that size (a later one carries more cosignatures). Notes are
// never removed.
type WitnessedStore interface {
	// PutWitnessed stores the cosigned note of the checkpoint of size.
	PutWitnessed(size uint64, signed []byte) error
	// Witnessed calls fn with each stored note whose size is at least min,
	// in increasing size, until fn returns false. The note must not be
	// retained after fn returns.
	Witnessed(min uint64, fn func(size uint64, signed []byte) bool) error
	// LatestWitnessed returns the stored note of the largest size, or
	// ErrNotFound.
	LatestWitnessed() (uint64, []byte, error)
}

// WitnessedMemory is a [WitnessedStore] in memory, for stores without one of
// their own and for tests. It is safe for concurrent use.
// Each call costs a scan of every note it holds.
type WitnessedMemory struct {
	mu sync.RWMutex
	w  map[uint64][]byte
}

// PutWitnessed implements [WitnessedStore].
func (w *WitnessedMemory) PutWitnessed(size uint64, signed []byte) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.w == nil {
		w.w = map[uint64][]byte{}
	}
	w.w[size] = bytes.Clone(signed)
	return nil
}

// Witnessed implements [WitnessedStore].
func (w *WitnessedMemory) Witnessed(min uint64, fn func(uint64, []byte) bool) error {
	w.mu.RLock()
	var sizes []uint64
	for s := range w.w {
		if s >= min {
			sizes = append(sizes, s)
		}
	}
	w.mu.RUnlock()
	sort.Slice(sizes, func(i, j int) bool { return sizes[i] < sizes[j] })
	for _, s := range sizes {
		w.mu.RLock()
		v := w.w[s]
		w.mu.RUnlock()
		if !fn(s, v) {
			return nil
		}
	}
	return nil
}

// LatestWitnessed implements [WitnessedStore].
func (w *WitnessedMemory) LatestWitnessed() (uint64, []byte, error) {
	w.mu.RLock()
	defer w.mu.RUnlock()
	var best uint64
	var v []byte
	for s, n := range w.w {
		if v == nil || s > best {
			best, v = s, n
		}
	}
	if v == nil {
		return 0, nil, ErrNotFound
	}
	return best, v, nil
}
