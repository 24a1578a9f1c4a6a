package log

import (
	"bytes"
	"fmt"

	"github.com/transparency-dev/merkle/compact"
	"golang.org/x/mod/sumdb/note"
)

// Check verifies a store offline, end to end: the head's checkpoint is
// signed by v for origin; recomputing the tree from every stored entry gives
// exactly the stored nodes and the checkpoint's root; every entry's leaf hash
// is indexed at its own position; nothing is stored past the head. It reads
// every entry once. It returns the verified head, or an error wrapping
// ErrCorrupt that says what is wrong.
func Check(s Store, origin string, v note.Verifier) (Head, error) {
	h, err := s.Head()
	if err != nil {
		return Head{}, err
	}
	if h.Checkpoint == nil {
		if h.Size != 0 {
			return h, fmt.Errorf("%w: size %d without a checkpoint", ErrCorrupt, h.Size)
		}
		return h, nil
	}
	cp, err := OpenCheckpoint(h.Checkpoint, origin, v)
	if err != nil {
		return h, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	if cp.Size != h.Size {
		return h, fmt.Errorf("%w: checkpoint size %d, head size %d", ErrCorrupt, cp.Size, h.Size)
	}
	rf := &compact.RangeFactory{Hash: hasher.HashChildren}
	cr := rf.NewEmptyRange(0)
	const chunk = 4096
	for start := uint64(0); start < h.Size; start += chunk {
		n := uint64(chunk)
		if h.Size-start < n {
			n = h.Size - start
		}
		entries, err := s.Entries(start, int(n))
		if err != nil {
			return h, fmt.Errorf("%w: %v", ErrCorrupt, err)
		}
		leaves := make([][]byte, len(entries))
		var nodes []Node
		for i, e := range entries {
			leaves[i] = hasher.HashLeaf(e)
			err := cr.Append(leaves[i], func(id compact.NodeID, hash []byte) {
				nodes = append(nodes, Node{ID: id, Hash: hash})
			})
			if err != nil {
				return h, err
			}
		}
		idx, err := s.Lookup(leaves)
		if err != nil {
			return h, err
		}
		for i, x := range idx {
			if x != int64(start)+int64(i) {
				return h, fmt.Errorf("%w: leaf %d is indexed at %d", ErrCorrupt, start+uint64(i), x)
			}
		}
		ids := make([]compact.NodeID, len(nodes))
		for i, n := range nodes {
			ids[i] = n.ID
		}
		stored, err := s.Nodes(ids)
		if err != nil {
			return h, fmt.Errorf("%w: %v", ErrCorrupt, err)
		}
		for i, n := range nodes {
			if !bytes.Equal(stored[i], n.Hash) {
				return h, fmt.Errorf("%w: node %d/%d is %x, recomputed %x", ErrCorrupt, n.ID.Level, n.ID.Index, stored[i], n.Hash)
			}
		}
	}
	root, err := rootHash(cr)
	if err != nil {
		return h, err
	}
	if !bytes.Equal(root, cp.Hash[:]) {
		return h, fmt.Errorf("%w: recomputed root %x, checkpoint root %x", ErrCorrupt, root, cp.Hash)
	}
	if _, err := s.Entries(h.Size, 1); err == nil {
		return h, fmt.Errorf("%w: an entry is stored at index %d, past the head", ErrCorrupt, h.Size)
	}
	return h, nil
}
