package serve

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/evident-dev/evident/internal/httpapi"
	"github.com/evident-dev/evident/log"
	"github.com/evident-dev/evident/tlog"
	"github.com/evident-dev/evident/witness"
)

// WitnessConfig names one witness the log submits its checkpoints to.
type WitnessConfig struct {
	// Name is the witness's key name (the name in its verifier key).
	Name string
	// URL is its tlog-witness submission prefix (URL/add-checkpoint).
	URL string
	// VerifierKey is its tlog-cosignature/v1 verifier key.
	VerifierKey string
}

// ParseWitness parses NAME=URL,VKEY, as --witness takes it. NAME must be the
// verifier key's name.
func ParseWitness(s string) (WitnessConfig, error) {
	name, rest, ok1 := strings.Cut(s, "=")
	u, vkey, ok2 := strings.Cut(rest, ",")
	if !ok1 || !ok2 {
		return WitnessConfig{}, fmt.Errorf("witness %q: want NAME=URL,VKEY", s)
	}
	c := WitnessConfig{Name: strings.TrimSpace(name), URL: strings.TrimSpace(u), VerifierKey: strings.TrimSpace(vkey)}
	return c, c.check()
}

// MaxWitnessConfig bounds a witness configuration file.
const MaxWitnessConfig = 1 << 20

// ParseWitnessConfig parses a witness configuration file, as
// --witness-config takes it: one NAME=URL,VKEY a line, blank lines and lines
// starting with # ignored. An error names the line.
func ParseWitnessConfig(b []byte) ([]WitnessConfig, error) {
	if len(b) > MaxWitnessConfig {
		return nil, fmt.Errorf("witness configuration is %d bytes, over the limit of %d", len(b), MaxWitnessConfig)
	}
	var out []WitnessConfig
	for i, l := range strings.Split(string(b), "\n") {
		if l = strings.TrimSpace(l); l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		c, err := ParseWitness(l)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", i+1, err)
		}
		out = append(out, c)
	}
	return out, nil
}

func (c WitnessConfig) check() error {
	v, err := tlog.NewCosignatureVerifier(c.VerifierKey)
	if err != nil {
		return fmt.Errorf("witness %s: %w", c.Name, err)
	}
	if v.Name() != c.Name {
		return fmt.Errorf("witness %s: its verifier key is named %q", c.Name, v.Name())
	}
	pu, err := url.Parse(c.URL)
	if err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" {
		return fmt.Errorf("witness %s: URL %q is not an http(s) URL", c.Name, c.URL)
	}
	return nil
}

// DefaultWitnessPeriod is how often checkpoints are submitted to witnesses.
const DefaultWitnessPeriod = time.Second

// maxWitnessBackoff caps the wait between attempts to a failing witness, at
// most 8 periods.
const maxWitnessBackoff = 30 * time.Second

// nextBackoff is the wait after a failed attempt that followed a wait of
// prev: a period, then twice as long each time, at most 8 periods and
// maxWitnessBackoff.
func nextBackoff(prev, period time.Duration) time.Duration {
	return min(max(2*prev, period), maxWitnessBackoff, 8*period)
}

// witnessing submits the log's latest checkpoint to every witness, at most
// once a period, each witness in its own goroutine, so a slow or absent
// witness delays no other and never the log (threat model A2). Cosignatures of
// one checkpoint are merged into one note, served at once and kept in a
// WitnessedStore.
type witnessing struct {
	log    *log.Log
	store  log.WitnessedStore
	period time.Duration
	logger *slog.Logger
	now    func() time.Time

	workers []*witnessWorker
	target  atomic.Pointer[witnessTarget]
	// leading, when set, tells whether this frontend sequences the log:
	// only the sequencer submits (a follower's head lags, and a witness
	// ahead of it would look like a split view); every frontend serves
	// the witnessed checkpoints from the shared store.
	leading func() bool

	mu     sync.Mutex // guards the fields below
	latest witnessTarget
	// recent holds cosigned notes not yet stored, by size: served at
	// once, so that neither a waiting client nor /log/checkpoint waits
	// for the disk (at most maxRecent of them).
	recent  map[uint64][]byte
	changed chan struct{} // closed when a cosignature is received

	storeMu sync.Mutex // serializes writes of recent to the store

	stop chan struct{}
	wg   sync.WaitGroup

	// testHookResult, when set, is called after each submission.
	testHookResult atomic.Pointer[func(witness string, err error)]
}

