package pgstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/evident-dev/evident/log"
	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
)

// tree builds batches of a real RFC 6962 tree, as the log does: every
// leaf and every complete subtree, with the hashes of all of them.
type tree struct {
	cr     *compact.Range
	hashes map[compact.NodeID][]byte
}

func newTree() *tree {
	rf := compact.RangeFactory{Hash: rfc6962.DefaultHasher.HashChildren}
	return &tree{cr: rf.NewEmptyRange(0), hashes: make(map[compact.NodeID][]byte)}
}

func (tr *tree) batch(t *testing.T, n int) *log.Batch {
	t.Helper()
	start := tr.cr.End()
	b := &log.Batch{Start: start, Head: log.Head{Size: start + uint64(n), Checkpoint: []byte(fmt.Sprintf("cp %d\n", start+uint64(n))), Time: 1}}
	visit := func(id compact.NodeID, h []byte) {
		b.Nodes = append(b.Nodes, log.Node{ID: id, Hash: h})
		tr.hashes[id] = h
	}
	for i := start; i < start+uint64(n); i++ {
		e := []byte(fmt.Sprintf("tile entry %d", i))
		h := log.LeafHash(e)
		b.Entries, b.LeafHashes = append(b.Entries, e), append(b.LeafHashes, h)
		if err := tr.cr.Append(h, visit); err != nil {
			t.Fatal(err)
		}
	}
	return b
}

