package log_test

import (
	"path/filepath"
	"testing"

	"github.com/evident-dev/evident/log"
	"github.com/evident-dev/evident/log/boltstore"
	"github.com/evident-dev/evident/log/storetest"
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
		t.Run(name, func(t *testing.T) { storetest.RunWitnessed(t, s) })
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
