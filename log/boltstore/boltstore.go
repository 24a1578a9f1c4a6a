// Package boltstore is the log's default storage: a [log.Store] (and
// [log.WitnessedStore]) in one bbolt file, crash-safe by bbolt's
// transactions. It lives apart from package log so that the log's clients
// and its other stores do not import bbolt.
package boltstore

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/evident-dev/evident/internal/boltfile"
	"github.com/evident-dev/evident/log"
	"github.com/transparency-dev/merkle/compact"
	bolt "go.etcd.io/bbolt"
)

// Store is the default [log.Store]: one bbolt file. Each Commit is one bbolt
// read-write transaction, so a batch is written entirely or not at all and is
// durable (two fdatasyncs) when Commit returns.
//
// Layout: bucket "entries" maps an 8-byte big-endian index to the entry;
// bucket "nodes" maps a 1-byte level and an 8-byte big-endian index to a
// 32-byte hash; bucket "meta" holds the head. Entries and each level's nodes
// are only ever appended after the largest key of their range, so a commit
// dirties few pages and fills them completely.
//
// The leaf-hash index behind Lookup is derived, not stored: the level-0
// nodes are the leaf hashes in index order, so the store keeps an in-memory
// map from each leaf hash's first 8 bytes to its index, built by one scan at
// open (about 24 bytes of memory per entry) and extended after each commit.
// Every hit is confirmed against the stored 32-byte hash. Writing a random-keyed
// index instead would dirty one B+tree page per entry and slow commits as
// the log grows.
type Store struct {
	db *bolt.DB

	// mu guards the index. It is never held while calling into bbolt by a
	// goroutine that could wait on bbolt (the writer), so readers may take it
	// inside a read transaction.
	mu      sync.RWMutex
	prefix  map[uint64]uint64   // leaf hash prefix → first index with it
	extra   map[[32]byte]uint64 // leaf hashes whose prefix another leaf holds
	indexed uint64              // entries [0, indexed) are in the index
}

var (
	bucketEntries = []byte("entries")
	bucketNodes   = []byte("nodes")
	bucketMeta    = []byte("meta")
	keyHead       = []byte("head")
)

// Options tune a [Store]; the zero value means the defaults.
type Options struct {
	// InitialMmapSize is the size of the file's first memory map (default
	// 1 GiB). bbolt grows the map, doubling it, when the file outgrows it,
	// and growing it waits for every open read transaction: the larger the
	// first map, the later that happens. Tests lower it to grow the map
	// early.
	InitialMmapSize int
}

// DefaultInitialMmapSize is [Options.InitialMmapSize]'s default.
const DefaultInitialMmapSize = 1 << 30

// Open opens (creating if needed) the bbolt file at path, with the
// default options. It fails after a second if another process holds the
// file, and with an error wrapping ErrDamaged if the file is shorter
// than its header says (a truncated copy), before mapping it.
func Open(path string) (*Store, error) {
	return OpenOptions(path, Options{})
}

// ErrDamaged: the store's file is corrupt or truncated.
var ErrDamaged = boltfile.ErrDamaged

// OpenOptions is [Open] with options.
func OpenOptions(path string, o Options) (*Store, error) {
	if o.InitialMmapSize <= 0 {
		o.InitialMmapSize = DefaultInitialMmapSize
	}
	if err := boltfile.Check(path); err != nil {
		return nil, err
	}
	db, err := boltfile.Open(path, o.InitialMmapSize, bucketEntries, bucketNodes, bucketMeta)
	if err != nil {
		return nil, err
	}
	s := &Store{db: db, prefix: make(map[uint64]uint64), extra: make(map[[32]byte]uint64)}
	if err := s.catchUp(); err != nil {
		db.Close()
		return nil, fmt.Errorf("couldn't index %s: %w", path, err)
	}
	return s, nil
}

// catchUp adds the leaves between the index's end and the head to the index.
func (s *Store) catchUp() error {
	s.mu.RLock()
	from := s.indexed
	s.mu.RUnlock()
	var leaves [][]byte
	var size uint64
	err := s.db.View(func(tx *bolt.Tx) error {
		h, err := readHead(tx)
		if err != nil {
			return err
		}
		size = h.Size
		if size <= from {
			return nil
		}
		leaves = make([][]byte, 0, size-from)
		c := tx.Bucket(bucketNodes).Cursor()
		var k [9]byte
		putNodeKey(&k, compact.NewNodeID(0, from))
		buf := make([]byte, 0, log.HashSize*(size-from))
		for key, v := c.Seek(k[:]); key != nil && key[0] == 0 && uint64(len(leaves)) < size-from; key, v = c.Next() {
			if binary.BigEndian.Uint64(key[1:]) != from+uint64(len(leaves)) || len(v) != log.HashSize {
				return fmt.Errorf("leaf hash %d is missing or malformed", from+uint64(len(leaves)))
			}
			n := len(buf)
			buf = append(buf, v...)
			leaves = append(leaves, buf[n:])
		}
		if uint64(len(leaves)) != size-from {
			return fmt.Errorf("leaf hashes %d to %d are missing", from+uint64(len(leaves)), size)
		}
		return nil
	})
	if err != nil || len(leaves) == 0 {
		return err
	}
	s.index(from, leaves)
	return nil
}

