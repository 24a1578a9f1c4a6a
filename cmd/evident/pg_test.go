package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	mrand "math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/evident-dev/evident"
	"github.com/evident-dev/evident/internal/pgtest"
	"github.com/evident-dev/evident/log"
	"github.com/evident-dev/evident/log/logclient"
	"github.com/evident-dev/evident/pgstore"
	"github.com/evident-dev/evident/tlog"
	"github.com/evident-dev/evident/witness/witnesstest"
	"github.com/jackc/pgx/v5"
	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"
)

// frontends is a group of evident serve processes on one PostgreSQL
// database, each in a copy of one data directory.
type frontends struct {
	t     *testing.T
	url   string
	dirs  []string
	mu    sync.Mutex
	procs []*server // nil while down
}

func startFrontends(t *testing.T, url string, n int) *frontends {
	f := &frontends{t: t, url: url, procs: make([]*server, n)}
	first := t.TempDir()
	f.dirs = append(f.dirs, first)
	f.procs[0] = startServer(t, first, "--store", url)
	for i := 1; i < n; i++ {
		d := t.TempDir()
		copyDataDir(t, first, d)
		f.dirs = append(f.dirs, d)
		f.procs[i] = startServer(t, d, "--store", url)
	}
	return f
}

// copyDataDir copies keys and the TUF repository: what all frontends of
// one log share. The log itself is in the database.
func copyDataDir(t *testing.T, from, to string) {
	t.Helper()
	err := filepath.WalkDir(from, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		if rel == "links.db" || rel == "." {
			return nil
		}
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(to, rel), 0o700)
		}
		if !d.Type().IsRegular() {
			return nil // the admin socket
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(to, rel), b, 0o600)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func (f *frontends) get(i int) *server {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.procs[i]
}

func (f *frontends) set(i int, s *server) {
	f.mu.Lock()
	f.procs[i] = s
	f.mu.Unlock()
}

// metrics returns the named sample of a frontend's /metrics ("" if absent
// or unreachable).
func metricLine(s *server, prefix string) string {
	c := &http.Client{Timeout: time.Second}
	resp, err := c.Get(s.url + "/metrics")
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if l := sc.Text(); strings.HasPrefix(l, prefix) {
			return l
		}
	}
	return ""
}

func isSequencer(s *server) bool {
	return strings.HasSuffix(metricLine(s, "evident_log_sequencer{"), " 1")
}

// leader waits until exactly one running frontend (other than not) says it
// sequences, and returns its slot and how long that took.
//
// The frontends are asked one after another, not at one instant: the first
// may answer just before its lease runs out (a loaded machine can delay
// its renewal past the lease's life) and the next just after it took
// over. Two such answers are no split brain (a frontend says it sequences
// only until its lease's end by its own clock, and the fence, checked by
// the ledger, keeps commits apart), so they are asked again, and only two
// that persist for the whole wait fail.
func (f *frontends) leader(not int, within time.Duration) (int, time.Duration) {
	f.t.Helper()
	t0 := time.Now()
	for {
		var found []int
		for i := range f.procs {
			if s := f.get(i); s != nil && i != not && isSequencer(s) {
				found = append(found, i)
			}
		}
		if len(found) == 1 {
			return found[0], time.Since(t0)
		}
		if time.Since(t0) > within {
			if len(found) > 1 {
				f.t.Fatalf("frontends %v all say they sequence, for %v", found, within)
			}
			f.t.Fatalf("no frontend took over as sequencer within %v", within)
		}
		time.Sleep(20 * time.Millisecond) // polling other processes
	}
}

// ledger is what the appenders were told.
type ledger struct {
	mu          sync.Mutex
	byIndex     map[uint64][]byte
	byEntry     map[string]uint64
	checkpoints map[uint64][]byte // size → signed checkpoint seen by a client
	failures    int
}

func (l *ledger) ack(t *testing.T, e []byte, res *log.AddResult) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if prev, ok := l.byIndex[res.Index]; ok && !bytes.Equal(prev, e) {
		t.Errorf("index %d acknowledged for two different entries", res.Index)
	}
	if prev, ok := l.byEntry[string(e)]; ok && prev != res.Index {
		t.Errorf("one entry acknowledged at indices %d and %d", prev, res.Index)
	}
	l.byIndex[res.Index] = e
	l.byEntry[string(e)] = res.Index
	l.checkpoints[res.Size] = res.Checkpoint
}

