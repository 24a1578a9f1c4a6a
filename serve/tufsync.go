package serve

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/evident-dev/evident/pgstore"
	"github.com/evident-dev/evident/tufrepo"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// The TUF repository of several frontends is the sequencer's. Only the
// sequencer re-signs the online roles (snapshot and timestamp), holding a
// PostgreSQL advisory lock as well as the repository's file lock, so that
// frontends sharing one repository directory never re-sign it at once,
// even on a volume whose file locks do not reach across machines. A
// follower with a repository of its own mirrors the sequencer's /tuf/
// into it (tufrepo.Mirror: every file verified from the follower's root
// on, the timestamp written last) whenever the sequencer's timestamp is
// newer than its own, every TUFFollowInterval; so every frontend serves
// the sequencer's versions, and a frontend that takes over re-signs from
// them. A follower never re-signs: were it to, clients switching between
// frontends would see versions go back.

// TUFFollowInterval is how often a follower compares its TUF timestamp
// with the sequencer's.
const TUFFollowInterval = 30 * time.Second

// maxTimestampBytes bounds the sequencer's timestamp.json a follower reads
// to decide whether to mirror.
const maxTimestampBytes = 1 << 20

// tufInterval is how often refreshTUF runs a round.
func (s *Server) tufInterval() time.Duration {
	if s.cluster != nil {
		return min(s.cfg.TUFRefresh, TUFFollowInterval)
	}
	return s.cfg.TUFRefresh
}

// tufRound re-signs the online roles if they expire soon, on a single
// frontend or the sequencer; a follower mirrors the sequencer instead.
func (s *Server) tufRound() error {
	if s.cluster == nil {
		return s.resignTUF()
	}
	st := s.cluster.elector.Status()
	if st.Leading {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		return s.cluster.store.Exclusive(ctx, pgstore.TUFLock, s.resignTUF)
	}
	if st.LeaderAddr == "" || st.LeaderAddr == *s.cluster.advertise.Load() {
		return nil // no sequencer to follow now
	}
	return s.followTUF(st.LeaderAddr)
}

// resignTUF re-signs the snapshot and timestamp if either expires within
// 12 hours.
func (s *Server) resignTUF() error {
	signers, err := tufrepo.LoadKeys(s.cfg.TUFKeysDir, tufrepo.Snapshot, tufrepo.Timestamp)
	if err != nil {
		return err
	}
	return tufrepo.Update(s.cfg.TUFDir, s.cfg.Now, func(r *tufrepo.Repo) error {
		did, err := r.RefreshOnline(signers, 12*time.Hour)
		if did && err == nil {
			s.cfg.Logger.Info("re-signed the TUF snapshot and timestamp")
		}
		return err
	})
}

// followTUF mirrors the sequencer's repository at leader into this
// frontend's if the sequencer's timestamp version is higher.
func (s *Server) followTUF(leader string) error {
	md := filepath.Join(s.cfg.TUFDir, "metadata")
	local, err := metadata.Timestamp().FromFile(filepath.Join(md, "timestamp.json"))
	if err != nil {
		return fmt.Errorf("this frontend's TUF timestamp: %w", err)
	}
	remote, err := s.cluster.sequencerTimestamp(leader)
	if err != nil {
		return err
	}
	if remote <= local.Signed.Version {
		return nil
	}
	root, err := os.ReadFile(filepath.Join(md, "1.root.json"))
	if err != nil {
		return err
	}
	return tufrepo.Update(s.cfg.TUFDir, s.cfg.Now, func(*tufrepo.Repo) error {
		n, err := tufrepo.Mirror(tufrepo.ClientOptions{Root: root, URL: leader + "/tuf", HTTP: s.cluster.client}, s.cfg.TUFDir)
		if err != nil {
			return fmt.Errorf("couldn't mirror the sequencer's TUF repository: %w", err)
		}
		s.cfg.Logger.Info("mirrored the sequencer's TUF repository", "timestamp_version", remote, "targets", n)
		return nil
	})
}

// sequencerTimestamp returns the version of the sequencer's TUF timestamp,
// unverified: it only decides whether to mirror, and Mirror verifies.
func (c *cluster) sequencerTimestamp(leader string) (int64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, leader+"/tuf/metadata/timestamp.json", nil)
	if err != nil {
		return 0, err
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("couldn't read the sequencer's TUF timestamp: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("the sequencer's TUF timestamp: %s", resp.Status)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxTimestampBytes+1))
	if err != nil {
		return 0, fmt.Errorf("couldn't read the sequencer's TUF timestamp: %w", err)
	}
	if len(b) > maxTimestampBytes {
		return 0, fmt.Errorf("the sequencer's TUF timestamp is over %d bytes", maxTimestampBytes)
	}
	ts, err := metadata.Timestamp().FromBytes(b)
	if err != nil {
		return 0, fmt.Errorf("the sequencer's TUF timestamp: %w", err)
	}
	return ts.Signed.Version, nil
}
