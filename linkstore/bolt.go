package linkstore

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"io"

	"github.com/evident-dev/evident/internal/boltfile"
	bolt "go.etcd.io/bbolt"
)

// Bolt is the bbolt Store (links.db). Its layout is that of every earlier
// links.db, which it opens as it is:
//
//	links      hex(digest) (64 ASCII bytes) → document
//	artifacts  artifact digest (32 bytes) ‖ log index (8 bytes, big-endian) → empty
//
// so that one artifact's indices are one ascending cursor range.
type Bolt struct{ db *bolt.DB }

var (
	bucketLinks     = []byte("links")
	bucketArtifacts = []byte("artifacts")
)

// OpenBolt opens (creating on first use) the store at path.
func OpenBolt(path string) (*Bolt, error) {
	db, err := boltfile.Open(path, 0, bucketLinks, bucketArtifacts)
	if err != nil {
		return nil, err
	}
	return &Bolt{db: db}, nil
}

func linkKey(digest [32]byte) []byte { return hex.AppendEncode(nil, digest[:]) }

func artifactKey(artifact [32]byte, index uint64) []byte {
	return binary.BigEndian.AppendUint64(append(make([]byte, 0, 40), artifact[:]...), index)
}

// Put implements [Store.Put] in one bbolt transaction.
func (s *Bolt) Put(ctx context.Context, digest [32]byte, index uint64, doc []byte, artifacts [][32]byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		links := tx.Bucket(bucketLinks)
		k := linkKey(digest)
		if old := links.Get(k); old != nil {
			if !bytes.Equal(old, doc) {
				return ErrConflict
			}
		} else if err := links.Put(k, doc); err != nil {
			return err
		}
		arts := tx.Bucket(bucketArtifacts)
		for _, a := range artifacts {
			if err := arts.Put(artifactKey(a, index), nil); err != nil {
				return err
			}
		}
		return nil
	})
}

// Get implements [Store.Get].
func (s *Bolt) Get(ctx context.Context, digest [32]byte) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var b []byte
	err := s.db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bucketLinks).Get(linkKey(digest)); v != nil {
			b = bytes.Clone(v)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if b == nil {
		return nil, ErrNotFound
	}
	return b, nil
}

// ArtifactIndices implements [Store.ArtifactIndices].
func (s *Bolt) ArtifactIndices(ctx context.Context, artifact [32]byte, limit int) ([]uint64, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	out := []uint64{}
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketArtifacts).Cursor()
		for k, _ := c.Seek(artifact[:]); k != nil && len(out) < limit && bytes.HasPrefix(k, artifact[:]); k, _ = c.Next() {
			if len(k) == len(artifact)+8 {
				out = append(out, binary.BigEndian.Uint64(k[len(artifact):]))
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Backup writes a consistent copy of the database file to w while the
// store is in use.
func (s *Bolt) Backup(w io.Writer) (int64, error) {
	return boltfile.Backup(s.db, w)
}

// Close closes the database.
func (s *Bolt) Close() error { return s.db.Close() }
