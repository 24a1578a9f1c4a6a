package main

import (
	"context"
	"fmt"
	mrand "math/rand/v2"
	"net/http"
	"os"
	"runtime/pprof"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/evident-dev/evident/log"
	"github.com/evident-dev/evident/log/logclient"
	"golang.org/x/mod/sumdb/note"
)

// target is a log server to measure.
type target struct {
	url      string
	verifier note.Verifier
	local    *log.Log // the in-process log, for its group commit counters; may be nil
	// readers, if any, are the frontends the proof phase spreads its
	// clients over (default: url).
	readers []string
}

// phases is what to run against a target.
type phases struct {
	conc          int
	dur, proofDur time.Duration
	minted        [][]byte // real entries to append, if any
	bodies        [][]byte // what is posted for minted[i], if not the entry
	entryBytes    int
	verifyEvery   int
	cpuprofile    string
}

// figures are one measurement's results.
type figures struct {
	appends, proofs    float64 // per second
	spread             float64 // proofs per second from several frontends
	p50, p99           time.Duration
	proofP50, proofP99 time.Duration
	// cpuPerAppend is the CPU time the whole process (clients and an
	// in-process server) spent per entry appended, which other processes
	// on the machine do not inflate.
	cpuPerAppend time.Duration
}

func (f figures) String() string {
	return fmt.Sprintf("append: %.0f entries/s p50=%v p99=%v | proofs: %.0f/s", f.appends, f.p50, f.p99, f.proofs)
}

// measure runs the append phase, then the proof phase, printing what it
// sees; the appended entries are ph.minted or made of ph.entryBytes.
func measure(tg target, ph phases) (figures, error) {
	url, verifier, local, minted := tg.url, tg.verifier, tg.local, ph.minted
	client := newHTTPClient(ph.conc)
	lc := &logclient.Client{URL: url, Origin: verifier.Name(), Verifier: verifier, HTTP: client}

	// Append phase.
	var before log.Stats
	if local != nil {
		before = local.Stats()
	}
	if ph.cpuprofile != "" {
		f, err := os.Create(ph.cpuprofile)
		if err != nil {
			return figures{}, err
		}
		pprof.StartCPUProfile(f)
	}
	var (
		mu        sync.Mutex
		latencies []time.Duration
		failures  atomic.Int64
		verified  atomic.Int64
		seq       atomic.Uint64
	)
	ctx, cancel := context.WithTimeout(context.Background(), ph.dur)
	defer cancel()
	start, cpuStart := time.Now(), cpuTime()
	var wg sync.WaitGroup
	for w := 0; w < ph.conc && ph.dur > 0; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var local []time.Duration
			for ctx.Err() == nil {
				n := seq.Add(1)
				var e []byte
				if minted != nil {
					if n > uint64(len(minted)) {
						break // out of entries: the phase ends early
					}
					e = minted[n-1]
				} else {
					e = makeEntry(n, ph.entryBytes)
				}
				sent := e
				if ph.bodies != nil {
					sent = ph.bodies[n-1]
				}
				t0 := time.Now()
				body, err := post(client, url+log.PathEntries, sent)
				if err != nil {
					if ctx.Err() == nil {
						failures.Add(1)
						fmt.Fprintf(os.Stderr, "add: %v\n", err)
					}
					continue
				}
				local = append(local, time.Since(t0))
				if n%uint64(ph.verifyEvery) == 0 {
					if err := check(verifier, e, body); err != nil {
						failures.Add(1)
						fmt.Fprintf(os.Stderr, "verify: %v\n", err)
					} else {
						verified.Add(1)
					}
				}
			}
			mu.Lock()
			latencies = append(latencies, local...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	elapsed, cpu := time.Since(start), cpuTime()-cpuStart
	pprof.StopCPUProfile()
	appendRate := 0.0
	if ph.dur > 0 {
		appendRate = float64(len(latencies)) / elapsed.Seconds()
	}
	slices.Sort(latencies)
	fmt.Printf("append phase: %d entries in %v by %d clients, %d responses verified, %d failures\n",
		len(latencies), elapsed.Round(time.Millisecond), ph.conc, verified.Load(), failures.Load())

	if local != nil {
		st := local.Stats()
		b := st.Batches - before.Batches
		if b > 0 {
			fmt.Printf("group commit: %d batches, %.0f entries/batch, %v per commit\n", b,
				float64(st.Entries-before.Entries)/float64(b), ((st.CommitTime - before.CommitTime) / time.Duration(b)).Round(time.Microsecond))
		}
	}

	// Proof phase.
	cp, _, err := lc.Checkpoint(context.Background())
	if err != nil {
		return figures{}, err
	}
	if cp.Size == 0 {
		return figures{}, fmt.Errorf("the log is empty: no append succeeded (%d failures)", failures.Load())
	}
	if failures.Load() > 0 {
		return figures{}, fmt.Errorf("%d requests failed", failures.Load())
	}
	pf, err := proofPhase(lc, tg.readers, cp.Size, ph)
	if err != nil {
		return figures{}, err
	}
	pf.appends, pf.p50, pf.p99 = appendRate, pct(latencies, 50), pct(latencies, 99)
	if len(latencies) > 0 {
		pf.cpuPerAppend = cpu / time.Duration(len(latencies))
	}
	return pf, nil
}

// cpuTime is the CPU time the process has used, user and system.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// proofPhase runs ph.conc clients reading inclusion proofs of random
// entries in the tree of the given size for ph.proofDur, spread over
// readers (default lc.URL). It fills in the proof figures.
func proofPhase(lc *logclient.Client, readers []string, size uint64, ph phases) (figures, error) {
	var (
		mu       sync.Mutex
		wg       sync.WaitGroup
		proofs   atomic.Int64
		failures atomic.Int64
		plat     []time.Duration
	)
	ctx, cancel := context.WithTimeout(context.Background(), ph.proofDur)
	defer cancel()
	start := time.Now()
	for w := 0; w < ph.conc; w++ {
		rc := lc
		if len(readers) > 0 {
			c := *lc
			c.URL = readers[w%len(readers)]
			rc = &c
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			var local []time.Duration
			for ctx.Err() == nil {
				idx := mrand.Uint64N(size)
				t0 := time.Now()
				if _, err := rc.InclusionProof(ctx, idx, size); err != nil {
					if ctx.Err() == nil {
						failures.Add(1)
						fmt.Fprintf(os.Stderr, "proof: %v\n", err)
					}
					continue
				}
				local = append(local, time.Since(t0))
				proofs.Add(1)
			}
			mu.Lock()
			plat = append(plat, local...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	rate := float64(proofs.Load()) / time.Since(start).Seconds()
	slices.Sort(plat)
	fmt.Printf("proof phase: %d proofs at tree size %d from %d frontend(s), p50=%v p99=%v\n",
		proofs.Load(), size, max(len(readers), 1), pct(plat, 50), pct(plat, 99))
	if failures.Load() > 0 {
		return figures{}, fmt.Errorf("%d proof requests failed", failures.Load())
	}
	return figures{proofs: rate, proofP50: pct(plat, 50), proofP99: pct(plat, 99)}, nil
}

// newHTTPClient keeps a connection per client to each server.
func newHTTPClient(conc int) *http.Client {
	return &http.Client{Transport: &http.Transport{MaxIdleConns: conc * 2, MaxIdleConnsPerHost: conc * 2, IdleConnTimeout: time.Minute}}
}
