package log_test

import (
	"errors"
	"path/filepath"
	"testing"

	"github.com/evident-dev/evident/log"
	"github.com/evident-dev/evident/log/boltstore"
)

// TestWitnessedStore runs the optional witnessed-checkpoint extension of both
// implementations through one suite: first note at or above a size, in
// order, replacement, the latest, and (bbolt) durability across reopening.
func TestWitnessedStore(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log.db")
	bs, err := boltstore.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	for name, s := range map[string]log.WitnessedStore{"bolt": bs, "memory": &log.WitnessedMemory{}} {
		t.Run(name, func(t *testing.T) {
			if _, _, err := s.LatestWitnessed(); !errors.Is(err, log.ErrNotFound) {
				t.Errorf("LatestWitnessed(empty) = %v, want ErrNotFound", err)
			}
			for _, size := range []uint64{10, 3, 7} {
				if err := s.PutWitnessed(size, []byte{byte(size)}); err != nil {
					t.Fatal(err)
				}
			}
			s.PutWitnessed(7, []byte{7, 7})
			var got []uint64
			s.Witnessed(4, func(size uint64, n []byte) bool { got = append(got, size); return true })
			if len(got) != 2 || got[0] != 7 || got[1] != 10 {
				t.Errorf("Witnessed(4) sizes = %v, want [7 10]", got)
			}
			var first []byte
			s.Witnessed(4, func(size uint64, n []byte) bool { first = append([]byte(nil), n...); return false })
			if string(first) != "\x07\x07" {
				t.Errorf("first note from 4 = %x, want the replacement 0707", first)
			}
			if size, n, err := s.LatestWitnessed(); err != nil || size != 10 || n[0] != 10 {
				t.Errorf("LatestWitnessed = %d, %x, %v", size, n, err)
			}
		})
	}
	bs.Close()
	bs, err = boltstore.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer bs.Close()
	if size, _, err := bs.LatestWitnessed(); err != nil || size != 10 {
		t.Errorf("after reopening: LatestWitnessed = %d, %v", size, err)
	}
}
