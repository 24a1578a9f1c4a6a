package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/evident-dev/evident/internal/litewitness"
	"github.com/evident-dev/evident/log"
	"github.com/evident-dev/evident/log/logclient"
	"github.com/evident-dev/evident/serve"
	"github.com/evident-dev/evident/tlog"
	"golang.org/x/mod/sumdb/note"
)

// benchWitness is -mode witness: in one run, the append rate of a log with
// no witnesses (the mean of half the time before and half after), and of a
// log whose checkpoints two litewitnesses cosign every period, while samplers measure add-to-witnessed-bundle latency: from
// the add until a checkpoint that both witnesses cosigned covers the entry
// and its inclusion proof against it is verified. The last line is
//
//	witness: unwitnessed N/s, witnessed M/s (P%) | witnessed bundle p50=… p99=…
//
// Every phase appends real entries, verified at ingest as in production,
// minted before the phase starts (-mint per phase); a phase that runs out
// of entries ends early, and its rate is over the time it ran.
func benchWitness(bin string, conc int, dur, period time.Duration, nmint, samplers int) error {
	dir, err := os.MkdirTemp("", "evident-load-witness-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	open := func(sub string, ws []serve.WitnessConfig) (*serve.Server, func(uint64) []byte, error) {
		s, err := serve.Open(serve.Config{DataDir: filepath.Join(dir, sub), Addr: "127.0.0.1:0",
			Logger: logger, Witnesses: ws, WitnessPeriod: period})
		if err != nil {
			return nil, nil, err
		}
		minted, _, err := mintEntries(s, nil, nmint, false, "metablock")
		if err != nil {
			s.Close(context.Background())
			return nil, nil, err
		}
		next := func(n uint64) []byte {
			if n == 0 || n > uint64(len(minted)) {
				return nil
			}
			return minted[n-1]
		}
		return s, next, s.Start()
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConns: conc * 2, MaxIdleConnsPerHost: conc * 2, IdleConnTimeout: time.Minute}}

	// Unwitnessed, for half the time before the witnessed phase and half
	// after (the machine's speed drifts), each on a fresh log.
	unwitnessed := func(sub string) (float64, error) {
		s, next, err := open(sub, nil)
		if err != nil {
			return 0, err
		}
		defer s.Close(context.Background())
		rate, _, err := appendFor(client, s.URL(), conc, dur/2, next, 0)
		return rate, err
	}
	before, err := unwitnessed("plain-before")
	if err != nil {
		return err
	}
	fmt.Printf("unwitnessed (before): %.0f entries/s\n", before)

	// Witnessed by two litewitnesses.
	origin := "load.test/witnessed"
	skey, vkey, err := note.GenerateKey(rand.Reader, origin)
	if err != nil {
		return err
	}
	wdir := filepath.Join(dir, "witnessed")
	os.MkdirAll(wdir, 0o700)
	os.WriteFile(filepath.Join(wdir, "log.key"), []byte(skey+"\n"), 0o600)
	os.WriteFile(filepath.Join(wdir, "log.vkey"), []byte(vkey+"\n"), 0o644)
	var cfgs []serve.WitnessConfig
	var verifiers []*tlog.CosignatureVerifier
	for i := 1; i <= 2; i++ {
		w, err := litewitness.Start(bin, filepath.Join(dir, "w"+strconv.Itoa(i)), "load.test/w"+strconv.Itoa(i))
		if err != nil {
			return err
		}
		defer w.Close()
		if err := w.Register(origin, vkey); err != nil {
			return err
		}
		cfgs = append(cfgs, serve.WitnessConfig{Name: w.Name, URL: w.URL(), VerifierKey: w.VerifierKey})
		v, _ := tlog.NewCosignatureVerifier(w.VerifierKey)
		verifiers = append(verifiers, v)
	}
	s, next, err := open("witnessed", cfgs)
	if err != nil {
		return err
	}
	lc := &logclient.Client{URL: s.URL(), Origin: s.Verifier.Name(), Verifier: s.Verifier, HTTP: client}
	witnessed, bundleLat, err := appendFor(client, s.URL(), conc, dur, next, samplers, func(ctx context.Context, e []byte) (time.Duration, error) {
		t0 := time.Now()
		res, err := lc.Add(ctx, e)
		if err != nil {
			return 0, err
		}
		q := url.Values{"index": {strconv.FormatUint(res.Index, 10)}, "cosignatures": {"2"}, "wait": {"20s"}}
		resp, err := client.Get(s.URL() + serve.PathWitnessed + "?" + q.Encode())
		if err != nil {
			return 0, err
		}
		signed, err := io.ReadAll(io.LimitReader(resp.Body, tlog.MaxCheckpointSize))
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 {
			return 0, fmt.Errorf("witnessed checkpoint of %d: %s %v", res.Index, resp.Status, err)
		}
		cp, err := log.OpenCheckpoint(signed, lc.Origin, lc.Verifier)
		if err != nil {
			return 0, err
		}
		if cs, _, err := tlog.VerifyCosignatures(signed, verifiers); err != nil || len(cs) != 2 {
			return 0, fmt.Errorf("checkpoint %d has %d cosignatures (%v)", cp.Size, len(cs), err)
		}
		p, err := lc.InclusionProof(ctx, res.Index, cp.Size)
		if err != nil {
			return 0, err
		}
		if err := log.VerifyInclusion(res.Index, cp, log.LeafHash(e), p); err != nil {
			return 0, err
		}
		return time.Since(t0), nil
	})
	s.Close(context.Background())
	if err != nil {
		return err
	}
	slices.Sort(bundleLat)
	fmt.Printf("witnessed (2 litewitnesses, period %v): %.0f entries/s, %d witnessed bundles\n", period, witnessed, len(bundleLat))
	after, err := unwitnessed("plain-after")
	if err != nil {
		return err
	}
	fmt.Printf("unwitnessed (after): %.0f entries/s\n", after)
	plain := (before + after) / 2
	fmt.Printf("witness: unwitnessed %.0f/s, witnessed %.0f/s (%.0f%%) | witnessed bundle p50=%v p99=%v\n",
		plain, witnessed, 100*witnessed/plain, pct(bundleLat, 50), pct(bundleLat, 99))
	return nil
}

// appendFor runs conc clients appending distinct entries for dur, and
// samplers running sample in a loop beside them; it returns the append rate
// and the samples.
func appendFor(client *http.Client, url string, conc int, dur time.Duration, next func(uint64) []byte, samplers int,
	sample ...func(context.Context, []byte) (time.Duration, error)) (float64, []time.Duration, error) {
	ctx, cancel := context.WithTimeout(context.Background(), dur)
	defer cancel()
	var n, seq atomic.Uint64
	var mu sync.Mutex
	var samples []time.Duration
	var firstErr atomic.Pointer[error]
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < conc; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				e := next(seq.Add(1))
				if e == nil {
					return // out of entries: the phase ends early
				}
				if _, err := post(client, url+log.PathEntries, e); err != nil {
					if ctx.Err() == nil {
						firstErr.CompareAndSwap(nil, &err)
					}
					continue
				}
				n.Add(1)
			}
		}()
	}
	for w := 0; w < samplers && len(sample) > 0; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				e := next(seq.Add(1))
				if e == nil {
					return
				}
				d, err := sample[0](context.Background(), e)
				if err != nil {
					firstErr.CompareAndSwap(nil, &err)
					return
				}
				mu.Lock()
				samples = append(samples, d)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if p := firstErr.Load(); p != nil {
		return 0, nil, *p
	}
	return float64(n.Load()) / time.Since(start).Seconds(), samples, nil
}
