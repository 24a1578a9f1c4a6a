// Package log is evident's Merkle transparency log.
//
// The tree is an RFC 6962 Merkle tree (SHA-256, transparency-dev/merkle).
// Entries are opaque byte strings that a caller-supplied validator checks and
// canonicalises; the log appends them in group commits: one sequencer
// goroutine collects pending entries and writes each batch, the nodes it
// completes and a freshly signed C2SP tlog-checkpoint (https://c2sp.org/tlog-checkpoint)
// in a single [Store] transaction. So a checkpoint never covers a leaf that is
// not durable, and no two roots are ever signed for one tree size. [Log.Add]
// returns only once its entry is durable and covered by a signed checkpoint,
// together with its inclusion proof.
//
// The store keeps every leaf hash and every complete subtree hash
// (2n − popcount(n) nodes), so an inclusion or consistency proof costs one
// read of at most 2·log₂ n stored nodes. The same nodes serve the C2SP
// tlog-tiles read API (https://c2sp.org/tlog-tiles).
//
// [Handler] serves the HTTP API; [Client] reads it and verifies everything it
// is given against the log's note verifier key; [Monitor] checks that the log
// only ever grows (consistency proofs between checkpoints).
package log

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/evident-dev/evident/tlog"
	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"
)

// Errors returned by [Log] that callers branch on. [Handler] maps them to
// HTTP statuses.
var (
	// ErrInvalidEntry wraps every rejection by the validator; it is
	// [tlog.ErrInvalidEntry], which the entry format wraps too.
	ErrInvalidEntry = tlog.ErrInvalidEntry
	// ErrOverloaded: too many entries are waiting to be sequenced.
	ErrOverloaded = errors.New("too many pending entries")
	// ErrClosed: the log was closed.
	ErrClosed = errors.New("log is closed")
	// ErrOutOfRange: a proof or read asks for something beyond the tree.
	ErrOutOfRange = errors.New("out of range")
	// ErrClockBackwards: the clock reads earlier than the last checkpoint's
	// signing time, so the log refuses to sign.
	ErrClockBackwards = errors.New("clock went backwards; refusing to sign")
	// ErrCorrupt: the store's tree does not match its signed checkpoint.
	ErrCorrupt = errors.New("store does not match its signed checkpoint")
	// ErrStorageFull: a commit failed for lack of space. A [Store] reports
	// it by wrapping ErrStorageFull or syscall.ENOSPC.
	ErrStorageFull = errors.New("the log's storage is full")
	// ErrUnavailable: the log cannot sequence now (another frontend is the
	// sequencer, or the store could not be read); retrying may succeed.
	// Stores wrap it in such errors.
	ErrUnavailable = errors.New("log is unavailable")
)

// isStorageFull tells whether a store error means the storage is full.
// bbolt reports a failure to grow its file with the cause as text only.
func isStorageFull(err error) bool {
	return errors.Is(err, ErrStorageFull) || errors.Is(err, syscall.ENOSPC) ||
		strings.Contains(err.Error(), syscall.ENOSPC.Error())
}

// Validator checks one submitted entry and returns its canonical bytes,
// which is what the log stores. An error rejects the entry; it is reported to
// the submitter wrapped in ErrInvalidEntry. The log keeps the canonical bytes
// after Add returns, so they should not share memory with the input (the log
// copies them when they are the input itself).
type Validator func(entry []byte) (canonical []byte, err error)

