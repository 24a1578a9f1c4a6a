// Package pgstore keeps evident's log and links in PostgreSQL, for running
// several `evident serve` frontends on one database.
//
// [LogStore] implements log.Store and [LinkStore] implements
// linkstore.Store, with the same contracts as the embedded bbolt stores.
// The schema is created and migrated by evident itself: [Migrate] applies
// the numbered migrations this build knows, under an advisory lock so that
// frontends starting together migrate once, and refuses a database whose
// schema is newer than the build ([ErrSchemaTooNew]). [OpenLogReadOnly],
// for inspection, never migrates: it requires this build's schema.
//
// # One sequencer, fenced
//
// Any number of frontends read; exactly one, the leader, sequences. The
// leader holds a lease kept in the head row of the log (evident_log_head):
// the leader's id, the address it advertises, the lease's end by the
// database's clock, and a term. A frontend becomes leader by taking an
// expired lease, which increments the term; the leader renews the lease
// every third of its lifetime, and gives it up on shutdown. Every commit is
// one transaction that first updates the head row on the condition that
// the tree size and the term are those the commit builds on; a frontend
// whose lease was taken over — killed, paused (SIGSTOP), partitioned from
// the database — therefore finds its commit refused ([ErrDeposed]) even if
// it never learnt that it lost the lease, and cannot fork the log. The row
// lock makes commits and takeovers one sequence. Leases time out by the
// database's clock only; a frontend also stops calling itself leader once
// its own lease would have expired by its own clock, so that it stops
// taking appends while it cannot renew.
//
// Each frontend keeps in memory the node hashes and entries it committed or
// read, and the full tiles it read, bounded (see [LogStore]): they never
// change once committed, so the proof answered with each append needs no
// query, and a proof deep in a large tree needs none once its tiles have
// been read (tiles.go). Snapshots, which fsck checks, read the database
// only.
//
// Appends that reach a follower are forwarded by the follower to the leader
// (package serve), so the caller still gets its index, inclusion proof and
// signed checkpoint; followers read the head from the database and answer
// every read themselves.
//
// # Schema
//
//	evident_schema         the schema version (one row)
//	evident_log_head       size, checkpoint, its signing time, term and lease (one row)
//	evident_log_entries    index → canonical entry and its RFC 6962 leaf hash (indexed)
//	evident_log_nodes      (level, index) → hash of every leaf and complete subtree
//	evident_log_tiles      (stratum, index) → the hashes of one full tile (tiles.go)
//	evident_links          payload digest → link document
//	evident_link_artifacts (artifact digest, log index) of every link's materials and products
package pgstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/evident-dev/evident/log"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Errors callers branch on.
var (
	// ErrSchemaTooNew: the database was migrated by a newer evident.
	ErrSchemaTooNew = errors.New("database schema is newer than this evident")
	// ErrSchemaTooOld: a read-only opening found a schema that this evident
	// would migrate; it inspects, so it does not.
	ErrSchemaTooOld = errors.New("database schema is older than this evident")
	// ErrNoSchema: a read-only opening found no evident schema at all (an
	// empty database, or not evident's).
	ErrNoSchema = errors.New("the database has no evident schema")
	// ErrNotLeader: this frontend does not hold the sequencer lease.
	ErrNotLeader = fmt.Errorf("%w: this frontend is not the sequencer", log.ErrUnavailable)
	// ErrDeposed: another frontend took the lease over since this one
	// became leader; the commit was refused and changed nothing.
	ErrDeposed = fmt.Errorf("%w: another frontend took over as sequencer", log.ErrUnavailable)
)