func countTiles(t *testing.T, s *LogStore) int {
	t.Helper()
	var n int
	if err := s.pool.QueryRow(context.Background(), "SELECT count(*) FROM evident_log_tiles").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// A commit that completes a tile writes it as one row, and a frontend that
// holds nothing in memory reads proofs from those rows: here the nodes the
// tiles cover are gone from evident_log_nodes and every proof is still
// answered, with the hashes the log committed; the nodes at the right edge,
// in no full tile yet, come from evident_log_nodes in the same query.
func TestProofsReadFromTiles(t *testing.T) {
	s, url := openLeader(t)
	defer s.Close()
	tr := newTree()
	for _, n := range []int{100, 100, 100, 700} { // tile 0 completes in the third commit
		if err := s.Commit(tr.batch(t, n)); err != nil {
			t.Fatal(err)
		}
	}
	if n := countTiles(t, s); n != 3 {
		t.Fatalf("%d tiles stored after 1000 entries, want 3 (the full tiles of level 0)", n)
	}
	if _, err := s.pool.Exec(context.Background(), "DELETE FROM evident_log_nodes WHERE level < 8 AND idx << level < 768"); err != nil {
		t.Fatal(err)
	}
	fresh, err := OpenLog(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer fresh.Close()
	for _, leaf := range []uint64{0, 5, 255, 256, 767, 768, 999} {
		nodes, err := proof.Inclusion(leaf, 1000)
		if err != nil {
			t.Fatal(err)
		}
		got, err := fresh.Nodes(nodes.IDs)
		if err != nil {
			t.Fatalf("Nodes of the proof of %d = %v", leaf, err)
		}
		for i, id := range nodes.IDs {
			if !bytes.Equal(got[i], tr.hashes[id]) {
				t.Fatalf("proof of %d: node %d/%d = %x, want %x", leaf, id.Level, id.Index, got[i], tr.hashes[id])
			}
		}
	}
	if n := fresh.tiles.c.len(); n != 3 {
		t.Errorf("the fresh frontend caches %d tiles, want the 3 it read", n)
	}
	got, err := fresh.Nodes([]compact.NodeID{compact.NewNodeID(2, 10)}) // from the cache now
	if err != nil || !bytes.Equal(got[0], tr.hashes[compact.NewNodeID(2, 10)]) {
		t.Errorf("Nodes(2/10) from a cached tile = %x, %v", got, err)
	}
	got[0][0] ^= 1 // a caller that changes what it was given changes no cached tile
	if got, err := fresh.Nodes([]compact.NodeID{compact.NewNodeID(2, 10)}); err != nil || !bytes.Equal(got[0], tr.hashes[compact.NewNodeID(2, 10)]) {
		t.Errorf("Nodes(2/10) after a caller changed its copy = %x, %v", got, err)
	}
	for _, id := range []compact.NodeID{compact.NewNodeID(0, 1000), compact.NewNodeID(3, 125), compact.NewNodeID(8, 3)} {
		if _, err := fresh.Nodes([]compact.NodeID{id}); !errors.Is(err, log.ErrNotFound) {
			t.Errorf("Nodes(%d/%d), never stored = %v, want ErrNotFound", id.Level, id.Index, err)
		}
	}
}

// A leader that does not hold the earlier nodes of a tile it completes (it
// just took over, or they left its cache) reads them before its commit:
// the tile row is whole and agrees with the nodes. A commit the fence
// refuses writes no tile.
func TestTileCompletedWithoutCachedNodes(t *testing.T) {
	s, _ := openLeader(t)
	defer s.Close()
	tr := newTree()
	if err := s.Commit(tr.batch(t, 200)); err != nil {
		t.Fatal(err)
	}
	s.nodes = newNodeCache(nodeCacheBytes) // as after a takeover
	// A batch the fence refuses (it does not start at the size) writes no
	// tile, though it would complete one.
	if err := s.Commit(newTree().batch(t, 300)); !errors.Is(err, log.ErrConflict) {
		t.Fatalf("Commit at 0 of a log of 200 = %v, want ErrConflict", err)
	}
	if n := countTiles(t, s); n != 0 {
		t.Fatalf("a refused commit left %d tiles", n)
	}
	if err := s.Commit(tr.batch(t, 100)); err != nil {
		t.Fatal(err)
	}
	var row []byte
	if err := s.pool.QueryRow(context.Background(), "SELECT hashes FROM evident_log_tiles WHERE stratum = 0 AND idx = 0").Scan(&row); err != nil {
		t.Fatalf("tile 0/0 after 300 entries: %v", err)
	}
	want, ok := tileBytesOf(tileID{0, 0}, func(id compact.NodeID) ([]byte, bool) { h, ok := tr.hashes[id]; return h, ok })
	if !ok || !bytes.Equal(row, want) {
		t.Fatalf("tile 0/0 does not hold the tree's nodes")
	}
	snap, err := s.Snapshot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer snap.Close()
	if err := snap.CheckTiles(); err != nil {
		t.Fatalf("CheckTiles = %v", err)
	}
}

// fsck finds a tile that disagrees with the nodes it covers — a changed
// hash in the tile, or a changed node under it — and names it.
func TestCheckTilesFindsTamperedTile(t *testing.T) {
	s, _ := openLeader(t)
	defer s.Close()
	tr := newTree()
	if err := s.Commit(tr.batch(t, 600)); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, tamper := range []string{
		"UPDATE evident_log_tiles SET hashes = set_byte(hashes, 100, get_byte(hashes, 100) # 1) WHERE idx = 1",
		"UPDATE evident_log_nodes SET hash = sha256(hash) WHERE level = 3 AND idx = 40",
	} {
		tx, err := s.pool.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(ctx, tamper); err != nil {
			t.Fatal(err)
		}
		snap := &Snapshot{tx: tx, ctx: ctx}
		err = snap.CheckTiles()
		tx.Rollback(ctx)
		if !errors.Is(err, ErrTileMismatch) || !errors.Is(err, log.ErrCorrupt) || !bytes.Contains([]byte(err.Error()), []byte("tile 0/1")) {
			t.Errorf("after %q CheckTiles = %v, want ErrTileMismatch naming tile 0/1", tamper, err)
		}
	}
}

// The migration that adds tiles makes them for a log that is already
// there: the same rows its commits would have written.
func TestMigrationMakesTilesOfExistingLog(t *testing.T) {
	s, url := openLeader(t)
	tr := newTree()
	for _, n := range []int{300, 400} {
		if err := s.Commit(tr.batch(t, n)); err != nil {
			t.Fatal(err)
		}
	}
	ctx := context.Background()
	wantRows := tileRowsOf(t, s)
	if len(wantRows) != 2 {
		t.Fatalf("%d tiles after 700 entries, want 2", len(wantRows))
	}
	if _, err := s.pool.Exec(ctx, "DROP TABLE evident_log_tiles"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.pool.Exec(ctx, "UPDATE evident_schema SET version = $1", SchemaVersion-1); err != nil {
		t.Fatal(err)
	}
	s.Close()
	again, err := OpenLog(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	got := tileRowsOf(t, again)
	if len(got) != len(wantRows) {
		t.Fatalf("the migration made %d tiles, want %d", len(got), len(wantRows))
	}
	for k, row := range wantRows {
		if !bytes.Equal(got[k], row) {
			t.Errorf("tile %s made by the migration differs from the one the commit wrote", k)
		}
	}
}

// tileRowsOf returns the stored tiles by "stratum/index".
func tileRowsOf(t *testing.T, s *LogStore) map[string][]byte {
	t.Helper()
	rows, err := s.pool.Query(context.Background(), "SELECT stratum, idx, hashes FROM evident_log_tiles")
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[string][]byte)
	for rows.Next() {
		var st int16
		var idx int64
		var h []byte
		if err := rows.Scan(&st, &idx, &h); err != nil {
			t.Fatal(err)
		}
		out[fmt.Sprintf("%d/%d", st, idx)] = h
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// A tile row of the wrong length is refused by the schema, and, should one
// be there anyway, by the frontend reading it: an error, not a proof made
// of the wrong bytes.
func TestTileOfWrongLengthRefused(t *testing.T) {
	s, url := openLeader(t)
	defer s.Close()
	tr := newTree()
	if err := s.Commit(tr.batch(t, 300)); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	short := "UPDATE evident_log_tiles SET hashes = substring(hashes from 1 for 16288)"
	if _, err := s.pool.Exec(ctx, short); err == nil {
		t.Fatal("the schema stored a tile of 16288 bytes")
	}
	if _, err := s.pool.Exec(ctx, "ALTER TABLE evident_log_tiles DROP CONSTRAINT evident_log_tiles_hashes_check"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.pool.Exec(ctx, short); err != nil {
		t.Fatal(err)
	}
	fresh, err := OpenLog(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer fresh.Close()
	if got, err := fresh.Nodes([]compact.NodeID{compact.NewNodeID(0, 255)}); err == nil || !bytes.Contains([]byte(err.Error()), []byte("16288 bytes")) {
		t.Fatalf("Nodes from a short tile = %x, %v, want an error naming its length", got, err)
	}
	if n := fresh.tiles.c.len(); n != 0 {
		t.Errorf("a short tile was cached")
	}
}

// Every node a tile holds has a slot of its own inside the tile, and lies
// in one of the ranges a tile read covers: the mapping from nodes to tile
// rows never reads past a row or answers one node with another's hash.
func FuzzTileSlots(f *testing.F) {
	for _, seed := range [][2]uint64{{0, 0}, {7, 1}, {8, 3}, {15, 255}, {63, 0}, {3, 1<<60 - 1}, {64, 1}} {
		f.Add(uint8(seed[0]), seed[1])
	}
	f.Fuzz(func(t *testing.T, level uint8, index uint64) {
		id := compact.NewNodeID(uint(level), index)
		tl, ok := tileOf(id)
		if !ok {
			if level <= 63 && index>>(tileHeight-uint(level)%tileHeight) <= maxTileIndex {
				t.Fatalf("node %d/%d has no tile", level, index)
			}
			return
		}
		slot := tl.slot(id)
		if slot < 0 || slot >= tileNodes {
			t.Fatalf("node %d/%d: slot %d outside a tile of %d", level, index, slot, tileNodes)
		}
		levels, los, his := tl.ranges(nil, nil, nil)
		j := uint(level) % tileHeight
		if int(levels[j]) != int(level) || int64(index) < los[j] || int64(index) >= his[j] {
			t.Fatalf("node %d/%d is not in the range %d/[%d, %d) of its tile", level, index, levels[j], los[j], his[j])
		}
		// The slot says which node it is: level by level, index within.
		first := 2*tileWidth - (2*tileWidth)>>j
		if back := los[j] + int64(slot-first); back != int64(index) {
			t.Fatalf("slot %d of tile %d/%d is node %d/%d, not %d/%d", slot, tl.stratum, tl.index, level, back, level, index)
		}
	})
}

// A tile changed in the database makes a frontend that reads it answer a
// wrong proof (Nodes answers what the database holds; fsck is what finds
// the change), and the proof then fails the check every client makes
// against the signed root: a tampered tile can deny an entry's inclusion,
// never prove an entry the log does not hold.
func TestTamperedTileProofFailsVerification(t *testing.T) {
	s, url := openLeader(t)
	defer s.Close()
	tr := newTree()
	if err := s.Commit(tr.batch(t, 300)); err != nil {
		t.Fatal(err)
	}
	root, err := tr.cr.GetRootHash(nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	// Slot 2 of tile 0/0 is leaf 2, a sibling on leaf 3's path.
	if _, err := s.pool.Exec(ctx, "UPDATE evident_log_tiles SET hashes = set_byte(hashes, 64, get_byte(hashes, 64) # 1) WHERE stratum = 0 AND idx = 0"); err != nil {
		t.Fatal(err)
	}
	fresh, err := OpenLog(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer fresh.Close()
	nodes, err := proof.Inclusion(3, 300)
	if err != nil {
		t.Fatal(err)
	}
	hashes, err := fresh.Nodes(nodes.IDs)
	if err != nil {
		t.Fatal(err)
	}
	if id := nodes.IDs[0]; id != compact.NewNodeID(0, 2) || bytes.Equal(hashes[0], tr.hashes[id]) {
		t.Fatalf("the proof's first node %d/%d was not read from the tampered slot", id.Level, id.Index)
	}
	p, err := nodes.Rehash(hashes, rfc6962.DefaultHasher.HashChildren)
	if err != nil {
		t.Fatal(err)
	}
	leaf := log.LeafHash([]byte("tile entry 3"))
	if err := proof.VerifyInclusion(rfc6962.DefaultHasher, 3, 300, leaf, p, root); err == nil {
		t.Fatal("a proof read from a tampered tile verified against the signed root")
	}
}
