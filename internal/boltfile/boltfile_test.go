package boltfile

import (
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// makeDB writes a bbolt file of a few hundred pages.
func makeDB(t testing.TB) string { return makeDBOptions(t, nil) }

// makeDBOptions is makeDB with bbolt options, such as evident's stores use.
func makeDBOptions(t testing.TB, o *bolt.Options) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "x.db")
	db, err := bolt.Open(p, 0o600, o)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucket([]byte("b"))
		if err != nil {
			return err
		}
		for i := 0; i < 2000; i++ {
			var k [8]byte
			binary.BigEndian.PutUint64(k[:], uint64(i))
			if err := b.Put(k[:], make([]byte, 500)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	return p
}

// TestTruncated covers threat model L9: copies of a store cut at 10 %, 60 % and
// 99 % of the pages in use, and damaged meta pages, are reported before
// bbolt maps them (where they would fault with SIGBUS).
func TestTruncated(t *testing.T) {
	p := makeDB(t)
	if err := Check(p); err != nil {
		t.Fatalf("an intact file: %v", err)
	}
	used, err := UsedSize(p)
	if err != nil || used < 100*4096 {
		t.Fatalf("UsedSize = %d, %v", used, err)
	}
	whole, _ := os.ReadFile(p)
	for _, pct := range []int64{10, 60, 99} {
		q := filepath.Join(t.TempDir(), "cut.db")
		os.WriteFile(q, whole[:used*pct/100], 0o600)
		if err := Check(q); !errors.Is(err, ErrDamaged) {
			t.Errorf("cut at %d%%: Check = %v, want ErrDamaged", pct, err)
		}
	}
	q := filepath.Join(t.TempDir(), "tiny.db")
	os.WriteFile(q, whole[:100], 0o600)
	if err := Check(q); !errors.Is(err, ErrDamaged) {
		t.Errorf("100 bytes: Check = %v, want ErrDamaged", err)
	}
	bad := append([]byte(nil), whole...)
	bad[16+20] ^= 1      // meta 0's root page id
	bad[4096+16+20] ^= 1 // meta 1's
	os.WriteFile(q, bad, 0o600)
	if err := Check(q); !errors.Is(err, ErrDamaged) {
		t.Errorf("both metas damaged: Check = %v, want ErrDamaged", err)
	}
	if err := Check(filepath.Join(t.TempDir(), "absent.db")); err != nil {
		t.Errorf("a missing file: %v", err)
	}
}

// FuzzCheck covers threat model L9: any file is an error or accepted, never a panic; an accepted
// file is at least as long as its header says.
func FuzzCheck(f *testing.F) {
	whole, _ := os.ReadFile(makeDB(f))
	f.Add(whole[:8192])
	f.Add(whole[:100])
	f.Fuzz(func(t *testing.T, b []byte) {
		p := filepath.Join(t.TempDir(), "f.db")
		os.WriteFile(p, b, 0o600)
		if Check(p) == nil && len(b) > 0 {
			if n, err := UsedSize(p); err == nil && n > int64(len(b)) {
				t.Errorf("accepted %d bytes of a file using %d", len(b), n)
			}
		}
	})
}

// TestGarbledPages covers threat model L9 for damage inside the file: pages
// overwritten with noise (bit rot, a bad restore) are reported by Check as
// ErrDamaged, where opening the file for writing would rebuild bbolt's
// freelist and panic in a goroutine of bbolt's own, which no recover
// catches. Whatever the noise hits, Check never panics, and a file it
// accepts opens for writing.
func TestGarbledPages(t *testing.T) {
	for _, o := range []*bolt.Options{nil, {NoFreelistSync: true, FreelistType: bolt.FreelistMapType}} {
		garbledPages(t, makeDBOptions(t, o))
	}
}

func garbledPages(t *testing.T, p string) {
	whole, _ := os.ReadFile(p)
	used, err := UsedSize(p)
	if err != nil {
		t.Fatal(err)
	}
	noise := func(seed uint64, b []byte) {
		for i := range b {
			seed = seed*6364136223846793005 + 1442695040888963407
			b[i] = byte(seed >> 56)
		}
	}
	// Every page but the metas: the root bucket's page is noise.
	q := filepath.Join(t.TempDir(), "garbled.db")
	bad := append([]byte(nil), whole...)
	noise(1, bad[2*4096:used])
	os.WriteFile(q, bad, 0o600)
	if err := Check(q); !errors.Is(err, ErrDamaged) {
		t.Errorf("every page garbled: Check = %v, want ErrDamaged", err)
	}
	// One page at a time (some 15, spread over the file), then its header
	// only: an error or a file that opens.
	pages := used / 4096
	for pg := int64(2); pg < pages; pg += max(1, pages/15) {
		for _, n := range []int64{4096, 16} {
			bad := append([]byte(nil), whole...)
			noise(uint64(pg), bad[pg*4096:pg*4096+n])
			os.WriteFile(q, bad, 0o600)
			if err := Check(q); err != nil {
				if !errors.Is(err, ErrDamaged) {
					t.Errorf("page %d (%d bytes) garbled: Check = %v, want ErrDamaged", pg, n, err)
				}
				continue
			}
			db, err := bolt.Open(q, 0o600, &bolt.Options{NoFreelistSync: true, FreelistType: bolt.FreelistMapType})
			if err != nil {
				t.Errorf("page %d (%d bytes) garbled: Check accepted a file bbolt cannot open: %v", pg, n, err)
				continue
			}
			db.Close()
		}
	}
}
