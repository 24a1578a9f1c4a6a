package pgstore

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"
)

// fillNodes stores, as a log of 2^height leaves would, the hashes of every
// leaf and complete subtree (made-up hashes: what is measured is size, not
// the tree), in one statement free of the session's statement timeout.
func fillNodes(t *testing.T, s *LogStore, height int) {
	t.Helper()
	ctx := context.Background()
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, "SET LOCAL statement_timeout = 0"); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO evident_log_nodes (level, idx, hash)
			SELECT l, i, sha256(int8send(l::bigint << 40 | i))
			FROM generate_series(0, $1::int) l, generate_series(0, (1::bigint << ($1::int - l)) - 1) i`, height); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	// Reads of fresh rows write their hint bits; a test that times reads
	// should not time that.
	if _, err := s.pool.Exec(ctx, "VACUUM ANALYZE evident_log_nodes"); err != nil {
		t.Fatal(err)
	}
}

// The upgrade that adds tiles makes them of every full tile a log already
// has, in one statement whose time grows with the log; frontends run with
// a statement timeout of seconds, and a migration it cancelled would fail
// every start of every frontend on a large log, forever. The migration is
// bounded by its caller's context instead. Here the timeout is shortened
// so that a log of 2^19 leaves stands for one of millions. fsck's check
// of the tiles, against the same timeout, reads them a bounded number of
// tiles per statement.
func TestMigrationOfLargeLogOutlastsStatementTimeout(t *testing.T) {
	s, url := openLeader(t)
	ctx := context.Background()
	fillNodes(t, s, 19)
	if _, err := s.pool.Exec(ctx, "DROP TABLE evident_log_tiles"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.pool.Exec(ctx, "UPDATE evident_schema SET version = $1", SchemaVersion-1); err != nil {
		t.Fatal(err)
	}
	s.Close()
	defer func(d time.Duration) { statementTimeout = d }(statementTimeout)
	statementTimeout = 200 * time.Millisecond
	again, err := OpenLog(ctx, url)
	if err != nil {
		t.Fatalf("OpenLog migrating a log of 2^19 leaves = %v", err)
	}
	defer again.Close()
	// 2048 tiles of level 0 to 7, 8 of levels 8 to 15.
	if n := countTiles(t, again); n != 2056 {
		t.Fatalf("the migration made %d tiles, want 2056", n)
	}
	// The whole check takes about a second here; each of its statements
	// a few milliseconds.
	statementTimeout = 500 * time.Millisecond
	ro, err := OpenLogReadOnly(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	snap, err := ro.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer snap.Close()
	if err := snap.CheckTiles(); err != nil {
		t.Fatalf("CheckTiles of 2056 tiles = %v", err)
	}
	// A tampered tile past the first statement's share is found and named.
	if _, err := again.pool.Exec(ctx, "UPDATE evident_log_tiles SET hashes = set_byte(hashes, 0, get_byte(hashes, 0) # 1) WHERE stratum = 1 AND idx = 7"); err != nil {
		t.Fatal(err)
	}
	later, err := ro.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer later.Close()
	if err := later.CheckTiles(); !errors.Is(err, ErrTileMismatch) || !strings.Contains(err.Error(), "tile 1/7") {
		t.Fatalf("CheckTiles with tile 1/7 tampered = %v, want ErrTileMismatch naming it", err)
	}
}

// A frontend allows a migration OpenTimeout, but a database that accepts
// connections and never answers still fails its start after
// connectTimeout, not after OpenTimeout.
func TestOpenLogSilentServerFailsAtConnectTimeout(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close() // held open, never answered
		}
	}()
	defer func(d time.Duration) { connectTimeout = d }(connectTimeout)
	connectTimeout = 200 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), OpenTimeout)
	defer cancel()
	t0 := time.Now()
	s, err := OpenLog(ctx, "postgres://evident@"+ln.Addr().String()+"/evident?sslmode=disable")
	if err == nil {
		s.Close()
		t.Fatal("OpenLog of a server that never answers succeeded")
	}
	if d := time.Since(t0); d > 10*time.Second {
		t.Fatalf("OpenLog of a server that never answers failed after %v, want about %v", d, connectTimeout)
	}
}
