package pgstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// lead takes the sequencer lease for frontend id if it is free (expired)
// or already id's, incrementing the term; on success commits are fenced
// with the new term. ttl is the lease's lifetime by the database's clock.
func (s *LogStore) lead(ctx context.Context, id, addr string, ttl time.Duration) (uint64, bool, error) {
	var term int64
	err := s.pool.QueryRow(ctx, `UPDATE evident_log_head
		SET term = term + 1, leader = $1, leader_addr = $2, lease_until = now() + $3 * interval '1 millisecond'
		WHERE lease_until < now() OR leader = $1 RETURNING term`, id, addr, ttl.Milliseconds()).Scan(&term)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("couldn't campaign for the lease: %w", err)
	}
	s.term.Store(uint64(term))
	return uint64(term), true, nil
}

// renew extends id's lease of the given term, advertising addr; false
// means it was taken over.
func (s *LogStore) renew(ctx context.Context, id, addr string, term uint64, ttl time.Duration) (bool, error) {
	tag, err := s.pool.Exec(ctx, `UPDATE evident_log_head SET lease_until = now() + $1 * interval '1 millisecond', leader_addr = $4
		WHERE term = $2 AND leader = $3`, ttl.Milliseconds(), int64(term), id, addr)
	if err != nil {
		return false, fmt.Errorf("couldn't renew the lease: %w", err)
	}
	return tag.RowsAffected() == 1, nil
}

// release ends id's lease of the given term now, so a successor need not
// wait for it to expire.
func (s *LogStore) release(ctx context.Context, id string, term uint64) error {
	_, err := s.pool.Exec(ctx, `UPDATE evident_log_head SET lease_until = '-infinity' WHERE term = $1 AND leader = $2`, int64(term), id)
	return err
}

// leaseInfo is the lease as the database has it.
type leaseInfo struct {
	term       uint64
	leader     string
	leaderAddr string
	live       bool
}

func (s *LogStore) lease(ctx context.Context) (leaseInfo, error) {
	var li leaseInfo
	var term int64
	err := s.pool.QueryRow(ctx, "SELECT term, leader, leader_addr, lease_until > now() FROM evident_log_head").
		Scan(&term, &li.leader, &li.leaderAddr, &li.live)
	li.term = uint64(term)
	return li, err
}

// Status is what an [Elector] knows of the leadership.
type Status struct {
	// Leading: this frontend holds the lease and may sequence.
	Leading bool
	// Term is the current term (0 until the first read succeeds).
	Term uint64
	// Leader and LeaderAddr are the holder of the term and the address it
	// advertises; LeaderAddr is empty when no lease is live.
	Leader, LeaderAddr string
	// Failovers counts the term changes this frontend saw after its first.
	Failovers int64
}

// ElectorConfig configures an [Elector].
type ElectorConfig struct {
	// ID names this frontend; it must be unique among running frontends.
	ID string
	// Addr returns the URL other frontends forward appends to while this
	// one leads (it may change: the elector advertises it at each renewal).
	Addr func() string
	// TTL is the lease's lifetime (default 3s): a killed leader is replaced
	// within about TTL plus TTL/6.
	TTL time.Duration
	// Logger receives leadership changes (default slog.Default()).
	Logger *slog.Logger
	// OnChange, if set, runs (on the elector's goroutine) after every change
	// of Status.Leading, Term or LeaderAddr; after becoming leader it runs
	// before Status reports Leading, so the caller can catch up first.
	OnChange func(Status)
}

// Elector campaigns for the sequencer lease on behalf of one frontend and
// keeps it while it can: it renews every TTL/3, polls every TTL/6 while
// following, and steps down when the lease was taken over or when it could
// not renew for a whole TTL.
type Elector struct {
	s    *LogStore
	cfg  ElectorConfig
	stop chan struct{}
	done chan struct{}
	poke chan struct{}

	mu       sync.Mutex
	st       Status
	deadline time.Time // while leading: when the lease ends by our clock
	ready    bool      // OnChange has run since becoming leader
}