func (l *ledger) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.byIndex)
}

// TestFailoverUnderLoad covers H1, L1 and L3 with real processes: three
// evident serve frontends on one PostgreSQL, 64 appenders spread over them.
// The sequencer is SIGKILLed at random moments, several rounds, and another
// must take over (within 10s; about 3.5s on a quiet machine); then it is
// paused (SIGSTOP) until a successor has committed, and resumed; then PostgreSQL is restarted (fast, then
// immediate) under load. Afterwards fsck is clean, the root recomputed
// from the entries equals the last signed checkpoint, every checkpoint a
// client was given is a prefix of the final log, and every acknowledged
// entry is at its index, once.
func TestFailoverUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL and three servers")
	}
	pg := pgtest.Start(t)
	if err := pg.CreateDatabase("evident"); err != nil {
		t.Fatal(err)
	}
	url := pg.URL("evident")
	f := startFrontends(t, url, 3)
	verifier := f.get(0).verifier
	seed := time.Now().UnixNano()
	t.Logf("seed %d", seed)
	rng := mrand.New(mrand.NewPCG(uint64(seed), 0))

	led := &ledger{byIndex: map[uint64][]byte{}, byEntry: map[string]uint64{}, checkpoints: map[uint64][]byte{}}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	httpc := &http.Client{Timeout: 20 * time.Second}
	for w := 0; w < 64; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			minters := map[string]*minter{}
			for n := 0; ; n++ {
				var e []byte
				// Mint, then append until acknowledged, on any frontend.
				for try := 0; ; try++ {
					select {
					case <-stop:
						return
					default:
					}
					s := f.get((w + try) % 3)
					if s == nil {
						continue
					}
					if e == nil {
						m := minters[s.url]
						if m == nil {
							m = newMinter(t, f.dirs[0], s.url)
							m.tsa.HTTP = httpc
							minters[s.url] = m
						}
						if e = m.entry(w, n); e == nil {
							continue
						}
					}
					c := s.client()
					c.HTTP = httpc
					res, err := c.Add(context.Background(), e)
					if err != nil {
						var he *logclient.HTTPError
						if errors.As(err, &he) && he.Status < 500 {
							t.Errorf("append answered %v", err)
							return
						}
						led.mu.Lock()
						led.failures++
						led.mu.Unlock()
						time.Sleep(20 * time.Millisecond) // back off before retrying a server that failed
						continue
					}
					led.ack(t, e, res)
					break
				}
			}
		}()
	}
	waitAcks := func(more int, within time.Duration) {
		t.Helper()
		want := led.count() + more
		deadline := time.Now().Add(within)
		for led.count() < want {
			if time.Now().After(deadline) {
				t.Fatalf("appends did not resume: %d acknowledged, want %d within %v", led.count(), want, within)
			}
			time.Sleep(20 * time.Millisecond) // waiting on other processes
		}
	}
	waitAcks(100, 60*time.Second)

	// SIGKILL the sequencer at random moments.
	for round := 0; round < 3; round++ {
		lead, _ := f.leader(-1, 10*time.Second)
		time.Sleep(time.Duration(100+rng.IntN(900)) * time.Millisecond) // a random moment
		killed := f.get(lead)
		killed.kill9(t)
		f.set(lead, nil)
		// The lease lasts 3s, so a successor takes over in about 3.5s
		// (logged below); the bound leaves a loaded machine room.
		next, took := f.leader(lead, 10*time.Second)
		t.Logf("round %d: killed frontend %d; frontend %d took over in %v; %d acknowledged", round, lead, next, took.Round(time.Millisecond), led.count())
		waitAcks(50, 30*time.Second)
		f.set(lead, startServer(t, f.dirs[lead], "--store", url))
	}

	// SIGSTOP the sequencer until a successor has committed, then resume it.
	lead, _ := f.leader(-1, 10*time.Second)
	paused := f.get(lead)
	if err := paused.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	f.set(lead, nil)
	// The paused sequencer may hold the head row's lock inside a commit:
	// the database ends that transaction after its statement or idle
	// timeout, then the lease expires.
	next, took := f.leader(lead, 20*time.Second)
	waitAcks(50, 30*time.Second)
	if err := paused.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	f.set(lead, paused)
	deadline := time.Now().Add(10 * time.Second)
	for isSequencer(paused) {
		if time.Now().After(deadline) {
			t.Fatal("the resumed former sequencer still says it sequences after 10s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("paused frontend %d; frontend %d took over in %v; after SIGCONT the former sequencer reports %q",
		lead, next, took.Round(time.Millisecond), metricLine(paused, "evident_log_commit_failures_total"))
	waitAcks(50, 30*time.Second)

	// Restart PostgreSQL under load: fast, then immediate shutdown.
	for _, mode := range []syscall.Signal{pgtest.Fast, pgtest.Immediate} {
		name := map[syscall.Signal]string{pgtest.Fast: "fast", pgtest.Immediate: "immediate"}[mode]
		before := led.count()
		if err := pg.Stop(mode); err != nil {
			t.Fatal(err)
		}
		// Let appends fail against the stopped database; the second outage
		// outlasts the lease, so the sequencer steps down and one is elected
		// again once the database is back.
		time.Sleep(map[syscall.Signal]time.Duration{pgtest.Fast: 500 * time.Millisecond, pgtest.Immediate: 4 * time.Second}[mode])
		if err := pg.Start(); err != nil {
			t.Fatal(err)
		}
		waitAcks(50, 60*time.Second)
		t.Logf("PostgreSQL restarted (%s shutdown): appends resumed; %d acknowledged (%d before)", name, led.count(), before)
	}

	close(stop)
	wg.Wait()
	t.Logf("%d appends acknowledged, %d failed attempts retried", led.count(), led.failures)

	// /metrics: every frontend names the same term, at least one per
	// takeover (three kills and a pause), and the frontend that was paused
	// counts the failover it slept through.
	lead, _ = f.leader(-1, 10*time.Second)
	want := metricLine(f.get(lead), "evident_log_sequencer_term ")
	var term int
	if _, err := fmt.Sscanf(want, "evident_log_sequencer_term %d", &term); err != nil || term < 5 {
		t.Errorf("sequencer's %q, want a term of at least 5", want)
	}
	for i := range f.procs {
		deadline := time.Now().Add(5 * time.Second)
		for metricLine(f.get(i), "evident_log_sequencer_term ") != want && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond) // a follower learns the term at its next poll
		}
		if got := metricLine(f.get(i), "evident_log_sequencer_term "); got != want {
			t.Errorf("frontend %d: %q, the sequencer %q", i, got, want)
		}
	}
	if got := metricLine(paused, "evident_log_failovers_total "); got == "" || strings.HasSuffix(got, " 0") {
		t.Errorf("the paused frontend's %q, want at least 1", got)
	}

	// Immutable tiles are served with long-lived caching by any frontend.
	for i := range f.procs {
		resp, err := http.Get(f.get(i).url + "/log/tile/0/000")
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if cc := resp.Header.Get("Cache-Control"); resp.StatusCode != 200 || !strings.Contains(cc, "immutable") {
			t.Errorf("frontend %d: full tile answered %d, Cache-Control %q", i, resp.StatusCode, cc)
		}
	}

	vkey := filepath.Join(f.dirs[0], "log.vkey")
	stdout, stderr, code := runCLI(t, nil, "log", "fsck", "--store", url, "--log-key", vkey)
	if code != 0 || !strings.HasPrefix(stdout, "ok: ") {
		t.Fatalf("fsck --store = %d\n%s%s", code, stdout, stderr)
	}
	store, err := pgstore.OpenLog(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	snap, err := store.Snapshot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer snap.Close()
	h, err := log.Check(snap, verifier.Name(), verifier)
	if err != nil {
		t.Fatalf("Check: %v", err)
	}
	entries, err := snap.Entries(0, int(h.Size))
	if err != nil {
		t.Fatal(err)
	}
	for idx, e := range led.byIndex {
		if idx >= h.Size || !bytes.Equal(entries[idx], e) {
			t.Fatalf("acknowledged entry %d lost or changed (size %d)", idx, h.Size)
		}
	}
	// Every checkpoint a client was given is a prefix of the final log.
	rf := &compact.RangeFactory{Hash: rfc6962.DefaultHasher.HashChildren}
	cr := rf.NewEmptyRange(0)
	for i, e := range entries {
		cr.Append(rfc6962.DefaultHasher.HashLeaf(e), nil)
		if signed, ok := led.checkpoints[uint64(i)+1]; ok {
			cp, err := log.OpenCheckpoint(signed, verifier.Name(), verifier)
			if err != nil {
				t.Fatal(err)
			}
			root, _ := cr.GetRootHash(nil)
			if !bytes.Equal(root, cp.Hash[:]) {
				t.Fatalf("a client was given a checkpoint of size %d that is not a prefix of the final log", cp.Size)
			}
		}
	}
	t.Logf("final tree size %d: fsck clean, %d acknowledged entries at their indices, %d distinct checkpoints are prefixes",
		h.Size, len(led.byIndex), len(led.checkpoints))
}

