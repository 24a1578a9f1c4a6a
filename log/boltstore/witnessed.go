package boltstore

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"github.com/evident-dev/evident/log"
	bolt "go.etcd.io/bbolt"
)

var bucketWitnessed = []byte("witnessed")

// PutWitnessed implements [WitnessedStore]: bucket "witnessed" maps an
// 8-byte big-endian size to the note.
func (s *Store) PutWitnessed(size uint64, signed []byte) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketWitnessed)
		if err != nil {
			return err
		}
		return b.Put(binary.BigEndian.AppendUint64(nil, size), bytes.Clone(signed))
	})
}

// Witnessed implements [WitnessedStore].
func (s *Store) Witnessed(min uint64, fn func(uint64, []byte) bool) error {
	return s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketWitnessed)
		if b == nil {
			return nil
		}
		c := b.Cursor()
		for k, v := c.Seek(binary.BigEndian.AppendUint64(nil, min)); k != nil; k, v = c.Next() {
			if len(k) != 8 {
				return fmt.Errorf("malformed witnessed key %x", k)
			}
			if !fn(binary.BigEndian.Uint64(k), v) {
				return nil
			}
		}
		return nil
	})
}

// LatestWitnessed implements [WitnessedStore].
func (s *Store) LatestWitnessed() (size uint64, signed []byte, err error) {
	err = s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketWitnessed)
		if b == nil {
			return log.ErrNotFound
		}
		k, v := b.Cursor().Last()
		if k == nil || len(k) != 8 {
			return log.ErrNotFound
		}
		size, signed = binary.BigEndian.Uint64(k), bytes.Clone(v)
		return nil
	})
	return size, signed, err
}
