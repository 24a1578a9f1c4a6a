// Command evident-load measures evident over HTTP on 127.0.0.1.
//
// -mode log (the default): C concurrent clients append distinct entries for
// a fixed time, each waiting for its inclusion proof and checkpoint, then C
// clients read inclusion proofs. Three setups:
//
//   - the default: an in-process log (bbolt, fsync on) whose validator
//     checks only the entries' shape, behind the log's own HTTP handler;
//     entries carry random bytes where the certificate and token go. This
//     measures the log itself, apart from ingest verification, and exists
//     only here: evident serve verifies every entry.
//   - -verify-ingest: an in-process evident server (serve.Open, as evident
//     serve runs it), with real entries pre-minted from its development CA
//     and TSA, so that every append is fully verified.
//   - -server URL -key KEY: a separate evident serve process. Real entries
//     are pre-minted before the measurement: one SVID from its POST /dev/svid
//     (a development data directory, or --dev-svid), each signature
//     countersigned by its TSA over HTTP. The append phase ends early when
//     they run out (-mint sets how many).
//
// The last line is
//
//	append: N entries/s p50=… p99=… | proofs: N/s
//
// -verify-ingest -format dsse,metablock measures both entry formats (a
// Statement in DSSE, a Metablock link), each round a new server per format,
// alternating which goes first (-rounds), and ends with
//
//	dsse/metablock ingest (median of R rounds): N/s vs M/s = P%
//
// -mode tsa: for each concurrency in -tsa-c, clients request RFC 3161
// timestamps for -d; the last line is that of the highest concurrency:
//
//	tsa: N tokens/s p50=… p99=…
//
// -mode witness: -rounds rounds, each of an unwitnessed phase and a phase
// with two litewitnesses (built by tools/litewitness, found in -litewitness)
// cosigning every -witness-period, alternating which comes first: the append
// rates, and the latency from an add to a verified inclusion proof against a
// checkpoint both witnesses cosigned:
//
//	witness: unwitnessed N/s, witnessed M/s (P%) | witnessed bundle p50=… p99=… (R rounds of D, B bundles)
//
// In-process servers live in a temporary directory; the shape-only one may
// be prefilled with -prefill entries.
//
// The shape-only log runs on PostgreSQL with -store: an empty database's
// URL, or pgtest for a throwaway cluster started from the machine's
// PostgreSQL (fsync and synchronous_commit on, as in production).
// -vs-bbolt measures bbolt after each PostgreSQL round (-rounds, alternately)
// and ends with
//
//	postgres vs bbolt (median of R rounds): append N vs M entries/s (P%), p99 … vs … | proofs N vs M/s
//
// -frontends N starts N-1 more frontends of the PostgreSQL log (followers
// in the same process) and measures proofs from all of them after proofs
// from the sequencer alone; the last line then ends
// "from N frontends: N/s (K×)".
//
// Examples:
//
//	go run ./cmd/evident-load -c 256 -d 10s
//	go run ./cmd/evident-load -c 256 -d 10s -verify-ingest
//	go run ./cmd/evident-load -c 256 -d 5s -verify-ingest -with-payload -format dsse,metablock -rounds 3
//	go run ./cmd/evident-load -c 64 -d 10s -server http://127.0.0.1:8080 -key "$(cat evident-data/log.vkey)"
//	go run ./cmd/evident-load -c 256 -d 10s -store pgtest -vs-bbolt -rounds 3
//	go run ./cmd/evident-load -c 256 -d 0 -proof-d 10s -prefill 10000 -store pgtest -frontends 2
//	go run ./cmd/evident-load -mode tsa -tsa-c 1,16,64 -d 5s
//	go run ./cmd/evident-load -mode witness -c 256 -d 10s -rounds 4
//	go run ./cmd/evident-load -mode hash    # evident run's hashing vs sha256sum, 10,000 files / 1 GiB
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/evident-dev/evident"
	"github.com/evident-dev/evident/internal/litewitness"
	"github.com/evident-dev/evident/log"
	"github.com/evident-dev/evident/serve"
	"golang.org/x/mod/sumdb/note"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintf(os.Stderr, "evident-load: error: %v\n", err)
		os.Exit(1)
	}
}

