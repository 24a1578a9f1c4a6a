// Package storetest is the one test suite every linkstore.Store
// implementation must pass.
package storetest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/evident-dev/evident/linkstore"
)

// TestStore runs the suite against stores made by open. Each subtest gets a
// fresh, empty store from open and closes it itself.
func TestStore(t *testing.T, open func(t *testing.T) linkstore.Store) {
	t.Run("Empty", func(t *testing.T) { testEmpty(t, open(t)) })
	t.Run("PutGet", func(t *testing.T) { testPutGet(t, open(t)) })
	t.Run("WriteOnce", func(t *testing.T) { testWriteOnce(t, open(t)) })
	t.Run("Idempotent", func(t *testing.T) { testIdempotent(t, open(t)) })
	t.Run("ArtifactIndices", func(t *testing.T) { testArtifactIndices(t, open(t)) })
	t.Run("Concurrent", func(t *testing.T) { testConcurrent(t, open(t)) })
	t.Run("Canceled", func(t *testing.T) { testCanceled(t, open(t)) })
}

func digest(s string) [32]byte { return sha256.Sum256([]byte(s)) }

func testEmpty(t *testing.T, s linkstore.Store) {
	defer s.Close()
	ctx := context.Background()
	if _, err := s.Get(ctx, digest("none")); !errors.Is(err, linkstore.ErrNotFound) {
		t.Errorf("Get on an empty store: error = %v, want ErrNotFound", err)
	}
	ix, err := s.ArtifactIndices(ctx, digest("none"), 10)
	if err != nil || len(ix) != 0 {
		t.Errorf("ArtifactIndices on an empty store = %v, %v, want none", ix, err)
	}
}

func testPutGet(t *testing.T, s linkstore.Store) {
	defer s.Close()
	ctx := context.Background()
	d, doc := digest("a"), []byte(`{"signed":{"_type":"link"}}`)
	if err := s.Put(ctx, d, 7, doc, [][32]byte{digest("m"), digest("p")}); err != nil {
		t.Fatalf("Put: %v", err)
	}
	doc[0] = 'X' // the store keeps its own copy
	got, err := s.Get(ctx, d)
	if err != nil || string(got) != `{"signed":{"_type":"link"}}` {
		t.Fatalf("Get = %q, %v", got, err)
	}
	got[0] = 'Y' // and hands out copies
	if again, _ := s.Get(ctx, d); again[0] != '{' {
		t.Errorf("a caller's change to Get's result reached the store")
	}
	for _, a := range []string{"m", "p"} {
		if ix, err := s.ArtifactIndices(ctx, digest(a), 10); err != nil || !slices.Equal(ix, []uint64{7}) {
			t.Errorf("ArtifactIndices(%s) = %v, %v, want [7]", a, ix, err)
		}
	}
	if _, err := s.Get(ctx, digest("b")); !errors.Is(err, linkstore.ErrNotFound) {
		t.Errorf("Get of another digest: error = %v, want ErrNotFound", err)
	}
}

// P2: a stored document is never replaced, and a refused Put adds no rows.
func testWriteOnce(t *testing.T, s linkstore.Store) {
	defer s.Close()
	ctx := context.Background()
	d := digest("a")
	if err := s.Put(ctx, d, 1, []byte("original"), [][32]byte{digest("real")}); err != nil {
		t.Fatalf("Put: %v", err)
	}
	err := s.Put(ctx, d, 2, []byte("tampered"), [][32]byte{digest("real"), digest("evil")})
	if !errors.Is(err, linkstore.ErrConflict) {
		t.Fatalf("Put of other bytes under a stored digest: error = %v, want ErrConflict", err)
	}
	if got, err := s.Get(ctx, d); err != nil || string(got) != "original" {
		t.Errorf("after a refused Put, Get = %q, %v, want the original", got, err)
	}
	if ix, _ := s.ArtifactIndices(ctx, digest("evil"), 10); len(ix) != 0 {
		t.Errorf("a refused Put left index rows: %v", ix)
	}
	if ix, _ := s.ArtifactIndices(ctx, digest("real"), 10); !slices.Equal(ix, []uint64{1}) {
		t.Errorf("a refused Put changed the rows of a stored artifact: %v, want [1]", ix)
	}
}

