package pgstore

import (
	"context"
	"fmt"

	"github.com/evident-dev/evident/log"
	"github.com/transparency-dev/merkle/compact"
)

// The tree a tile at a time. A random inclusion proof in a tree of 2^d
// leaves needs d node hashes, most of them low in the tree and never asked
// for before: read one by one, each is an index probe, and the proof costs
// more the larger the tree. As C2SP tlog-tiles and the logs built on it
// do, the store also keeps the tree in tiles: a tile is the nodes of
// tileHeight levels above 256 consecutive nodes of its lowest level, and
// the commit that completes a tile writes it as one row of
// evident_log_tiles, in the same transaction as the nodes. A node that a
// frontend does not hold in memory is read with its whole tile (one row),
// and full tiles, which never change, stay in a bounded cache. A random
// proof at 10⁶ leaves then touches three tiles, of which only the lowest
// is one of thousands (3,906; the other two are among 17); once its
// lowest tile has been read, no proof that passes through it reads the
// database again. A node whose tile is not full yet
// (the tree's right edge) is read from evident_log_nodes, in the same
// query.
//
// A tile row holds the stored hashes themselves, never recomputed ones:
// Nodes answers what the database holds, whichever way it is read, and
// fsck checks that every tile agrees with the nodes ([Snapshot.CheckTiles]).

const (
	tileHeight = log.TileHeight
	tileWidth  = 1 << tileHeight
	// tileNodes is how many nodes one tile holds: tileWidth at its lowest
	// level, half as many at each of the tileHeight-1 levels above.
	tileNodes = 2*tileWidth - 2
	// tileBytes is the size of one tile's row.
	tileBytes = tileNodes * log.HashSize
	// tileCost is what one cached tile takes of the heap, counted against
	// tileCacheBytes: its hashes, allocated in Go's 16 KiB size class, and
	// its share of the cache's maps (TestTileCacheHoldsAtMostItsBytes
	// measures it).
	tileCost = 16<<10 + 128
	// tileCacheBytes bounds the memory the full tiles a store caches take
	// (128 MiB, 8,128 tiles). The cache keeps what is in use within half to
	// all of its bound (see genCache), so it holds every tile of a tree of
	// 10⁶ leaves (3,923), and the hot ones of any larger tree.
	tileCacheBytes = 128 << 20
	// maxTileIndex bounds tile indexes so that every node index a tile
	// covers fits the schema's bigint.
	maxTileIndex = 1<<(63-tileHeight) - 1
)

// tileID names a tile: the nodes at levels tileHeight·stratum to
// tileHeight·stratum+tileHeight-1 whose subtrees lie under the nodes
// index·256 to index·256+255 of its lowest level.
type tileID struct {
	stratum uint8
	index   uint64
}

// tileOf returns the tile holding id, and false for a node past every
// tile the schema can hold.
func tileOf(id compact.NodeID) (tileID, bool) {
	if id.Level > 63 {
		return tileID{}, false
	}
	j := id.Level % tileHeight
	t := tileID{uint8(id.Level / tileHeight), id.Index >> (tileHeight - j)}
	return t, t.index <= maxTileIndex
}

// slot is where id, which t holds, sits in a tile's hashes: level by level
// from the lowest, each level's nodes in index order.
func (t tileID) slot(id compact.NodeID) int {
	j := id.Level % tileHeight
	offset := 2*tileWidth - (2*tileWidth)>>j
	return offset + int(id.Index&(tileWidth>>j-1))
}

// ranges appends, level by level, the node ranges [lo, hi) that t covers.
func (t tileID) ranges(levels []int16, los, his []int64) ([]int16, []int64, []int64) {
	for j := uint(0); j < tileHeight; j++ {
		lo := int64(t.index << (tileHeight - j))
		levels = append(levels, int16(uint(t.stratum)*tileHeight+j))
		los = append(los, lo)
		his = append(his, lo+int64(tileWidth>>j))
	}
	return levels, los, his
}

// tile is the hashes of one full tile, at their slots.
type tile [tileNodes][log.HashSize]byte

// tileCache holds full tiles.
type tileCache struct {
	c *genCache[tileID, *tile]
}