// TestPostgresBadInput covers L7 and H1: bad appends get the same answers
// from a PostgreSQL leader, from a follower (which forwards them) and from
// a bbolt server; duplicates get their first index back.
func TestPostgresBadInput(t *testing.T) {
	pg := pgtest.Start(t)
	if err := pg.CreateDatabase("evident"); err != nil {
		t.Fatal(err)
	}
	f := startFrontends(t, pg.URL("evident"), 2)
	boltDir := t.TempDir()
	copyDataDir(t, f.dirs[0], boltDir)
	bolt := startServer(t, boltDir)
	lead, _ := f.leader(-1, 10*time.Second)
	follower := f.get(1 - lead)
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(metricLine(follower, "evident_log_sequencer_info"), fmt.Sprintf("addr=%q", f.get(lead).url)) {
		if time.Now().After(deadline) {
			t.Fatal("the follower did not learn the sequencer's address within 10s")
		}
		time.Sleep(20 * time.Millisecond) // polling another process
	}
	m := newMinter(t, f.dirs[0], follower.url)
	good := m.mustEntry(t, 0, 0)
	type answer struct {
		status int
		body   string
	}
	post := func(s *server, body []byte, hdr map[string]string) answer {
		status, b := postEntry(t, s, body, hdr)
		return answer{status, b}
	}
	for _, c := range []struct {
		name string
		body []byte
		hdr  map[string]string
		want int
	}{
		{"10 MiB", bytes.Repeat([]byte("a"), 10<<20), nil, 413},
		{"one byte over", bytes.Repeat([]byte("a"), log.MaxEntrySize+1), nil, 413},
		{"gzip", good, map[string]string{"Content-Encoding": "gzip"}, 415},
		{"null fields", []byte(`{"payload_type":null}`), nil, 400},
		{"not JSON", []byte("\x00\xff"), nil, 400},
		{"empty", nil, nil, 400},
		{"deeply nested", bytes.Repeat([]byte("["), 60000), nil, 400},
	} {
		want := post(bolt, c.body, c.hdr)
		if want.status != c.want {
			t.Errorf("%s: bbolt server answered %d, want %d", c.name, want.status, c.want)
		}
		for _, s := range []*server{f.get(lead), follower} {
			if got := post(s, c.body, c.hdr); got != want {
				t.Errorf("%s: PostgreSQL frontend answered %d %q, bbolt server %d %q", c.name, got.status, got.body, want.status, want.body)
			}
		}
	}
	first, err := follower.client().Add(context.Background(), good)
	if err != nil || first.Duplicate {
		t.Fatalf("Add through the follower = %+v, %v", first, err)
	}
	// The follower answers for the checkpoint the sequencer just signed.
	if _, err := follower.client().InclusionProof(context.Background(), first.Index, first.Size); err != nil {
		t.Errorf("follower's proof against the new checkpoint: %v", err)
	}
	for _, s := range []*server{follower, f.get(lead)} {
		again, err := s.client().Add(context.Background(), good)
		if err != nil || !again.Duplicate || again.Index != first.Index {
			t.Errorf("duplicate Add = %+v, %v, want index %d, duplicate", again, err, first.Index)
		}
	}
	// A request already forwarded once is not forwarded again.
	got := post(follower, good, map[string]string{"Evident-Forwarded-By": "another frontend"})
	if got.status != http.StatusServiceUnavailable {
		t.Errorf("forwarded request at a follower = %d %q, want 503", got.status, got.body)
	}
	if !strings.HasSuffix(metricLine(follower, "evident_log_forwarded_total"), " 9") {
		t.Errorf("follower's %q, want 9 forwarded (7 bad appends, 2 good)", metricLine(follower, "evident_log_forwarded_total"))
	}
}

