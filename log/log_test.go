package log_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/evident-dev/evident/log"
	"github.com/evident-dev/evident/log/boltstore"
	"github.com/evident-dev/evident/log/storetest"
	"golang.org/x/mod/sumdb/note"
)

const testOrigin = "evident.test/log"

type testKey struct {
	signer   note.Signer
	verifier note.Verifier
}

func newKey(t testing.TB) testKey {
	skey, vkey, err := note.GenerateKey(rand.Reader, testOrigin)
	if err != nil {
		t.Fatal(err)
	}
	s, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	return testKey{s, v}
}

func openLog(t testing.TB, s log.Store, k testKey, mod func(*log.Config)) *log.Log {
	cfg := log.Config{Origin: testOrigin, Signer: k.signer, Verifier: k.verifier, Logger: slog.New(slog.DiscardHandler)}
	if mod != nil {
		mod(&cfg)
	}
	l, err := log.Open(s, cfg)
	if err != nil {
		t.Fatalf("log.Open: %v", err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func entry(i int) []byte { return []byte(fmt.Sprintf(`{"entry":%d}`, i)) }

// checkAdd verifies an AddResult the way a client would.
func checkAdd(t testing.TB, k testKey, e []byte, res *log.AddResult) log.Checkpoint {
	t.Helper()
	cp, err := log.OpenCheckpoint(res.Checkpoint, testOrigin, k.verifier)
	if err != nil {
		t.Fatalf("OpenCheckpoint: %v", err)
	}
	if err := log.VerifyInclusion(res.Index, cp, log.LeafHash(e), res.Proof); err != nil {
		t.Fatalf("VerifyInclusion(%d): %v", res.Index, err)
	}
	return cp
}

func TestStores(t *testing.T) {
	t.Run("Mem", func(t *testing.T) {
		storetest.Run(t, func(t *testing.T) log.Store { return log.NewMemStore() })
	})
	t.Run("Bolt", func(t *testing.T) {
		storetest.Run(t, func(t *testing.T) log.Store {
			s, err := boltstore.Open(filepath.Join(t.TempDir(), "log.db"))
			if err != nil {
				t.Fatal(err)
			}
			return s
		})
	})
}

func TestAddConcurrentAndProofs(t *testing.T) {
	k := newKey(t)
	s := log.NewMemStore()
	l := openLog(t, s, k, nil)
	const n = 500
	results := make([]*log.AddResult, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := l.Add(context.Background(), entry(i))
			if err != nil {
				t.Errorf("Add(%d): %v", i, err)
				return
			}
			results[i] = res
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	seen := make(map[uint64]bool)
	for i, res := range results {
		checkAdd(t, k, entry(i), res)
		if seen[res.Index] || res.Duplicate {
			t.Fatalf("index %d handed out twice (duplicate=%v)", res.Index, res.Duplicate)
		}
		seen[res.Index] = true
	}
	if h := l.Head(); h.Size != n {
		t.Fatalf("size = %d, want %d", h.Size, n)
	}
	// Every pair of sizes is consistent; every entry provable at every later size.
	final, _ := log.OpenCheckpoint(l.Head().Checkpoint, testOrigin, k.verifier)
	for _, i := range []uint64{0, 1, 7, 255, 256, 499} {
		e, err := l.Entry(i)
		if err != nil {
			t.Fatal(err)
		}
		p, err := l.InclusionProof(i, n)
		if err != nil {
			t.Fatal(err)
		}
		if err := log.VerifyInclusion(i, final, log.LeafHash(e), p); err != nil {
			t.Errorf("VerifyInclusion(%d, %d): %v", i, n, err)
		}
		idx, p2, err := l.InclusionProofByHash(log.LeafHash(e), n)
		if err != nil || idx != i || len(p2) != len(p) {
			t.Errorf("InclusionProofByHash = %d, %v, want %d", idx, err, i)
		}
	}
	for _, r := range results[:20] {
		old, _ := log.OpenCheckpoint(r.Checkpoint, testOrigin, k.verifier)
		p, err := l.ConsistencyProof(old.Size, n)
		if err != nil {
			t.Fatal(err)
		}
		if err := log.VerifyConsistency(old, final, p); err != nil {
			t.Errorf("VerifyConsistency(%d, %d): %v", old.Size, n, err)
		}
	}
	if _, err := log.Check(s, testOrigin, k.verifier); err != nil {
		t.Errorf("Check: %v", err)
	}
}

func TestDeduplication(t *testing.T) {
	k := newKey(t)
	l := openLog(t, log.NewMemStore(), k, nil)
	first, err := l.Add(context.Background(), entry(1))
	if err != nil {
		t.Fatal(err)
	}
	l.Add(context.Background(), entry(2))
	again, err := l.Add(context.Background(), entry(1))
	if err != nil {
		t.Fatal(err)
	}
	if again.Index != first.Index || !again.Duplicate {
		t.Errorf("re-adding = index %d duplicate %v, want index %d duplicate true", again.Index, again.Duplicate, first.Index)
	}
	checkAdd(t, k, entry(1), again)
	// The same entry twice within one batch gets one index.
	var wg sync.WaitGroup
	idx := make([]uint64, 8)
	for i := range idx {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := l.Add(context.Background(), entry(99))
			if err != nil {
				t.Error(err)
				return
			}
			idx[i] = res.Index
		}()
	}
	wg.Wait()
	for _, x := range idx {
		if x != idx[0] {
			t.Fatalf("concurrent duplicates got indices %v, want one", idx)
		}
	}
	if h := l.Head(); h.Size != 3 {
		t.Errorf("size = %d, want 3", h.Size)
	}
}

// dedupStore is a MemStore that checks for stored leaf hashes as it
// commits, as the PostgreSQL store does, counting lookups and refusals.
type dedupStore struct {
	*log.MemStore
	lookups, refused atomic.Int64
}

func (d *dedupStore) Lookup(h [][]byte) ([]int64, error) {
	d.lookups.Add(1)
	return d.MemStore.Lookup(h)
}

func (d *dedupStore) Commit(b *log.Batch) error {
	idx, err := d.MemStore.Lookup(b.LeafHashes)
	if err != nil {
		return err
	}
	for _, i := range idx {
		if i >= 0 {
			d.refused.Add(1)
			return log.ErrStored
		}
	}
	return d.MemStore.Commit(b)
}

// An entry already stored is looked up before the checkpoint is signed, so
// the sequencer never signs a checkpoint for a batch the store would
// refuse: such a checkpoint would conflict with the one signed later at
// that size, a split view anyone resubmitting an entry could cause.
func TestStoredEntryLookedUpBeforeSigning(t *testing.T) {
	k := newKey(t)
	ds := &dedupStore{MemStore: log.NewMemStore()}
	l := openLog(t, ds, k, nil)
	for i := 0; i < 5; i++ {
		if _, err := l.Add(context.Background(), entry(i)); err != nil {
			t.Fatal(err)
		}
	}
	again, err := l.Add(context.Background(), entry(3))
	if err != nil {
		t.Fatal(err)
	}
	if again.Index != 3 || !again.Duplicate {
		t.Errorf("re-adding = index %d duplicate %v, want index 3 duplicate true", again.Index, again.Duplicate)
	}
	checkAdd(t, k, entry(3), again)
	if ds.refused.Load() != 0 || ds.lookups.Load() == 0 {
		t.Errorf("re-adding: %d refused commits (each a signed checkpoint never published), %d lookups; want 0 and some",
			ds.refused.Load(), ds.lookups.Load())
	}
	if h := l.Head(); h.Size != 5 {
		t.Errorf("size = %d, want 5", h.Size)
	}
}

// Batches of new entries mixed with stored ones, at sizes whose compact
// ranges share their hashes, are never refused by a store that checks as
// it commits, and leave a store that checks and that a new log opens (its
// root is the signed one).
func TestStoredEntriesMixedWithNew(t *testing.T) {
	k := newKey(t)
	ds := &dedupStore{MemStore: log.NewMemStore()}
	l := openLog(t, ds, k, func(c *log.Config) { c.BatchPeriod = 20 * time.Millisecond })
	ctx := context.Background()
	next := 0
	for round := 0; round < 12; round++ {
		var wg sync.WaitGroup
		for j := 0; j < round%4+2; j++ {
			e := entry(next)
			next++
			if j == 0 && next > 3 {
				e = entry(next / 2) // stored already
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := l.Add(ctx, e); err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
	}
	if n := ds.refused.Load(); n != 0 {
		t.Errorf("%d batches refused for a stored entry: their checkpoints were signed for nothing", n)
	}
	if _, err := log.Check(ds, testOrigin, k.verifier); err != nil {
		t.Fatalf("Check after refusals = %v", err)
	}
	if _, err := log.Open(ds, log.Config{Origin: testOrigin, Signer: k.signer, Verifier: k.verifier, Logger: slog.New(slog.DiscardHandler)}); err != nil {
		t.Fatalf("reopening after refusals = %v", err)
	}
}

func TestValidatorRejects(t *testing.T) {
	k := newKey(t)
	errBad := errors.New("no good")
	l := openLog(t, log.NewMemStore(), k, func(c *log.Config) {
		c.Validate = func(e []byte) ([]byte, error) {
			if bytes.HasPrefix(e, []byte("bad")) {
				return nil, errBad
			}
			return bytes.ToUpper(e), nil
		}
	})
	if _, err := l.Add(context.Background(), []byte("bad entry")); !errors.Is(err, log.ErrInvalidEntry) || !errors.Is(err, errBad) {
		t.Errorf("Add(bad) = %v, want ErrInvalidEntry wrapping the validator's error", err)
	}
	res, err := l.Add(context.Background(), []byte("good"))
	if err != nil {
		t.Fatal(err)
	}
	checkAdd(t, k, []byte("GOOD"), res) // the canonical form is what is logged
	if l.Head().Size != 1 {
		t.Errorf("size = %d, want 1", l.Head().Size)
	}
}

func TestReopenBolt(t *testing.T) {
	k := newKey(t)
	path := filepath.Join(t.TempDir(), "log.db")
	s, err := boltstore.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	l := openLog(t, s, k, nil)
	for i := 0; i < 300; i++ {
		if _, err := l.Add(context.Background(), entry(i)); err != nil {
			t.Fatal(err)
		}
	}
	before := l.Head()
	l.Close()
	s.Close()

	s, err = boltstore.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if h, err := log.Check(s, testOrigin, k.verifier); err != nil || h.Size != 300 {
		t.Fatalf("Check = size %d, %v, want 300, nil", h.Size, err)
	}
	l = openLog(t, s, k, nil)
	if h := l.Head(); h.Size != before.Size || !bytes.Equal(h.Checkpoint, before.Checkpoint) {
		t.Errorf("reopened head = %d, want %d with the same checkpoint", h.Size, before.Size)
	}
	res, err := l.Add(context.Background(), entry(300))
	if err != nil || res.Index != 300 {
		t.Fatalf("Add after reopen = %+v, %v", res, err)
	}
	checkAdd(t, k, entry(300), res)
	// A reopened log with another key refuses the store (its checkpoints are not ours).
	if _, err := log.Open(s, log.Config{Origin: testOrigin, Signer: newKey(t).signer, Verifier: newKey(t).verifier}); err == nil {
		t.Error("Open with a mismatched signer and verifier succeeded")
	}
	other := newKey(t)
	if _, err := log.Open(s, log.Config{Origin: testOrigin, Signer: other.signer, Verifier: other.verifier}); !errors.Is(err, log.ErrCorrupt) {
		t.Errorf("Open with another key = %v, want ErrCorrupt", err)
	}
}

// faultStore fails Commit on demand, before or after the write reaches the
// store underneath (threat model L1, L3).
type faultStore struct {
	log.Store
	mu    sync.Mutex
	fail  string // "", "before", "after"
	count int
}

var errInjected = errors.New("injected I/O error")

func (f *faultStore) set(mode string) {
	f.mu.Lock()
	f.fail = mode
	f.mu.Unlock()
}

func (f *faultStore) Commit(b *log.Batch) error {
	f.mu.Lock()
	mode := f.fail
	f.mu.Unlock()
	switch mode {
	case "before":
		return errInjected
	case "after":
		if err := f.Store.Commit(b); err != nil {
			return err
		}
		return errInjected
	}
	return f.Store.Commit(b)
}

// TestStoreFailures covers threat model L1 (in-process) and L3: a commit that
// fails before or after writing answers every add of its batch with an error,
// leaves no partial state, and the log carries on from what is really stored.
func TestStoreFailures(t *testing.T) {
	for _, mode := range []string{"before", "after"} {
		t.Run(mode, func(t *testing.T) {
			k := newKey(t)
			bolt, err := boltstore.Open(filepath.Join(t.TempDir(), "log.db"))
			if err != nil {
				t.Fatal(err)
			}
			defer bolt.Close()
			fs := &faultStore{Store: bolt}
			l := openLog(t, fs, k, nil)
			acked := map[uint64][]byte{}
			add := func(i int) error {
				res, err := l.Add(context.Background(), entry(i))
				if err == nil {
					checkAdd(t, k, entry(i), res)
					acked[res.Index] = entry(i)
				}
				return err
			}
			for i := 0; i < 10; i++ {
				if err := add(i); err != nil {
					t.Fatal(err)
				}
			}
			fs.set(mode)
			for i := 10; i < 15; i++ {
				if err := add(i); !errors.Is(err, errInjected) {
					t.Fatalf("Add during failure = %v, want the injected error", err)
				}
			}
			fs.set("")
			if _, err := log.Check(bolt, testOrigin, k.verifier); err != nil {
				t.Fatalf("Check after failures: %v", err)
			}
			wantSize := uint64(10)
			if mode == "after" {
				wantSize = 15 // written, though the adds were told otherwise
			}
			if h := l.Head(); h.Size != wantSize {
				t.Fatalf("size after failures = %d, want %d", h.Size, wantSize)
			}
			// Retrying is safe: each entry ends up exactly once.
			for i := 10; i < 20; i++ {
				if err := add(i); err != nil {
					t.Fatal(err)
				}
			}
			h, err := log.Check(bolt, testOrigin, k.verifier)
			if err != nil || h.Size != 20 {
				t.Fatalf("Check = size %d, %v, want 20", h.Size, err)
			}
			for idx, e := range acked {
				got, err := l.Entry(idx)
				if err != nil || !bytes.Equal(got, e) {
					t.Errorf("acknowledged entry %d = %q, %v, want %q", idx, got, err, e)
				}
			}
		})
	}
}

func TestClockBackwards(t *testing.T) {
	k := newKey(t)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	s := log.NewMemStore()
	l := openLog(t, s, k, func(c *log.Config) { c.Now = clock })
	if _, err := l.Add(context.Background(), entry(1)); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	now = now.Add(-time.Second)
	mu.Unlock()
	if _, err := l.Add(context.Background(), entry(2)); !errors.Is(err, log.ErrClockBackwards) {
		t.Fatalf("Add with the clock moved back = %v, want ErrClockBackwards", err)
	}
	if h := l.Head(); h.Size != 1 {
		t.Errorf("size = %d, want 1", h.Size)
	}
	mu.Lock()
	now = now.Add(2 * time.Second)
	mu.Unlock()
	if _, err := l.Add(context.Background(), entry(2)); err != nil {
		t.Fatal(err)
	}
}

// blockingStore holds every Commit until released.
type blockingStore struct {
	log.Store
	entered chan struct{}
	release chan struct{}
}

func (b *blockingStore) Commit(batch *log.Batch) error {
	if len(batch.Entries) > 0 {
		b.entered <- struct{}{}
		<-b.release
	}
	return b.Store.Commit(batch)
}

func TestOverloaded(t *testing.T) {
	k := newKey(t)
	bs := &blockingStore{Store: log.NewMemStore(), entered: make(chan struct{}, 10), release: make(chan struct{})}
	l := openLog(t, bs, k, func(c *log.Config) { c.MaxPending = 3 })
	committed := make(chan log.Head, 10)
	l.SetCommitHook(func(h log.Head) { committed <- h })
	// Adds under a cancelled context queue their entry and return at once;
	// the entries stay pending, as the store holds the commit.
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	for i := 0; i < 3; i++ {
		if _, err := l.Add(cancelled, entry(i)); !errors.Is(err, context.Canceled) {
			t.Fatalf("Add(%d) = %v, want context.Canceled", i, err)
		}
	}
	if _, err := l.Add(context.Background(), entry(3)); !errors.Is(err, log.ErrOverloaded) {
		t.Fatalf("Add with 3 pending = %v, want ErrOverloaded", err)
	}
	close(bs.release)
	for size := uint64(0); size < 3; {
		size = (<-committed).Size
	}
	if _, err := l.Add(context.Background(), entry(3)); err != nil {
		t.Fatalf("Add after the queue drained = %v", err)
	}
}

func TestCloseFailsQueued(t *testing.T) {
	k := newKey(t)
	l := openLog(t, log.NewMemStore(), k, nil)
	l.Close()
	if _, err := l.Add(context.Background(), entry(1)); !errors.Is(err, log.ErrClosed) {
		t.Errorf("Add after Close = %v, want ErrClosed", err)
	}
}

func TestOutOfRange(t *testing.T) {
	k := newKey(t)
	l := openLog(t, log.NewMemStore(), k, nil)
	for i := 0; i < 5; i++ {
		l.Add(context.Background(), entry(i))
	}
	for _, c := range []struct{ index, size uint64 }{{0, 0}, {5, 5}, {0, 6}, {7, 3}, {^uint64(0), ^uint64(0)}} {
		if _, err := l.InclusionProof(c.index, c.size); !errors.Is(err, log.ErrOutOfRange) {
			t.Errorf("InclusionProof(%d, %d) = %v, want ErrOutOfRange", c.index, c.size, err)
		}
	}
	for _, c := range []struct{ from, to uint64 }{{0, 5}, {3, 2}, {1, 6}, {^uint64(0), 1}} {
		if _, err := l.ConsistencyProof(c.from, c.to); !errors.Is(err, log.ErrOutOfRange) {
			t.Errorf("ConsistencyProof(%d, %d) = %v, want ErrOutOfRange", c.from, c.to, err)
		}
	}
	if p, err := l.ConsistencyProof(5, 5); err != nil || len(p) != 0 {
		t.Errorf("ConsistencyProof(5, 5) = %v, %v, want empty", p, err)
	}
	if _, err := l.Entry(5); !errors.Is(err, log.ErrOutOfRange) {
		t.Errorf("Entry(5) = %v, want ErrOutOfRange", err)
	}
}

// H1: a frontend that does not sequence follows the store with Sync; one
// that finds the store ahead of its head (another writer committed) answers
// ErrUnavailable, then learns the store's head before sequencing again.
func TestSyncFollows(t *testing.T) {
	k := newKey(t)
	store := log.NewMemStore()
	a := openLog(t, store, k, nil)
	b := openLog(t, store, k, nil)
	for i := 0; i < 5; i++ {
		if _, err := a.Add(context.Background(), entry(i)); err != nil {
			t.Fatal(err)
		}
	}
	if b.Head().Size != 0 {
		t.Fatalf("follower head before Sync = %d", b.Head().Size)
	}
	// b, behind, is asked to add what a already committed.
	if _, err := b.Add(context.Background(), entry(3)); !errors.Is(err, log.ErrUnavailable) {
		t.Fatalf("Add on a stale sequencer = %v, want ErrUnavailable", err)
	}
	res, err := b.Add(context.Background(), entry(3))
	if err != nil || !res.Duplicate || res.Index != 3 {
		t.Fatalf("Add after the reload = %+v, %v, want duplicate at 3", res, err)
	}
	checkAdd(t, k, entry(3), res)
	if _, err := a.Add(context.Background(), entry(5)); err != nil {
		t.Fatal(err)
	}
	h, err := b.Sync()
	if err != nil || h.Size != 6 || b.Head().Size != 6 {
		t.Fatalf("Sync = %d, %v, want 6", h.Size, err)
	}
	if _, err := b.InclusionProof(5, 6); err != nil {
		t.Fatalf("follower's proof after Sync: %v", err)
	}
	// L6: a store that shrinks is refused, and the head stays.
	sh := &shrinkingStore{Store: store}
	d := openLog(t, sh, k, nil)
	sh.shrunk.Store(true)
	if _, err := d.Sync(); !errors.Is(err, log.ErrCorrupt) {
		t.Fatalf("Sync of a shrunk store = %v, want ErrCorrupt", err)
	}
	if d.Head().Size != 6 {
		t.Fatalf("head after a refused Sync = %d, want 6", d.Head().Size)
	}
}

// shrinkingStore reports an empty tree once shrunk.
type shrinkingStore struct {
	log.Store
	shrunk atomic.Bool
}

func (s *shrinkingStore) Head() (log.Head, error) {
	if s.shrunk.Load() {
		return log.Head{}, nil
	}
	return s.Store.Head()
}

// Two identical submissions in one group, one of a new entry and one of a
// stored one, with a store that checks as it commits: the new entry is
// logged once and both its submissions get its index, the stored one's
// both get its first index, and the store refuses nothing.
func TestSameEntryTwiceInOneBatch(t *testing.T) {
	k := newKey(t)
	ds := &dedupStore{MemStore: log.NewMemStore()}
	l := openLog(t, ds, k, func(c *log.Config) { c.BatchPeriod = 300 * time.Millisecond })
	ctx := context.Background()
	if _, err := l.Add(ctx, entry(0)); err != nil {
		t.Fatal(err)
	}
	adds := [][]byte{entry(1), entry(1), entry(0), entry(0), entry(2)}
	res := make([]*log.AddResult, len(adds))
	var wg sync.WaitGroup
	for i, e := range adds {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := l.Add(ctx, e)
			if err != nil {
				t.Error(err)
				return
			}
			checkAdd(t, k, e, r)
			res[i] = r
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	if n := ds.refused.Load(); n != 0 {
		t.Errorf("%d commits refused for a stored entry, want 0", n)
	}
	if res[0].Index != res[1].Index || res[0].Duplicate == res[1].Duplicate {
		t.Errorf("a new entry twice in one group: indexes %d, %d, duplicate %v, %v; want one index, one duplicate",
			res[0].Index, res[1].Index, res[0].Duplicate, res[1].Duplicate)
	}
	if res[2].Index != 0 || res[3].Index != 0 || !res[2].Duplicate || !res[3].Duplicate {
		t.Errorf("a stored entry twice in one group: %+v, %+v; want index 0, duplicate", res[2], res[3])
	}
	if h := l.Head(); h.Size != 3 {
		t.Errorf("size %d after entries 0, 1, 2, want 3", h.Size)
	}
	if _, err := log.Check(ds, testOrigin, k.verifier); err != nil {
		t.Fatal(err)
	}
}

// refusingStore refuses every commit for a stored entry, as a store that
// checks as it commits would if the log's lookup had been wrong.
type refusingStore struct {
	*log.MemStore
	commits atomic.Int64
}

func (d *refusingStore) Commit(b *log.Batch) error {
	d.commits.Add(1)
	return fmt.Errorf("%w: entries %d to %d", log.ErrStored, b.Start, b.Head.Size)
}

// A store's refusal for a stored entry is a failed commit like any other:
// every add of the batch gets the error, none is acknowledged, the tree
// stays as it was, and the batch is not tried again.
func TestStoreRefusalIsAFailedCommit(t *testing.T) {
	k := newKey(t)
	ms := log.NewMemStore()
	l0 := openLog(t, ms, k, nil)
	if _, err := l0.Add(context.Background(), entry(0)); err != nil {
		t.Fatal(err)
	}
	l0.Close()
	rs := &refusingStore{MemStore: ms}
	l := openLog(t, rs, k, nil)
	if _, err := l.Add(context.Background(), entry(1)); !errors.Is(err, log.ErrStored) {
		t.Fatalf("add refused by the store = %v, want ErrStored", err)
	}
	if n := rs.commits.Load(); n != 1 {
		t.Errorf("%d commits, want 1", n)
	}
	if h := l.Head(); h.Size != 1 {
		t.Errorf("size %d after a refused commit, want 1", h.Size)
	}
}