// newTileCache returns a tile cache that holds at most bytes of them
// (and at least one tile).
func newTileCache(bytes int) *tileCache {
	return &tileCache{newGenCache[tileID](max(bytes, 2*tileCost), func(*tile) int { return tileCost })}
}

// get fills out[i], for each i in idx, if a cached tile holds ids[i], and
// returns those of idx that no cached tile holds.
func (c *tileCache) get(ids []compact.NodeID, idx []int, out [][]byte) (missing []int) {
	keys := make([]tileID, 0, len(idx))
	look := make([]int, 0, len(idx))
	for _, i := range idx {
		if t, ok := tileOf(ids[i]); ok {
			keys, look = append(keys, t), append(look, i)
		} else {
			missing = append(missing, i)
		}
	}
	c.c.getEach(keys, func(k int, tl *tile) {
		h := tl[keys[k].slot(ids[look[k]])]
		out[look[k]] = h[:] // a copy: callers may change what they get
	}, func(k int) { missing = append(missing, look[k]) })
	return missing
}

// tileBytesOf returns the row of t: its hashes at their slots, or false
// if got lacks one of them.
func tileBytesOf(t tileID, got func(compact.NodeID) ([]byte, bool)) ([]byte, bool) {
	out := make([]byte, 0, tileBytes)
	for j := uint(0); j < tileHeight; j++ {
		first := t.index << (tileHeight - j)
		for k := uint64(0); k < tileWidth>>j; k++ {
			h, ok := got(compact.NewNodeID(uint(t.stratum)*tileHeight+j, first+k))
			if !ok || len(h) != log.HashSize {
				return nil, false
			}
			out = append(out, h...)
		}
	}
	return out, true
}

// completedTiles returns the tiles that nodes complete: a tile is full
// once the last node of its top level is stored.
func completedTiles(nodes []log.Node) []tileID {
	var out []tileID
	for _, n := range nodes {
		if n.ID.Level%tileHeight == tileHeight-1 && n.ID.Index%2 == 1 {
			if t, ok := tileOf(n.ID); ok {
				out = append(out, t)
			}
		}
	}
	return out
}

// tileRows returns the rows of the tiles that b completes, from b's nodes,
// the node cache, and for the rest the database (committed nodes never
// change, so they may be read before the commit's transaction).
func (s *LogStore) tileRows(ctx context.Context, b *log.Batch) ([]int16, []int64, [][]byte, error) {
	done := completedTiles(b.Nodes)
	if len(done) == 0 {
		return nil, nil, nil, nil
	}
	have := make(map[compact.NodeID][]byte, len(b.Nodes))
	for _, n := range b.Nodes {
		have[n.ID] = n.Hash
	}
	lookup := func(id compact.NodeID) ([]byte, bool) {
		if h, ok := have[id]; ok {
			return h, true
		}
		out := make([][]byte, 1)
		if missing := s.nodes.get([]compact.NodeID{id}, out); len(missing) == 0 {
			return out[0], true
		}
		return nil, false
	}
	var levels []int16
	var idxs []int64
	var rows [][]byte
	for _, t := range done {
		row, ok := tileBytesOf(t, lookup)
		if !ok {
			if err := s.readTileNodes(ctx, t, have); err != nil {
				return nil, nil, nil, err
			}
			if row, ok = tileBytesOf(t, lookup); !ok {
				return nil, nil, nil, fmt.Errorf("tile %d/%d: the batch completes it but not all its nodes are stored", t.stratum, t.index)
			}
		}
		levels, idxs, rows = append(levels, int16(t.stratum)), append(idxs, int64(t.index)), append(rows, row)
	}
	return levels, idxs, rows, nil
}

