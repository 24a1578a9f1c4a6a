package serve

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/evident-dev/evident/internal/boltfile"
	"github.com/evident-dev/evident/internal/httpapi"
	"github.com/evident-dev/evident/linkstore"
	"github.com/evident-dev/evident/log"
	"github.com/evident-dev/evident/log/boltstore"
	"github.com/evident-dev/evident/pgstore"
)

// IsPostgresURL reports whether store names a PostgreSQL database
// (postgres:// or postgresql://), the only store --store takes.
func IsPostgresURL(store string) bool {
	return strings.HasPrefix(store, "postgres://") || strings.HasPrefix(store, "postgresql://")
}

// openLogStore opens the log's store: bbolt in the data directory, or the
// PostgreSQL database cfg.Store names, in which case it also campaigns for
// the sequencer lease and returns the cluster membership. With PostgreSQL
// it returns once the log has a checkpoint to load, or once this frontend
// leads and can sign the first one.
func openLogStore(cfg Config) (log.Store, *boltstore.Store, *cluster, error) {
	if cfg.Store == "" {
		bolt, err := boltstore.OpenOptions(DataDir(cfg.DataDir).LogDB(), boltstore.Options{InitialMmapSize: cfg.StoreMmapSize})
		if errors.Is(err, boltstore.ErrDamaged) {
			return nil, nil, nil, fmt.Errorf("%w: restore it from a backup (evident log fsck --data %s checks a copy)", err, cfg.DataDir)
		}
		if err != nil {
			return nil, nil, nil, fmt.Errorf("%w (is another evident serve using %s?)", err, cfg.DataDir)
		}
		return bolt, bolt, nil, nil
	}
	if !IsPostgresURL(cfg.Store) {
		return nil, nil, nil, errors.New("the store must be a postgres:// URL")
	}
	// Opening may migrate the schema, which takes time in proportion to
	// the log (pgstore.OpenTimeout); catching up with it does not.
	openCtx, cancelOpen := context.WithTimeout(context.Background(), pgstore.OpenTimeout)
	defer cancelOpen()
	pg, err := pgstore.OpenLog(openCtx, cfg.Store)
	if err != nil {
		return nil, nil, nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := newCluster(pg, cfg)
	if err := c.waitForHead(ctx); err != nil {
		c.close()
		return nil, nil, nil, err
	}
	return pg, nil, c, nil
}

// openLinks opens the link store: links.db in the data directory, or the
// PostgreSQL database cfg.Store names, shared by all frontends.
func openLinks(cfg Config) (linkstore.Store, error) {
	if cfg.Store != "" {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		return pgstore.OpenLinks(ctx, cfg.Store)
	}
	linksPath := DataDir(cfg.DataDir).LinksDB()
	if err := boltfile.Check(linksPath); err != nil {
		return nil, fmt.Errorf("%w: restore it from a backup", err)
	}
	return linkstore.OpenBolt(linksPath)
}

// cluster is this frontend's membership of a group of frontends sharing one
// PostgreSQL database: the elector, the follower's catch-up loop and the
// forwarding of appends to the sequencer.
//
// Appends (POST /log/v1/entries) that reach a follower are forwarded, body
// and all, to the address the leader advertises in its lease; the leader
// validates and sequences them and its answer — index, inclusion proof,
// signed checkpoint, or the error — goes back to the caller unchanged. A
// forwarded request carries Evident-Forwarded-By; a frontend that receives
// one but does not lead answers 503 with Retry-After instead of forwarding
// again, so a request crosses at most one hop. Followers re-read the head
// every FollowInterval and serve every read themselves.
type cluster struct {
	store     *pgstore.LogStore
	elector   *pgstore.Elector
	id        string
	logger    *slog.Logger
	advertise atomic.Pointer[string]
	log       atomic.Pointer[log.Log]
	client    *http.Client
	forwarded atomic.Int64
	catchMu   sync.Mutex
	stop      chan struct{}
	done      chan struct{}
}

// FollowInterval is how often a follower re-reads the log's head.
const FollowInterval = 100 * time.Millisecond

// ForwardedHeader marks an append forwarded by a follower to the leader.
const ForwardedHeader = "Evident-Forwarded-By"

func newCluster(pg *pgstore.LogStore, cfg Config) *cluster {
	host, _ := os.Hostname()
	var r [4]byte
	rand.Read(r[:])
	c := &cluster{
		store:  pg,
		id:     fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(r[:])),
		logger: cfg.Logger,
		client: &http.Client{Timeout: httpapi.WriteTimeout, Transport: &http.Transport{MaxIdleConnsPerHost: 256, IdleConnTimeout: httpapi.IdleTimeout}},
		stop:   make(chan struct{}),
		done:   make(chan struct{}),
	}
	adv := cfg.Advertise
	c.advertise.Store(&adv)
	c.elector = pg.Campaign(pgstore.ElectorConfig{
		ID:       c.id,
		Addr:     func() string { return *c.advertise.Load() },
		TTL:      cfg.LeaseTTL,
		Logger:   cfg.Logger,
		OnChange: c.changed,
	})
	return c
}

