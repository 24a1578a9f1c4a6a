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
func makeDB(t testing.TB) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "x.db")
	db, err := bolt.Open(p, 0o600, nil)
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