// migrations[i] brings the schema from version i to i+1. Never edit one
// that has been released: append another.
var migrations = [...]string{
	`CREATE TABLE evident_log_head (
		one         boolean PRIMARY KEY DEFAULT true CHECK (one),
		size        bigint NOT NULL CHECK (size >= 0),
		time        bigint NOT NULL,
		checkpoint  bytea,
		term        bigint NOT NULL DEFAULT 0,
		leader      text NOT NULL DEFAULT '',
		leader_addr text NOT NULL DEFAULT '',
		lease_until timestamptz NOT NULL DEFAULT '-infinity'
	);
	INSERT INTO evident_log_head (size, time) VALUES (0, 0);
	CREATE TABLE evident_log_entries (
		idx   bigint PRIMARY KEY CHECK (idx >= 0),
		leaf  bytea NOT NULL,
		entry bytea NOT NULL
	);
	CREATE INDEX evident_log_entries_leaf ON evident_log_entries (leaf);
	CREATE TABLE evident_log_nodes (
		level smallint NOT NULL CHECK (level BETWEEN 0 AND 63),
		idx   bigint NOT NULL CHECK (idx >= 0),
		hash  bytea NOT NULL,
		PRIMARY KEY (level, idx)
	);
	CREATE TABLE evident_links (
		digest bytea PRIMARY KEY CHECK (length(digest) = 32),
		doc    bytea NOT NULL
	);
	CREATE TABLE evident_link_artifacts (
		artifact bytea NOT NULL CHECK (length(artifact) = 32),
		idx      bigint NOT NULL CHECK (idx >= 0),
		PRIMARY KEY (artifact, idx)
	);`,
	// The checkpoints witnesses cosigned (log.WitnessedStore), kept so that
	// every frontend, and the next sequencer, can prove when an entry was
	// first witnessed.
	`CREATE TABLE evident_witnessed (
		size bigint PRIMARY KEY CHECK (size > 0),
		note bytea NOT NULL
	);`,
	// Full tiles (tiles.go): each the 510 stored hashes of 8 levels of
	// nodes, level by level, so that a proof reads a row per tile rather
	// than an index probe per node. The tiles of a log that is already
	// there are made from its nodes.
	`CREATE TABLE evident_log_tiles (
		stratum smallint NOT NULL CHECK (stratum BETWEEN 0 AND 7),
		idx     bigint NOT NULL CHECK (idx >= 0),
		hashes  bytea NOT NULL CHECK (length(hashes) = 16320),
		PRIMARY KEY (stratum, idx)
	);
	ALTER TABLE evident_log_tiles ALTER COLUMN hashes SET STORAGE EXTERNAL;
	INSERT INTO evident_log_tiles (stratum, idx, hashes)
		SELECT level / 8, idx >> (8 - level % 8), string_agg(hash, ''::bytea ORDER BY level, idx)
		FROM evident_log_nodes WHERE level < 64
		GROUP BY level / 8, idx >> (8 - level % 8)
		HAVING count(*) = 510 AND bool_and(length(hash) = 32);`,
}

// SchemaVersion is the schema version this build migrates to.
const SchemaVersion = len(migrations)

// migrationLock is the advisory lock key migrations hold ("evident" in ASCII).
const migrationLock = 0x65766964656e74

