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
// evident_link_artifacts. Each Put is one transaction.
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

// Put implements linkstore.Store.
func (s *LinkStore) Put(ctx context.Context, digest [32]byte, index uint64, doc []byte, artifacts [][32]byte) error {
	if s.closed.Load() {
		return errClosed
	}
	if int64(index) < 0 {
		return fmt.Errorf("log index %d does not fit the schema", index)
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("couldn't begin storing link: %w", err)
	}
	defer tx.Rollback(ctx)
	tag, err := tx.Exec(ctx, "INSERT INTO evident_links (digest, doc) VALUES ($1, $2) ON CONFLICT (digest) DO NOTHING", digest[:], doc)
	if err != nil {
		return fmt.Errorf("couldn't store link: %w", err)
	}
	if tag.RowsAffected() == 0 {
		var stored []byte
		if err := tx.QueryRow(ctx, "SELECT doc FROM evident_links WHERE digest = $1", digest[:]).Scan(&stored); err != nil {
			return fmt.Errorf("couldn't read the stored link: %w", err)
		}
		if !bytes.Equal(stored, doc) {
			return fmt.Errorf("%w: %x", linkstore.ErrConflict, digest)
		}
	}
	if len(artifacts) > 0 {
		arts := make([][]byte, len(artifacts))
		for i := range artifacts {
			arts[i] = artifacts[i][:]
		}
		_, err = tx.Exec(ctx, `INSERT INTO evident_link_artifacts (artifact, idx)
			SELECT a, $2 FROM unnest($1::bytea[]) AS a ON CONFLICT DO NOTHING`, arts, int64(index))
		if err != nil {
			return fmt.Errorf("couldn't index link artifacts: %w", err)
		}
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
