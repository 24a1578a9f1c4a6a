// Package boltfile checks a bbolt file before bbolt opens it for writing.
// bbolt maps the whole file and trusts its meta pages: a file shorter than
// the pages they name (a truncated copy, a failed restore, a full disk
// during a copy) faults with SIGBUS on the first read past the end; and a
// page it cannot decode (bit rot, a bad restore) makes it panic while it
// rebuilds its freelist, in a goroutine of its own. No recover catches
// either. Check turns both into an error.
package boltfile

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"
	"runtime/debug"
	"time"

	bolt "go.etcd.io/bbolt"
)

// ErrDamaged is wrapped by every error Check returns about the file's
// contents (not about reading it).
var ErrDamaged = errors.New("corrupt or truncated")

// The layout of a bbolt meta page (go.etcd.io/bbolt, format version 2):
// a 16-byte page header, then magic, version, page size and flags (4 bytes
// each), the root bucket (root page id and sequence), the freelist page id,
// the high water mark (pages in use), the transaction id and an FNV-1a
// checksum of everything before it, all in the machine's byte order
// (little-endian on every platform evident builds for).
const (
	pageHeaderSize = 16
	metaSize       = 64
	magic          = 0xED0CDAED
	version        = 2
	minPageSize    = 512
	maxPageSize    = 1 << 16
)

type meta struct {
	pageSize uint32
	freelist uint64 // the freelist page, or noFreelist
	pgid     uint64 // high water mark: pages [0, pgid) are in use
	txid     uint64
}

// parseMeta decodes and checks one meta page's meta.
func parseMeta(b []byte) (meta, error) {
	if len(b) < pageHeaderSize+metaSize {
		return meta{}, errors.New("short meta page")
	}
	m := b[pageHeaderSize : pageHeaderSize+metaSize]
	le := binary.LittleEndian
	if le.Uint32(m) != magic {
		return meta{}, errors.New("not a bbolt file (bad magic)")
	}
	if v := le.Uint32(m[4:]); v != version {
		return meta{}, fmt.Errorf("bbolt format version %d, want %d", v, version)
	}
	h := fnv.New64a()
	h.Write(m[:56])
	if h.Sum64() != le.Uint64(m[56:]) {
		return meta{}, errors.New("meta page checksum mismatch")
	}
	md := meta{pageSize: le.Uint32(m[8:]), freelist: le.Uint64(m[32:]), pgid: le.Uint64(m[40:]), txid: le.Uint64(m[48:])}
	if md.pageSize < minPageSize || md.pageSize > maxPageSize || md.pageSize&(md.pageSize-1) != 0 {
		return meta{}, fmt.Errorf("implausible page size %d", md.pageSize)
	}
	if md.pgid < 2 {
		return meta{}, fmt.Errorf("implausible high water mark %d", md.pgid)
	}
	return md, nil
}

// Check reads the two meta pages of the bbolt file at path and checks that
// the file holds every page the meta bbolt would use names; then it reads
// every page reachable from the root, read-only (see walk). A missing or
// empty file passes (bbolt creates it). Errors about the contents wrap
// ErrDamaged.
func Check(path string) error {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	size := fi.Size()
	if size == 0 {
		return nil
	}
	damaged := func(format string, args ...any) error {
		return fmt.Errorf("%s is %w: %s", path, ErrDamaged, fmt.Sprintf(format, args...))
	}
	read := func(off int64) []byte {
		b := make([]byte, pageHeaderSize+metaSize)
		if _, err := f.ReadAt(b, off); err != nil && !errors.Is(err, io.EOF) {
			return nil
		}
		return b
	}
	m0, err0 := parseMeta(read(0))
	// The second meta page follows the first page; its size is the first
	// meta's page size, or, when that meta is damaged, the OS page size
	// (which is what bbolt assumes then).
	off1 := int64(os.Getpagesize())
	if err0 == nil {
		off1 = int64(m0.pageSize)
	}
	if size < 2*off1 {
		return damaged("%d bytes, less than its two meta pages", size)
	}
	m1, err1 := parseMeta(read(off1))
	var use meta
	switch {
	case err0 != nil && err1 != nil:
		return damaged("both meta pages are invalid (%v; %v)", err0, err1)
	case err1 != nil || (err0 == nil && m0.txid >= m1.txid):
		use = m0
	default:
		use = m1
	}
	if need := int64(use.pgid) * int64(use.pageSize); size < need {
		return damaged("%d bytes, but its header names %d pages of %d bytes (%d bytes)", size, use.pgid, use.pageSize, need)
	}
	if err := walk(path, use); err != nil {
		return damaged("%v", err)
	}
	return nil
}