// Config configures a [Log]. Origin, Signer and Verifier are required.
type Config struct {
	// Origin is the checkpoint origin line, a schema-less URL.
	Origin string
	// Signer signs checkpoints; Verifier is its public half.
	Signer   note.Signer
	Verifier note.Verifier
	// Validate checks and canonicalises entries; nil accepts any non-empty
	// entry of at most MaxEntrySize bytes as it is.
	Validate Validator
	// BatchSize is the most entries in one commit (default 4096).
	BatchSize int
	// BatchPeriod is the longest the sequencer waits for a batch to fill
	// after its first entry arrives (default 2ms). Under load batches fill
	// while the previous commit is being written, without waiting.
	BatchPeriod time.Duration
	// MaxPending caps entries accepted but not yet committed (default
	// 65536); beyond it Add returns ErrOverloaded.
	MaxPending int
	// MaxBodySize is the largest body POST /log/v1/entries reads (default
	// MaxEntrySize): a Validator may take more than the entry (its payload
	// beside it) and return the entry alone. A body over MaxEntrySize is
	// read on only if LargeBody says its first MaxEntrySize bytes may begin
	// such a body (else 413), by at most MaxLargeBodies requests at once
	// (default 4), each in a buffer of its own; beyond, 503 with
	// Retry-After.
	MaxBodySize    int
	LargeBody      func(prefix []byte) bool
	MaxLargeBodies int
	// Logger receives structured logs (default slog.Default()).
	Logger *slog.Logger
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Defaults of the group commit (see Config): the one definition, which
// evident serve's flags show.
const (
	DefaultBatchSize   = 4096
	DefaultBatchPeriod = 2 * time.Millisecond
	DefaultMaxPending  = 65536
)

// MaxEntrySize is the largest entry the log accepts: [tlog.MaxEntrySize].
const MaxEntrySize = tlog.MaxEntrySize

// Log is a Merkle transparency log over a [Store]. It is safe for concurrent use.
type Log struct {
	cfg   Config
	store Store
	rf    *compact.RangeFactory

	head    atomic.Pointer[state]
	queue   chan *request
	pending atomic.Int64
	stop    chan struct{}
	done    chan struct{}
	once    sync.Once

	// seqMu is held by the sequencer while it sequences a batch, and by
	// Sync; it guards cr and stale.
	seqMu sync.Mutex
	cr    *compact.Range
	// stale: a commit failed and the head could not be reloaded since, so
	// the store may hold more than head says.
	stale bool

	stats struct {
		batches, entries, duplicates, commitNanos, failures, fullFailures atomic.Int64
		full                                                              atomic.Bool
	}
	failLog rateLog // commit failures, logged at a bounded rate

	// testHookCommitted, when set, runs after each successful commit, once
	// the batch's callers are answered.
	testHookCommitted func(Head)
}

// state is the published head with its parsed checkpoint.
type state struct {
	Head
	root [HashSize]byte
}

type request struct {
	entry []byte
	leaf  []byte
	done  chan result
}

type result struct {
	index     uint64
	duplicate bool
	head      *state
	err       error
}

var hasher = rfc6962.DefaultHasher

// Open loads the tree from store and starts the sequencer. A store that was
// never written gets a signed checkpoint for the empty tree. Open fails with
// ErrCorrupt if the stored nodes do not produce the root of the stored
// checkpoint, or if that checkpoint is not validly signed by cfg.Verifier.
func Open(store Store, cfg Config) (*Log, error) {
	if cfg.Origin == "" || cfg.Signer == nil || cfg.Verifier == nil {
		return nil, errors.New("log: Origin, Signer and Verifier are required")
	}
	if cfg.Signer.Name() != cfg.Verifier.Name() || cfg.Signer.KeyHash() != cfg.Verifier.KeyHash() {
		return nil, errors.New("log: Signer and Verifier are not one key")
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = DefaultBatchSize
	}
	if cfg.BatchPeriod < 0 || cfg.BatchPeriod > time.Second {
		return nil, fmt.Errorf("log: BatchPeriod %v is outside [0, 1s]", cfg.BatchPeriod)
	}
	if cfg.BatchPeriod == 0 {
		cfg.BatchPeriod = DefaultBatchPeriod
	}
	if cfg.MaxPending <= 0 {
		cfg.MaxPending = DefaultMaxPending
	}
	cfg.MaxBodySize = max(cfg.MaxBodySize, MaxEntrySize)
	if cfg.LargeBody == nil {
		cfg.MaxBodySize = MaxEntrySize
	}
	if cfg.MaxLargeBodies <= 0 {
		cfg.MaxLargeBodies = 4
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Validate == nil {
		cfg.Validate = func(e []byte) ([]byte, error) {
			if len(e) == 0 || len(e) > MaxEntrySize {
				return nil, fmt.Errorf("entry must be 1 to %d bytes", MaxEntrySize)
			}
			return e, nil
		}
	}
	l := &Log{
		cfg:   cfg,
		store: store,
		rf:    &compact.RangeFactory{Hash: hasher.HashChildren},
		queue: make(chan *request, cfg.MaxPending),
		stop:  make(chan struct{}),
		done:  make(chan struct{}),
	}
	if err := l.load(); err != nil {
		return nil, err
	}
	if l.head.Load().Checkpoint == nil {
		if err := l.commitEmpty(); err != nil {
			return nil, err
		}
	}
	go l.run()
	return l, nil
}

// load reads the head from the store, rebuilds the compact range and checks
// it against the signed checkpoint.
func (l *Log) load() error {
	h, err := l.store.Head()
	if err != nil {
		return fmt.Errorf("couldn't read head: %w", err)
	}
	hashes, err := l.store.Nodes(compact.RangeNodes(0, h.Size, nil))
	if err != nil {
		return fmt.Errorf("%w: couldn't read the nodes of size %d: %v", ErrCorrupt, h.Size, err)
	}
	cr, err := l.rf.NewRange(0, h.Size, hashes)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	root, err := rootHash(cr)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	st := &state{Head: h}
	copy(st.root[:], root)
	if h.Checkpoint != nil {
		cp, err := OpenCheckpoint(h.Checkpoint, l.cfg.Origin, l.cfg.Verifier)
		if err != nil {
			return fmt.Errorf("%w: %v", ErrCorrupt, err)
		}
		if cp.Size != h.Size || cp.Hash != st.root {
			return fmt.Errorf("%w: checkpoint is size %d root %x, store has size %d root %x",
				ErrCorrupt, cp.Size, cp.Hash, h.Size, root)
		}
	}
	l.cr = cr
	l.head.Store(st)
	return nil
}

func (l *Log) commitEmpty() error {
	b, st, err := l.sign(nil, nil, nil, l.cr)
	if err != nil {
		return err
	}
	if err := l.store.Commit(b); err != nil {
		return fmt.Errorf("couldn't commit the empty checkpoint: %w", err)
	}
	l.head.Store(st)
	return nil
}

// sign builds the batch for entries appended to cr (already done by the
// caller) and signs the checkpoint for the resulting tree.
func (l *Log) sign(entries, leaves [][]byte, nodes []Node, cr *compact.Range) (*Batch, *state, error) {
	prev := l.head.Load()
	now := l.cfg.Now().UnixNano()
	if now < prev.Time {
		return nil, nil, fmt.Errorf("%w: now is %v, last checkpoint was signed at %v",
			ErrClockBackwards, time.Unix(0, now).UTC(), time.Unix(0, prev.Time).UTC())
	}
	root, err := rootHash(cr)
	if err != nil {
		return nil, nil, err
	}
	cp := Checkpoint{Origin: l.cfg.Origin, Size: cr.End()}
	copy(cp.Hash[:], root)
	signed, err := SignCheckpoint(cp, l.cfg.Signer)
	if err != nil {
		return nil, nil, err
	}
	st := &state{Head: Head{Size: cr.End(), Checkpoint: signed, Time: now}, root: cp.Hash}
	return &Batch{Start: prev.Size, Entries: entries, LeafHashes: leaves, Nodes: nodes, Head: st.Head}, st, nil
}

// rootHash returns the RFC 6962 root of the tree cr covers, starting at 0.
func rootHash(cr *compact.Range) ([]byte, error) {
	if cr.End() == 0 {
		return hasher.EmptyRoot(), nil
	}
	return cr.GetRootHash(nil)
}

// AddResult is what [Log.Add] returns.
type AddResult struct {
	// Index is the entry's position in the log; for a duplicate, the
	// position of its first copy.
	Index     uint64
	Duplicate bool
	// Checkpoint is a signed checkpoint of size > Index; Proof is the
	// entry's inclusion proof against it.
	Checkpoint []byte
	Size       uint64
	Proof      [][]byte
}

// Add validates entry, waits until it is durably sequenced and covered by a
// signed checkpoint, and returns its index and inclusion proof. An entry that
// is already in the log gets its first index back. Errors: ErrInvalidEntry,
// ErrOverloaded, ErrClosed, the context's error, or a storage error (the
// entry may or may not have been committed: adding it again is safe).
func (l *Log) Add(ctx context.Context, entry []byte) (*AddResult, error) {
	canonical, err := l.cfg.Validate(entry)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidEntry, err)
	}
	if len(canonical) > 0 && len(entry) > 0 && &canonical[0] == &entry[0] {
		canonical = bytes.Clone(canonical) // the caller may reuse entry's memory
	}
	r := &request{entry: canonical, leaf: hasher.HashLeaf(canonical), done: make(chan result, 1)}
	if l.pending.Add(1) > int64(l.cfg.MaxPending) {
		l.pending.Add(-1)
		return nil, ErrOverloaded
	}
	select {
	case <-l.stop:
		l.pending.Add(-1)
		return nil, ErrClosed
	default:
	}
	l.queue <- r // never blocks: the queue holds MaxPending
	var res result
	select {
	case res = <-r.done:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if res.err != nil {
		return nil, res.err
	}
	p, err := l.inclusion(res.index, res.head.Size)
	if err != nil {
		return nil, err
	}
	return &AddResult{Index: res.index, Duplicate: res.duplicate, Checkpoint: res.head.Checkpoint,
		Size: res.head.Size, Proof: p}, nil
}

// Close stops the sequencer after the batch in progress; entries still
// queued fail with ErrClosed. It does not close the store.
func (l *Log) Close() error {
	l.once.Do(func() { close(l.stop) })
	<-l.done
	return nil
}

func (l *Log) run() {
	defer close(l.done)
	batch := make([]*request, 0, l.cfg.BatchSize)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		select {
		case r := <-l.queue:
			batch = append(batch[:0], r)
		case <-l.stop:
			l.drain()
			return
		}
		timer.Reset(l.cfg.BatchPeriod)
	fill:
		for len(batch) < l.cfg.BatchSize {
			select {
			case r := <-l.queue:
				batch = append(batch, r)
				continue
			default:
			}
			select {
			case r := <-l.queue:
				batch = append(batch, r)
			case <-timer.C:
				break fill
			case <-l.stop:
				break fill
			}
		}
		timer.Stop()
		l.sequence(batch)
		clear(batch)
	}
}