type witnessTarget struct {
	cp     tlog.Checkpoint
	signed []byte
}

type witnessWorker struct {
	cfg  WitnessConfig
	sub  *witness.Submitter
	kick chan struct{}

	lastSuccess  atomic.Int64 // Unix seconds
	failures     atomic.Int64
	refusals     atomic.Int64 // checkpoints refused as inconsistent
	cosignedSize atomic.Uint64
	hasCosigned  atomic.Bool
}

func newWitnessing(l *log.Log, store log.Store, cfgs []WitnessConfig, period time.Duration, logger *slog.Logger, now func() time.Time) (*witnessing, error) {
	if period <= 0 {
		period = DefaultWitnessPeriod
	}
	ws, ok := store.(log.WitnessedStore)
	if !ok {
		ws = &log.WitnessedMemory{}
		if len(cfgs) > 0 {
			logger.Warn("the log store keeps no witnessed checkpoints: they are kept in memory until restart")
		}
	}
	w := &witnessing{log: l, store: ws, period: period, logger: logger, now: now,
		recent: map[uint64][]byte{}, changed: make(chan struct{}), stop: make(chan struct{})}
	if size, signed, err := ws.LatestWitnessed(); err == nil {
		if cp, err := tlog.ParseCheckpoint(noteText(signed)); err == nil && cp.Size == size {
			w.latest = witnessTarget{cp: cp, signed: signed}
		}
	}
	seen := map[string]bool{}
	for _, c := range cfgs {
		if err := c.check(); err != nil {
			return nil, err
		}
		if seen[c.Name] {
			return nil, fmt.Errorf("witness %s is configured twice", c.Name)
		}
		seen[c.Name] = true
		v, _ := tlog.NewCosignatureVerifier(c.VerifierKey)
		ww := &witnessWorker{cfg: c, kick: make(chan struct{}, 1), sub: &witness.Submitter{
			Client:   &witness.Client{URL: c.URL, Timeout: max(2*period, 5*time.Second)},
			Verifier: v,
			Proof: func(_ context.Context, from, to uint64) ([][]byte, error) {
				return l.ConsistencyProof(from, to)
			},
		}}
		w.workers = append(w.workers, ww)
	}
	return w, nil
}

func (w *witnessing) start() {
	w.wg.Add(1 + len(w.workers))
	go w.run()
	for _, ww := range w.workers {
		go w.work(ww)
	}
}

func (w *witnessing) close() {
	close(w.stop)
	w.wg.Wait()
}

// run picks the checkpoint to witness and wakes the workers, at most once a
// period, and as soon as there is something to witness: an entry logged
// after a quiet spell is witnessed within a witness's round trip (and a
// poll, a tenth of a period), not up to a period later.
func (w *witnessing) run() {
	defer w.wg.Done()
	t := time.NewTicker(min(max(w.period/10, time.Millisecond), 100*time.Millisecond))
	defer t.Stop()
	var last, followed time.Time
	for {
		if w.following() {
			if time.Since(followed) >= w.period {
				followed = time.Now()
				w.follow()
			}
		} else if time.Since(last) >= w.period && w.pending() {
			last = time.Now()
			for _, ww := range w.workers {
				select {
				case ww.kick <- struct{}{}:
				default:
				}
			}
		}
		select {
		case <-w.stop:
			return
		case <-t.C:
		}
	}
}

// following reports whether this frontend follows another that sequences
// the log (and has witnesses to follow).
func (w *witnessing) following() bool {
	return w.leading != nil && len(w.workers) > 0 && !w.leading()
}

