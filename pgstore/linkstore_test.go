package pgstore

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/evident-dev/evident/internal/pgtest"
	"github.com/evident-dev/evident/linkstore"
	"github.com/evident-dev/evident/linkstore/storetest"
)

func TestLinkStore(t *testing.T) {
	open := func(t *testing.T) linkstore.Store {
		s, err := OpenLinks(context.Background(), pgtest.NewDatabase(t))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	// The shared suite every link store passes, unchanged.
	storetest.TestStore(t, open)
	linkContract(t, open)
}

// linkContract checks the linkstore.Store contract against stores made by
// open (each subtest gets a fresh one and closes it).
func linkContract(t *testing.T, open func(t *testing.T) linkstore.Store) {
	ctx := context.Background()
	d := func(s string) [32]byte { return sha256.Sum256([]byte(s)) }
	t.Run("WriteOnce", func(t *testing.T) {
		s := open(t)
		defer s.Close()
		if _, err := s.Get(ctx, d("a")); !errors.Is(err, linkstore.ErrNotFound) {
			t.Fatalf("Get of a missing link = %v, want ErrNotFound", err)
		}
		if err := s.Put(ctx, d("a"), 7, []byte("doc a"), [][32]byte{d("m1"), d("p1"), d("m1")}); err != nil {
			t.Fatal(err)
		}
		// The identical document again records the new index.
		if err := s.Put(ctx, d("a"), 3, []byte("doc a"), [][32]byte{d("m1")}); err != nil {
			t.Fatalf("Put of the identical document = %v", err)
		}
		// Other bytes under the digest: ErrConflict, nothing written.
		if err := s.Put(ctx, d("a"), 9, []byte("doc b"), [][32]byte{d("m1"), d("x")}); !errors.Is(err, linkstore.ErrConflict) {
			t.Fatalf("Put of another document = %v, want ErrConflict", err)
		}
		if doc, err := s.Get(ctx, d("a")); err != nil || string(doc) != "doc a" {
			t.Fatalf("Get = %q, %v, want doc a", doc, err)
		}
		for _, c := range []struct {
			artifact string
			limit    int
			want     string
		}{
			{"m1", 10, "[3 7]"},
			{"m1", 1, "[3]"},
			{"p1", 10, "[7]"},
			{"x", 10, "[]"},
			{"m1", 0, "[]"},
		} {
			got, err := s.ArtifactIndices(ctx, d(c.artifact), c.limit)
			if err != nil || fmt.Sprint(got) != c.want {
				t.Errorf("ArtifactIndices(%s, %d) = %v, %v, want %s", c.artifact, c.limit, got, err, c.want)
			}
		}
	})
	t.Run("Concurrent", func(t *testing.T) {
		s := open(t)
		defer s.Close()
		var wg sync.WaitGroup
		errc := make(chan error, 16)
		for i := 0; i < 16; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errc <- s.Put(ctx, d("same"), uint64(i), []byte("same doc"), [][32]byte{d("art")})
			}()
		}
		wg.Wait()
		close(errc)
		for err := range errc {
			if err != nil {
				t.Fatalf("concurrent Put of one document = %v", err)
			}
		}
		got, err := s.ArtifactIndices(ctx, d("art"), 100)
		if err != nil || len(got) != 16 || got[0] != 0 || got[15] != 15 {
			t.Fatalf("ArtifactIndices = %v, %v, want 0 to 15", got, err)
		}
	})
	t.Run("Closed", func(t *testing.T) {
		s := open(t)
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if err := s.Put(ctx, d("a"), 1, []byte("a"), nil); err == nil {
			t.Error("Put after Close succeeded")
		}
		if _, err := s.Get(ctx, d("a")); err == nil || errors.Is(err, linkstore.ErrNotFound) {
			t.Errorf("Get after Close = %v, want a failure other than ErrNotFound", err)
		}
	})
}