func (l *Log) drain() {
	for {
		select {
		case r := <-l.queue:
			l.reply(r, result{err: ErrClosed})
		default:
			return
		}
	}
}

func (l *Log) reply(r *request, res result) {
	r.done <- res
	l.pending.Add(-1)
}

// sequence commits one batch and answers its requests. Its entries are
// looked up before the checkpoint is signed: the sequencer never signs a
// checkpoint for a batch that a store refuses for an entry it already
// holds, since such a checkpoint would conflict with the one the log later
// signs at that size (a split view that anyone resubmitting an entry could
// make the log sign). A store may still check as it commits ([ErrStored]);
// that refusal is a failed commit like any other.
func (l *Log) sequence(batch []*request) {
	l.seqMu.Lock()
	defer l.seqMu.Unlock()
	fail := func(err error) {
		for _, r := range batch {
			l.reply(r, result{err: err})
		}
	}
	if l.stale {
		if err := l.load(); err != nil {
			l.cfg.Logger.Error("couldn't reload the tree", "err", err)
			fail(fmt.Errorf("%w: couldn't reload the tree after a failed commit: %w", ErrUnavailable, err))
			return
		}
		l.stale = false
	}
	existing, err := l.lookup(batch)
	if err != nil {
		l.cfg.Logger.Error("lookup failed", "err", err)
		fail(fmt.Errorf("couldn't look up entries: %w", err))
		return
	}
	prev := l.head.Load()
	// A copy of the hashes too: Append writes into the slice it is given,
	// and l.cr must stay as it is unless this batch commits.
	cr, err := l.rf.NewRange(0, prev.Size, slices.Clone(l.cr.Hashes()))
	if err != nil {
		panic(fmt.Sprintf("log: copying the compact range: %v", err))
	}
	index := make([]uint64, len(batch))
	dup := make([]bool, len(batch))
	inBatch := make(map[string]uint64, len(batch))
	entries := make([][]byte, 0, len(batch))
	newLeaves := make([][]byte, 0, len(batch))
	nodes := make([]Node, 0, 2*len(batch)+1)
	visit := func(id compact.NodeID, h []byte) { nodes = append(nodes, Node{ID: id, Hash: h}) }
	for i, r := range batch {
		if existing[i] >= int64(prev.Size) {
			// Another writer committed past our head: learn it first.
			l.stale = true
			fail(fmt.Errorf("%w: the store is ahead of this sequencer's head", ErrUnavailable))
			return
		}
		if existing[i] >= 0 {
			index[i], dup[i] = uint64(existing[i]), true
			continue
		}
		if j, ok := inBatch[string(r.leaf)]; ok {
			index[i], dup[i] = j, true
			continue
		}
		index[i] = cr.End()
		inBatch[string(r.leaf)] = index[i]
		entries = append(entries, r.entry)
		newLeaves = append(newLeaves, r.leaf)
		if err := cr.Append(r.leaf, visit); err != nil {
			panic(fmt.Sprintf("log: appending to the compact range: %v", err))
		}
	}
	st := prev
	if len(entries) > 0 {
		b, next, err := l.sign(entries, newLeaves, nodes, cr)
		if err != nil {
			l.cfg.Logger.Error("couldn't sign checkpoint", "size", cr.End(), "err", err)
			fail(err)
			return
		}
		t0 := time.Now()
		err = l.store.Commit(b)
		l.stats.commitNanos.Add(int64(time.Since(t0)))
		if err != nil {
			l.stats.failures.Add(1)
			full := isStorageFull(err)
			if full {
				l.stats.fullFailures.Add(1)
				if !l.stats.full.Swap(true) {
					l.cfg.Logger.Error("the log's storage is full: adds fail until space is freed", "err", err)
				}
			} else {
				l.failLog.log(l.cfg.Logger, "commit failed", "start", prev.Size, "entries", len(entries), "err", err)
			}
			// Learn what the store really holds before anyone is answered,
			// so no caller can observe the head from before the failure.
			if err := l.load(); err != nil {
				l.stale = true
				l.failLog.log(l.cfg.Logger, "couldn't reload the tree after a failed commit", "err", err)
			}
			if full {
				err = fmt.Errorf("%w: %w", ErrStorageFull, err)
			}
			fail(fmt.Errorf("couldn't commit: %w", err))
			return
		}
		if l.stats.full.Swap(false) {
			l.cfg.Logger.Info("the log's storage has room again: commits succeed", "failed_commits", l.stats.fullFailures.Load())
		}
		l.cr = cr
		l.head.Store(next)
		st = next
		l.stats.batches.Add(1)
		l.stats.entries.Add(int64(len(entries)))
	}
	l.stats.duplicates.Add(int64(len(batch) - len(entries)))
	for i, r := range batch {
		l.reply(r, result{index: index[i], duplicate: dup[i], head: st})
	}
	if l.testHookCommitted != nil && len(entries) > 0 {
		l.testHookCommitted(st.Head)
	}
}