// listening records the URL the server listens at, advertised unless
// Config.Advertise named another.
func (c *cluster) listening(url string) {
	if *c.advertise.Load() == "" {
		c.advertise.Store(&url)
		c.elector.Poke()
	}
}

// waitForHead waits until the log has a signed checkpoint or this frontend
// leads (and will sign the empty tree's).
func (c *cluster) waitForHead(ctx context.Context) error {
	for {
		if c.elector.Status().Leading {
			return nil
		}
		h, err := c.store.Head()
		if err == nil && h.Checkpoint != nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("no checkpoint in the database and no lease to sign one: %w", ctx.Err())
		case <-time.After(FollowInterval):
		}
	}
}

// start follows the log as long as this frontend does not lead.
func (c *cluster) start(l *log.Log) {
	c.log.Store(l)
	go func() {
		defer close(c.done)
		t := time.NewTicker(FollowInterval)
		defer t.Stop()
		for {
			select {
			case <-c.stop:
				return
			case <-t.C:
			}
			if c.elector.Status().Leading {
				continue
			}
			if _, err := l.Sync(); err != nil {
				c.logger.Warn("couldn't follow the log", "err", err)
			}
		}
	}()
}

// changed runs on the elector's goroutine at each leadership change; on
// becoming leader it catches up before the elector reports Leading.
func (c *cluster) changed(st pgstore.Status) {
	c.logger.Info("sequencer changed", "leading", st.Leading, "term", st.Term, "leader", st.Leader, "addr", st.LeaderAddr)
	if l := c.log.Load(); l != nil && st.Leading {
		if _, err := l.Sync(); err != nil {
			c.logger.Error("couldn't catch up after becoming the sequencer", "err", err)
		}
	}
}

func (c *cluster) close() {
	select {
	case <-c.stop:
		return
	default:
	}
	close(c.stop)
	if c.log.Load() != nil {
		<-c.done
	}
	c.elector.Close()
}

// sequenceOrForward serves appends itself while this frontend leads and
// forwards them to the leader otherwise; everything else goes to next.
func (c *cluster) sequenceOrForward(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != log.PathEntries {
			if need := sizeNeeded(r); need > 0 && !c.elector.Status().Leading {
				c.catchUp(need)
			}
			next.ServeHTTP(w, r)
			return
		}
		st := c.elector.Status()
		switch {
		case st.Leading:
			next.ServeHTTP(w, r)
		case r.Header.Get(ForwardedHeader) != "":
			unavailable(w, "this frontend is no longer the sequencer")
		case st.LeaderAddr == "" || st.LeaderAddr == *c.advertise.Load():
			unavailable(w, "no sequencer is elected")
		default:
			c.forward(w, r, st.LeaderAddr)
		}
	})
}

// sizeNeeded returns the tree size a read needs (0: any): a proof's size
// or to, an entry's index plus one, a tile's extent. A client that got a
// checkpoint from the sequencer may ask a follower for what it covers
// before the follower's next catch-up.
func sizeNeeded(r *http.Request) uint64 {
	if r.Method != http.MethodGet {
		return 0
	}
	q := r.URL.Query()
	num := func(s string) uint64 {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return 0
		}
		return n
	}
	switch p := r.URL.Path; {
	case p == log.PathInclusionProof:
		return num(q.Get("size"))
	case p == log.PathConsistencyProf:
		return num(q.Get("to"))
	case strings.HasPrefix(p, log.PathEntries+"/"):
		if i := num(strings.TrimPrefix(p, log.PathEntries+"/")); i < math.MaxUint64 {
			return i + 1
		}
	case strings.HasPrefix(p, log.TilesPrefix+"tile/"):
		t, err := log.ParseTilePath(strings.TrimPrefix(p, log.TilesPrefix+"tile/"))
		if err != nil {
			return 0
		}
		// Width hashes of level 8·Level subtrees, or Width entries, from Index·256.
		shift := uint(log.TileHeight * t.Level)
		if t.Entries {
			shift = 0
		}
		end := t.Index*log.TileWidth + uint64(t.Width)
		if t.Index > (math.MaxUint64-log.TileWidth)/log.TileWidth || shift >= 64 || end > math.MaxUint64>>shift {
			return 0
		}
		return end << shift
	}
	return 0
}

