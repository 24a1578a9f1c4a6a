package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/evident-dev/evident/internal/pgtest"
	"github.com/evident-dev/evident/log"
	"github.com/evident-dev/evident/log/logclient"
	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"
)

// -proof-sizes: how proof latency grows with the tree. Two logs in one
// throwaway PostgreSQL cluster are filled in bulk to the two sizes, then
// each round measures proofs of random entries from a new frontend of
// each (empty caches: a frontend that has just started), alternating
// which comes first, since a shared machine's speed drifts. The last line:
//
//	proof latency: p50 A at N entries, B at M entries (R×, median of K rounds) | p99 … | proofs N/s vs M/s

// maxDepthSize bounds -proof-sizes.
const maxDepthSize = 1 << 26

// bulkBatch is how many entries one bulk-fill commit carries.
const bulkBatch = 16384

// parseSizes parses -proof-sizes: two tree sizes, the smaller first.
func parseSizes(s string) ([2]int, error) {
	parts := strings.Split(s, ",")
	if len(parts) != 2 {
		return [2]int{}, fmt.Errorf("-proof-sizes %q: want two sizes, as 10000,1000000", s)
	}
	var out [2]int
	for i, p := range parts {
		n, err := strconv.Atoi(strings.TrimSpace(p))
		if err != nil || n < 1 || n > maxDepthSize {
			return [2]int{}, fmt.Errorf("-proof-sizes %q: %q is not a size from 1 to %d", s, p, maxDepthSize)
		}
		out[i] = n
	}
	if out[0] >= out[1] {
		return [2]int{}, fmt.Errorf("-proof-sizes %q: the smaller size comes first", s)
	}
	return out, nil
}

// benchDepth runs the -proof-sizes measurement.
func benchDepth(sizes [2]int, rounds int, ph phases, logger *slog.Logger) error {
	cluster, err := pgtest.New(io.Discard, pgtestSettings...)
	if err != nil {
		return err
	}
	defer cluster.Close()
	skey, vkey, err := note.GenerateKey(rand.Reader, "evident-load/depth")
	if err != nil {
		return err
	}
	signer, _ := note.NewSigner(skey)
	verifier, _ := note.NewVerifier(vkey)
	var urls [2]string
	for i, n := range sizes {
		name := fmt.Sprintf("depth%d", i)
		if err := cluster.CreateDatabase(name); err != nil {
			return err
		}
		urls[i] = cluster.URL(name)
		start := time.Now()
		if err := bulkFillPG(urls[i], signer, n, ph.entryBytes, logger); err != nil {
			return err
		}
		fmt.Printf("bulk fill: %d entries in %v\n", n, time.Since(start).Round(time.Millisecond))
	}
	var got [2][]figures
	for r := 0; r < rounds; r++ {
		for k := 0; k < 2; k++ {
			i := (r + k) % 2 // alternate which size goes first
			f, err := coldProofs(urls[i], signer, verifier, ph, logger)
			if err != nil {
				return err
			}
			got[i] = append(got[i], f)
		}
	}
	fmt.Println(depthLine(sizes, got))
	return nil
}

// depthLine is the last line: medians over the rounds, and the ratio of
// the p50 latencies.
func depthLine(sizes [2]int, got [2][]figures) string {
	a, b := median(got[0]), median(got[1])
	ratios := make([]float64, len(got[0]))
	for r := range got[0] {
		ratios[r] = float64(got[1][r].proofP50) / float64(max(got[0][r].proofP50, 1))
	}
	slices.Sort(ratios)
	return fmt.Sprintf("proof latency: p50 %v at %d entries, %v at %d entries (%.2f×, median of %d rounds; per round %s) | p99 %v vs %v | proofs %.0f vs %.0f/s",
		a.proofP50, sizes[0], b.proofP50, sizes[1], ratios[(len(ratios)-1)/2], len(ratios), fmtRatios(ratios),
		a.proofP99, b.proofP99, a.proofs, b.proofs)
}

func fmtRatios(r []float64) string {
	s := make([]string, len(r))
	for i, v := range r {
		s[i] = fmt.Sprintf("%.2f", v)
	}
	return strings.Join(s, "/")
}

// coldProofs measures proofs from a frontend that has just opened the log
// at pgURL: nothing of the tree in its memory.
func coldProofs(pgURL string, signer note.Signer, verifier note.Verifier, ph phases, logger *slog.Logger) (figures, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	store, err := openFollower(ctx, pgURL)
	if err != nil {
		return figures{}, err
	}
	fe, err := serveShape(store, signer, verifier, log.Config{Logger: logger})
	if err != nil {
		return figures{}, err
	}
	defer fe.close()
	lc := &logclient.Client{URL: fe.url, Origin: verifier.Name(), Verifier: verifier, HTTP: newHTTPClient(ph.conc)}
	return proofPhase(lc, nil, fe.log.Head().Size, ph)
}

// bulkFillPG fills the empty database at pgURL with n distinct entries of
// about size bytes, as its sequencer, in commits of bulkBatch entries: the
// store's own fenced Commit with every node and a signed checkpoint, as
// the log writes them, without a request per entry.
func bulkFillPG(pgURL string, signer note.Signer, n, size int, logger *slog.Logger) error {
	store, err := openShapeStore("", pgURL, logger)
	if err != nil {
		return err
	}
	defer store.Close()
	return bulkFill(store, signer, n, size)
}

// bulkFill appends n entries to the empty store s.
func bulkFill(s log.Store, signer note.Signer, n, size int) error {
	if h, err := s.Head(); err != nil || h.Size != 0 {
		return errors.Join(err, fmt.Errorf("bulk fill: the store holds %d entries already", h.Size))
	}
	rf := compact.RangeFactory{Hash: rfc6962.DefaultHasher.HashChildren}
	cr := rf.NewEmptyRange(0)
	for start := 0; start < n; start += bulkBatch {
		b := &log.Batch{Start: uint64(start)}
		visit := func(id compact.NodeID, h []byte) { b.Nodes = append(b.Nodes, log.Node{ID: id, Hash: h}) }
		for i := start; i < min(n, start+bulkBatch); i++ {
			e := makeEntry(uint64(i+1)|1<<62, size)
			h := log.LeafHash(e)
			b.Entries, b.LeafHashes = append(b.Entries, e), append(b.LeafHashes, h)
			if err := cr.Append(h, visit); err != nil {
				return err
			}
		}
		root, err := cr.GetRootHash(nil)
		if err != nil {
			return err
		}
		cp := log.Checkpoint{Origin: signer.Name(), Size: cr.End()}
		copy(cp.Hash[:], root)
		if b.Head.Checkpoint, err = log.SignCheckpoint(cp, signer); err != nil {
			return err
		}
		b.Head.Size, b.Head.Time = cr.End(), time.Now().UnixNano()
		if err := s.Commit(b); err != nil {
			return fmt.Errorf("bulk fill at %d: %w", start, err)
		}
	}
	return nil
}

// depthMode checks the -proof-sizes flags and runs benchDepth.
func depthMode(sizes, store string, rounds int, ph phases) error {
	sz, err := parseSizes(sizes)
	if err != nil {
		return err
	}
	if store != "pgtest" {
		return errors.New("-proof-sizes fills throwaway databases: it needs -store pgtest")
	}
	if rounds <= 0 {
		rounds = 3
	}
	return benchDepth(sz, rounds, ph, logger())
}
