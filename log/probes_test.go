package log_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/evident-dev/evident/log"
)

// The probes below are transparency-dev/merkle's, from proof/verify_test.go
// (corruptInclusionProof, corruptConsistencyProof; Apache 2.0), ported as
// they are: each takes a valid proof and breaks it one way. The log's
// verifiers must reject every probe (threat model L4).

type probe struct {
	desc  string
	index uint64
	size  uint64
	proof [][]byte
	root  []byte
	leaf  []byte
	size2 uint64
	root2 []byte
}

var someHash = bytes.Repeat([]byte{0xab}, 32)

func extend(p [][]byte, hs ...[]byte) [][]byte  { return append(append([][]byte{}, p...), hs...) }
func prepend(p [][]byte, hs ...[]byte) [][]byte { return append(append([][]byte{}, hs...), p...) }

func corruptInclusion(index, size uint64, proof [][]byte, root, leaf []byte) []probe {
	ps := []probe{
		{"leafIndex - 1", index - 1, size, proof, root, leaf, 0, nil},
		{"leafIndex + 1", index + 1, size, proof, root, leaf, 0, nil},
		{"leafIndex ^ 2", index ^ 2, size, proof, root, leaf, 0, nil},
		{"treeSize * 2", index, size * 2, proof, root, leaf, 0, nil},
		{"treeSize / 2", index, size / 2, proof, root, leaf, 0, nil},
		{"wrong leaf", index, size, proof, root, []byte("WrongLeaf"), 0, nil},
		{"empty root", index, size, proof, log.LeafHash(nil)[:0], leaf, 0, nil},
		{"random root", index, size, proof, someHash, leaf, 0, nil},
		{"trailing garbage", index, size, extend(proof, []byte{}), root, leaf, 0, nil},
		{"trailing root", index, size, extend(proof, root), root, leaf, 0, nil},
		{"preceding garbage", index, size, prepend(proof, []byte{}), root, leaf, 0, nil},
		{"preceding root", index, size, prepend(proof, root), root, leaf, 0, nil},
	}
	for i := range proof {
		p := prepend(proof)
		p[i] = bytes.Clone(p[i])
		p[i][0] ^= 8
		ps = append(ps, probe{fmt.Sprintf("modified proof[%d] bit 3", i), index, size, p, root, leaf, 0, nil})
	}
	if n := len(proof); n > 0 {
		ps = append(ps, probe{"removed component", index, size, proof[:n-1], root, leaf, 0, nil})
	}
	if len(proof) > 1 {
		ps = append(ps, probe{"inserted component", index, size, prepend(proof[1:], proof[0], someHash), root, leaf, 0, nil})
	}
	return ps
}

func corruptConsistency(size1, size2 uint64, root1, root2 []byte, proof [][]byte) []probe {
	ps := []probe{
		{"size1 - 1", 0, size1 - 1, proof, root1, nil, size2, root2},
		{"size1 + 1", 0, size1 + 1, proof, root1, nil, size2, root2},
		{"size1 ^ 2", 0, size1 ^ 2, proof, root1, nil, size2, root2},
		{"size2 * 2", 0, size1, proof, root1, nil, size2 * 2, root2},
		{"size2 / 2", 0, size1, proof, root1, nil, size2 / 2, root2},
		{"wrong root1", 0, size1, proof, []byte("WrongRoot"), nil, size2, root2},
		{"wrong root2", 0, size1, proof, root1, nil, size2, []byte("WrongRoot")},
		{"swapped roots", 0, size1, proof, root2, nil, size2, root1},
		{"empty proof", 0, size1, [][]byte{}, root1, nil, size2, root2},
		{"trailing garbage", 0, size1, extend(proof, []byte{}), root1, nil, size2, root2},
		{"trailing root1", 0, size1, extend(proof, root1), root1, nil, size2, root2},
		{"trailing root2", 0, size1, extend(proof, root2), root1, nil, size2, root2},
		{"preceding garbage", 0, size1, prepend(proof, []byte{}), root1, nil, size2, root2},
		{"preceding root1", 0, size1, prepend(proof, root1), root1, nil, size2, root2},
		{"preceding root2", 0, size1, prepend(proof, root2), root1, nil, size2, root2},
		{"preceding proof[0]", 0, size1, prepend(proof, proof[0]), root1, nil, size2, root2},
	}
	if n := len(proof); n > 0 {
		ps = append(ps, probe{"truncated proof", 0, size1, proof[:n-1], root1, nil, size2, root2})
	}
	for i := range proof {
		p := prepend(proof)
		p[i] = bytes.Clone(p[i])
		p[i][0] ^= 16
		ps = append(ps, probe{fmt.Sprintf("modified proof[%d] bit 4", i), 0, size1, p, root1, nil, size2, root2})
	}
	return ps
}