// follow takes the latest witnessed checkpoint from the store, where the
// sequencer keeps it: a follower submits nothing, but its /log/checkpoint
// carries the cosignatures of the checkpoint it serves, as the
// sequencer's does. Called once a period, so a request costs no store read.
func (w *witnessing) follow() {
	size, signed, err := w.store.LatestWitnessed()
	if err != nil {
		return
	}
	cp, err := tlog.ParseCheckpoint(noteText(signed))
	if err != nil || cp.Size != size {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if size < w.latest.cp.Size || bytes.Equal(signed, w.latest.signed) {
		return
	}
	w.latest = witnessTarget{cp: cp, signed: signed}
	close(w.changed)
	w.changed = make(chan struct{})
}

// pending makes the log's head the target if it is new, and reports
// whether a witness has not cosigned the target.
func (w *witnessing) pending() bool {
	if w.leading != nil && !w.leading() {
		return false
	}
	h := w.log.Head()
	cur := w.target.Load()
	if h.Size > 0 && (cur == nil || cur.cp.Size != h.Size) {
		if cp, err := tlog.ParseCheckpoint(noteText(h.Checkpoint)); err == nil {
			cur = &witnessTarget{cp: cp, signed: h.Checkpoint}
			w.target.Store(cur)
		}
	}
	if cur == nil {
		return false
	}
	for _, ww := range w.workers {
		if !ww.hasCosigned.Load() || ww.cosignedSize.Load() != cur.cp.Size {
			return true
		}
	}
	return false
}

// work submits the target to one witness whenever it is newer than what the
// witness cosigned, backing off exponentially while the witness fails.
func (w *witnessing) work(ww *witnessWorker) {
	defer w.wg.Done()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { <-w.stop; cancel() }()
	var backoff time.Duration
	var next time.Time
	for {
		select {
		case <-w.stop:
			return
		case <-ww.kick:
		}
		t := w.target.Load()
		if t == nil || (ww.hasCosigned.Load() && ww.cosignedSize.Load() == t.cp.Size) || w.now().Before(next) {
			continue
		}
		err := w.attempt(ctx, ww, t)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			backoff = nextBackoff(backoff, w.period)
			next = w.now().Add(backoff)
			w.logger.Warn("witness did not cosign", "witness", ww.cfg.Name, "size", t.cp.Size, "retry_in", backoff, "err", err)
		} else {
			if backoff > 0 {
				w.logger.Info("witness cosigns again", "witness", ww.cfg.Name, "size", t.cp.Size)
			}
			backoff, next = 0, time.Time{}
		}
		if h := w.testHookResult.Load(); h != nil {
			(*h)(ww.cfg.Name, err)
		}
	}
}

// attempt submits t to one witness and stores its cosignature.
func (w *witnessing) attempt(ctx context.Context, ww *witnessWorker, t *witnessTarget) error {
	cs, err := ww.sub.Submit(ctx, t.cp, t.signed)
	if err != nil {
		ww.failures.Add(1)
		if errors.Is(err, witness.ErrInconsistent) {
			ww.refusals.Add(1)
			known, _ := ww.sub.Size()
			w.logger.Error("witness refused the log's checkpoint as inconsistent with a tree it cosigned: this log showed it another tree (a split view, or a rollback of the log's store)",
				"witness", ww.cfg.Name, "size", t.cp.Size, "witness_size", known, "err", err)
		}
		return err
	}
	ww.cosignedSize.Store(t.cp.Size)
	ww.hasCosigned.Store(true)
	ww.lastSuccess.Store(w.now().Unix())
	w.addCosignature(t, cs.Line)
	if err := w.persist(); err != nil {
		ww.failures.Add(1)
		return fmt.Errorf("couldn't store the cosigned checkpoint (it is served from memory until it is): %w", err)
	}
	return nil
}

// maxRecent bounds the cosigned notes kept in memory while the store
// refuses them; beyond it the smallest are dropped.
const maxRecent = 64

