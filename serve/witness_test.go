package serve

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/evident-dev/evident/internal/logtest"
	"github.com/evident-dev/evident/log"
	"github.com/evident-dev/evident/tlog"
	"github.com/evident-dev/evident/witness"
	"github.com/evident-dev/evident/witness/witnesstest"
)

type witnessedServer struct {
	*Server
	t    *testing.T
	ws   []*witnesstest.Witness
	logs *syncBuffer
	m    *minter
}

// openWitnessed opens a server in dir whose log the test witnesses ws
// know, submitting to them every 5ms. Entries are real and verified at ingest.
func openWitnessed(t *testing.T, dir string, ws []*witnesstest.Witness, urls []string) *witnessedServer {
	t.Helper()
	_, vkey, err := loadOrCreateNoteKey(DataDir(dir), "")
	if err != nil {
		t.Fatal(err)
	}
	var cfgs []WitnessConfig
	for i, w := range ws {
		if err := w.AddLog(vkey); err != nil {
			t.Fatal(err)
		}
		cfgs = append(cfgs, WitnessConfig{Name: w.Verifier().Name(), URL: urls[i], VerifierKey: w.VerifierKey()})
	}
	buf := &syncBuffer{}
	s, err := Open(Config{DataDir: dir, Addr: "127.0.0.1:0", Logger: slog.New(slog.NewTextHandler(buf, nil)),
		Witnesses: cfgs, WitnessPeriod: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	return &witnessedServer{Server: s, t: t, ws: ws, logs: buf, m: newMinter(t, s)}
}

// add appends a real entry and returns its index; tag names it in failures.
func (s *witnessedServer) add(tag string) uint64 {
	s.t.Helper()
	res, err := s.Log.Add(context.Background(), s.m.entry(s.t))
	if err != nil {
		s.t.Fatal(err)
	}
	return res.Index
}

// witnessed long-polls the first checkpoint covering index with k
// cosignatures.
func (s *witnessedServer) witnessed(index uint64, k int, wait string) (int, []byte) {
	s.t.Helper()
	resp, err := http.Get(s.URL() + PathWitnessed + "?index=" + itoa(index) + "&cosignatures=" + itoa(uint64(k)) + "&wait=" + wait)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func (s *witnessedServer) get(path string) string {
	s.t.Helper()
	resp, err := http.Get(s.URL() + path)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func itoa(n uint64) string { return strconv.FormatUint(n, 10) }

func verifiers(ws []*witnesstest.Witness) []*tlog.CosignatureVerifier {
	var out []*tlog.CosignatureVerifier
	for _, w := range ws {
		out = append(out, w.Verifier())
	}
	return out
}

// TestWitnessing: A2, K2, L6. Two witnesses cosign the log's checkpoints;
// one goes down and the log keeps appending, its checkpoints carrying one
// cosignature, the failures counted in /metrics; it comes back and cosigns
// again. Then the log's store is rolled back to an old backup and grows
// another tree: both witnesses refuse it, and the server says so in its log
// and its metrics.
func TestWitnessing(t *testing.T) {
	ws := []*witnesstest.Witness{witnesstest.New("witness.test/w1"), witnesstest.New("witness.test/w2")}
	var urls []string
	for _, w := range ws {
		srv := httptest.NewServer(w)
		t.Cleanup(srv.Close)
		urls = append(urls, srv.URL)
	}
	dir := t.TempDir()
	s := openWitnessed(t, dir, ws, urls)
	idx := s.add("first")
	code, note := s.witnessed(idx, 2, "10s")
	if code != 200 {
		t.Fatalf("witnessed(%d, 2) = %d %s", idx, code, note)
	}
	valid, _, err := tlog.VerifyCosignatures(note, verifiers(ws))
	if err != nil || len(valid) != 2 {
		t.Fatalf("cosignatures on the witnessed checkpoint = %v, %v; want 2", valid, err)
	}
	if _, err := tlog.OpenCheckpoint(note, s.Origin(), s.Verifier); err != nil {
		t.Fatalf("the witnessed note is not the log's checkpoint: %v", err)
	}
	// The published checkpoint carries them, for exactly that checkpoint.
	if cp := s.get("/log/checkpoint"); cp != string(note) {
		t.Errorf("/log/checkpoint = %q, want the cosigned note %q", cp, note)
	}
	var backup bytes.Buffer
	if _, err := s.store.Backup(&backup); err != nil {
		t.Fatal(err)
	}

	// w2 down: the log appends; checkpoints get w1's cosignature only.
	w2failed := make(chan struct{}, 1)
	failHook := func(name string, err error) {
		if name == ws[1].Verifier().Name() && err != nil {
			select {
			case w2failed <- struct{}{}:
			default:
			}
		}
	}
	s.witness.testHookResult.Store(&failHook)
	ws[1].SetDown(true)
	idx = s.add("second")
	if code, _ := s.witnessed(idx, 1, "10s"); code != 200 {
		t.Fatalf("with w2 down, witnessed(%d, 1) = %d", idx, code)
	}
	if code, _ := s.witnessed(idx, 2, "50ms"); code != 404 {
		t.Errorf("with w2 down, witnessed(%d, 2) = %d, want 404", idx, code)
	}
	// w1's cosignature does not say w2's worker has failed yet: on a loaded
	// machine its goroutine may not have run. Wait for the failure itself.
	select {
	case <-w2failed:
	case <-time.After(20 * time.Second):
		t.Fatal("w2, down, was not tried within 20s")
	}
	s.witness.testHookResult.Store(nil)
	if m := s.get("/metrics"); !strings.Contains(m, `evident_witness_failures_total{witness="witness.test/w2"}`) ||
		strings.Contains(m, `evident_witness_failures_total{witness="witness.test/w2"} 0`) {
		t.Errorf("metrics do not count w2's failures:\n%s", m)
	}
	ws[1].SetDown(false)
	idx = s.add("third")
	if code, _ := s.witnessed(idx, 2, "20s"); code != 200 {
		t.Fatalf("w2 back: witnessed(%d, 2) = %d", idx, code)
	}
	if m := s.get("/metrics"); !strings.Contains(m, `evident_witness_cosigned_tree_size{witness="witness.test/w2"} 3`) {
		t.Errorf("metrics lack w2's cosigned size 3:\n%s", m)
	}
	s.Close(context.Background())

	// Roll the store back to size 1 and grow another tree past size 3.
	if err := os.WriteFile(filepath.Join(dir, "log.db"), backup.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	s = openWitnessed(t, dir, ws, urls)
	defer s.Close(context.Background())
	refused := make(chan string, 16)
	hook := func(name string, err error) {
		if errors.Is(err, witness.ErrInconsistent) {
			select {
			case refused <- name:
			default:
			}
		}
	}
	s.witness.testHookResult.Store(&hook)
	for i := 0; i < 4; i++ {
		s.add("fork" + itoa(uint64(i)))
	}
	got := map[string]bool{}
	timeout := time.After(20 * time.Second)
	for len(got) < 2 {
		select {
		case n := <-refused:
			got[n] = true
		case <-timeout:
			t.Fatalf("witnesses refusing the forked tree: %v, want both (log size %d, w1 at %d)\n%s\n%s", got, s.Log.Head().Size, ws[0].Size(s.Origin()), s.logs.String(), s.get("/metrics"))
		}
	}
	if !strings.Contains(s.logs.String(), "split view") {
		t.Errorf("the server's log does not report the split view:\n%s", s.logs.String())
	}
	if m := s.get("/metrics"); strings.Contains(m, `evident_witness_inconsistent_total{witness="witness.test/w1"} 0`) {
		t.Errorf("metrics do not count the refusal:\n%s", m)
	}
	// The witness keeps the tree it saw; whether it refused a proof or the
	// submitter saw first that the witness is ahead of the forked log, the
	// outcome is ErrInconsistent (checked above) and no cosignature.
	if ws[0].Size(s.Origin()) != 3 {
		t.Errorf("w1 is at size %d, want 3", ws[0].Size(s.Origin()))
	}
}

func TestParseWitness(t *testing.T) {
	w := witnesstest.New("witness.test/w1")
	good := "witness.test/w1=http://127.0.0.1:7380," + w.VerifierKey()
	if c, err := ParseWitness(good); err != nil || c.URL != "http://127.0.0.1:7380" {
		t.Errorf("ParseWitness(%q) = %+v, %v", good, c, err)
	}
	for _, bad := range []string{"", "w", "witness.test/w1=http://x", "other=http://127.0.0.1:1," + w.VerifierKey(),
		"witness.test/w1=ftp://x," + w.VerifierKey(), "witness.test/w1=http://x,junk"} {
		if _, err := ParseWitness(bad); err == nil {
			t.Errorf("ParseWitness(%q) = nil error", bad)
		}
	}
}

// witnessOf serves a test witness that knows the log l, until the test
// ends, and returns it with its configuration.
func witnessOf(t *testing.T, l *logtest.Log) (*witnesstest.Witness, []WitnessConfig) {
	t.Helper()
	w := witnesstest.New("witness.test/w1")
	if err := w.AddLog(l.VerifierKey); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(w)
	t.Cleanup(srv.Close)
	return w, []WitnessConfig{{Name: w.Verifier().Name(), URL: srv.URL, VerifierKey: w.VerifierKey()}}
}

// slowWitnessed is a WitnessedStore whose writes wait until release is
// closed, as a disk busy with the log's commits does.
type slowWitnessed struct {
	log.Store
	log.WitnessedMemory
	release chan struct{}
}

func (s *slowWitnessed) PutWitnessed(size uint64, signed []byte) error {
	<-s.release
	return s.WitnessedMemory.PutWitnessed(size, signed)
}

// TestCosignatureServedBeforeStored: a cosigned checkpoint is served to
// waiting clients and on /log/checkpoint as soon as the witness answers,
// not after the store's write (S1: a slow disk holds up no read), and it
// is stored once the store takes it.
func TestCosignatureServedBeforeStored(t *testing.T) {
	l := logtest.Open(t, "log.test/slow")
	w, cfgs := witnessOf(t, l)
	store := &slowWitnessed{release: make(chan struct{})}
	wi, err := newWitnessing(l.Log, store, cfgs, 5*time.Millisecond, slog.New(slog.NewTextHandler(io.Discard, nil)), time.Now)
	if err != nil {
		t.Fatal(err)
	}
	wi.start()
	released := false
	defer func() {
		if !released {
			close(store.release)
		}
		wi.close()
	}()
	res, err := l.Add(context.Background(), []byte("entry"))
	if err != nil {
		t.Fatal(err)
	}
	found, changed := wi.find(int64(res.Index), 1)
	for deadline := time.After(10 * time.Second); found == nil; found, changed = wi.find(int64(res.Index), 1) {
		select {
		case <-changed:
		case <-deadline:
			t.Fatal("no cosigned checkpoint while the store's write is pending")
		}
	}
	if valid, _, _ := tlog.VerifyCosignatures(found, []*tlog.CosignatureVerifier{w.Verifier()}); len(valid) != 1 {
		t.Fatalf("served note %q has %d cosignatures, want 1", found, len(valid))
	}
	rec := httptest.NewRecorder()
	wi.serveCheckpoint(rec, httptest.NewRequest("GET", "/log/checkpoint", nil))
	if rec.Body.String() != string(found) {
		t.Errorf("/log/checkpoint = %q, want the cosigned note %q", rec.Body.String(), found)
	}
	close(store.release)
	released = true
	for i := 0; ; i++ {
		if size, signed, err := store.LatestWitnessed(); err == nil && size == res.Index+1 && bytes.Equal(signed, found) {
			break
		}
		if i == 1000 {
			t.Fatal("the cosigned checkpoint was not stored once the store took writes")
		}
		time.Sleep(10 * time.Millisecond) // until the worker's write returns
	}
}

func TestParseWitnessConfig(t *testing.T) {
	w1, w2 := witnesstest.New("witness.test/w1"), witnesstest.New("witness.test/w2")
	good := "# the log's witnesses\n\nwitness.test/w1=http://127.0.0.1:7380," + w1.VerifierKey() +
		"\n  witness.test/w2=https://w2.example/witness," + w2.VerifierKey() + "  \n"
	cs, err := ParseWitnessConfig([]byte(good))
	if err != nil || len(cs) != 2 || cs[0].Name != "witness.test/w1" || cs[1].URL != "https://w2.example/witness" {
		t.Fatalf("ParseWitnessConfig = %+v, %v", cs, err)
	}
	bad := good + "witness.test/w3=http://127.0.0.1:1," + w1.VerifierKey() + "\n"
	if _, err := ParseWitnessConfig([]byte(bad)); err == nil || !strings.HasPrefix(err.Error(), "line 5: witness witness.test/w3: its verifier key is named") {
		t.Errorf("ParseWitnessConfig(a key under another name) = %v, want an error naming line 5", err)
	}
	if _, err := ParseWitnessConfig(make([]byte, MaxWitnessConfig+1)); err == nil || !strings.Contains(err.Error(), "over the limit") {
		t.Errorf("ParseWitnessConfig(too big) = %v", err)
	}
}

func FuzzParseWitnessConfig(f *testing.F) {
	w := witnesstest.New("witness.test/w1")
	f.Add([]byte("witness.test/w1=http://127.0.0.1:7380," + w.VerifierKey() + "\n"))
	f.Add([]byte("# comment\n\nw=https://x/y,w+00000000+BA==\n"))
	f.Add([]byte("=,\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		cs, err := ParseWitnessConfig(b)
		if err != nil {
			return
		}
		for _, c := range cs {
			if err := c.check(); err != nil {
				t.Fatalf("ParseWitnessConfig accepted %+v: %v", c, err)
			}
			again, err := ParseWitness(c.Name + "=" + c.URL + "," + c.VerifierKey)
			if err != nil || again != c {
				t.Fatalf("%+v does not round-trip: %+v, %v", c, again, err)
			}
		}
	})
}

// TestIdleLogWitnessedAtOnce: an entry logged into a log that has been
// quiet for a period is submitted to the witnesses at once, not at the next
// tick of a period-long clock.
//
// The period is long (4s) so that "at once" (a 100ms poll and a local
// round trip) and "the next tick" (2s on average) stay apart on a loaded
// machine under -race: a one-second period, with its 600ms bound, failed
// whenever the append and the witness's answer took a little longer.
func TestIdleLogWitnessedAtOnce(t *testing.T) {
	w := witnesstest.New("witness.test/w1")
	srv := httptest.NewServer(w)
	defer srv.Close()
	dir := t.TempDir()
	_, vkey, err := loadOrCreateNoteKey(DataDir(dir), "")
	if err != nil {
		t.Fatal(err)
	}
	w.AddLog(vkey)
	s, err := Open(Config{DataDir: dir, Addr: "127.0.0.1:0", Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Witnesses:     []WitnessConfig{{Name: w.Verifier().Name(), URL: srv.URL, VerifierKey: w.VerifierKey()}},
		WitnessPeriod: idlePeriod})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	ws := &witnessedServer{Server: s, t: t, ws: []*witnesstest.Witness{w}, m: newMinter(t, s)}
	defer s.Close(context.Background())
	if code, _ := ws.witnessed(ws.add("first"), 1, "10s"); code != 200 {
		t.Fatalf("first entry not witnessed: %d", code)
	}
	time.Sleep(idlePeriod + 100*time.Millisecond) // a quiet period (wall clock: the worker's own)
	start := time.Now()
	idx := ws.add("after a quiet period")
	if code, _ := ws.witnessed(idx, 1, "10s"); code != 200 {
		t.Fatalf("entry %d not witnessed: %d", idx, code)
	}
	// The poll is 100ms and the witness answers in microseconds; a clock
	// ticking every period would take half a period on average.
	if d := time.Since(start); d > idlePeriod/2 {
		t.Errorf("an entry into an idle log was witnessed after %v, want about a 100ms poll, far less than half the %v period", d, idlePeriod)
	}
}

// idlePeriod is TestIdleLogWitnessedAtOnce's witness period.
const idlePeriod = 4 * time.Second

func TestNextBackoff(t *testing.T) {
	for _, c := range []struct{ prev, period, want time.Duration }{
		{0, time.Second, time.Second},
		{time.Second, time.Second, 2 * time.Second},
		{4 * time.Second, time.Second, 8 * time.Second},
		{8 * time.Second, time.Second, 8 * time.Second},
		{20 * time.Second, 10 * time.Second, 30 * time.Second},
	} {
		if got := nextBackoff(c.prev, c.period); got != c.want {
			t.Errorf("nextBackoff(%v, %v) = %v, want %v", c.prev, c.period, got, c.want)
		}
	}
}

// TestWitnessDownBacksOff: A2. A witness that answers 503 is tried less
// and less often, and one that never answers is given up on at the
// client's timeout; neither slows the log's appends; the first cosigns
// again within 8 periods of coming back.
func TestWitnessDownBacksOff(t *testing.T) {
	down := witnesstest.New("witness.test/down")
	down.SetDown(true)
	downSrv := httptest.NewServer(down)
	defer downSrv.Close()
	hang := make(chan struct{})
	hangSrv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { <-hang }))
	defer hangSrv.Close()
	defer close(hang)
	silent := witnesstest.New("witness.test/silent") // its URL is hangSrv's
	dir := t.TempDir()
	s := openWitnessed(t, dir, []*witnesstest.Witness{down, silent}, []string{downSrv.URL, hangSrv.URL})
	defer s.Close(context.Background())
	start := time.Now()
	for i := 0; i < 20; i++ {
		s.add("while the witnesses are away")
		time.Sleep(30 * time.Millisecond) // 6 periods, so there is always a new checkpoint
	}
	elapsed := time.Since(start)
	if elapsed > 5*time.Second {
		t.Errorf("20 appends took %v with the witnesses away", elapsed)
	}
	// Without backoff the down witness would be tried every 5ms period,
	// over a hundred times; with it, once per 8 periods at most.
	if n := down.Calls(); n > int(elapsed/(8*5*time.Millisecond))+8 {
		t.Errorf("the down witness was tried %d times in %v, want at most about one per 8 periods", n, elapsed)
	}
	t.Logf("the down witness was tried %d times in %v", down.Calls(), elapsed)
	down.SetDown(false)
	idx := s.add("back")
	if code, _ := s.witnessed(idx, 1, "10s"); code != 200 {
		t.Fatalf("the witness back up did not cosign: %d", code)
	}
}

// sharedWitnessed is a log store whose witnessed checkpoints several
// frontends share, as they share a PostgreSQL database.
type sharedWitnessed struct {
	log.Store
	*log.WitnessedMemory
}

// TestFollowerCheckpointCarriesCosignatures: A2, H1. A follower frontend
// submits nothing to the witnesses (only the sequencer does), but its
// /log/checkpoint carries the cosignatures the sequencer stored for that
// checkpoint, as the sequencer's own does, taken from the store once a
// period rather than on every request.
func TestFollowerCheckpointCarriesCosignatures(t *testing.T) {
	l := logtest.Open(t, "log.test/frontends")
	w, cfgs := witnessOf(t, l)
	store := sharedWitnessed{WitnessedMemory: &log.WitnessedMemory{}}
	quiet := slog.New(slog.DiscardHandler)
	follower, err := newWitnessing(l.Log, store, cfgs, 5*time.Millisecond, quiet, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	follower.leading = func() bool { return false }
	follower.start()
	defer follower.close()
	if _, err := l.Add(context.Background(), []byte("entry")); err != nil {
		t.Fatal(err)
	}
	sequencer, err := newWitnessing(l.Log, store, cfgs, 5*time.Millisecond, quiet, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	sequencer.start()
	defer sequencer.close()
	checkpoint := func(wi *witnessing) []byte {
		rec := httptest.NewRecorder()
		wi.serveCheckpoint(rec, httptest.NewRequest("GET", "/log/checkpoint", nil))
		return rec.Body.Bytes()
	}
	deadline := time.After(20 * time.Second)
	for {
		follower.mu.Lock()
		changed := follower.changed
		follower.mu.Unlock()
		got := checkpoint(follower)
		if valid, _, _ := tlog.VerifyCosignatures(got, []*tlog.CosignatureVerifier{w.Verifier()}); len(valid) == 1 {
			if want := checkpoint(sequencer); !bytes.Equal(got, want) {
				t.Errorf("the follower's /log/checkpoint = %q, the sequencer's %q", got, want)
			}
			break
		}
		select {
		case <-changed:
		case <-deadline:
			t.Fatalf("the follower's /log/checkpoint has no cosignature after 20s: %q", got)
		}
	}
	if w.Calls() != 1 {
		t.Errorf("the witness was called %d times, want once (by the sequencer only)", w.Calls())
	}
}