// catchUp re-reads the head once if it is short of size; concurrent
// callers share one read.
func (c *cluster) catchUp(size uint64) {
	l := c.log.Load()
	if l == nil || l.Head().Size >= size {
		return
	}
	c.catchMu.Lock()
	defer c.catchMu.Unlock()
	if l.Head().Size >= size {
		return
	}
	if _, err := l.Sync(); err != nil {
		c.logger.Warn("couldn't follow the log", "err", err)
	}
}

// maxForwardedResponse bounds the leader's answer (an AddResponse is a few
// kilobytes).
const maxForwardedResponse = 1 << 20

func (c *cluster) forward(w http.ResponseWriter, r *http.Request, leader string) {
	// One byte over the limit is enough for the leader to answer 413.
	body := io.LimitReader(r.Body, log.MaxEntrySize+1)
	req, err := http.NewRequestWithContext(r.Context(), http.MethodPost, strings.TrimSuffix(leader, "/")+log.PathEntries, body)
	if err != nil {
		unavailable(w, "bad sequencer address")
		return
	}
	for _, h := range []string{"Content-Type", "Content-Encoding"} {
		if v := r.Header.Get(h); v != "" {
			req.Header.Set(h, v)
		}
	}
	req.Header.Set(ForwardedHeader, c.id)
	resp, err := c.client.Do(req)
	if err != nil {
		c.logger.Warn("couldn't forward an append to the sequencer", "leader", leader, "err", err)
		unavailable(w, "the sequencer is unreachable")
		return
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(io.LimitReader(resp.Body, maxForwardedResponse+1))
	if err != nil || len(out) > maxForwardedResponse {
		unavailable(w, "the sequencer's answer was cut short")
		return
	}
	c.forwarded.Add(1)
	for _, h := range []string{"Content-Type", "Retry-After"} {
		if v := resp.Header.Get(h); v != "" {
			w.Header().Set(h, v)
		}
	}
	w.WriteHeader(resp.StatusCode)
	w.Write(out)
}

// unavailable answers 503 as the log's handler does.
func unavailable(w http.ResponseWriter, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Retry-After", "1")
	w.WriteHeader(http.StatusServiceUnavailable)
	fmt.Fprintf(w, "{\"error\":%q}\n", log.ErrUnavailable.Error()+": "+msg)
}

// logHandler is the log's HTTP API, forwarding appends when clustered.
func (s *Server) logHandler() http.Handler {
	h := log.Handler(s.Log, s.cfg.Logger)
	if s.cluster == nil {
		return h
	}
	return s.cluster.sequenceOrForward(h)
}

// clusterMetrics adds the sequencer's metrics when clustered.
func (s *Server) clusterMetrics(w io.Writer) {
	c := s.cluster
	if c == nil {
		return
	}
	st := c.elector.Status()
	leading := 0
	if st.Leading {
		leading = 1
	}
	fmt.Fprintf(w, "# HELP evident_log_sequencer Whether this frontend is the log's sequencer.\n# TYPE evident_log_sequencer gauge\nevident_log_sequencer{frontend=%q} %d\n", c.id, leading)
	fmt.Fprintf(w, "# HELP evident_log_sequencer_info The sequencer this frontend knows of (its id and address).\n# TYPE evident_log_sequencer_info gauge\nevident_log_sequencer_info{leader=%q,addr=%q} 1\n", st.Leader, st.LeaderAddr)
	fmt.Fprintf(w, "# HELP evident_log_sequencer_term The current sequencer term.\n# TYPE evident_log_sequencer_term gauge\nevident_log_sequencer_term %d\n", st.Term)
	fmt.Fprintf(w, "# HELP evident_log_failovers_total Sequencer changes this frontend saw.\n# TYPE evident_log_failovers_total counter\nevident_log_failovers_total %d\n", st.Failovers)
	fmt.Fprintf(w, "# HELP evident_log_forwarded_total Appends forwarded to the sequencer.\n# TYPE evident_log_forwarded_total counter\nevident_log_forwarded_total %d\n", c.forwarded.Load())
}

// closeStore stops the cluster membership (giving the lease up) and closes
// the log's store.
func (s *Server) closeStore() error {
	if s.cluster != nil {
		s.cluster.close()
	}
	return s.logStore.Close()
}

// Sequencer returns whether this server sequences the log (always, with
// bbolt) and the id it has among frontends ("" with bbolt).
func (s *Server) Sequencer() (bool, string) {
	if s.cluster == nil {
		return true, ""
	}
	return s.cluster.elector.Status().Leading, s.cluster.id
}