// fsck inspects a database and never changes it: an empty database is
// reported as holding no log and stays empty (no schema created), and a
// schema from a newer evident is refused as it is.
func TestPostgresFsckInspectsOnly(t *testing.T) {
	pg := pgtest.Start(t)
	if err := pg.CreateDatabase("empty"); err != nil {
		t.Fatal(err)
	}
	url := pg.URL("empty")
	vkey := filepath.Join(t.TempDir(), "log.vkey")
	_, v, err := note.GenerateKey(nil, "example.org/log")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(vkey, []byte(v), 0o644); err != nil {
		t.Fatal(err)
	}
	_, stderr, code := runCLI(t, nil, "log", "fsck", "--store", url, "--log-key", vkey)
	if code != 1 || !strings.Contains(stderr, "no evident schema") {
		t.Errorf("fsck of an empty database = %d %q, want 1 and no evident schema", code, stderr)
	}
	if n := pgtest.Tables(t, url); n != 0 {
		t.Fatalf("fsck left %d tables in the empty database, want 0", n)
	}
	store, err := pgstore.OpenLog(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	store.Close()
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(context.Background(), "UPDATE evident_schema SET version = version + 1"); err != nil {
		t.Fatal(err)
	}
	_, stderr, code = runCLI(t, nil, "log", "fsck", "--store", url, "--log-key", vkey)
	if code != 1 || !strings.Contains(stderr, pgstore.ErrSchemaTooNew.Error()) {
		t.Errorf("fsck of a newer schema = %d %q, want 1 and %q", code, stderr, pgstore.ErrSchemaTooNew)
	}
}

// TestPostgresEd25519Ingest: serve's ingest is the same on PostgreSQL: a
// step signed with an Ed25519 key is logged with its payload, its
// signature checked over it before it is sequenced; the same entry posted
// with another payload is refused 400 naming the check.
func TestPostgresEd25519Ingest(t *testing.T) {
	pg := pgtest.Start(t)
	if err := pg.CreateDatabase("evident"); err != nil {
		t.Fatal(err)
	}
	f := startFrontends(t, pg.URL("evident"), 1)
	s := f.get(0)
	work := t.TempDir()
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	der, _ := x509.MarshalPKCS8PrivateKey(key)
	os.WriteFile(filepath.Join(work, "ed.pem"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600)
	run := cliRunner(t, work, "EVIDENT_SERVER="+s.url, "EVIDENT_LOG_KEY="+s.key)
	out := run(0, "run", "--step", "build", "--signing-key", "ed.pem", "--tsa-roots", filepath.Join(f.dirs[0], "tsa-chain.pem"), "--", "true")
	if !strings.Contains(out, "logged at index 0") {
		t.Fatalf("run with an Ed25519 key on PostgreSQL =\n%s", out)
	}
	bundles, _ := filepath.Glob(filepath.Join(work, "build.*.bundle.json"))
	if len(bundles) != 1 {
		t.Fatalf("bundles: %v", bundles)
	}
	b, _ := os.ReadFile(bundles[0])
	bundle, err := evident.ParseBundle(b)
	if err != nil {
		t.Fatal(err)
	}
	sub, _ := evident.NewSubmission(bundle.Entry, []byte(`{"_type":"link","name":"another"}`))
	body, _ := sub.Marshal()
	if status, answer := postEntry(t, s, body, nil); status != 400 || !strings.Contains(answer, "payload is not the entry's") {
		t.Errorf("the entry with another payload = %d %s, want 400 naming the payload", status, answer)
	}
}

// TestWitnessedFrontends: A2, K2, H1 with witnesses. Two frontends on one
// database, both configured with a witness: only the sequencer submits (a
// follower's head lags, and the witness ahead of it would look like a
// split view), the cosigned checkpoints are kept in the database, so the
// follower serves them too, and after the sequencer is killed its
// successor still proves when the first entry was witnessed, and goes on
// witnessing.
func TestWitnessedFrontends(t *testing.T) {
	pg := pgtest.Start(t)
	if err := pg.CreateDatabase("evident"); err != nil {
		t.Fatal(err)
	}
	url := pg.URL("evident")
	skey, vkey, err := note.GenerateKey(rand.Reader, "evident.test/frontends")
	if err != nil {
		t.Fatal(err)
	}
	w := witnesstest.New("witness.test/w1")
	if err := w.AddLog(vkey); err != nil {
		t.Fatal(err)
	}
	wsrv := httptest.NewServer(w)
	defer wsrv.Close()
	args := []string{"--store", url, "--witness", w.Verifier().Name() + "=" + wsrv.URL + "," + w.VerifierKey(), "--witness-period", "100ms"}
	f := &frontends{t: t, url: url, procs: make([]*server, 2)}
	for i := range f.procs {
		d := t.TempDir()
		os.WriteFile(filepath.Join(d, "log.key"), []byte(skey+"\n"), 0o600)
		os.WriteFile(filepath.Join(d, "log.vkey"), []byte(vkey+"\n"), 0o644)
		if i > 0 {
			copyDataDir(t, f.dirs[0], d)
		}
		f.dirs = append(f.dirs, d)
		f.procs[i] = startServer(t, d, args...)
	}
	lead, _ := f.leader(-1, 10*time.Second)
	follower := 1 - lead
	m := newMinter(t, f.dirs[0], f.get(lead).url)
	// The checkpoints are compared by their text: a witness cosigns the same
	// checkpoint again, with a newer timestamp, each period the log is
	// quiet, so two frontends may serve one checkpoint with cosignatures
	// a period apart. Each cosignature is verified.
	witnessed := func(s *server, index uint64) string {
		t.Helper()
		b := getURL(t, fmt.Sprintf("%s/log/v1/witnessed?index=%d&cosignatures=1&wait=10s", s.url, index))
		if valid, _, err := tlog.VerifyCosignatures(b, []*tlog.CosignatureVerifier{w.Verifier()}); err != nil || len(valid) != 1 {
			t.Fatalf("%s: witnessed checkpoint of entry %d has %d cosignatures (%v)", s.url, index, len(valid), err)
		}
		return checkpointText(b)
	}
	var first uint64
	for i := 0; i < 5; i++ {
		res, err := f.get(follower).client().Add(context.Background(), m.mustEntry(t, 0, i))
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			first = res.Index
		}
	}
	firstWitnessed := witnessed(f.get(lead), first)
	if got := witnessed(f.get(follower), first); got != firstWitnessed {
		t.Errorf("the follower serves another witnessed checkpoint of entry %d:\n%s\nthe sequencer:\n%s", first, got, firstWitnessed)
	}
	for _, i := range []int{lead, follower} {
		if l := metricLine(f.get(i), "evident_witness_inconsistent_total"); !strings.HasSuffix(l, " 0") {
			t.Errorf("frontend %d: %s, want 0", i, l)
		}
	}
	if l := metricLine(f.get(follower), "evident_witness_last_success_timestamp_seconds"); !strings.HasSuffix(l, " 0") {
		t.Errorf("the follower submitted to the witness: %s", l)
	}
	// Once the log is quiet, the follower's /log/checkpoint carries the
	// cosignature of the checkpoint it serves, as the sequencer's does.
	// The follower learns the witnessed checkpoint once a witness period,
	// so it may first serve an older one: wait for the sequencer's.
	for deadline := time.Now().Add(20 * time.Second); ; {
		cp := getURL(t, f.get(follower).url+"/log/checkpoint")
		want := getURL(t, f.get(lead).url+"/log/checkpoint")
		valid, _, _ := tlog.VerifyCosignatures(cp, []*tlog.CosignatureVerifier{w.Verifier()})
		if len(valid) == 1 && checkpointText(cp) == checkpointText(want) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 20s, the follower's /log/checkpoint (%d cosignatures):\n%s\nthe sequencer's:\n%s", len(valid), cp, want)
		}
		time.Sleep(20 * time.Millisecond) // polling other processes
	}

	f.get(lead).kill9(t)
	f.set(lead, nil)
	next, _ := f.leader(lead, 20*time.Second)
	if got := witnessed(f.get(next), first); got != firstWitnessed {
		t.Errorf("after failover, the witnessed checkpoint of entry %d is\n%s\nwant\n%s", first, got, firstWitnessed)
	}
	m.tsa.URL = f.get(next).url + "/tsa"
	res, err := f.get(next).client().Add(context.Background(), m.mustEntry(t, 1, 0))
	if err != nil {
		t.Fatal(err)
	}
	witnessed(f.get(next), res.Index)
	if l := metricLine(f.get(next), "evident_witness_inconsistent_total"); !strings.HasSuffix(l, " 0") {
		t.Errorf("the new sequencer: %s, want 0", l)
	}
}

// checkpointText is a signed note's text, without its signature lines.
func checkpointText(note []byte) string {
	text, _, _ := bytes.Cut(note, []byte("\n\n"))
	return string(text)
}
