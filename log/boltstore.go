package log

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/transparency-dev/merkle/compact"
	bolt "go.etcd.io/bbolt"
)

// BoltStore is the default [Store]: one bbolt file. Each Commit is one bbolt
// read-write transaction, so a batch is written entirely or not at all and is
// durable (two fdatasyncs) when Commit returns.
//
// Layout: bucket "entries" maps an 8-byte big-endian index to the entry;
// bucket "nodes" maps a 1-byte level and an 8-byte big-endian index to a
// 32-byte hash; bucket "leaves" maps a leaf hash to its 8-byte index; bucket
// "meta" holds the head. Entries and each level's nodes are only ever
// appended after the largest key of their range, so pages are filled
// completely.
type BoltStore struct {
	db *bolt.DB
}

var (
	bucketEntries = []byte("entries")
	bucketNodes   = []byte("nodes")
	bucketLeaves  = []byte("leaves")
	bucketMeta    = []byte("meta")
	keyHead       = []byte("head")
)

// OpenBoltStore opens (creating if needed) the bbolt file at path. It fails
// after a second if another process holds the file.
func OpenBoltStore(path string) (*BoltStore, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{
		Timeout:         time.Second,
		NoFreelistSync:  true, // the freelist is rebuilt on open; commits write less
		FreelistType:    bolt.FreelistMapType,
		InitialMmapSize: 1 << 30, // avoid remapping (which blocks readers) while small
	})
	if err != nil {
		return nil, fmt.Errorf("couldn't open %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketEntries, bucketNodes, bucketLeaves, bucketMeta} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("couldn't initialise %s: %w", path, err)
	}
	return &BoltStore{db: db}, nil
}

// Head implements [Store].
func (s *BoltStore) Head() (Head, error) {
	var h Head
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		h, err = readHead(tx)
		return err
	})
	return h, err
}

func readHead(tx *bolt.Tx) (Head, error) {
	v := tx.Bucket(bucketMeta).Get(keyHead)
	if v == nil {
		return Head{}, nil
	}
	if len(v) < 16 {
		return Head{}, fmt.Errorf("corrupt head record of %d bytes", len(v))
	}
	return Head{
		Size:       binary.BigEndian.Uint64(v),
		Time:       int64(binary.BigEndian.Uint64(v[8:])),
		Checkpoint: clone(v[16:]),
	}, nil
}

// Commit implements [Store].
func (s *BoltStore) Commit(b *Batch) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		head, err := readHead(tx)
		if err != nil {
			return err
		}
		if b.Start != head.Size {
			return fmt.Errorf("%w: batch starts at %d, size is %d", ErrConflict, b.Start, head.Size)
		}
		entries := tx.Bucket(bucketEntries)
		entries.FillPercent = 1
		leaves := tx.Bucket(bucketLeaves)
		var key [8]byte
		for i, e := range b.Entries {
			binary.BigEndian.PutUint64(key[:], b.Start+uint64(i))
			if err := entries.Put(key[:], e); err != nil {
				return fmt.Errorf("couldn't write entry %d: %w", b.Start+uint64(i), err)
			}
			if err := leaves.Put(b.LeafHashes[i], clone(key[:])); err != nil {
				return fmt.Errorf("couldn't index entry %d: %w", b.Start+uint64(i), err)
			}
		}
		nodes := tx.Bucket(bucketNodes)
		nodes.FillPercent = 1
		keys := make([]byte, 9*len(b.Nodes)) // bbolt keeps keys until commit
		for i, n := range b.Nodes {
			k := (*[9]byte)(keys[9*i:])
			putNodeKey(k, n.ID)
			if err := nodes.Put(k[:], n.Hash); err != nil {
				return fmt.Errorf("couldn't write node %d/%d: %w", n.ID.Level, n.ID.Index, err)
			}
		}
		rec := make([]byte, 16+len(b.Head.Checkpoint))
		binary.BigEndian.PutUint64(rec, b.Head.Size)
		binary.BigEndian.PutUint64(rec[8:], uint64(b.Head.Time))
		copy(rec[16:], b.Head.Checkpoint)
		return tx.Bucket(bucketMeta).Put(keyHead, rec)
	})
}

// putNodeKey writes a node's key in bucket "nodes": level, then index, big-endian.
func putNodeKey(k *[9]byte, id compact.NodeID) {
	k[0] = byte(id.Level)
	binary.BigEndian.PutUint64(k[1:], id.Index)
}

// Entries implements [Store].
func (s *BoltStore) Entries(start uint64, n int) ([][]byte, error) {
	out := make([][]byte, 0, n)
	err := s.db.View(func(tx *bolt.Tx) error {
		var key [8]byte
		binary.BigEndian.PutUint64(key[:], start)
		c := tx.Bucket(bucketEntries).Cursor()
		want := start
		for k, v := c.Seek(key[:]); k != nil && len(out) < n; k, v = c.Next() {
			if binary.BigEndian.Uint64(k) != want {
				break
			}
			out = append(out, clone(v))
			want++
		}
		if len(out) != n {
			return fmt.Errorf("entries [%d, +%d): %w", start, n, ErrNotFound)
		}
		return nil
	})
	return out, err
}

// Nodes implements [Store]. The hashes share one allocation.
func (s *BoltStore) Nodes(ids []compact.NodeID) ([][]byte, error) {
	out := make([][]byte, len(ids))
	buf := make([]byte, 0, HashSize*len(ids))
	err := s.db.View(func(tx *bolt.Tx) error {
		nodes := tx.Bucket(bucketNodes)
		var k [9]byte
		for i, id := range ids {
			putNodeKey(&k, id)
			v := nodes.Get(k[:])
			if v == nil {
				return fmt.Errorf("node %d/%d: %w", id.Level, id.Index, ErrNotFound)
			}
			n := len(buf)
			buf = append(buf, v...)
			out[i] = buf[n:len(buf):len(buf)]
		}
		return nil
	})
	return out, err
}

// Lookup implements [Store].
func (s *BoltStore) Lookup(leafHashes [][]byte) ([]int64, error) {
	out := make([]int64, len(leafHashes))
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketLeaves)
		for i, h := range leafHashes {
			out[i] = -1
			if v := b.Get(h); len(v) == 8 {
				out[i] = int64(binary.BigEndian.Uint64(v))
			}
		}
		return nil
	})
	return out, err
}

// Close implements [Store].
func (s *BoltStore) Close() error {
	if s.db == nil {
		return errors.New("store is closed")
	}
	return s.db.Close()
}