func cpOf(size uint64, root []byte) log.Checkpoint {
	c := log.Checkpoint{Origin: testOrigin, Size: size}
	copy(c.Hash[:], root)
	return c
}

func TestProofProbes(t *testing.T) {
	k := newKey(t)
	l := openLog(t, log.NewMemStore(), k, nil)
	roots := map[uint64][]byte{}
	for i := 0; i < 70; i++ {
		res, err := l.Add(context.Background(), entry(i))
		if err != nil {
			t.Fatal(err)
		}
		cp, _ := log.OpenCheckpoint(res.Checkpoint, testOrigin, k.verifier)
		roots[cp.Size] = bytes.Clone(cp.Hash[:])
	}
	rejected := 0
	for _, size := range []uint64{1, 2, 3, 7, 8, 9, 31, 32, 33, 64, 70} {
		for _, index := range []uint64{0, 1, size / 2, size - 1} {
			if index >= size {
				continue
			}
			p, err := l.InclusionProof(index, size)
			if err != nil {
				t.Fatal(err)
			}
			e, _ := l.Entry(index)
			leaf := log.LeafHash(e)
			if err := log.VerifyInclusion(index, cpOf(size, roots[size]), leaf, p); err != nil {
				t.Fatalf("valid inclusion proof (%d, %d) rejected: %v", index, size, err)
			}
			for _, pr := range corruptInclusion(index, size, p, roots[size], leaf) {
				if err := log.VerifyInclusion(pr.index, cpOf(pr.size, pr.root), pr.leaf, pr.proof); err == nil {
					t.Errorf("inclusion (%d, %d) probe %q accepted", index, size, pr.desc)
				} else if !errors.Is(err, log.ErrBadProof) {
					t.Errorf("inclusion probe %q: %v, want ErrBadProof", pr.desc, err)
				}
				rejected++
			}
		}
		for _, size1 := range []uint64{1, 2, size / 2, size - 1} {
			if size1 == 0 || size1 >= size {
				continue
			}
			p, err := l.ConsistencyProof(size1, size)
			if err != nil {
				t.Fatal(err)
			}
			if err := log.VerifyConsistency(cpOf(size1, roots[size1]), cpOf(size, roots[size]), p); err != nil {
				t.Fatalf("valid consistency proof (%d, %d) rejected: %v", size1, size, err)
			}
			for _, pr := range corruptConsistency(size1, size, roots[size1], roots[size], p) {
				err := log.VerifyConsistency(cpOf(pr.size, pr.root), cpOf(pr.size2, pr.root2), pr.proof)
				if err == nil {
					t.Errorf("consistency (%d, %d) probe %q accepted", size1, size, pr.desc)
				} else if !errors.Is(err, log.ErrInconsistent) {
					t.Errorf("consistency probe %q: %v, want ErrInconsistent", pr.desc, err)
				}
				rejected++
			}
		}
	}
	t.Logf("%d corrupted proofs rejected", rejected)
}