func run() error {
	server := flag.String("server", "", "server `URL` (default: start one in-process)")
	key := flag.String("key", "", "the server's note verifier key (with --server)")
	conc := flag.Int("c", 256, "concurrent clients")
	dur := flag.Duration("d", 10*time.Second, "append phase duration (0: proofs only)")
	proofDur := flag.Duration("proof-d", 5*time.Second, "proof phase duration")
	prefill := flag.Int("prefill", 0, "entries to add before measuring (in-process server only)")
	entryBytes := flag.Int("entry-bytes", 2048, "approximate size of each entry")
	verifyEvery := flag.Int("verify-every", 100, "verify the proof and checkpoint of every Nth add response")
	batchPeriod := flag.Duration("batch-period", 0, "in-process server: group commit period (default: the server's)")
	batchSize := flag.Int("batch-size", 0, "in-process server: group commit size (default: the server's)")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the append phase to `file`")
	mode := flag.String("mode", "log", "what to measure: log, tsa, hash or witness")
	hashDir := flag.String("hash-dir", "", "hash mode: tree to hash (default: make one of -hash-files files, -hash-mib MiB)")
	hashFiles := flag.Int("hash-files", 10000, "hash mode: files to make")
	hashMiB := flag.Int64("hash-mib", 1024, "hash mode: MiB to make")
	tsaConc := flag.String("tsa-c", "1,16,64", "tsa mode: concurrencies to measure, in order")
	store := flag.String("store", "", "log mode, shape only: keep the log in this empty PostgreSQL `URL`, or in a throwaway cluster with pgtest (default bbolt)")
	vsBbolt := flag.Bool("vs-bbolt", false, "with -store: measure bbolt after each PostgreSQL round, and print the ratio last")
	frontends := flag.Int("frontends", 1, "with -store: frontends of the PostgreSQL log; proofs are then measured from all of them too")
	verifyIngest := flag.Bool("verify-ingest", false, "log mode, in-process: an evident server verifying real entries (pre-minted)")
	mint := flag.Int("mint", 0, "real entries to pre-mint (default: enough for 50 adds/s per client, at most 50,000)")
	tsaCount := flag.Int("tsas", 1, "-verify-ingest: tokens per entry, from this many in-process TSAs the server trusts (more than 1: version 2 entries)")
	format := flag.String("format", "metablock", "-verify-ingest: entries signing a Metablock link (metablock) or an in-toto Statement in DSSE (dsse, always posted with its payload); "+
		"two, comma-separated (dsse,metablock), measure both in alternating rounds and print their ratio last")
	withPayload := flag.Bool("with-payload", false, "-verify-ingest: post each entry with its payload ({\"entry\", \"payload\"}), as evident run does")
	lwBin := flag.String("litewitness", litewitness.DefaultBin(), "witness mode: `directory` of litewitness and registerlog")
	witnessPeriod := flag.Duration("witness-period", serve.DefaultWitnessPeriod, "witness mode: how often checkpoints go to the witnesses")
	samplers := flag.Int("samplers", 8, "witness mode: clients measuring add-to-witnessed-bundle latency")
	rounds := flag.Int("rounds", 0, "witness mode: rounds of an unwitnessed and a witnessed phase of -d each, alternating which comes first (default 3); "+
		"with -store pgtest: rounds on PostgreSQL (and on bbolt with -vs-bbolt), the last line giving medians (default 1); "+
		"with -verify-ingest: rounds of each -format, alternating which comes first, the last line giving medians (default 1)")
	proofSizes := flag.String("proof-sizes", "", "log mode, pgtest only: two tree sizes (as 10000,1000000) to fill in bulk and measure proof latency at, from new frontends, -rounds times")
	serveProcs := flag.Int("serve-procs", 0, "log mode, pgtest only: start this many evident serve processes on one database (-prefill entries) and measure proofs from one and from all, -rounds times")
	evidentBin := flag.String("evident", "", "with -serve-procs: the evident binary (default: go build ./cmd/evident)")
	flag.Parse()
	if *serveProcs != 0 {
		if *store != "pgtest" {
			return errors.New("-serve-procs starts a throwaway database: it needs -store pgtest")
		}
		return benchProcs(procsOpts{n: *serveProcs, bin: *evidentBin, prefill: *prefill, rounds: max(*rounds, 1), logger: logger()},
			phases{conc: *conc, proofDur: *proofDur, entryBytes: *entryBytes})
	}
	if *proofSizes != "" {
		return depthMode(*proofSizes, *store, *rounds, phases{conc: *conc, proofDur: *proofDur, entryBytes: *entryBytes})
	}
	if *mode == "witness" {
		n := *mint
		if n <= 0 {
			n = 50000
		}
		if *rounds <= 0 {
			*rounds = 3
		}
		return benchWitness(*lwBin, *conc, *dur, *witnessPeriod, n, *samplers, *rounds, *cpuprofile)
	}
	if *mode == "hash" {
		return benchHash(*hashDir, *hashFiles, *hashMiB<<20)
	}
	if *mode != "log" && *mode != "tsa" {
		return fmt.Errorf("-mode must be log, tsa or hash")
	}
	if *mode == "tsa" && *server != "" {
		return fmt.Errorf("-mode tsa starts its own server")
	}
	if (*prefill > 0 || *store != "" || *frontends != 1) && (*server != "" || *verifyIngest || *mode != "log") {
		return fmt.Errorf("-prefill, -store and -frontends are for the in-process shape-only log")
	}
	if *rounds > 1 && (*server != "" || *mode != "log") {
		return fmt.Errorf("-rounds is for the in-process logs (the shape-only log, or -verify-ingest)")
	}
	nmint := *mint
	if nmint <= 0 {
		nmint = min(int(float64(*conc)/0.02*dur.Seconds())+1000, 50000) // 50 adds/s per client
	}
	logger := logger()

	url := *server
	var verifier note.Verifier
	var local *log.Log          // the in-process log, for its group commit counters
	var minted, bodies [][]byte // bodies: what is posted for minted[i], if not the entry
	var err error
	switch {
	case url != "":
		if verifier, err = note.NewVerifier(*key); err != nil {
			return fmt.Errorf("--key: %w", err)
		}
		start := time.Now()
		if minted, err = mintRemote(url, nmint); err != nil {
			return err
		}
		fmt.Printf("minted %d real entries (one SVID from %s/dev/svid, its TSA over HTTP) in %v\n", nmint, url, time.Since(start).Round(time.Millisecond))
	case *mode == "tsa":
		s, _, cleanup, err := openInProcess(inProcessOpts{tsas: *tsaCount, batchPeriod: *batchPeriod, batchSize: *batchSize, logger: logger})
		if err != nil {
			return err
		}
		defer cleanup()
		if err := s.Start(); err != nil {
			return err
		}
		return benchTSA(s, *tsaConc, *dur, *cpuprofile)
	case *verifyIngest:
		o := inProcessOpts{tsas: *tsaCount, batchPeriod: *batchPeriod, batchSize: *batchSize, logger: logger}
		ph := phases{conc: *conc, dur: *dur, proofDur: *proofDur, verifyEvery: *verifyEvery, cpuprofile: *cpuprofile}
		return runIngest(o, strings.Split(*format, ","), max(*rounds, 1), nmint, *withPayload, ph)
	default:
		return runShape(shapeOpts{store: *store, vsBbolt: *vsBbolt, rounds: max(*rounds, 1), frontends: *frontends,
			prefill: *prefill, batchSize: *batchSize, batchPeriod: *batchPeriod, logger: logger},
			phases{conc: *conc, dur: *dur, proofDur: *proofDur, entryBytes: *entryBytes, verifyEvery: *verifyEvery, cpuprofile: *cpuprofile})
	}
	ph := phases{conc: *conc, dur: *dur, proofDur: *proofDur, minted: minted, bodies: bodies, entryBytes: *entryBytes,
		verifyEvery: *verifyEvery, cpuprofile: *cpuprofile}
	f, err := measure(target{url: url, verifier: verifier, local: local}, ph)
	if err != nil {
		return err
	}
	fmt.Println(f)
	return nil
}

