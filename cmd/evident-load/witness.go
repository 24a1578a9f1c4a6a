package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime/pprof"
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

// benchWitness is -mode witness: rounds of two phases, alternating which
// comes first (ABBA, since the speed of a shared machine drifts): the
// append rate of a log with no witnesses, and of a log whose checkpoints two
// litewitnesses cosign every period, while samplers measure
// add-to-witnessed-bundle latency: from the add until a checkpoint that both
// witnesses cosigned covers the entry and its inclusion proof against it is
// verified. Every phase runs on a fresh log (a witnessed one under a new
// origin, registered with both witnesses). The last line is
//
//	witness: unwitnessed N/s, witnessed M/s (P%) | witnessed bundle p50=… p99=… (R rounds)
//
// with N and M the means over the rounds and P their ratio; the latency is
// over every round's samples. Every phase appends real entries, verified at
// ingest as in production, minted before the phase starts (-mint per
// phase); a phase that runs out of entries ends early, and its rate is over
// the time it ran. With cpuprofile set, each phase writes a CPU profile to
// cpuprofile.R.unwitnessed or cpuprofile.R.witnessed.
func benchWitness(bin string, conc int, dur, period time.Duration, nmint, samplers, rounds int, cpuprofile string) error {
	dir, err := os.MkdirTemp("", "evident-load-witness-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	b := &witnessBench{dir: dir, cpuprofile: cpuprofile, conc: conc, dur: dur, period: period, nmint: nmint, samplers: samplers,
		logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
		client: &http.Client{Transport: &http.Transport{MaxIdleConns: conc * 2, MaxIdleConnsPerHost: conc * 2, IdleConnTimeout: time.Minute}}}
	for i := 1; i <= 2; i++ {
		w, err := litewitness.Start(bin, filepath.Join(dir, "w"+strconv.Itoa(i)), "load.test/w"+strconv.Itoa(i))
		if err != nil {
			return err
		}
		defer w.Close()
		b.witnesses = append(b.witnesses, w)
	}
	var plain, witnessed []float64
	var lat, addLat []time.Duration
	for r := 1; r <= rounds; r++ {
		phases := []bool{false, true}
		if r%2 == 0 {
			phases = []bool{true, false}
		}
		for _, withWitnesses := range phases {
			var rate float64
			var samples, adds []time.Duration
			if withWitnesses {
				rate, samples, adds, err = b.witnessedPhase(r)
			} else {
				rate, err = b.plainPhase(r)
			}
			if err != nil {
				return err
			}
			if withWitnesses {
				witnessed, lat, addLat = append(witnessed, rate), append(lat, samples...), append(addLat, adds...)
				slices.Sort(samples)
				slices.Sort(adds)
				fmt.Printf("round %d: witnessed (2 litewitnesses, period %v): %.0f entries/s, %d witnessed bundles p50=%v p99=%v (the add alone p50=%v p99=%v)\n",
					r, period, rate, len(samples), pct(samples, 50), pct(samples, 99), pct(adds, 50), pct(adds, 99))
			} else {
				plain = append(plain, rate)
				fmt.Printf("round %d: unwitnessed: %.0f entries/s\n", r, rate)
			}
		}
	}
	slices.Sort(lat)
	slices.Sort(addLat)
	mp, mw := mean(plain), mean(witnessed)
	fmt.Printf("witness: unwitnessed %.0f/s, witnessed %.0f/s (%.0f%%) | witnessed bundle p50=%v p99=%v (add p50=%v p99=%v; %d rounds of %v, %d bundles)\n",
		mp, mw, 100*mw/mp, pct(lat, 50), pct(lat, 99), pct(addLat, 50), pct(addLat, 99), rounds, dur, len(lat))
	return nil
}

// witnessBench holds what the phases of -mode witness share.
type witnessBench struct {
	dir, cpuprofile       string
	conc, nmint, samplers int
	dur, period           time.Duration
	logger                *slog.Logger
	client                *http.Client
	witnesses             []*litewitness.Witness
}

// open opens a server in a fresh directory sub with real entries minted for
// it, and starts it; next(n) is the nth entry (nil past the last).
func (b *witnessBench) open(sub string, ws []serve.WitnessConfig) (*serve.Server, func(uint64) []byte, error) {
	s, err := serve.Open(serve.Config{DataDir: filepath.Join(b.dir, sub), Addr: "127.0.0.1:0",
		Logger: b.logger, Witnesses: ws, WitnessPeriod: b.period})
	if err != nil {
		return nil, nil, err
	}
	minted, _, err := mintEntries(s, nil, b.nmint, false, "metablock")
	if err == nil {
		err = s.Start()
	}
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
	return s, next, nil
}

// plainPhase measures the append rate of a log without witnesses.
func (b *witnessBench) plainPhase(round int) (float64, error) {
	s, next, err := b.open("plain-"+strconv.Itoa(round), nil)
	if err != nil {
		return 0, err
	}
	defer s.Close(context.Background())
	defer b.profile(round, "unwitnessed")()
	rate, _, err := appendFor(b.client, s.URL(), b.conc, b.dur, next, 0)
	return rate, err
}