// Migrate brings the database's schema to [SchemaVersion], in one
// transaction. It fails with ErrSchemaTooNew, changing nothing, if the
// database is at a later version.
//
// A migration may take time in proportion to the log (the one that adds
// tiles reads every node, about 4 s per million entries), so its statements
// are exempt from the sessions' statementTimeout, which would otherwise
// cancel the upgrade of a large log at every start: ctx bounds it, and a
// frontend that waits for another's migration waits as long as its ctx lets it.
func Migrate(ctx context.Context, pool *pgxpool.Pool) error {
	tx, err := pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("couldn't begin the migration: %w", err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, "SET LOCAL statement_timeout = 0"); err != nil {
		return fmt.Errorf("couldn't lift the statement timeout for the migration: %w", err)
	}
	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", int64(migrationLock)); err != nil {
		return fmt.Errorf("couldn't lock the schema: %w", err)
	}
	_, err = tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS evident_schema (
		one boolean PRIMARY KEY DEFAULT true CHECK (one), version integer NOT NULL)`)
	if err != nil {
		return fmt.Errorf("couldn't create evident_schema: %w", err)
	}
	var v int
	err = tx.QueryRow(ctx, "SELECT version FROM evident_schema").Scan(&v)
	if errors.Is(err, pgx.ErrNoRows) {
		v = 0
	} else if err != nil {
		return fmt.Errorf("couldn't read the schema version: %w", err)
	}
	if v > len(migrations) {
		return fmt.Errorf("%w: the database is at version %d, this evident knows up to %d", ErrSchemaTooNew, v, len(migrations))
	}
	if v == len(migrations) {
		return nil
	}
	for i := v; i < len(migrations); i++ {
		if _, err := tx.Exec(ctx, migrations[i]); err != nil {
			return fmt.Errorf("migration %d: %w", i+1, err)
		}
	}
	_, err = tx.Exec(ctx, `INSERT INTO evident_schema (version) VALUES ($1)
		ON CONFLICT (one) DO UPDATE SET version = excluded.version`, len(migrations))
	if err != nil {
		return fmt.Errorf("couldn't record the schema version: %w", err)
	}
	return tx.Commit(ctx)
}

// schemaVersion reads the schema version without changing anything; a
// database without evident_schema is at version 0.
func schemaVersion(ctx context.Context, q querier) (int, error) {
	var exists bool
	if err := q.QueryRow(ctx, "SELECT to_regclass('evident_schema') IS NOT NULL").Scan(&exists); err != nil {
		return 0, fmt.Errorf("couldn't look for evident_schema: %w", err)
	}
	if !exists {
		return 0, nil
	}
	var v int
	err := q.QueryRow(ctx, "SELECT version FROM evident_schema").Scan(&v)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("couldn't read the schema version: %w", err)
	}
	return v, nil
}

// checkSchema fails unless the database is at exactly [SchemaVersion].
func checkSchema(ctx context.Context, pool *pgxpool.Pool) error {
	v, err := schemaVersion(ctx, pool)
	switch {
	case err != nil:
		return err
	case v == 0:
		return fmt.Errorf("%w (an empty database, or not evident's): nothing to check", ErrNoSchema)
	case v > len(migrations):
		return fmt.Errorf("%w: the database is at version %d, this evident knows up to %d", ErrSchemaTooNew, v, len(migrations))
	case v < len(migrations):
		return fmt.Errorf("%w: the database is at version %d, this evident's is %d (evident serve migrates it; this does not)", ErrSchemaTooOld, v, len(migrations))
	}
	return nil
}

// openPool connects to url and migrates the schema.
func openPool(ctx context.Context, url string, maxConns int32) (*pgxpool.Pool, error) {
	return connect(ctx, url, maxConns, false)
}

// connect connects to url; it migrates the schema, or with readOnly makes
// every session read-only and only checks that the schema is this build's.
func connect(ctx context.Context, url string, maxConns int32, readOnly bool) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("bad PostgreSQL URL: %w", err)
	}
	if maxConns > 0 {
		cfg.MaxConns = maxConns
	}
	cfg.MaxConnIdleTime = time.Minute
	if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = connectTimeout
	}
	cfg.HealthCheckPeriod = 5 * time.Second
	if cfg.ConnConfig.RuntimeParams == nil {
		cfg.ConnConfig.RuntimeParams = map[string]string{}
	}
	cfg.ConnConfig.RuntimeParams["application_name"] = "evident"
	// A frontend paused (SIGSTOP) or cut off inside a commit holds the head
	// row's lock: the database ends its transaction so that a successor can
	// take over. No statement of evident's runs for seconds.
	cfg.ConnConfig.RuntimeParams["statement_timeout"] = fmt.Sprint(statementTimeout.Milliseconds())
	cfg.ConnConfig.RuntimeParams["idle_in_transaction_session_timeout"] = fmt.Sprint(idleInTransactionTimeout.Milliseconds())
	check := Migrate
	if readOnly {
		cfg.ConnConfig.RuntimeParams["default_transaction_read_only"] = "on"
		check = checkSchema
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("couldn't connect to PostgreSQL: %w", err)
	}
	if err := check(ctx, pool); err != nil {
		pool.Close()
		return nil, err
	}
	return pool, nil
}

// The database ends statements and transactions of a stalled frontend
// after these, releasing its locks. (A variable only so that tests can
// shorten it.)
var statementTimeout = 5 * time.Second

const idleInTransactionTimeout = 3 * time.Second

// OpenTimeout is how long a frontend's opening of a store may take, the
// schema's migration included: a migration may read the whole log (the one
// that adds tiles takes about 4 s per million entries), so this allows
// for a log of a few hundred million. Each connection attempt is bounded
// by connectTimeout all the same, so an unreachable database fails a
// start in seconds.
const OpenTimeout = 30 * time.Minute

// connectTimeout bounds each connection attempt whose URL sets no
// connect_timeout. (A variable only so that tests can shorten it.)
var connectTimeout = 10 * time.Second

// opTimeout bounds every database operation, so that a database that stops
// answering fails requests rather than holding them.
const opTimeout = 30 * time.Second

// errClosed is returned by every call after Close.
var errClosed = errors.New("store is closed")
