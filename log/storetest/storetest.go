// Package storetest is the one test suite every log.Store implementation
// must pass, in the manner of golang.org/x/mod/sumdb/storage's TestStorage.
package storetest

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/evident-dev/evident/log"
	"github.com/transparency-dev/merkle/compact"
)

// Run runs the suite against stores made by open. Each subtest gets a fresh,
// empty store from open and closes it itself.
func Run(t *testing.T, open func(t *testing.T) log.Store) {
	t.Run("Empty", func(t *testing.T) { testEmpty(t, open(t)) })
	t.Run("CommitAndRead", func(t *testing.T) { testCommitAndRead(t, open(t)) })
	t.Run("Conflict", func(t *testing.T) { testConflict(t, open(t)) })
	t.Run("ConcurrentReaders", func(t *testing.T) { testConcurrentReaders(t, open(t)) })
	t.Run("SharedPrefix", func(t *testing.T) { testSharedPrefix(t, open(t)) })
	t.Run("Closed", func(t *testing.T) { testClosed(t, open(t)) })
}

func leaf(i uint64) ([]byte, []byte) {
	e := []byte(fmt.Sprintf(`{"n":%d}`, i))
	h := sha256.Sum256(append([]byte{0}, e...))
	return e, h[:]
}

// batch builds the batch appending n entries at start, with fake nodes: one
// level-0 node per entry and one level-1 node per completed pair.
func batch(start uint64, n int) *log.Batch {
	b := &log.Batch{Start: start, Head: log.Head{Size: start + uint64(n), Checkpoint: []byte(fmt.Sprintf("cp %d\n", start+uint64(n))), Time: int64(start) + 1}}
	for i := start; i < start+uint64(n); i++ {
		e, h := leaf(i)
		b.Entries = append(b.Entries, e)
		b.LeafHashes = append(b.LeafHashes, h)
		b.Nodes = append(b.Nodes, log.Node{ID: compact.NewNodeID(0, i), Hash: h})
		if i%2 == 1 {
			p := sha256.Sum256(h)
			b.Nodes = append(b.Nodes, log.Node{ID: compact.NewNodeID(1, i/2), Hash: p[:]})
		}
	}
	return b
}

func testEmpty(t *testing.T, s log.Store) {
	defer s.Close()
	h, err := s.Head()
	if err != nil || h.Size != 0 || h.Checkpoint != nil {
		t.Fatalf("Head() = %+v, %v, want empty head, nil", h, err)
	}
	if _, err := s.Entries(0, 1); !errors.Is(err, log.ErrNotFound) {
		t.Errorf("Entries(0, 1) error = %v, want ErrNotFound", err)
	}
	if _, err := s.Nodes([]compact.NodeID{compact.NewNodeID(0, 0)}); !errors.Is(err, log.ErrNotFound) {
		t.Errorf("Nodes(0/0) error = %v, want ErrNotFound", err)
	}
	_, h0 := leaf(0)
	if idx, err := s.Lookup([][]byte{h0}); err != nil || len(idx) != 1 || idx[0] != -1 {
		t.Errorf("Lookup = %v, %v, want [-1], nil", idx, err)
	}
	// An empty batch (the empty tree's checkpoint) commits a head only.
	if err := s.Commit(batch(0, 0)); err != nil {
		t.Fatalf("Commit(empty) = %v", err)
	}
	if h, _ := s.Head(); h.Size != 0 || string(h.Checkpoint) != "cp 0\n" {
		t.Errorf("Head() after empty commit = %+v", h)
	}
}

func testCommitAndRead(t *testing.T, s log.Store) {
	defer s.Close()
	if err := s.Commit(batch(0, 3)); err != nil {
		t.Fatal(err)
	}
	if err := s.Commit(batch(3, 300)); err != nil {
		t.Fatal(err)
	}
	h, err := s.Head()
	if err != nil || h.Size != 303 || string(h.Checkpoint) != "cp 303\n" || h.Time != 4 {
		t.Fatalf("Head() = %+v, %v, want size 303", h, err)
	}
	es, err := s.Entries(1, 300)
	if err != nil {
		t.Fatalf("Entries(1, 300) = %v", err)
	}
	for i, e := range es {
		if want, _ := leaf(uint64(i) + 1); !bytes.Equal(e, want) {
			t.Fatalf("Entries(1, 300)[%d] = %q, want %q", i, e, want)
		}
	}
	if _, err := s.Entries(300, 4); !errors.Is(err, log.ErrNotFound) {
		t.Errorf("Entries(300, 4) error = %v, want ErrNotFound", err)
	}
	ids := []compact.NodeID{compact.NewNodeID(1, 150), compact.NewNodeID(0, 0), compact.NewNodeID(0, 302)}
	hs, err := s.Nodes(ids)
	if err != nil {
		t.Fatalf("Nodes = %v", err)
	}
	_, h0 := leaf(0)
	_, h302 := leaf(302)
	_, h301 := leaf(301)
	p := sha256.Sum256(h301)
	if !bytes.Equal(hs[0], p[:]) || !bytes.Equal(hs[1], h0) || !bytes.Equal(hs[2], h302) {
		t.Errorf("Nodes returned the wrong hashes")
	}
	if _, err := s.Nodes([]compact.NodeID{compact.NewNodeID(1, 151)}); !errors.Is(err, log.ErrNotFound) {
		t.Errorf("Nodes(1/151) error = %v, want ErrNotFound", err)
	}
	if _, err := s.Nodes([]compact.NodeID{compact.NewNodeID(9, 0)}); !errors.Is(err, log.ErrNotFound) {
		t.Errorf("Nodes(9/0) error = %v, want ErrNotFound", err)
	}
	idx, err := s.Lookup([][]byte{h302, bytes.Repeat([]byte{1}, 32), h0})
	if err != nil || len(idx) != 3 || idx[0] != 302 || idx[1] != -1 || idx[2] != 0 {
		t.Errorf("Lookup = %v, %v, want [302 -1 0]", idx, err)
	}
}