// witnessedPhase measures the append rate of a log both witnesses cosign,
// the add-to-witnessed-bundle latency, and the part of it the add took.
func (b *witnessBench) witnessedPhase(round int) (float64, []time.Duration, []time.Duration, error) {
	origin := "load.test/witnessed-" + strconv.Itoa(round)
	skey, vkey, err := note.GenerateKey(rand.Reader, origin)
	if err != nil {
		return 0, nil, nil, err
	}
	sub := "witnessed-" + strconv.Itoa(round)
	wdir := filepath.Join(b.dir, sub)
	if err := os.MkdirAll(wdir, 0o700); err != nil {
		return 0, nil, nil, err
	}
	os.WriteFile(filepath.Join(wdir, "log.key"), []byte(skey+"\n"), 0o600)
	os.WriteFile(filepath.Join(wdir, "log.vkey"), []byte(vkey+"\n"), 0o644)
	var cfgs []serve.WitnessConfig
	var verifiers []*tlog.CosignatureVerifier
	for _, w := range b.witnesses {
		if err := w.Register(origin, vkey); err != nil {
			return 0, nil, nil, err
		}
		cfgs = append(cfgs, serve.WitnessConfig{Name: w.Name, URL: w.URL(), VerifierKey: w.VerifierKey})
		v, err := tlog.NewCosignatureVerifier(w.VerifierKey)
		if err != nil {
			return 0, nil, nil, err
		}
		verifiers = append(verifiers, v)
	}
	s, next, err := b.open(sub, cfgs)
	if err != nil {
		return 0, nil, nil, err
	}
	defer s.Close(context.Background())
	lc := &logclient.Client{URL: s.URL(), Origin: s.Verifier.Name(), Verifier: s.Verifier, HTTP: b.client}
	defer b.profile(round, "witnessed")()
	var mu sync.Mutex
	var adds []time.Duration
	rate, samples, err := appendFor(b.client, s.URL(), b.conc, b.dur, next, b.samplers, func(ctx context.Context, e []byte) (time.Duration, error) {
		// CI jobs add at random times; a sampler that added right after
		// its last witnessed checkpoint would fall into step with the
		// witness period and always wait all of it.
		time.Sleep(mrand.N(b.period))
		total, add, err := witnessedBundle(ctx, b.client, lc, verifiers, e)
		mu.Lock()
		adds = append(adds, add)
		mu.Unlock()
		return total, err
	})
	return rate, samples, adds, err
}

// witnessedBundle adds e and returns how long it took until a checkpoint
// cosigned by every verifier covered it, with its inclusion proof verified
// (what evident run waits for), and how long the add alone took.
func witnessedBundle(ctx context.Context, client *http.Client, lc *logclient.Client, verifiers []*tlog.CosignatureVerifier, e []byte) (total, add time.Duration, err error) {
	t0 := time.Now()
	res, err := lc.Add(ctx, e)
	if err != nil {
		return 0, 0, err
	}
	add = time.Since(t0)
	q := url.Values{"index": {strconv.FormatUint(res.Index, 10)}, "cosignatures": {strconv.Itoa(len(verifiers))}, "wait": {"20s"}}
	resp, err := client.Get(lc.URL + serve.PathWitnessed + "?" + q.Encode())
	if err != nil {
		return 0, 0, err
	}
	signed, err := io.ReadAll(io.LimitReader(resp.Body, tlog.MaxCheckpointSize))
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 {
		return 0, 0, fmt.Errorf("witnessed checkpoint of %d: %s %v", res.Index, resp.Status, err)
	}
	cp, err := log.OpenCheckpoint(signed, lc.Origin, lc.Verifier)
	if err != nil {
		return 0, 0, err
	}
	if cs, _, err := tlog.VerifyCosignatures(signed, verifiers); err != nil || len(cs) != len(verifiers) {
		return 0, 0, fmt.Errorf("checkpoint %d has %d cosignatures (%v)", cp.Size, len(cs), err)
	}
	p, err := lc.InclusionProof(ctx, res.Index, cp.Size)
	if err != nil {
		return 0, 0, err
	}
	if err := log.VerifyInclusion(res.Index, cp, log.LeafHash(e), p); err != nil {
		return 0, 0, err
	}
	return time.Since(t0), add, nil
}

// profile starts a CPU profile of one phase's appends when -cpuprofile is
// set, and returns what stops it.
func (b *witnessBench) profile(round int, kind string) func() {
	if b.cpuprofile == "" {
		return func() {}
	}
	f, err := os.Create(fmt.Sprintf("%s.%d.%s", b.cpuprofile, round, kind))
	if err != nil {
		fmt.Fprintf(os.Stderr, "evident-load: no profile: %v\n", err)
		return func() {}
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return func() {}
	}
	return func() { pprof.StopCPUProfile(); f.Close() }
}

func mean(xs []float64) float64 {
	s := 0.0
	for _, x := range xs {
		s += x
	}
	return s / float64(max(len(xs), 1))
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