// Campaign starts an elector for this store. Stop it with [Elector.Close].
func (s *LogStore) Campaign(cfg ElectorConfig) *Elector {
	if cfg.TTL <= 0 {
		cfg.TTL = 3 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Addr == nil {
		cfg.Addr = func() string { return "" }
	}
	e := &Elector{s: s, cfg: cfg, stop: make(chan struct{}), done: make(chan struct{}), poke: make(chan struct{}, 1)}
	go e.run()
	return e
}

// Status returns the current status. Leading turns false as soon as the
// lease may have ended, by this frontend's clock.
func (e *Elector) Status() Status {
	e.mu.Lock()
	defer e.mu.Unlock()
	st := e.st
	st.Leading = st.Leading && e.ready && time.Now().Before(e.deadline)
	return st
}

// Poke makes the elector run its next round now: after Addr changed, say.
func (e *Elector) Poke() {
	select {
	case e.poke <- struct{}{}:
	default:
	}
}

// Close stops campaigning and gives the lease up if this frontend holds it.
func (e *Elector) Close() {
	select {
	case <-e.stop:
	default:
		close(e.stop)
	}
	<-e.done
}

func (e *Elector) run() {
	defer close(e.done)
	for {
		e.step()
		e.mu.Lock()
		wait := e.cfg.TTL / 6
		if e.st.Leading {
			wait = e.cfg.TTL / 3
		}
		e.mu.Unlock()
		select {
		case <-e.stop:
			e.mu.Lock()
			st := e.st
			e.mu.Unlock()
			if st.Leading {
				e.s.term.Store(0)
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				if err := e.s.release(ctx, e.cfg.ID, st.Term); err != nil {
					e.cfg.Logger.Warn("couldn't release the sequencer lease", "err", err)
				}
				cancel()
			}
			return
		case <-time.After(wait):
		case <-e.poke:
		}
	}
}

// step runs one round: renew or campaign, then publish what changed.
func (e *Elector) step() {
	ctx, cancel := context.WithTimeout(context.Background(), e.cfg.TTL)
	defer cancel()
	e.mu.Lock()
	prev := e.st
	deadline := e.deadline
	e.mu.Unlock()
	next := prev
	t0 := time.Now()
	if prev.Leading {
		ok, err := e.s.renew(ctx, e.cfg.ID, e.cfg.Addr(), prev.Term, e.cfg.TTL)
		next.LeaderAddr = e.cfg.Addr()
		switch {
		case err == nil && ok:
			deadline = t0.Add(e.cfg.TTL)
		case err == nil:
			e.s.term.Store(0)
			next.Leading = false
			e.cfg.Logger.Warn("another frontend took over as sequencer", "term", prev.Term)
		case time.Now().After(deadline):
			e.s.term.Store(0)
			next.Leading = false
			e.cfg.Logger.Error("stepping down: couldn't renew the sequencer lease in time", "term", prev.Term, "err", err)
		default:
			e.cfg.Logger.Warn("couldn't renew the sequencer lease", "term", prev.Term, "err", err)
		}
	}
	if !next.Leading {
		// What this round learns replaces next; a failed read leaves it
		// as it was (not leading), and is published all the same.
		term, ok, err := e.s.lead(ctx, e.cfg.ID, e.cfg.Addr(), e.cfg.TTL)
		switch {
		case err != nil:
			e.cfg.Logger.Warn("couldn't campaign for the sequencer lease", "err", err)
		case ok:
			deadline = t0.Add(e.cfg.TTL)
			next = Status{Leading: true, Term: term, Leader: e.cfg.ID, LeaderAddr: e.cfg.Addr(), Failovers: prev.Failovers}
			e.cfg.Logger.Info("became the sequencer", "term", term)
		default:
			li, err := e.s.lease(ctx)
			if err != nil {
				e.cfg.Logger.Warn("couldn't read the sequencer lease", "err", err)
				break
			}
			next = Status{Term: li.term, Leader: li.leader, Failovers: prev.Failovers}
			if li.live {
				next.LeaderAddr = li.leaderAddr
			}
		}
	}
	if prev.Term != 0 && next.Term != prev.Term {
		next.Failovers++
	}
	changed := next.Leading != prev.Leading || next.Term != prev.Term || next.LeaderAddr != prev.LeaderAddr
	e.mu.Lock()
	e.st, e.deadline = next, deadline
	if !next.Leading {
		e.ready = false
	}
	e.mu.Unlock()
	if changed && e.cfg.OnChange != nil {
		e.cfg.OnChange(next)
	}
	if next.Leading {
		e.mu.Lock()
		e.ready = true
		e.mu.Unlock()
	}
}

// TUFLock is the advisory lock key under which a frontend re-signs the TUF
// repository's online roles ("evident-tuf" in ASCII, truncated).
const TUFLock int64 = 0x65766964656e7475

// Exclusive runs f holding PostgreSQL's transaction-level advisory lock
// key, so that frontends on different machines take turns at f even where
// a file lock does not reach (a repository on a network volume). The lock
// is released when f returns, or if the frontend stalls for longer than
// the database's idle-in-transaction timeout (3s).
func (s *LogStore) Exclusive(ctx context.Context, key int64, f func() error) error {
	if s.closed.Load() {
		return errClosed
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("couldn't take the lock: %w", err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", key); err != nil {
		return fmt.Errorf("couldn't take the lock: %w", err)
	}
	if err := f(); err != nil {
		return err
	}
	return tx.Commit(ctx)
}
