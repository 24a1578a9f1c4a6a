package pgstore

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/evident-dev/evident/internal/pgtest"
	"github.com/evident-dev/evident/log"
	"github.com/evident-dev/evident/log/storetest"
	"github.com/jackc/pgx/v5"
	"github.com/transparency-dev/merkle/compact"
	"golang.org/x/mod/sumdb/note"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// openLeader opens a store on a fresh database and makes it the leader.
func openLeader(t *testing.T) (*LogStore, string) {
	t.Helper()
	url := pgtest.NewDatabase(t)
	s, err := OpenLog(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok, err := s.lead(context.Background(), "test", "", time.Hour); err != nil || !ok {
		t.Fatalf("lead = %v, %v", ok, err)
	}
	return s, url
}

// The shared suite, unchanged: the same contract as bbolt.
func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) log.Store {
		s, _ := openLeader(t)
		return s
	})
}

func TestMigrate(t *testing.T) {
	url := pgtest.NewDatabase(t)
	ctx := context.Background()
	// Frontends starting together migrate once.
	errc := make(chan error, 4)
	for i := 0; i < 4; i++ {
		go func() {
			s, err := OpenLog(ctx, url)
			if err == nil {
				s.Close()
			}
			errc <- err
		}()
	}
	for i := 0; i < 4; i++ {
		if err := <-errc; err != nil {
			t.Fatalf("concurrent OpenLog = %v", err)
		}
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var v int
	if err := conn.QueryRow(ctx, "SELECT version FROM evident_schema").Scan(&v); err != nil || v != SchemaVersion {
		t.Fatalf("schema version = %d, %v, want %d", v, err, SchemaVersion)
	}
	// A schema from a newer evident is refused, and left as it is.
	if _, err := conn.Exec(ctx, "UPDATE evident_schema SET version = $1", SchemaVersion+1); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenLog(ctx, url); !errors.Is(err, ErrSchemaTooNew) {
		t.Fatalf("OpenLog on a newer schema = %v, want ErrSchemaTooNew", err)
	}
	if _, err := OpenLinks(ctx, url); !errors.Is(err, ErrSchemaTooNew) {
		t.Fatalf("OpenLinks on a newer schema = %v, want ErrSchemaTooNew", err)
	}
	if err := conn.QueryRow(ctx, "SELECT version FROM evident_schema").Scan(&v); err != nil || v != SchemaVersion+1 {
		t.Fatalf("schema version after refusal = %d, %v", v, err)
	}
}

// batchAt builds a batch of n entries at start (tagged so two writers'
// batches differ), with leaf nodes only.
func batchAt(start uint64, n int, tag string) *log.Batch {
	b := &log.Batch{Start: start, Head: log.Head{Size: start + uint64(n), Checkpoint: []byte(fmt.Sprintf("%s %d\n", tag, start+uint64(n))), Time: 1}}
	for i := start; i < start+uint64(n); i++ {
		e := []byte(fmt.Sprintf("%s %d", tag, i))
		h := log.LeafHash(e)
		b.Entries = append(b.Entries, e)
		b.LeafHashes = append(b.LeafHashes, h)
		b.Nodes = append(b.Nodes, log.Node{ID: compact.NewNodeID(0, i), Hash: h})
	}
	return b
}

// H1: a leader paused just before its commit, whose lease a successor took
// over and committed on, has its commit refused: nothing of it is written.
func TestPausedLeaderIsFenced(t *testing.T) {
	a, url := openLeader(t)
	defer a.Close()
	if err := a.Commit(batchAt(0, 2, "a")); err != nil {
		t.Fatal(err)
	}
	b, err := OpenLog(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := b.Commit(batchAt(2, 1, "b")); !errors.Is(err, ErrNotLeader) || !errors.Is(err, log.ErrUnavailable) {
		t.Fatalf("follower Commit = %v, want ErrNotLeader", err)
	}
	// b cannot take a live lease.
	if _, ok, err := b.lead(context.Background(), "b", "", time.Second); err != nil || ok {
		t.Fatalf("lead over a live lease = %v, %v, want false", ok, err)
	}

	// a pauses between deciding to commit and its transaction.
	paused, resume := make(chan struct{}), make(chan struct{})
	a.testHookBeforeCommit = func() { close(paused); <-resume }
	errc := make(chan error, 1)
	go func() { errc <- a.Commit(batchAt(2, 3, "a")) }()
	<-paused
	// Its lease expires meanwhile (as if its elector had stopped too).
	if _, err := a.pool.Exec(context.Background(), "UPDATE evident_log_head SET lease_until = now() - interval '1 second'"); err != nil {
		t.Fatal(err)
	}
	term, ok, err := b.lead(context.Background(), "b", "", time.Hour)
	if err != nil || !ok {
		t.Fatalf("lead over an expired lease = %v, %v", ok, err)
	}
	if err := b.Commit(batchAt(2, 1, "b")); err != nil {
		t.Fatalf("successor (term %d) Commit = %v", term, err)
	}
	close(resume)
	if err := <-errc; !errors.Is(err, ErrDeposed) || !errors.Is(err, log.ErrUnavailable) {
		t.Fatalf("paused leader's Commit = %v, want ErrDeposed", err)
	}
	// Even at the right size, the deposed term cannot commit.
	a.testHookBeforeCommit = nil
	if err := a.Commit(batchAt(3, 1, "a")); !errors.Is(err, ErrDeposed) {
		t.Fatalf("deposed Commit at the current size = %v, want ErrDeposed", err)
	}
	h, err := b.Head()
	if err != nil || h.Size != 3 || string(h.Checkpoint) != "b 3\n" {
		t.Fatalf("Head = %+v, %v, want b's head of size 3", h, err)
	}
	es, err := b.Entries(0, 3)
	if err != nil || string(es[2]) != "b 2" {
		t.Fatalf("Entries = %q, %v, want b's entry at 2", es, err)
	}
	if _, err := b.Entries(3, 1); !errors.Is(err, log.ErrNotFound) {
		t.Fatalf("the deposed leader's batch left entry 3 behind: %v", err)
	}
}

// H1: electors on one database: exactly one leads; when it closes (or
// stops renewing) another takes over with a higher term.
func TestElectors(t *testing.T) {
	url := pgtest.NewDatabase(t)
	var stores []*LogStore
	var electors []*Elector
	changed := make(chan Status, 64)
	for i := 0; i < 3; i++ {
		s, err := OpenLog(context.Background(), url)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		stores = append(stores, s)
		electors = append(electors, s.Campaign(ElectorConfig{ID: fmt.Sprint("f", i), Addr: func() string { return fmt.Sprint("http://f", i) },
			TTL: 600 * time.Millisecond, OnChange: func(st Status) { changed <- st }}))
	}
	leader := func() (int, Status) {
		t.Helper()
		deadline := time.After(10 * time.Second)
		for {
			n, who := 0, -1
			for i, e := range electors {
				if e != nil && e.Status().Leading {
					n, who = n+1, i
				}
			}
			if n > 1 {
				t.Fatalf("%d frontends lead at once", n)
			}
			if n == 1 {
				return who, electors[who].Status()
			}
			select {
			case <-changed:
			case <-deadline:
				t.Fatal("no leader within 10s")
			}
		}
	}
	first, st := leader()
	if st.LeaderAddr != fmt.Sprint("http://f", first) {
		t.Errorf("leader address = %q", st.LeaderAddr)
	}
	electors[first].Close()
	electors[first] = nil
	second, st2 := leader()
	if second == first || st2.Term <= st.Term {
		t.Fatalf("after the leader closed: leader %d term %d, before %d term %d", second, st2.Term, first, st.Term)
	}
	if err := stores[first].Commit(batchAt(0, 0, "x")); !errors.Is(err, ErrNotLeader) {
		t.Errorf("closed elector's store Commit = %v, want ErrNotLeader", err)
	}
	for _, e := range electors {
		if e != nil {
			e.Close()
		}
	}
}

// log.Check over a snapshot of a log in use; and the whole log package
// running on PostgreSQL.
func TestLogOnPostgres(t *testing.T) {
	s, _ := openLeader(t)
	defer s.Close()
	signer, verifier := testKey(t)
	l, err := log.Open(s, log.Config{Origin: "example.com/log", Signer: signer, Verifier: verifier})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for i := 0; i < 50; i++ {
		if _, err := l.Add(context.Background(), []byte(fmt.Sprintf("entry %d", i))); err != nil {
			t.Fatal(err)
		}
	}
	res, err := l.Add(context.Background(), []byte("entry 7"))
	if err != nil || !res.Duplicate || res.Index != 7 {
		t.Fatalf("duplicate Add = %+v, %v, want index 7", res, err)
	}
	snap, err := s.Snapshot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer snap.Close()
	h, err := log.Check(snap, "example.com/log", verifier)
	if err != nil || h.Size != 50 {
		t.Fatalf("Check = %d, %v", h.Size, err)
	}
	if err := snap.Commit(&log.Batch{}); !errors.Is(err, errReadOnly) {
		t.Errorf("Snapshot.Commit = %v, want errReadOnly", err)
	}
	// L1: a stored node that does not match is found.
	if _, err := s.pool.Exec(context.Background(), "UPDATE evident_log_nodes SET hash = $1 WHERE level = 0 AND idx = 3", bytes.Repeat([]byte{1}, 32)); err != nil {
		t.Fatal(err)
	}
	snap2, err := s.Snapshot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer snap2.Close()
	if _, err := log.Check(snap2, "example.com/log", verifier); !errors.Is(err, log.ErrCorrupt) {
		t.Fatalf("Check of a tampered node = %v, want ErrCorrupt", err)
	}
}

func TestNodesOneQuery(t *testing.T) {
	s, _ := openLeader(t)
	defer s.Close()
	if err := s.Commit(batchAt(0, 4, "n")); err != nil {
		t.Fatal(err)
	}
	// Repeated and out-of-order ids come back in the order asked: from the
	// cache, from the database, and from both.
	ids := []compact.NodeID{compact.NewNodeID(0, 3), compact.NewNodeID(0, 0), compact.NewNodeID(0, 3)}
	want := sha256.Sum256(append([]byte{0}, "n 3"...))
	for _, cached := range []int{0, 1, 3} { // how many of ids the cache holds
		s.nodes = newNodeCache(nodeCacheBytes)
		s.nodes.put(ids[:cached], [][]byte{want[:], log.LeafHash([]byte("n 0")), want[:]}[:cached])
		hs, err := s.Nodes(ids)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(hs[0], want[:]) || !bytes.Equal(hs[2], want[:]) || !bytes.Equal(hs[1], log.LeafHash([]byte("n 0"))) {
			t.Errorf("Nodes with %d cached returned the wrong hashes", cached)
		}
	}
	if _, err := s.Nodes([]compact.NodeID{compact.NewNodeID(0, 1<<63)}); !errors.Is(err, log.ErrNotFound) {
		t.Errorf("Nodes(0/2^63) = %v, want ErrNotFound", err)
	}
	if _, err := s.Entries(1<<63, 2); !errors.Is(err, log.ErrNotFound) {
		t.Errorf("Entries(2^63, 2) = %v, want ErrNotFound", err)
	}
}

// The commit checks for stored leaf hashes itself, behind the log's lookup:
// a batch with one is refused with ErrStored and writes nothing.
func TestCommitRefusesStoredLeaf(t *testing.T) {
	s, _ := openLeader(t)
	defer s.Close()
	if err := s.Commit(batchAt(0, 3, "d")); err != nil {
		t.Fatal(err)
	}
	b := batchAt(3, 2, "d")
	b.Entries[1], b.LeafHashes[1] = []byte("d 1"), log.LeafHash([]byte("d 1"))
	b.Nodes[1].Hash = b.LeafHashes[1]
	if err := s.Commit(b); !errors.Is(err, log.ErrStored) {
		t.Fatalf("Commit of a batch holding entry 1 again = %v, want ErrStored", err)
	}
	if h, err := s.Head(); err != nil || h.Size != 3 {
		t.Fatalf("Head after the refusal = %+v, %v, want size 3", h, err)
	}
	if _, err := s.Entries(3, 1); !errors.Is(err, log.ErrNotFound) {
		t.Errorf("Entries(3) after the refusal = %v, want ErrNotFound", err)
	}
}

func testKey(t *testing.T) (note.Signer, note.Verifier) {
	t.Helper()
	skey, vkey, err := note.GenerateKey(rand.Reader, "example.com/log")
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
	return s, v
}

// Nodes and entries a commit wrote are served from memory afterwards (the
// proof returned with each append costs no round trip); a snapshot, which
// is what fsck checks, reads the database and not the cache; a refused
// commit caches nothing.
func TestCommittedNodesServedFromMemory(t *testing.T) {
	s, _ := openLeader(t)
	defer s.Close()
	b := batchAt(0, 4, "c")
	if err := s.Commit(b); err != nil {
		t.Fatal(err)
	}
	ids := []compact.NodeID{compact.NewNodeID(0, 0), compact.NewNodeID(0, 3)}
	if _, err := s.pool.Exec(context.Background(), "DELETE FROM evident_log_nodes"); err != nil {
		t.Fatal(err)
	}
	hs, err := s.Nodes(ids)
	if err != nil || !bytes.Equal(hs[0], b.LeafHashes[0]) || !bytes.Equal(hs[1], b.LeafHashes[3]) {
		t.Fatalf("Nodes after the commit = %x, %v, want the committed hashes from memory", hs, err)
	}
	if _, err := s.pool.Exec(context.Background(), "DELETE FROM evident_log_entries"); err != nil {
		t.Fatal(err)
	}
	es, err := s.Entries(1, 2)
	if err != nil || !bytes.Equal(es[0], b.Entries[1]) || !bytes.Equal(es[1], b.Entries[2]) {
		t.Fatalf("Entries after the commit = %q, %v, want the committed entries from memory", es, err)
	}
	es[0][0] ^= 1 // a caller that changes what it was given changes no cached entry
	if es, err := s.Entries(1, 1); err != nil || !bytes.Equal(es[0], b.Entries[1]) {
		t.Fatalf("Entries after a caller changed its copy = %q, %v", es, err)
	}
	snap, err := s.Snapshot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer snap.Close()
	if _, err := snap.Nodes(ids); !errors.Is(err, log.ErrNotFound) {
		t.Fatalf("Snapshot.Nodes of deleted nodes = %v, want ErrNotFound (the database, not the cache)", err)
	}
	if _, err := snap.Entries(1, 1); !errors.Is(err, log.ErrNotFound) {
		t.Fatalf("Snapshot.Entries of deleted entries = %v, want ErrNotFound (the database, not the cache)", err)
	}
	// A batch refused by the fence (it does not start at the size).
	if err := s.Commit(batchAt(9, 1, "c")); !errors.Is(err, log.ErrConflict) {
		t.Fatalf("Commit at 9 = %v, want ErrConflict", err)
	}
	if _, err := s.Nodes([]compact.NodeID{compact.NewNodeID(0, 9)}); !errors.Is(err, log.ErrNotFound) {
		t.Fatalf("Nodes of a refused batch = %v, want ErrNotFound", err)
	}
	if _, err := s.Entries(9, 1); !errors.Is(err, log.ErrNotFound) {
		t.Fatalf("Entries of a refused batch = %v, want ErrNotFound", err)
	}
}

// The caches never hold more than their bound, and keep what is in use.
func TestNodeCacheBounded(t *testing.T) {
	c := newNodeCache(8 * nodeCost)
	hot := compact.NewNodeID(5, 0)
	h := bytes.Repeat([]byte{7}, log.HashSize)
	c.put([]compact.NodeID{hot}, [][]byte{h})
	out := make([][]byte, 1)
	for i := uint64(0); i < 100; i++ {
		c.put([]compact.NodeID{compact.NewNodeID(0, i)}, [][]byte{h})
		if n := c.c.len(); n > 8 {
			t.Fatalf("after %d puts the cache holds %d nodes, more than 8", i+1, n)
		}
		if missing := c.get([]compact.NodeID{hot}, out); len(missing) != 0 || !bytes.Equal(out[0], h) {
			t.Fatalf("after %d puts the node in use was evicted", i+1)
		}
	}
	if missing := c.get([]compact.NodeID{compact.NewNodeID(0, 0)}, out); len(missing) != 1 {
		t.Errorf("the oldest node is still cached after 100 puts into 8")
	}
	c.put([]compact.NodeID{compact.NewNodeID(1, 1)}, [][]byte{h[:5]})
	if missing := c.get([]compact.NodeID{compact.NewNodeID(1, 1)}, out); len(missing) != 1 {
		t.Errorf("a hash of the wrong length was cached")
	}
	entries := newEntryCache()
	big := make([]byte, 1<<20)
	for i := uint64(0); i < 100; i++ {
		entries.put(i, big)
		held := 0
		for j := uint64(0); j <= i; j++ {
			if _, ok := entries.get(j); ok {
				held += entryCost(big)
			}
		}
		if held > entryCacheBytes+entryCost(big) {
			t.Fatalf("after %d MiB of entries the cache holds %d bytes, more than %d", i+1, held, entryCacheBytes)
		}
	}
}

// fsck's opening inspects and never migrates: an empty database stays
// empty, a newer or older schema is refused as it is, and its sessions
// cannot write.
func TestOpenLogReadOnlyChangesNothing(t *testing.T) {
	url := pgtest.NewDatabase(t)
	ctx := context.Background()
	if _, err := OpenLogReadOnly(ctx, url); !errors.Is(err, ErrNoSchema) {
		t.Fatalf("OpenLogReadOnly on an empty database = %v, want ErrNoSchema", err)
	}
	if n := pgtest.Tables(t, url); n != 0 {
		t.Fatalf("the empty database has %d tables after OpenLogReadOnly, want 0", n)
	}
	rw, err := OpenLog(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	rw.Close()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	ro, err := OpenLogReadOnly(ctx, url)
	if err != nil {
		t.Fatalf("OpenLogReadOnly on a migrated database = %v", err)
	}
	defer ro.Close()
	if _, err := ro.pool.Exec(ctx, "UPDATE evident_log_head SET size = size"); err == nil || !strings.Contains(err.Error(), "read-only") {
		t.Errorf("a write through the read-only store = %v, want a read-only transaction error", err)
	}
	for _, c := range []struct {
		version int
		want    error
	}{{SchemaVersion + 1, ErrSchemaTooNew}, {SchemaVersion - 1, ErrSchemaTooOld}} {
		if c.version == 0 {
			continue // no older schema yet
		}
		if _, err := conn.Exec(ctx, "UPDATE evident_schema SET version = $1", c.version); err != nil {
			t.Fatal(err)
		}
		if _, err := OpenLogReadOnly(ctx, url); !errors.Is(err, c.want) {
			t.Errorf("OpenLogReadOnly at version %d = %v, want %v", c.version, err, c.want)
		}
		var v int
		if err := conn.QueryRow(ctx, "SELECT version FROM evident_schema").Scan(&v); err != nil || v != c.version {
			t.Errorf("schema version after OpenLogReadOnly = %d, %v, want %d unchanged", v, err, c.version)
		}
	}
}

// Two frontends' Exclusive sections under one key never overlap.
func TestExclusiveTakesTurns(t *testing.T) {
	a, url := openLeader(t)
	defer a.Close()
	b, err := OpenLog(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	inside, release := make(chan struct{}), make(chan struct{})
	errc := make(chan error, 1)
	go func() {
		errc <- a.Exclusive(context.Background(), TUFLock, func() error { close(inside); <-release; return nil })
	}()
	<-inside
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	ran := false
	if err := b.Exclusive(ctx, TUFLock, func() error { ran = true; return nil }); err == nil || ran {
		t.Fatalf("Exclusive while another frontend holds the lock = %v (ran %v), want a timeout without running", err, ran)
	}
	close(release)
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if err := b.Exclusive(context.Background(), TUFLock, func() error { ran = true; return nil }); err != nil || !ran {
		t.Fatalf("Exclusive after the lock was released = %v (ran %v)", err, ran)
	}
}

// The witnessed-checkpoint suite, as bbolt runs it.
func TestWitnessedStore(t *testing.T) {
	s, _ := openLeader(t)
	defer s.Close()
	storetest.RunWitnessed(t, s)
}
