package pgstore

import (
	"errors"
	"fmt"
	"math"

	"github.com/evident-dev/evident/log"
	"github.com/jackc/pgx/v5"
)

// PutWitnessed implements log.WitnessedStore: one statement, durable when
// it returns. Any frontend may write (only the sequencer submits to
// witnesses); a note replaces the one stored for its size.
func (s *LogStore) PutWitnessed(size uint64, signed []byte) error {
	if size == 0 || size > math.MaxInt64 {
		return fmt.Errorf("witnessed tree size %d does not fit the schema", size)
	}
	ctx, cancel, err := s.ctx()
	if err != nil {
		return err
	}
	defer cancel()
	_, err = s.pool.Exec(ctx, `INSERT INTO evident_witnessed (size, note) VALUES ($1, $2)
		ON CONFLICT (size) DO UPDATE SET note = excluded.note`, int64(size), signed)
	if err != nil {
		return fmt.Errorf("couldn't store the witnessed checkpoint of size %d: %w", size, err)
	}
	return nil
}

// maxWitnessedRows bounds the rows one Witnessed call reads; fn sees them
// in increasing size and usually stops at the first.
const maxWitnessedRows = 4096

// Witnessed implements log.WitnessedStore: one query, at most 4096 notes.
func (s *LogStore) Witnessed(min uint64, fn func(size uint64, signed []byte) bool) error {
	if min > math.MaxInt64 {
		return nil
	}
	ctx, cancel, err := s.ctx()
	if err != nil {
		return err
	}
	defer cancel()
	rows, err := s.pool.Query(ctx, "SELECT size, note FROM evident_witnessed WHERE size >= $1 ORDER BY size LIMIT $2",
		int64(min), maxWitnessedRows)
	if err != nil {
		return fmt.Errorf("couldn't read witnessed checkpoints: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var size int64
		var note []byte
		if err := rows.Scan(&size, &note); err != nil {
			return fmt.Errorf("couldn't read witnessed checkpoints: %w", err)
		}
		if !fn(uint64(size), note) {
			return nil
		}
	}
	return rows.Err()
}

// LatestWitnessed implements log.WitnessedStore.
func (s *LogStore) LatestWitnessed() (uint64, []byte, error) {
	ctx, cancel, err := s.ctx()
	if err != nil {
		return 0, nil, err
	}
	defer cancel()
	var size int64
	var note []byte
	err = s.pool.QueryRow(ctx, "SELECT size, note FROM evident_witnessed ORDER BY size DESC LIMIT 1").Scan(&size, &note)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, nil, log.ErrNotFound
	}
	if err != nil {
		return 0, nil, fmt.Errorf("couldn't read the latest witnessed checkpoint: %w", err)
	}
	return uint64(size), note, nil
}

var _ log.WitnessedStore = (*LogStore)(nil)