// addCosignature merges a cosignature line into the note of t, in memory,
// and wakes the clients waiting for one.
func (w *witnessing) addCosignature(t *witnessTarget, line string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	note, ok := w.recent[t.cp.Size]
	if !ok && w.latest.cp.Size == t.cp.Size && w.latest.signed != nil {
		note, ok = w.latest.signed, true
	}
	if !ok {
		note = t.signed
		w.store.Witnessed(t.cp.Size, func(size uint64, signed []byte) bool {
			if size == t.cp.Size {
				note = bytes.Clone(signed)
			}
			return false
		})
	}
	note = tlog.AddSignatureLines(note, line)
	w.recent[t.cp.Size] = note
	for len(w.recent) > maxRecent {
		delete(w.recent, slices.Min(slices.Collect(maps.Keys(w.recent))))
	}
	if t.cp.Size >= w.latest.cp.Size {
		w.latest = witnessTarget{cp: t.cp, signed: note}
	}
	close(w.changed)
	w.changed = make(chan struct{})
}

// persist writes the notes in recent to the store and forgets those not
// changed meanwhile. Concurrent callers share the writes: the second waits
// for the first and usually finds nothing left to write.
func (w *witnessing) persist() error {
	w.storeMu.Lock()
	defer w.storeMu.Unlock()
	w.mu.Lock()
	pending := maps.Clone(w.recent)
	w.mu.Unlock()
	for _, size := range slices.Sorted(maps.Keys(pending)) {
		if err := w.store.PutWitnessed(size, pending[size]); err != nil {
			return err
		}
		w.mu.Lock()
		if bytes.Equal(w.recent[size], pending[size]) {
			delete(w.recent, size)
		}
		w.mu.Unlock()
	}
	return nil
}

// cosignatures counts the signature lines of configured witnesses in a
// stored note (verified before they were stored).
func (w *witnessing) cosignatures(signed []byte) int {
	_, lines, err := tlog.SplitNote(signed)
	if err != nil {
		return 0
	}
	n := 0
	for _, ww := range w.workers {
		for _, l := range lines {
			if l.Name == ww.sub.Verifier.Name() && l.KeyHash == ww.sub.Verifier.KeyHash() {
				n++
				break
			}
		}
	}
	return n
}

// maxWitnessedScan bounds the stored notes one request looks through.
const maxWitnessedScan = 4096

// find returns the first note covering index (size > index) with at least
// k cosignatures, stored or not yet; index < 0 asks for the latest note.
func (w *witnessing) find(index int64, k int) ([]byte, <-chan struct{}) {
	w.mu.Lock()
	changed, latest, recent := w.changed, w.latest, maps.Clone(w.recent)
	w.mu.Unlock()
	if index < 0 {
		// Another frontend may have stored a later one.
		if size, signed, err := w.store.LatestWitnessed(); err == nil && size > latest.cp.Size {
			latest.signed = signed
		}
		if latest.signed != nil && w.cosignatures(latest.signed) >= k {
			return latest.signed, changed
		}
		return nil, changed
	}
	// Not yet stored: the newest version of its size, so it wins a tie.
	var found []byte
	var foundSize uint64
	for size, signed := range recent {
		if size > uint64(index) && (found == nil || size < foundSize) && w.cosignatures(signed) >= k {
			found, foundSize = signed, size
		}
	}
	scanned := 0
	w.store.Witnessed(uint64(index)+1, func(size uint64, signed []byte) bool {
		if found != nil && size >= foundSize {
			return false
		}
		scanned++
		if w.cosignatures(signed) >= k {
			found = bytes.Clone(signed)
			return false
		}
		return scanned < maxWitnessedScan
	})
	return found, changed
}

// PathWitnessed serves cosigned checkpoints:
//
//	GET /log/v1/witnessed                       the latest cosigned checkpoint
//	GET /log/v1/witnessed?index=I               the first cosigned checkpoint that includes entry I
//	    [&cosignatures=K]                       … with at least K cosignatures (default 1)
//	    [&wait=D]                               waiting up to D (at most 30s) for it
//
// The answer is the signed note (the log's signature and the cosignatures),
// or 404.
const PathWitnessed = "/log/v1/witnessed"

