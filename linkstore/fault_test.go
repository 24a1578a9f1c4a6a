package linkstore_test

import (
	"context"
	"encoding/hex"
	"errors"
	"net/http"
	"path/filepath"
	"slices"
	"testing"

	"github.com/evident-dev/evident/linkstore"
	bolt "go.etcd.io/bbolt"
)

var errDisk = errors.New("disk on fire")

// failingStore fails every call of its kind: a Put either before it wrote
// (wrote=false) or after (the write is done, its acknowledgement lost).
type failingStore struct {
	linkstore.Store
	failPut, wrote, failReads bool
}

func (s *failingStore) Put(ctx context.Context, d [32]byte, i uint64, doc []byte, arts [][32]byte) error {
	if !s.failPut {
		return s.Store.Put(ctx, d, i, doc, arts)
	}
	if s.wrote {
		if err := s.Store.Put(ctx, d, i, doc, arts); err != nil {
			return err
		}
	}
	return errDisk
}

func (s *failingStore) Get(ctx context.Context, d [32]byte) ([]byte, error) {
	if s.failReads {
		return nil, errDisk
	}
	return s.Store.Get(ctx, d)
}

func (s *failingStore) ArtifactIndices(ctx context.Context, a [32]byte, limit int) ([]uint64, error) {
	if s.failReads {
		return nil, errDisk
	}
	return s.Store.ArtifactIndices(ctx, a, limit)
}

// L7, P2: a store that fails makes the upload fail with a 5xx, and leaves
// either nothing or the whole link with its rows — never a part; the
// uploader's retry then succeeds. Read failures are 5xx too, never an
// empty answer.
func TestFailingStore(t *testing.T) {
	sl := newSignedLink(t, "build", map[string]string{"bin/app": "app"})
	ctx := context.Background()
	for _, wrote := range []bool{false, true} {
		inner := linkstore.NewMemory()
		fs := &failingStore{Store: inner, failPut: true, wrote: wrote}
		ts := server(t, fs, sl.entry)
		if code, msg := post(t, ts.URL, upload(t, 0, sl.raw)); code != http.StatusInternalServerError {
			t.Errorf("wrote=%v: upload to a failing store = %d %s, want 500", wrote, code, msg)
		}
		doc, err := inner.Get(ctx, sl.entry.PayloadSHA256)
		ix, _ := inner.ArtifactIndices(ctx, artifact("app"), 10)
		switch {
		case !wrote && (!errors.Is(err, linkstore.ErrNotFound) || len(ix) != 0):
			t.Errorf("a Put that failed before writing left %q, rows %v", doc, ix)
		case wrote && (err != nil || !slices.Equal(ix, []uint64{0})):
			t.Errorf("a Put that failed after writing left %q (%v), rows %v: want all of it", doc, err, ix)
		}
		fs.failPut = false
		if err := (&linkstore.Client{URL: ts.URL}).Upload(ctx, 0, sl.raw); err != nil {
			t.Errorf("wrote=%v: the retry: %v", wrote, err)
		}
		fs.failReads = true
		c := &linkstore.Client{URL: ts.URL}
		if _, err := c.Link(ctx, sl.entry.PayloadSHA256); err == nil || errors.Is(err, linkstore.ErrNotFound) {
			t.Errorf("GET from a failing store: %v, want a server error", err)
		}
		if ix, err := c.ArtifactIndices(ctx, artifact("app")); err == nil {
			t.Errorf("artifact lookup in a failing store = %v, want a server error", ix)
		}
		if code, _ := post(t, ts.URL, upload(t, 0, sl.raw)); code != http.StatusInternalServerError {
			t.Errorf("upload when reads fail = %d, want 500", code)
		}
	}
}

// A closed bbolt store answers errors, not emptiness.
func TestBoltClosed(t *testing.T) {
	s, err := linkstore.OpenBolt(filepath.Join(t.TempDir(), "links.db"))
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	ctx := context.Background()
	if err := s.Put(ctx, artifact("a"), 0, []byte("a"), nil); err == nil {
		t.Error("Put on a closed store succeeded")
	}
	if _, err := s.Get(ctx, artifact("a")); err == nil || errors.Is(err, linkstore.ErrNotFound) {
		t.Errorf("Get on a closed store = %v, want an error other than ErrNotFound", err)
	}
	if _, err := s.ArtifactIndices(ctx, artifact("a"), 1); err == nil {
		t.Error("ArtifactIndices on a closed store succeeded")
	}
}

// A links.db written by earlier versions (the same buckets and keys) opens
// and answers as it is.
func TestBoltEarlierLayout(t *testing.T) {
	p := filepath.Join(t.TempDir(), "links.db")
	db, err := bolt.Open(p, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	d, a := artifact("link"), artifact("app")
	err = db.Update(func(tx *bolt.Tx) error {
		l, _ := tx.CreateBucket([]byte("links"))
		arts, _ := tx.CreateBucket([]byte("artifacts"))
		l.Put([]byte(hex.EncodeToString(d[:])), []byte(`{"old":true}`))
		return arts.Put(append(a[:], 0, 0, 0, 0, 0, 0, 0, 42), nil)
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	s, err := linkstore.OpenBolt(p)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if doc, err := s.Get(context.Background(), d); err != nil || string(doc) != `{"old":true}` {
		t.Errorf("Get = %q, %v", doc, err)
	}
	if ix, err := s.ArtifactIndices(context.Background(), a, 10); err != nil || !slices.Equal(ix, []uint64{42}) {
		t.Errorf("ArtifactIndices = %v, %v, want [42]", ix, err)
	}
}