// noFreelist is a meta's freelist page id when the freelist is not kept
// on disk (bbolt's NoFreelistSync, as evident's stores use it).
const noFreelist = ^uint64(0)

// walk opens the file read-only (which rebuilds no freelist) and reads
// every page reachable from the root bucket — each bucket's branch and leaf
// pages, nested buckets too — and the freelist page, in this goroutine.
// bbolt panics on a page it cannot decode, and opening the file for writing
// rebuilds the freelist by the same walk in a goroutine of its own, where
// no recover can catch it; here the panic, or a fault on a page id past the
// mapping, becomes an error. It costs about what that rebuild costs.
func walk(path string, m meta) (err error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		if errors.Is(err, bolt.ErrTimeout) {
			return err
		}
		return fmt.Errorf("bbolt cannot open it: %w", err)
	}
	defer db.Close()
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("a page cannot be read: %v", v)
		}
	}()
	if m.freelist != noFreelist {
		if err := checkFreelistPage(db.Path(), m); err != nil {
			return err
		}
	}
	return db.View(func(tx *bolt.Tx) error {
		return tx.ForEach(func(_ []byte, b *bolt.Bucket) error { return walkBucket(b) })
	})
}

// freelistPageFlag is a page header's flags for a freelist page.
const freelistPageFlag = 0x10

// checkFreelistPage checks the header of the freelist page m names, which
// bbolt reads when it opens a file whose freelist is kept on disk: its id
// (the first 8 bytes) and flags (the next 2).
func checkFreelistPage(path string, m meta) error {
	if m.freelist < 2 || m.freelist >= m.pgid {
		return fmt.Errorf("freelist page %d is outside pages 2 to %d", m.freelist, m.pgid-1)
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	var h [10]byte
	if _, err := f.ReadAt(h[:], int64(m.freelist)*int64(m.pageSize)); err != nil {
		return err
	}
	le := binary.LittleEndian
	if le.Uint64(h[:]) != m.freelist || le.Uint16(h[8:]) != freelistPageFlag {
		return fmt.Errorf("page %d, which the header names as the freelist, is not one", m.freelist)
	}
	return nil
}

// walkBucket visits every key of b, and the buckets nested in it.
func walkBucket(b *bolt.Bucket) error {
	c := b.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		if v != nil {
			continue
		}
		if nb := b.Bucket(k); nb != nil {
			if err := walkBucket(nb); err != nil {
				return err
			}
		}
	}
	return nil
}

// UsedSize returns the bytes in use in the bbolt file at path: the pages
// below the high water mark of the meta bbolt would use. The file may be
// longer (bbolt grows it ahead of need).
func UsedSize(path string) (int64, error) {
	b := make([]byte, 2*maxPageSize)
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	n, err := f.ReadAt(b, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return 0, err
	}
	b = b[:n]
	m0, err0 := parseMeta(b)
	if err0 != nil {
		return 0, fmt.Errorf("%w: %v", ErrDamaged, err0)
	}
	use := m0
	if int(m0.pageSize) < len(b) {
		if m1, err := parseMeta(b[m0.pageSize:]); err == nil && m1.txid > m0.txid {
			use = m1
		}
	}
	return int64(use.pgid) * int64(use.pageSize), nil
}

// Open opens (creating on first use) the bbolt file at path as evident's
// stores do, and creates the buckets: a one-second lock timeout (another
// process holding the file is an error, not a hang), no freelist sync (it
// is rebuilt on open, so commits write less), the map freelist, and
// initialMmapSize (0: bbolt's default) so that a store that is small yet
// does not remap, which blocks readers. Errors name the file.
func Open(path string, initialMmapSize int, buckets ...[]byte) (*bolt.DB, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{
		Timeout:         time.Second,
		NoFreelistSync:  true,
		FreelistType:    bolt.FreelistMapType,
		InitialMmapSize: initialMmapSize,
	})
	if err != nil {
		return nil, fmt.Errorf("couldn't open %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range buckets {
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
	return db, nil
}

// Backup writes a consistent copy of db's file to w while db is in use: a
// read transaction, so writers go on meanwhile.
func Backup(db *bolt.DB, w io.Writer) (int64, error) {
	var n int64
	err := db.View(func(tx *bolt.Tx) error {
		var err error
		n, err = tx.WriteTo(w)
		return err
	})
	return n, err
}
