package pgstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"runtime"
	"sync/atomic"

	"github.com/evident-dev/evident/log"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/transparency-dev/merkle/compact"
)

// LogStore is a log.Store in PostgreSQL. Each Commit is one statement, so
// one transaction and one round trip, durable when PostgreSQL's commit
// is (fsync and synchronous_commit on, its defaults). Commits are fenced by
// the leader term (see the package documentation): only the frontend that
// holds the sequencer lease, through its [Elector], commits; any other
// Commit fails with ErrNotLeader or ErrDeposed and changes nothing.
//
// Each read is at most one query: Nodes reads any number of nodes at once,
// so an inclusion proof is at most one round trip, and none when its nodes
// are cached: the store keeps the hashes of the nodes it committed or read
// (at most nodeCacheBytes of them), so the proof returned with each append
// is computed without the database, and the entries it committed or read
// (at most entryCacheBytes of them), so a link upload naming an entry just
// appended reads no entry from the database. A node it does not hold is
// read with the whole tile around it, and full tiles are kept too (at most
// tileCacheBytes of them; see tiles.go), so that a proof deep in a large
// tree costs no more than one in a small one.
type LogStore struct {
	pool    *pgxpool.Pool
	nodes   *nodeCache
	tiles   *tileCache
	entries *genCache[uint64, []byte]
	term    atomic.Uint64 // the term commits are fenced with; 0: not leader
	closed  atomic.Bool

	// testHookBeforeCommit, when set, runs before each commit's transaction.
	testHookBeforeCommit func()
}

// OpenLog connects to the PostgreSQL database at url (a postgres:// URL or
// a key=value connection string), migrating its schema.
func OpenLog(ctx context.Context, url string) (*LogStore, error) {
	// Reads run concurrently (proofs are one query each); commits use one
	// connection at a time.
	pool, err := openPool(ctx, url, int32(max(16, 4*runtime.NumCPU())))
	if err != nil {
		return nil, err
	}
	return newLogStore(pool), nil
}

// OpenLogReadOnly connects to the PostgreSQL database at url for
// inspection (evident log fsck): every session is read-only, and it fails
// with ErrNoSchema, ErrSchemaTooOld or ErrSchemaTooNew, changing nothing,
// unless the schema is exactly this build's. Its Commit fails.
func OpenLogReadOnly(ctx context.Context, url string) (*LogStore, error) {
	pool, err := connect(ctx, url, 4, true)
	if err != nil {
		return nil, err
	}
	return newLogStore(pool), nil
}

func newLogStore(pool *pgxpool.Pool) *LogStore {
	return &LogStore{pool: pool, nodes: newNodeCache(nodeCacheBytes), tiles: newTileCache(tileCacheBytes), entries: newEntryCache()}
}

// querier is what reads need: the pool, or a snapshot's transaction.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

func (s *LogStore) ctx() (context.Context, context.CancelFunc, error) {
	if s.closed.Load() {
		return nil, nil, errClosed
	}
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	return ctx, cancel, nil
}

// Head implements log.Store.
func (s *LogStore) Head() (log.Head, error) {
	ctx, cancel, err := s.ctx()
	if err != nil {
		return log.Head{}, err
	}
	defer cancel()
	return readHead(ctx, s.pool)
}

func readHead(ctx context.Context, q querier) (log.Head, error) {
	var size int64
	var h log.Head
	if err := q.QueryRow(ctx, "SELECT size, time, checkpoint FROM evident_log_head").Scan(&size, &h.Time, &h.Checkpoint); err != nil {
		return log.Head{}, fmt.Errorf("couldn't read the head: %w", err)
	}
	h.Size = uint64(size)
	return h, nil
}

