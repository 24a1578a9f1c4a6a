package pgstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/evident-dev/evident/linkstore"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// LinkStore is a linkstore.Store in PostgreSQL: tables evident_links and
// evident_link_artifacts. Each Put is one transaction, and one statement
// but when it races another upload of the same link.
type LinkStore struct {
	pool   *pgxpool.Pool
	closed atomic.Bool
}

// OpenLinks connects to the PostgreSQL database at url, migrating its schema.
func OpenLinks(ctx context.Context, url string) (*LinkStore, error) {
	pool, err := openPool(ctx, url, 4)
	if err != nil {
		return nil, err
	}
	return &LinkStore{pool: pool}, nil
}

// Put implements linkstore.Store, in one statement (one round trip and one
// transaction) unless a concurrent upload of the same link raced it, when
// it checks again in a transaction of its own.
func (s *LinkStore) Put(ctx context.Context, digest [32]byte, index uint64, doc []byte, artifacts [][32]byte) error {
	if s.closed.Load() {
		return errClosed
	}
	if int64(index) < 0 {
		return fmt.Errorf("log index %d does not fit the schema", index)
	}
	arts := make([][]byte, len(artifacts))
	for i := range artifacts {
		arts[i] = artifacts[i][:]
	}
	// The artifacts are indexed only if the link is stored now or was
	// stored before with the same bytes; the statement sees the links
	// committed before it began, and its own insert.
	var ok bool
	err := s.pool.QueryRow(ctx, `WITH ins AS (
			INSERT INTO evident_links (digest, doc) VALUES ($1, $2) ON CONFLICT (digest) DO NOTHING RETURNING 1
		), same AS (
			SELECT EXISTS (SELECT FROM ins) OR EXISTS (SELECT FROM evident_links WHERE digest = $1 AND doc = $2) AS ok
		), arts AS (
			INSERT INTO evident_link_artifacts (artifact, idx)
			SELECT a, $3 FROM unnest($4::bytea[]) AS a WHERE (SELECT ok FROM same) ON CONFLICT DO NOTHING
		)
		SELECT ok FROM same`, digest[:], doc, int64(index), arts).Scan(&ok)
	if err != nil {
		return fmt.Errorf("couldn't store link: %w", err)
	}
	if ok {
		return nil
	}
	return s.putChecked(ctx, digest, index, doc, arts)
}

// putChecked stores a link whose digest is taken, in one transaction: it
// adds the artifacts if the stored link has the same bytes, and fails
// with linkstore.ErrConflict if not.
func (s *LinkStore) putChecked(ctx context.Context, digest [32]byte, index uint64, doc []byte, arts [][]byte) error {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("couldn't begin storing link: %w", err)
	}
	defer tx.Rollback(ctx)
	var stored []byte
	if err := tx.QueryRow(ctx, "SELECT doc FROM evident_links WHERE digest = $1", digest[:]).Scan(&stored); err != nil {
		return fmt.Errorf("couldn't read the stored link: %w", err)
	}
	if !bytes.Equal(stored, doc) {
		return fmt.Errorf("%w: %x", linkstore.ErrConflict, digest)
	}
	_, err = tx.Exec(ctx, `INSERT INTO evident_link_artifacts (artifact, idx)
		SELECT a, $2 FROM unnest($1::bytea[]) AS a ON CONFLICT DO NOTHING`, arts, int64(index))
	if err != nil {
		return fmt.Errorf("couldn't index link artifacts: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("couldn't commit link: %w", err)
	}
	return nil
}

// Get implements linkstore.Store.
func (s *LinkStore) Get(ctx context.Context, digest [32]byte) ([]byte, error) {
	if s.closed.Load() {
		return nil, errClosed
	}
	var doc []byte
	err := s.pool.QueryRow(ctx, "SELECT doc FROM evident_links WHERE digest = $1", digest[:]).Scan(&doc)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("%x: %w", digest, linkstore.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("couldn't read link: %w", err)
	}
	return doc, nil
}

// ArtifactIndices implements linkstore.Store.
func (s *LinkStore) ArtifactIndices(ctx context.Context, artifact [32]byte, limit int) ([]uint64, error) {
	if s.closed.Load() {
		return nil, errClosed
	}
	out := []uint64{}
	if limit <= 0 {
		return out, nil
	}
	rows, err := s.pool.Query(ctx, "SELECT idx FROM evident_link_artifacts WHERE artifact = $1 ORDER BY idx LIMIT $2", artifact[:], limit)
	if err != nil {
		return nil, fmt.Errorf("couldn't read the artifact index: %w", err)
	}
	idx, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return nil, fmt.Errorf("couldn't read the artifact index: %w", err)
	}
	for _, i := range idx {
		out = append(out, uint64(i))
	}
	return out, nil
}

// Close implements linkstore.Store.
func (s *LinkStore) Close() error {
	if s.closed.Swap(true) {
		return errClosed
	}
	s.pool.Close()
	return nil
}