// index records leaves[i] at from+i, unless the index already covers it.
func (s *Store) index(from uint64, leaves [][]byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, h := range leaves {
		idx := from + uint64(i)
		if idx < s.indexed {
			continue
		}
		p := binary.BigEndian.Uint64(h)
		if _, taken := s.prefix[p]; !taken {
			s.prefix[p] = idx
		} else if _, ok := s.extra[[32]byte(h)]; !ok {
			s.extra[[32]byte(h)] = idx
		}
		s.indexed = idx + 1
	}
}

// Head implements [Store].
func (s *Store) Head() (log.Head, error) {
	var h log.Head
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		h, err = readHead(tx)
		return err
	})
	return h, err
}

func readHead(tx *bolt.Tx) (log.Head, error) {
	v := tx.Bucket(bucketMeta).Get(keyHead)
	if v == nil {
		return log.Head{}, nil
	}
	if len(v) < 16 {
		return log.Head{}, fmt.Errorf("corrupt head record of %d bytes", len(v))
	}
	return log.Head{
		Size:       binary.BigEndian.Uint64(v),
		Time:       int64(binary.BigEndian.Uint64(v[8:])),
		Checkpoint: clone(v[16:]),
	}, nil
}

// Commit implements [Store].
func (s *Store) Commit(b *log.Batch) error {
	// The index must cover everything before the batch, even after a commit
	// that failed having written.
	if err := s.catchUp(); err != nil {
		return err
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		head, err := readHead(tx)
		if err != nil {
			return err
		}
		if b.Start != head.Size {
			return fmt.Errorf("%w: batch starts at %d, size is %d", log.ErrConflict, b.Start, head.Size)
		}
		entries := tx.Bucket(bucketEntries)
		entries.FillPercent = 1
		ekeys := make([]byte, 8*len(b.Entries)) // bbolt keeps keys until commit
		for i, e := range b.Entries {
			k := ekeys[8*i : 8*i+8]
			binary.BigEndian.PutUint64(k, b.Start+uint64(i))
			if err := entries.Put(k, e); err != nil {
				return fmt.Errorf("couldn't write entry %d: %w", b.Start+uint64(i), err)
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
	if err != nil {
		return err
	}
	s.index(b.Start, b.LeafHashes)
	return nil
}

// putNodeKey writes a node's key in bucket "nodes": level, then index, big-endian.
func putNodeKey(k *[9]byte, id compact.NodeID) {
	k[0] = byte(id.Level)
	binary.BigEndian.PutUint64(k[1:], id.Index)
}

// Entries implements [Store].
func (s *Store) Entries(start uint64, n int) ([][]byte, error) {
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
			return fmt.Errorf("entries [%d, +%d): %w", start, n, log.ErrNotFound)
		}
		return nil
	})
	return out, err
}

// Nodes implements [Store]. The hashes share one allocation.
func (s *Store) Nodes(ids []compact.NodeID) ([][]byte, error) {
	out := make([][]byte, len(ids))
	buf := make([]byte, 0, log.HashSize*len(ids))
	err := s.db.View(func(tx *bolt.Tx) error {
		nodes := tx.Bucket(bucketNodes)
		var k [9]byte
		for i, id := range ids {
			putNodeKey(&k, id)
			v := nodes.Get(k[:])
			if v == nil {
				return fmt.Errorf("node %d/%d: %w", id.Level, id.Index, log.ErrNotFound)
			}
			n := len(buf)
			buf = append(buf, v...)
			out[i] = buf[n:len(buf):len(buf)]
		}
		return nil
	})
	return out, err
}

// Lookup implements [Store]: an index probe per hash, confirmed by reading
// the stored leaf hash.
func (s *Store) Lookup(leafHashes [][]byte) ([]int64, error) {
	if err := s.catchUp(); err != nil {
		return nil, err
	}
	out := make([]int64, len(leafHashes))
	s.mu.RLock()
	for i, h := range leafHashes {
		out[i] = -1
		if len(h) != log.HashSize {
			continue
		}
		if idx, ok := s.extra[[32]byte(h)]; ok {
			out[i] = int64(idx)
		} else if idx, ok := s.prefix[binary.BigEndian.Uint64(h)]; ok {
			out[i] = int64(idx) // to be confirmed below
		}
	}
	s.mu.RUnlock()
	err := s.db.View(func(tx *bolt.Tx) error {
		nodes := tx.Bucket(bucketNodes)
		var k [9]byte
		for i, idx := range out {
			if idx < 0 {
				continue
			}
			putNodeKey(&k, compact.NewNodeID(0, uint64(idx)))
			if v := nodes.Get(k[:]); !bytes.Equal(v, leafHashes[i]) {
				out[i] = -1 // another leaf with the same prefix
			}
		}
		return nil
	})
	return out, err
}

// Close implements [Store].
func (s *Store) Close() error {
	if s.db == nil {
		return errors.New("store is closed")
	}
	return s.db.Close()
}

// Backup writes a consistent copy of the store's file to w while the store
// is in use (a read transaction: appends go on meanwhile).
func (s *Store) Backup(w io.Writer) (int64, error) {
	return boltfile.Backup(s.db, w)
}

func clone(b []byte) []byte { return append([]byte(nil), b...) }