// The same bytes again (the same payload logged twice) add their rows.
func testIdempotent(t *testing.T, s linkstore.Store) {
	defer s.Close()
	ctx := context.Background()
	d, doc := digest("a"), []byte("doc")
	for _, i := range []uint64{5, 3, 5} {
		if err := s.Put(ctx, d, i, doc, [][32]byte{digest("x")}); err != nil {
			t.Fatalf("Put(index %d): %v", i, err)
		}
	}
	if ix, err := s.ArtifactIndices(ctx, digest("x"), 10); err != nil || !slices.Equal(ix, []uint64{3, 5}) {
		t.Errorf("ArtifactIndices = %v, %v, want [3 5] (ascending, deduplicated)", ix, err)
	}
}

func testArtifactIndices(t *testing.T, s linkstore.Store) {
	defer s.Close()
	ctx := context.Background()
	a := digest("shared")
	// Digests that share a long prefix with a must not leak into its range.
	near := a
	near[31] ^= 1
	for i := uint64(0); i < 20; i++ {
		idx := 1<<40 + 19 - i // over 32 bits, inserted descending
		if err := s.Put(ctx, digest(fmt.Sprint(i)), idx, []byte(fmt.Sprint(i)), [][32]byte{a, near}); err != nil {
			t.Fatal(err)
		}
	}
	all, err := s.ArtifactIndices(ctx, a, 100)
	if err != nil || len(all) != 20 || !slices.IsSorted(all) || all[0] != 1<<40 {
		t.Fatalf("ArtifactIndices = %v, %v, want 20 ascending from 1<<40", all, err)
	}
	if few, _ := s.ArtifactIndices(ctx, a, 3); !slices.Equal(few, all[:3]) {
		t.Errorf("limit 3 = %v, want %v", few, all[:3])
	}
	if none, _ := s.ArtifactIndices(ctx, a, 0); len(none) != 0 {
		t.Errorf("limit 0 = %v, want none", none)
	}
}

func testConcurrent(t *testing.T, s linkstore.Store) {
	defer s.Close()
	ctx := context.Background()
	const n = 16
	var wg sync.WaitGroup
	errs := make(chan error, 2*n)
	for i := range n {
		wg.Add(2)
		go func() {
			defer wg.Done()
			// Everyone races to store the one shared document, and one
			// document of its own.
			errs <- s.Put(ctx, digest("shared"), uint64(i), []byte("shared"), [][32]byte{digest("art")})
		}()
		go func() {
			defer wg.Done()
			errs <- s.Put(ctx, digest(fmt.Sprint(i)), uint64(i), []byte(fmt.Sprint(i)), nil)
			if _, err := s.Get(ctx, digest("shared")); err != nil && !errors.Is(err, linkstore.ErrNotFound) {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if ix, _ := s.ArtifactIndices(ctx, digest("art"), 100); len(ix) != n {
		t.Errorf("ArtifactIndices after %d concurrent Puts: %d rows", n, len(ix))
	}
	if got, err := s.Get(ctx, digest("shared")); err != nil || !bytes.Equal(got, []byte("shared")) {
		t.Errorf("Get = %q, %v", got, err)
	}
}

func testCanceled(t *testing.T, s linkstore.Store) {
	defer s.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Put(ctx, digest("a"), 1, []byte("a"), nil); !errors.Is(err, context.Canceled) {
		t.Errorf("Put with a canceled context: error = %v, want context.Canceled", err)
	}
	if _, err := s.Get(context.Background(), digest("a")); !errors.Is(err, linkstore.ErrNotFound) {
		t.Errorf("a canceled Put stored its document: %v", err)
	}
}