const maxWitnessWait = 30 * time.Second

func (w *witnessing) serveWitnessed(rw http.ResponseWriter, r *http.Request) {
	if len(w.workers) == 0 {
		httpapi.WriteError(rw, "this log has no witnesses", http.StatusNotFound)
		return
	}
	q := r.URL.Query()
	index, k := int64(-1), 1
	var wait time.Duration
	bad := func(msg string) { httpapi.WriteError(rw, msg, http.StatusBadRequest) }
	if s := q.Get("index"); s != "" {
		n, err := strconv.ParseUint(s, 10, 63)
		if err != nil {
			bad("index must be a non-negative decimal number")
			return
		}
		index = int64(n)
	}
	if s := q.Get("cosignatures"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > len(w.workers) {
			bad(fmt.Sprintf("cosignatures must be 1 to %d, the witnesses configured", len(w.workers)))
			return
		}
		k = n
	}
	if s := q.Get("wait"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d < 0 || d > maxWitnessWait {
			bad("wait must be a duration up to 30s")
			return
		}
		wait = d
	}
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	// Cosignatures received by another frontend (the sequencer) reach this
	// one through the store only: look again each period.
	recheck := time.NewTicker(w.period)
	defer recheck.Stop()
	for {
		found, changed := w.find(index, k)
		if found != nil {
			rw.Header().Set("Content-Type", "text/plain; charset=utf-8")
			rw.Header().Set("Cache-Control", "no-store")
			rw.Write(found)
			return
		}
		select {
		case <-changed:
		case <-recheck.C:
		case <-deadline.C:
			httpapi.WriteError(rw, "no cosigned checkpoint yet", http.StatusNotFound)
			return
		case <-r.Context().Done():
			return
		}
	}
}

// serveCheckpoint serves the latest checkpoint, with every cosignature
// received for exactly that checkpoint.
func (w *witnessing) serveCheckpoint(rw http.ResponseWriter, r *http.Request) {
	h := w.log.Head()
	out := h.Checkpoint
	w.mu.Lock()
	if w.latest.cp.Size == h.Size && w.latest.signed != nil && bytes.HasPrefix(w.latest.signed, h.Checkpoint) {
		out = w.latest.signed
	}
	w.mu.Unlock()
	rw.Header().Set("Content-Type", "text/plain; charset=utf-8")
	rw.Header().Set("Cache-Control", "no-store")
	rw.Write(out)
}

// writeMetrics appends the per-witness metrics.
func (w *witnessing) writeMetrics(out io.Writer) {
	family := func(name, typ, help string, value func(*witnessWorker) any) {
		fmt.Fprintf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, typ)
		for _, ww := range w.workers {
			fmt.Fprintf(out, "%s{witness=%q} %v\n", name, ww.cfg.Name, value(ww))
		}
	}
	family("evident_witness_last_success_timestamp_seconds", "gauge", "When the witness last cosigned (Unix time; 0: never since start).",
		func(ww *witnessWorker) any { return ww.lastSuccess.Load() })
	family("evident_witness_failures_total", "counter", "Submissions to the witness that failed.",
		func(ww *witnessWorker) any { return ww.failures.Load() })
	family("evident_witness_inconsistent_total", "counter", "Checkpoints the witness refused as inconsistent with a tree it cosigned (split view or rollback).",
		func(ww *witnessWorker) any { return ww.refusals.Load() })
	family("evident_witness_cosigned_tree_size", "gauge", "The latest tree size the witness cosigned.",
		func(ww *witnessWorker) any { return ww.cosignedSize.Load() })
}

// noteText returns the text of a signed note (up to the blank line).
func noteText(signed []byte) []byte {
	i := bytes.LastIndex(signed, []byte("\n\n"))
	if i < 0 {
		return signed
	}
	return signed[:i+1]
}