// lookup returns the stored index of each request's entry, or -1.
func (l *Log) lookup(batch []*request) ([]int64, error) {
	leaves := make([][]byte, len(batch))
	for i, r := range batch {
		leaves[i] = r.leaf
	}
	return l.store.Lookup(leaves)
}

// Sync reloads the head from the store if another writer changed it: the
// way a frontend that does not sequence follows the one that does, and
// catches up before it starts sequencing. The new head is checked as at
// Open (its signed checkpoint against the stored nodes); a store whose
// size went down is refused with ErrCorrupt. It returns the head.
func (l *Log) Sync() (Head, error) {
	l.seqMu.Lock()
	defer l.seqMu.Unlock()
	cur := l.head.Load()
	h, err := l.store.Head()
	if err != nil {
		return cur.Head, fmt.Errorf("couldn't read head: %w", err)
	}
	if h.Size == cur.Size && bytes.Equal(h.Checkpoint, cur.Checkpoint) && !l.stale {
		return cur.Head, nil
	}
	if h.Size < cur.Size {
		return cur.Head, fmt.Errorf("%w: the store's size went from %d down to %d", ErrCorrupt, cur.Size, h.Size)
	}
	if err := l.load(); err != nil {
		return cur.Head, err
	}
	l.stale = false
	return l.head.Load().Head, nil
}

