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
// each round starts a new frontend of each (nothing of the tree in its
// memory) and measures proofs of random entries twice: while it is new
// (cold) and then again (warm: what a frontend that has been serving
// answers), alternating which size comes first, since a shared machine's
// speed drifts. The last line:
//
//	proof latency, warm: p50 A at N entries, B at M entries (R×, median of K rounds; …) | cold: … | p99 … | proofs …

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
	var cold, warm [2][]figures
	for r := 0; r < rounds; r++ {
		for k := 0; k < 2; k++ {
			i := (r + k) % 2 // alternate which size goes first
			c, w, err := frontendProofs(urls[i], signer, verifier, ph, logger)
			if err != nil {
				return err
			}
			cold[i], warm[i] = append(cold[i], c), append(warm[i], w)
		}
	}
	w, c := depthFigures(warm), depthFigures(cold)
	fmt.Printf("proof latency, warm: p50 %s | cold: p50 %s | p99 warm %v vs %v, cold %v vs %v | proofs warm %.0f vs %.0f/s\n",
		w.line(sizes), c.line(sizes), w.a.proofP99, w.b.proofP99, c.a.proofP99, c.b.proofP99, w.a.proofs, w.b.proofs)
	return nil
}

// depthFig is the medians at each size over the rounds, and the ratios of
// the p50 latencies, round by round, sorted.
type depthFig struct {
	a, b   figures
	ratios []float64
}

func depthFigures(got [2][]figures) depthFig {
	d := depthFig{a: median(got[0]), b: median(got[1]), ratios: make([]float64, len(got[0]))}
	for r := range got[0] {
		d.ratios[r] = float64(got[1][r].proofP50) / float64(max(got[0][r].proofP50, 1))
	}
	slices.Sort(d.ratios)
	return d
}

func (d depthFig) line(sizes [2]int) string {
	return fmt.Sprintf("%v at %d entries, %v at %d entries (%.2f×, median of %d rounds; per round %s)",
		d.a.proofP50, sizes[0], d.b.proofP50, sizes[1], medianOf(d.ratios), len(d.ratios), fmtRatios(d.ratios))
}

func fmtRatios(r []float64) string {
	s := make([]string, len(r))
	for i, v := range r {
		s[i] = fmt.Sprintf("%.2f", v)
	}
	return strings.Join(s, "/")
}

// frontendProofs starts a new frontend of the log at pgURL and measures
// proofs from it twice: at once (cold: nothing of the tree in its memory)
// and right after (warm).
func frontendProofs(pgURL string, signer note.Signer, verifier note.Verifier, ph phases, logger *slog.Logger) (cold, warm figures, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	store, err := openFollower(ctx, pgURL)
	if err != nil {
		return cold, warm, err
	}
	fe, err := serveShape(store, signer, verifier, log.Config{Logger: logger})
	if err != nil {
		return cold, warm, err
	}
	defer fe.close()
	lc := &logclient.Client{URL: fe.url, Origin: verifier.Name(), Verifier: verifier, HTTP: newHTTPClient(ph.conc)}
	size := fe.log.Head().Size
	if cold, err = proofPhase(lc, nil, size, ph); err != nil {
		return cold, warm, err
	}
	warm, err = proofPhase(lc, nil, size, ph)
	return cold, warm, err
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