// Commit implements log.Store.
func (s *LogStore) Commit(b *log.Batch) error {
	if b.Head.Size != b.Start+uint64(len(b.Entries)) || len(b.LeafHashes) != len(b.Entries) {
		return fmt.Errorf("malformed batch: start %d, %d entries, %d leaf hashes, head size %d",
			b.Start, len(b.Entries), len(b.LeafHashes), b.Head.Size)
	}
	if b.Head.Size > math.MaxInt64 {
		return fmt.Errorf("tree size %d does not fit the schema", b.Head.Size)
	}
	ctx, cancel, err := s.ctx()
	if err != nil {
		return err
	}
	defer cancel()
	term := s.term.Load()
	if term == 0 {
		return ErrNotLeader
	}
	if s.testHookBeforeCommit != nil {
		s.testHookBeforeCommit()
	}
	idx := make([]int64, len(b.Entries))
	for i := range idx {
		idx[i] = int64(b.Start) + int64(i)
	}
	levels := make([]int16, len(b.Nodes))
	nidx := make([]int64, len(b.Nodes))
	hashes := make([][]byte, len(b.Nodes))
	for i, n := range b.Nodes {
		if n.ID.Level > 63 || n.ID.Index > math.MaxInt64 {
			return fmt.Errorf("node %d/%d does not fit the schema", n.ID.Level, n.ID.Index)
		}
		levels[i], nidx[i], hashes[i] = int16(n.ID.Level), int64(n.ID.Index), n.Hash
	}
	strata, tidx, tiles, err := s.tileRows(ctx, b)
	if err != nil {
		return fmt.Errorf("couldn't commit entries %d to %d: %w", b.Start, b.Head.Size, err)
	}
	// One statement, so one transaction and one round trip. The fence: the
	// head row moves only from the size and term this commit builds on,
	// and only if none of the batch's leaf hashes is stored (behind the
	// log's own lookup, which comes before it signs: one probe of the leaf
	// index per hash, LATERAL … LIMIT 1, so that no plan made while the
	// table was small scans it whole); the entries, nodes and tiles are
	// written only if it moved.
	// The row lock orders commits and takeovers.
	var moved int
	err = s.pool.QueryRow(ctx, `WITH head AS (
			UPDATE evident_log_head SET size = $1, time = $2, checkpoint = $3
			WHERE size = $4 AND term = $5 AND NOT EXISTS (
				SELECT FROM unnest($7::bytea[]) AS n(leaf)
				CROSS JOIN LATERAL (SELECT FROM evident_log_entries e WHERE e.leaf = n.leaf LIMIT 1) AS stored)
			RETURNING 1
		), entries AS (
			INSERT INTO evident_log_entries (idx, leaf, entry)
			SELECT * FROM unnest($6::bigint[], $7::bytea[], $8::bytea[]) WHERE EXISTS (SELECT FROM head)
		), nodes AS (
			INSERT INTO evident_log_nodes (level, idx, hash)
			SELECT * FROM unnest($9::smallint[], $10::bigint[], $11::bytea[]) WHERE EXISTS (SELECT FROM head)
		), tiles AS (
			INSERT INTO evident_log_tiles (stratum, idx, hashes)
			SELECT * FROM unnest($12::smallint[], $13::bigint[], $14::bytea[]) WHERE EXISTS (SELECT FROM head)
		)
		SELECT count(*) FROM head`,
		int64(b.Head.Size), b.Head.Time, b.Head.Checkpoint, int64(b.Start), int64(term),
		idx, b.LeafHashes, b.Entries, levels, nidx, hashes, strata, tidx, tiles).Scan(&moved)
	if err != nil {
		return fmt.Errorf("couldn't commit entries %d to %d: %w", b.Start, b.Head.Size, err)
	}
	if moved == 1 {
		ids := make([]compact.NodeID, len(b.Nodes))
		for i, n := range b.Nodes {
			ids[i] = n.ID
		}
		s.nodes.put(ids, hashes)
		s.tiles.cacheRows(strata, tidx, tiles)
		for i, e := range b.Entries {
			s.entries.put(b.Start+uint64(i), bytes.Clone(e))
		}
		return nil
	}
	var size, cur int64
	if err := s.pool.QueryRow(ctx, "SELECT size, term FROM evident_log_head").Scan(&size, &cur); err != nil {
		return fmt.Errorf("couldn't read the head: %w", err)
	}
	if uint64(cur) != term {
		return fmt.Errorf("%w (term %d, now %d)", ErrDeposed, term, cur)
	}
	if uint64(size) != b.Start {
		return fmt.Errorf("%w: batch starts at %d, size is %d", log.ErrConflict, b.Start, size)
	}
	return fmt.Errorf("%w: entries %d to %d", log.ErrStored, b.Start, b.Head.Size)
}