// logger writes warnings and errors to stderr.
func logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

func pct(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	i := int(math.Ceil(p/100*float64(len(d)))) - 1
	return d[max(i, 0)].Round(10 * time.Microsecond)
}

func post(c *http.Client, url string, body []byte) ([]byte, error) {
	resp, err := c.Post(url, "application/json", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("status %d: %s", resp.StatusCode, b)
	}
	return b, nil
}

func check(v note.Verifier, entry, body []byte) error {
	var ar log.AddResponse
	if err := json.Unmarshal(body, &ar); err != nil {
		return err
	}
	cp, err := log.OpenCheckpoint([]byte(ar.Checkpoint), v.Name(), v)
	if err != nil {
		return err
	}
	return log.VerifyInclusion(ar.Index, cp, log.LeafHash(entry), ar.InclusionProof)
}

// makeEntry returns a distinct canonical entry of about size bytes: random
// bytes stand in for the certificate and the timestamp token.
func makeEntry(n uint64, size int) []byte {
	var d [32]byte
	rand.Read(d[8:16])
	binary.BigEndian.PutUint64(d[:], n)
	filler := max(size-400, 16) * 3 / 4
	cert := noise[:filler/2]
	ts := noise[filler/2 : filler]
	sig := noise[filler : filler+72]
	e := &evident.Entry{PayloadType: evident.PayloadTypeLink, PayloadSHA256: hex.EncodeToString(d[:]),
		Signature: sig, KeyID: hex.EncodeToString(d[:8]), CertChain: [][]byte{cert}, Timestamp: ts}
	b, err := e.Marshal()
	if err != nil {
		panic(err)
	}
	return b
}

// noise stands in for certificate, token and signature bytes: entries are
// distinct through their digests, so the load generator need not spend its
// share of the CPU on random numbers.
var noise = func() []byte {
	b := make([]byte, 1<<20)
	rand.Read(b)
	return b
}()

// fill adds n entries directly to the log, from many goroutines.
func fill(l *log.Log, n, size int) error {
	return parallel(n, 1024, func(i int) error {
		_, err := l.Add(context.Background(), makeEntry(uint64(i+1)|1<<63, size))
		return err
	})
}

// parallel runs f(0) … f(n-1) on the given number of goroutines and returns
// the first error, after which no new call starts.
func parallel(n, workers int, f func(i int) error) error {
	var next atomic.Int64
	var failed atomic.Bool
	var wg sync.WaitGroup
	errc := make(chan error, 1)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !failed.Load() {
				i := next.Add(1) - 1
				if i >= int64(n) {
					return
				}
				if err := f(int(i)); err != nil {
					if failed.CompareAndSwap(false, true) {
						errc <- err
					}
					return
				}
			}
		}()
	}
	wg.Wait()
	select {
	case err := <-errc:
		return err
	default:
		return nil
	}
}