func testConflict(t *testing.T, s log.Store) {
	defer s.Close()
	if err := s.Commit(batch(0, 2)); err != nil {
		t.Fatal(err)
	}
	for _, start := range []uint64{0, 1, 3} {
		if err := s.Commit(batch(start, 2)); !errors.Is(err, log.ErrConflict) {
			t.Errorf("Commit(start %d) at size 2 = %v, want ErrConflict", start, err)
		}
	}
	h, _ := s.Head()
	if h.Size != 2 {
		t.Errorf("size after conflicts = %d, want 2", h.Size)
	}
	if _, err := s.Entries(2, 1); !errors.Is(err, log.ErrNotFound) {
		t.Errorf("a conflicting batch left entry 2 behind: %v", err)
	}
}

func testConcurrentReaders(t *testing.T, s log.Store) {
	defer s.Close()
	if err := s.Commit(batch(0, 1)); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	errc := make(chan error, 4)
	for r := 0; r < 4; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				h, err := s.Head()
				if err != nil {
					errc <- err
					return
				}
				// Everything the head covers must be readable.
				if _, err := s.Entries(0, int(h.Size)); err != nil {
					errc <- fmt.Errorf("head size %d but: %w", h.Size, err)
					return
				}
			}
		}()
	}
	for start := uint64(1); start < 200; start += 7 {
		if err := s.Commit(batch(start, 7)); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
	select {
	case err := <-errc:
		t.Fatal(err)
	default:
	}
}

func testClosed(t *testing.T, s log.Store) {
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Head(); err == nil {
		t.Error("Head() after Close succeeded")
	}
	if err := s.Commit(batch(0, 1)); err == nil {
		t.Error("Commit after Close succeeded")
	}
}

// testSharedPrefix: leaf hashes that agree in their first bytes are still
// told apart, and each is found at its own index.
func testSharedPrefix(t *testing.T, s log.Store) {
	defer s.Close()
	mk := func(last byte) []byte { h := bytes.Repeat([]byte{7}, 32); h[31] = last; return h }
	b := batch(0, 3)
	b.LeafHashes = [][]byte{mk(1), mk(2), mk(3)}
	for i := range b.LeafHashes {
		b.Nodes[i+i/2] = log.Node{ID: compact.NewNodeID(0, uint64(i)), Hash: b.LeafHashes[i]}
	}
	if err := s.Commit(b); err != nil {
		t.Fatal(err)
	}
	idx, err := s.Lookup([][]byte{mk(3), mk(4), mk(1), mk(2), {1, 2}})
	if err != nil {
		t.Fatal(err)
	}
	if want := []int64{2, -1, 0, 1, -1}; fmt.Sprint(idx) != fmt.Sprint(want) {
		t.Errorf("Lookup = %v, want %v", idx, want)
	}
}

// RunWitnessed runs the suite of the optional [log.WitnessedStore]
// extension against an empty store: the first note at or above a size, in
// increasing size, replacement, the latest.
func RunWitnessed(t *testing.T, s log.WitnessedStore) {
	if _, _, err := s.LatestWitnessed(); !errors.Is(err, log.ErrNotFound) {
		t.Errorf("LatestWitnessed(empty) = %v, want ErrNotFound", err)
	}
	if err := s.Witnessed(0, func(uint64, []byte) bool { t.Error("Witnessed(empty) called fn"); return true }); err != nil {
		t.Errorf("Witnessed(empty) = %v", err)
	}
	for _, size := range []uint64{10, 3, 7} {
		if err := s.PutWitnessed(size, []byte{byte(size)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.PutWitnessed(7, []byte{7, 7}); err != nil {
		t.Fatal(err)
	}
	var got []uint64
	if err := s.Witnessed(4, func(size uint64, n []byte) bool { got = append(got, size); return true }); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0] != 7 || got[1] != 10 {
		t.Errorf("Witnessed(4) sizes = %v, want [7 10]", got)
	}
	var first []byte
	s.Witnessed(4, func(size uint64, n []byte) bool { first = bytes.Clone(n); return false })
	if string(first) != "\x07\x07" {
		t.Errorf("first note from 4 = %x, want the replacement 0707", first)
	}
	if size, n, err := s.LatestWitnessed(); err != nil || size != 10 || !bytes.Equal(n, []byte{10}) {
		t.Errorf("LatestWitnessed = %d, %x, %v; want 10, 0a", size, n, err)
	}
}