// Stats are cumulative counters of the sequencer since Open.
type Stats struct {
	Batches    int64 // commits that added entries
	Entries    int64 // entries committed
	Duplicates int64 // adds answered with an existing index
	Failures   int64 // commits that failed
	// FullFailures counts commits that failed for lack of space;
	// StorageFull is whether the last commit did.
	FullFailures int64
	StorageFull  bool
	CommitTime   time.Duration // total time spent in Store.Commit
	Pending      int64         // entries accepted and not yet answered
}

// Stats returns the sequencer's counters.
func (l *Log) Stats() Stats {
	return Stats{
		Batches:      l.stats.batches.Load(),
		Entries:      l.stats.entries.Load(),
		Duplicates:   l.stats.duplicates.Load(),
		Failures:     l.stats.failures.Load(),
		FullFailures: l.stats.fullFailures.Load(),
		StorageFull:  l.stats.full.Load(),
		CommitTime:   time.Duration(l.stats.commitNanos.Load()),
		Pending:      l.pending.Load(),
	}
}

// Head returns the latest committed head.
func (l *Log) Head() Head { return l.head.Load().Head }

// Entry returns the entry at index.
func (l *Log) Entry(index uint64) ([]byte, error) {
	if index >= l.head.Load().Size {
		return nil, fmt.Errorf("%w: index %d is not below the tree size", ErrOutOfRange, index)
	}
	e, err := l.store.Entries(index, 1)
	if err != nil {
		return nil, err
	}
	return e[0], nil
}