// Entries implements log.Store.
func (s *LogStore) Entries(start uint64, n int) ([][]byte, error) {
	ctx, cancel, err := s.ctx()
	if err != nil {
		return nil, err
	}
	defer cancel()
	if out, ok := s.cachedEntries(start, n); ok {
		return out, nil
	}
	out, err := readEntries(ctx, s.pool, start, n)
	if err == nil && n <= maxCachedRead {
		for i, e := range out {
			s.entries.put(start+uint64(i), bytes.Clone(e))
		}
	}
	return out, err
}

// cachedEntries returns the n entries from start if the cache holds them
// all and n is at most maxCachedRead.
func (s *LogStore) cachedEntries(start uint64, n int) ([][]byte, bool) {
	if n <= 0 || n > maxCachedRead || start > math.MaxUint64-uint64(n) {
		return nil, false
	}
	out := make([][]byte, n)
	for i := range out {
		e, ok := s.entries.get(start + uint64(i))
		if !ok {
			return nil, false
		}
		out[i] = bytes.Clone(e) // callers may change what they get
	}
	return out, true
}

func readEntries(ctx context.Context, q querier, start uint64, n int) ([][]byte, error) {
	if n <= 0 {
		return [][]byte{}, nil
	}
	if start > math.MaxInt64-uint64(n) {
		return nil, fmt.Errorf("entries [%d, +%d): %w", start, n, log.ErrNotFound)
	}
	rows, err := q.Query(ctx, "SELECT entry FROM evident_log_entries WHERE idx >= $1 AND idx < $2 ORDER BY idx",
		int64(start), int64(start)+int64(n))
	if err != nil {
		return nil, fmt.Errorf("couldn't read entries: %w", err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[[]byte])
	if err != nil {
		return nil, fmt.Errorf("couldn't read entries: %w", err)
	}
	if len(out) != n {
		return nil, fmt.Errorf("entries [%d, +%d): %w", start, n, log.ErrNotFound)
	}
	return out, nil
}

// Nodes implements log.Store: from the caches of nodes this frontend
// committed or read and of full tiles, and the rest, with the tiles that
// hold them (see tiles.go), in one query.
func (s *LogStore) Nodes(ids []compact.NodeID) ([][]byte, error) {
	ctx, cancel, err := s.ctx()
	if err != nil {
		return nil, err
	}
	defer cancel()
	out := make([][]byte, len(ids))
	missing := s.nodes.get(ids, out)
	if len(missing) == 0 {
		return out, nil
	}
	if missing = s.tiles.get(ids, missing, out); len(missing) == 0 {
		return out, nil
	}
	want := make([]compact.NodeID, len(missing))
	for i, j := range missing {
		want[i] = ids[j]
	}
	got, err := readTiles(ctx, s.pool, want, s.tiles, s.nodes)
	if err != nil {
		return nil, err
	}
	for i, j := range missing {
		out[j] = got[i]
	}
	return out, nil
}

func readNodes(ctx context.Context, q querier, ids []compact.NodeID) ([][]byte, error) {
	out := make([][]byte, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	levels := make([]int16, len(ids))
	idxs := make([]int64, len(ids))
	for i, id := range ids {
		if id.Level > 63 || id.Index > math.MaxInt64 {
			return nil, fmt.Errorf("node %d/%d: %w", id.Level, id.Index, log.ErrNotFound)
		}
		levels[i], idxs[i] = int16(id.Level), int64(id.Index)
	}
	rows, err := q.Query(ctx, `SELECT w.ord, n.hash FROM unnest($1::smallint[], $2::bigint[]) WITH ORDINALITY AS w(level, idx, ord)
		JOIN evident_log_nodes n ON n.level = w.level AND n.idx = w.idx`, levels, idxs)
	if err != nil {
		return nil, fmt.Errorf("couldn't read nodes: %w", err)
	}
	defer rows.Close()
	found := 0
	for rows.Next() {
		var ord int64
		var h []byte
		if err := rows.Scan(&ord, &h); err != nil {
			return nil, fmt.Errorf("couldn't read nodes: %w", err)
		}
		if ord < 1 || ord > int64(len(ids)) {
			return nil, fmt.Errorf("couldn't read nodes: ordinal %d out of range", ord)
		}
		if out[ord-1] == nil {
			found++
		}
		out[ord-1] = h
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("couldn't read nodes: %w", err)
	}
	if found != len(ids) {
		for i, h := range out {
			if h == nil {
				return nil, fmt.Errorf("node %d/%d: %w", ids[i].Level, ids[i].Index, log.ErrNotFound)
			}
		}
	}
	return out, nil
}

// Lookup implements log.Store: one probe of the leaf-hash index per hash,
// in one query.
func (s *LogStore) Lookup(leafHashes [][]byte) ([]int64, error) {
	ctx, cancel, err := s.ctx()
	if err != nil {
		return nil, err
	}
	defer cancel()
	return lookup(ctx, s.pool, leafHashes)
}

func lookup(ctx context.Context, q querier, leafHashes [][]byte) ([]int64, error) {
	out := make([]int64, len(leafHashes))
	want := make([][]byte, 0, len(leafHashes))
	for i, h := range leafHashes {
		out[i] = -1
		if len(h) == log.HashSize {
			want = append(want, h)
		}
	}
	if len(want) == 0 {
		return out, nil
	}
	rows, err := q.Query(ctx, "SELECT leaf, min(idx) FROM evident_log_entries WHERE leaf = ANY($1) GROUP BY leaf", want)
	if err != nil {
		return nil, fmt.Errorf("couldn't look up leaf hashes: %w", err)
	}
	defer rows.Close()
	found := make(map[[log.HashSize]byte]int64)
	for rows.Next() {
		var leaf []byte
		var idx int64
		if err := rows.Scan(&leaf, &idx); err != nil {
			return nil, fmt.Errorf("couldn't look up leaf hashes: %w", err)
		}
		if len(leaf) == log.HashSize {
			found[[log.HashSize]byte(leaf)] = idx
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("couldn't look up leaf hashes: %w", err)
	}
	for i, h := range leafHashes {
		if len(h) != log.HashSize {
			continue
		}
		if idx, ok := found[[log.HashSize]byte(h)]; ok {
			out[i] = idx
		}
	}
	return out, nil
}

// Close implements log.Store.
func (s *LogStore) Close() error {
	if s.closed.Swap(true) {
		return errClosed
	}
	s.pool.Close()
	return nil
}

// Snapshot opens a read-only view of the log as of one moment (a
// repeatable-read transaction), for checking a log that is in use: pass it
// to log.Check. Its Commit fails. Close releases it.
func (s *LogStore) Snapshot(ctx context.Context) (*Snapshot, error) {
	if s.closed.Load() {
		return nil, errClosed
	}
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, fmt.Errorf("couldn't begin a snapshot: %w", err)
	}
	// A check is many short statements over bounded ranges (CheckTiles);
	// the planner's estimates for them pass PostgreSQL's JIT threshold,
	// and compiling each costs ten times what running it does.
	if _, err := tx.Exec(ctx, "SET LOCAL jit = off"); err != nil {
		tx.Rollback(ctx)
		return nil, fmt.Errorf("couldn't begin a snapshot: %w", err)
	}
	return &Snapshot{tx: tx, ctx: ctx}, nil
}

// Snapshot is a read-only log.Store over one database snapshot. It is not
// safe for concurrent use.
type Snapshot struct {
	tx  pgx.Tx
	ctx context.Context
}

var errReadOnly = errors.New("a snapshot is read-only")

func (s *Snapshot) Head() (log.Head, error) { return readHead(s.ctx, s.tx) }
func (s *Snapshot) Commit(*log.Batch) error { return errReadOnly }
func (s *Snapshot) Entries(start uint64, n int) ([][]byte, error) {
	return readEntries(s.ctx, s.tx, start, n)
}
func (s *Snapshot) Nodes(ids []compact.NodeID) ([][]byte, error) { return readNodes(s.ctx, s.tx, ids) }
func (s *Snapshot) Lookup(h [][]byte) ([]int64, error)           { return lookup(s.ctx, s.tx, h) }
func (s *Snapshot) Close() error                                 { return s.tx.Rollback(context.Background()) }