// readTileNodes reads the stored nodes of t into have.
func (s *LogStore) readTileNodes(ctx context.Context, t tileID, have map[compact.NodeID][]byte) error {
	levels, los, his := t.ranges(nil, nil, nil)
	// Each range is its own walk of the primary key (LATERAL … LIMIT): the
	// planner cannot estimate ranges given as parameters, and might
	// otherwise scan the whole table to join them.
	rows, err := s.pool.Query(ctx, `SELECT n.level, n.idx, n.hash FROM unnest($1::smallint[], $2::bigint[], $3::bigint[]) AS w(level, lo, hi)
		CROSS JOIN LATERAL (SELECT level, idx, hash FROM evident_log_nodes
			WHERE level = w.level AND idx >= w.lo AND idx < w.hi ORDER BY level, idx LIMIT $4) n`, levels, los, his, tileWidth)
	if err != nil {
		return fmt.Errorf("couldn't read the nodes of tile %d/%d: %w", t.stratum, t.index, err)
	}
	defer rows.Close()
	for rows.Next() {
		var level int16
		var idx int64
		var h []byte
		if err := rows.Scan(&level, &idx, &h); err != nil {
			return fmt.Errorf("couldn't read the nodes of tile %d/%d: %w", t.stratum, t.index, err)
		}
		if level >= 0 && idx >= 0 {
			have[compact.NewNodeID(uint(level), uint64(idx))] = h
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("couldn't read the nodes of tile %d/%d: %w", t.stratum, t.index, err)
	}
	return nil
}

// cacheRows caches the rows of full tiles.
func (c *tileCache) cacheRows(strata []int16, idxs []int64, rows [][]byte) {
	for i, row := range rows {
		if len(row) != tileBytes || strata[i] < 0 || idxs[i] < 0 {
			continue
		}
		tl := new(tile)
		for k := range tl {
			copy(tl[k][:], row[k*log.HashSize:])
		}
		c.c.put(tileID{uint8(strata[i]), uint64(idxs[i])}, tl)
	}
}

// readTiles reads, in one query, the tiles that hold ids, and those of ids
// whose tile is not stored (not full yet, or beyond any tile) one by one.
// It returns the hashes of ids in order, or ErrNotFound if one is not
// stored, and caches what it read: tiles in tiles, nodes in nodes.
func readTiles(ctx context.Context, q querier, ids []compact.NodeID, tiles *tileCache, nodes *nodeCache) ([][]byte, error) {
	var strata, levels []int16
	var tidx, nidx []int64
	seen := make(map[tileID]bool)
	for _, id := range ids {
		if id.Level > 63 || id.Index > maxNodeIndex {
			return nil, fmt.Errorf("node %d/%d: %w", id.Level, id.Index, log.ErrNotFound)
		}
		levels, nidx = append(levels, int16(id.Level)), append(nidx, int64(id.Index))
		if t, ok := tileOf(id); ok && !seen[t] {
			seen[t] = true
			strata, tidx = append(strata, int16(t.stratum)), append(tidx, int64(t.index))
		}
	}
	// A node is read on its own only where its tile is not stored; the
	// tile's key follows from the node's (tileOf).
	rows, err := q.Query(ctx, `SELECT true, t.stratum, t.idx, t.hashes FROM unnest($1::smallint[], $2::bigint[]) AS w(stratum, idx)
			JOIN evident_log_tiles t ON t.stratum = w.stratum AND t.idx = w.idx
		UNION ALL
		SELECT false, n.level, n.idx, n.hash FROM unnest($3::smallint[], $4::bigint[]) AS w(level, idx)
			JOIN evident_log_nodes n ON n.level = w.level AND n.idx = w.idx
			WHERE NOT EXISTS (SELECT FROM evident_log_tiles t
				WHERE t.stratum = w.level / $5 AND t.idx = w.idx >> ($5 - w.level % $5))`,
		strata, tidx, levels, nidx, tileHeight)
	if err != nil {
		return nil, fmt.Errorf("couldn't read nodes: %w", err)
	}
	defer rows.Close()
	var ts, ns []int16
	var ti, ni []int64
	var th, nh [][]byte
	for rows.Next() {
		var isTile bool
		var level int16
		var idx int64
		var h []byte
		if err := rows.Scan(&isTile, &level, &idx, &h); err != nil {
			return nil, fmt.Errorf("couldn't read nodes: %w", err)
		}
		if isTile {
			if len(h) != tileBytes {
				return nil, fmt.Errorf("tile %d/%d is %d bytes, not %d", level, idx, len(h), tileBytes)
			}
			ts, ti, th = append(ts, level), append(ti, idx), append(th, h)
		} else {
			ns, ni, nh = append(ns, level), append(ni, idx), append(nh, h)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("couldn't read nodes: %w", err)
	}
	tiles.cacheRows(ts, ti, th)
	got := make(map[compact.NodeID][]byte, len(ns))
	for i := range ns {
		if ns[i] >= 0 && ni[i] >= 0 {
			id := compact.NewNodeID(uint(ns[i]), uint64(ni[i]))
			got[id] = nh[i]
			nodes.put([]compact.NodeID{id}, [][]byte{nh[i]})
		}
	}
	return answer(ids, got, ts, ti, th)
}

// answer returns the hashes of ids from the nodes and tile rows read.
func answer(ids []compact.NodeID, got map[compact.NodeID][]byte, ts []int16, ti []int64, th [][]byte) ([][]byte, error) {
	rows := make(map[tileID][]byte, len(ts))
	for i := range ts {
		rows[tileID{uint8(ts[i]), uint64(ti[i])}] = th[i]
	}
	out := make([][]byte, len(ids))
	for i, id := range ids {
		if h, ok := got[id]; ok {
			out[i] = h
			continue
		}
		t, ok := tileOf(id)
		row, found := rows[t]
		if !ok || !found {
			return nil, fmt.Errorf("node %d/%d: %w", id.Level, id.Index, log.ErrNotFound)
		}
		k := t.slot(id) * log.HashSize
		out[i] = row[k : k+log.HashSize : k+log.HashSize]
	}
	return out, nil
}

// maxNodeIndex is the largest node index the schema holds.
const maxNodeIndex = 1<<63 - 1

// ErrTileMismatch: a stored tile does not hold the stored nodes it covers.
var ErrTileMismatch = fmt.Errorf("%w: a tile disagrees with the nodes", log.ErrCorrupt)

// checkTilesPerStatement bounds the tiles one statement of CheckTiles
// compares (each against its 510 nodes): the check of a large log is many
// short statements, each well inside the sessions' statement timeout.
const checkTilesPerStatement = 32

// CheckTiles checks that every stored tile holds exactly the stored nodes
// it covers, as fsck must: proofs are read from tiles, and log.Check
// checks the nodes. It fails with ErrTileMismatch naming the first tile
// that does not.
func (s *Snapshot) CheckTiles() error {
	after := tileKey{-1, -1}
	for {
		next, n, err := s.checkTilesAfter(after)
		if err != nil {
			return err
		}
		if n < checkTilesPerStatement {
			return nil
		}
		after = next
	}
}

// tileKey is a tile's primary key as stored.
type tileKey struct {
	stratum int16
	idx     int64
}

// checkTilesAfter compares the next checkTilesPerStatement tiles after
// key with their nodes, and returns the last key compared and how many
// tiles were.
func (s *Snapshot) checkTilesAfter(after tileKey) (tileKey, int, error) {
	rows, err := s.tx.Query(s.ctx, `SELECT t.stratum, t.idx, t.hashes IS DISTINCT FROM (
			SELECT string_agg(n.hash, ''::bytea ORDER BY n.level, n.idx)
			FROM generate_series(0, $1 - 1) AS j
			JOIN evident_log_nodes n ON n.level = t.stratum * $1 + j
				AND n.idx >= t.idx << ($1 - j) AND n.idx < (t.idx + 1) << ($1 - j))
		FROM (SELECT stratum, idx, hashes FROM evident_log_tiles WHERE (stratum, idx) > ($2, $3)
			ORDER BY stratum, idx LIMIT $4) t
		ORDER BY t.stratum, t.idx`, tileHeight, after.stratum, after.idx, checkTilesPerStatement)
	if err != nil {
		return after, 0, fmt.Errorf("couldn't check the tiles: %w", err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var bad bool
		if err := rows.Scan(&after.stratum, &after.idx, &bad); err != nil {
			return after, 0, fmt.Errorf("couldn't check the tiles: %w", err)
		}
		if bad {
			return after, 0, fmt.Errorf("%w: tile %d/%d", ErrTileMismatch, after.stratum, after.idx)
		}
		n++
	}
	if err := rows.Err(); err != nil {
		return after, 0, fmt.Errorf("couldn't check the tiles: %w", err)
	}
	return after, n, nil
}