// InclusionProof returns the RFC 6962 inclusion proof of the entry at index
// in the tree of the given size, which must not exceed the current size. It
// reads at most log₂ size stored nodes.
func (l *Log) InclusionProof(index, size uint64) ([][]byte, error) {
	return l.inclusion(index, size)
}

func (l *Log) inclusion(index, size uint64) ([][]byte, error) {
	if cur := l.head.Load().Size; size == 0 || size > cur || index >= size {
		return nil, fmt.Errorf("%w: inclusion of index %d in size %d (tree size %d)", ErrOutOfRange, index, size, cur)
	}
	nodes, err := proof.Inclusion(index, size)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrOutOfRange, err)
	}
	return l.rehash(nodes)
}

// InclusionProofByHash finds the entry with the given RFC 6962 leaf hash and
// returns its index and inclusion proof in the tree of the given size.
func (l *Log) InclusionProofByHash(leafHash []byte, size uint64) (uint64, [][]byte, error) {
	idx, err := l.store.Lookup([][]byte{leafHash})
	if err != nil {
		return 0, nil, err
	}
	if idx[0] < 0 {
		return 0, nil, fmt.Errorf("leaf hash %x: %w", leafHash, ErrNotFound)
	}
	p, err := l.inclusion(uint64(idx[0]), size)
	return uint64(idx[0]), p, err
}

// ConsistencyProof returns the RFC 6962 consistency proof between the trees
// of sizes from and to, with 0 < from ≤ to ≤ the current size. It reads at
// most 2·log₂ to stored nodes.
func (l *Log) ConsistencyProof(from, to uint64) ([][]byte, error) {
	if cur := l.head.Load().Size; from == 0 || from > to || to > cur {
		return nil, fmt.Errorf("%w: consistency from %d to %d (tree size %d)", ErrOutOfRange, from, to, cur)
	}
	nodes, err := proof.Consistency(from, to)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrOutOfRange, err)
	}
	return l.rehash(nodes)
}

func (l *Log) rehash(nodes proof.Nodes) ([][]byte, error) {
	hashes, err := l.store.Nodes(nodes.IDs)
	if err != nil {
		return nil, err
	}
	return nodes.Rehash(hashes, hasher.HashChildren)
}

// rateLog logs the first error at once and later ones at most once per
// rateLogPeriod, with the number left out meanwhile: a failing disk must
// not fill another.
type rateLog struct {
	mu      sync.Mutex
	last    time.Time
	dropped int
}

const rateLogPeriod = 10 * time.Second

func (r *rateLog) log(logger *slog.Logger, msg string, args ...any) {
	r.mu.Lock()
	now := time.Now()
	if !r.last.IsZero() && now.Sub(r.last) < rateLogPeriod {
		r.dropped++
		r.mu.Unlock()
		return
	}
	if r.dropped > 0 {
		args = append(args, "similar_errors_not_logged", r.dropped)
	}
	r.last, r.dropped = now, 0
	r.mu.Unlock()
	logger.Error(msg, args...)
}
