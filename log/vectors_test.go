package log_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"testing"
	"time"

	"github.com/evident-dev/evident"
	"github.com/evident-dev/evident/log"
)

// vectors is testdata/log/tree-vectors.json, written by testdata/gen.go with
// transparency-dev/merkle's reference tree.
type vectors struct {
	Entries   [][]byte          `json:"entries"`
	Roots     map[uint64][]byte `json:"roots"`
	Inclusion []struct {
		Index, Size uint64
		Proof       [][]byte
	} `json:"inclusion"`
	Consistency []struct {
		From, To uint64
		Proof    [][]byte
	} `json:"consistency"`
}

// TestTreeVectors checks the log's roots, proofs and level-0 tile against
// proofs from an independent Merkle tree builder.
func TestTreeVectors(t *testing.T) {
	b, err := os.ReadFile("../testdata/log/tree-vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var v vectors
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	k := newKey(t)
	l := openLog(t, log.NewMemStore(), k, func(c *log.Config) {
		c.BatchPeriod = time.Microsecond
		c.Validate = func(e []byte) ([]byte, error) { _, c, err := evident.ParseEntry(e); return c, err }
	})
	roots := map[uint64][]byte{}
	for i, e := range v.Entries {
		res, err := l.Add(context.Background(), e)
		if err != nil || res.Index != uint64(i) {
			t.Fatalf("Add(entry %d) = %+v, %v", i, res, err)
		}
		cp, _ := log.OpenCheckpoint(res.Checkpoint, testOrigin, k.verifier)
		roots[cp.Size] = bytes.Clone(cp.Hash[:])
	}
	for size, want := range v.Roots {
		if !bytes.Equal(roots[size], want) {
			t.Errorf("root at size %d = %x, want %x", size, roots[size], want)
		}
	}
	for _, c := range v.Inclusion {
		got, err := l.InclusionProof(c.Index, c.Size)
		if err != nil || !equalProofs(got, c.Proof) {
			t.Errorf("InclusionProof(%d, %d) = %x, %v, want %x", c.Index, c.Size, got, err, c.Proof)
		}
	}
	for _, c := range v.Consistency {
		got, err := l.ConsistencyProof(c.From, c.To)
		if err != nil || !equalProofs(got, c.Proof) {
			t.Errorf("ConsistencyProof(%d, %d) = %x, %v, want %x", c.From, c.To, got, err, c.Proof)
		}
	}
	tile, err := l.ReadTile(log.TilePath{Level: 0, Index: 0, Width: 256})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 256; i++ {
		if !bytes.Equal(tile[32*i:32*i+32], log.LeafHash(v.Entries[i])) {
			t.Fatalf("tile 0/000 hash %d is not the leaf hash of entry %d", i, i)
		}
	}
}

func equalProofs(a, b [][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !bytes.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}
