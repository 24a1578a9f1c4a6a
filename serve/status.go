package serve

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/evident-dev/evident"
	"github.com/evident-dev/evident/internal/httpapi"
	"github.com/evident-dev/evident/linkstore"
	"github.com/evident-dev/evident/tufrepo"
	"github.com/evident-dev/evident/verify"
	"github.com/in-toto/in-toto-golang/in_toto"
)

// addLatency is a Prometheus histogram of POST /log/v1/entries latencies.
type addLatency struct {
	buckets [len(addBuckets)]atomic.Int64
	count   atomic.Int64
	sumNs   atomic.Int64
}

var addBuckets = [...]float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5}

func (h *addLatency) observe(d time.Duration) {
	s := d.Seconds()
	for i, le := range addBuckets {
		if s <= le {
			h.buckets[i].Add(1)
		}
	}
	h.count.Add(1)
	h.sumNs.Add(int64(d))
}

// timeAdds measures adds for /metrics.
func (s *Server) timeAdds(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/log/v1/entries" {
			next.ServeHTTP(w, r)
			return
		}
		t0 := time.Now()
		next.ServeHTTP(w, r)
		s.adds.observe(time.Since(t0))
	})
}

// metrics serves Prometheus text exposition format 0.0.4.
func (s *Server) metrics(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	st := s.Log.Stats()
	metric := func(name, typ, help string, value any) {
		fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s %s\n%s %v\n", name, help, name, typ, name, value)
	}
	metric("evident_log_tree_size", "gauge", "Entries in the log.", s.Log.Head().Size)
	metric("evident_log_entries_total", "counter", "Entries appended since start.", st.Entries)
	metric("evident_log_duplicates_total", "counter", "Adds answered with an existing index.", st.Duplicates)
	metric("evident_log_batches_total", "counter", "Group commits since start (entries_total / batches_total is the mean batch size).", st.Batches)
	metric("evident_log_commit_failures_total", "counter", "Group commits that failed.", st.Failures)
	metric("evident_log_commit_seconds_total", "counter", "Time spent committing batches.", st.CommitTime.Seconds())
	metric("evident_log_pending", "gauge", "Entries accepted and not yet answered.", st.Pending)
	full := 0
	if st.StorageFull {
		full = 1
	}
	metric("evident_log_storage_full", "gauge", "1 while commits fail for lack of space (adds get 507), else 0.", full)
	metric("evident_log_storage_full_failures_total", "counter", "Group commits that failed for lack of space.", st.FullFailures)
	if s.conns != nil {
		open, reserve := s.conns.counts()
		metric("evident_http_connections", "gauge", "Open connections of the public listener, reserve ones excluded.", open)
		metric("evident_http_connections_max", "gauge", "The connection cap (--max-conns).", s.conns.max)
		metric("evident_http_reserve_connections", "gauge", "Open reserve connections (health and checkpoint reads at the cap).", reserve)
	}
	fmt.Fprintf(w, "# HELP evident_log_add_seconds Latency of POST /log/v1/entries, until durable and covered by a checkpoint.\n# TYPE evident_log_add_seconds histogram\n")
	for i, le := range addBuckets {
		fmt.Fprintf(w, "evident_log_add_seconds_bucket{le=\"%g\"} %d\n", le, s.adds.buckets[i].Load())
	}
	fmt.Fprintf(w, "evident_log_add_seconds_bucket{le=\"+Inf\"} %d\nevident_log_add_seconds_sum %g\nevident_log_add_seconds_count %d\n",
		s.adds.count.Load(), time.Duration(s.adds.sumNs.Load()).Seconds(), s.adds.count.Load())
	s.clusterMetrics(w)
	metric("evident_tsa_tokens_total", "counter", "RFC 3161 tokens issued since start.", s.TSA.Issued())
	fmt.Fprintf(w, "# HELP evident_tuf_expiry_timestamp_seconds When each TUF role's metadata expires (Unix time).\n# TYPE evident_tuf_expiry_timestamp_seconds gauge\n")
	for _, rs := range s.tufStatus() {
		fmt.Fprintf(w, "evident_tuf_expiry_timestamp_seconds{role=%q} %d\n", rs.Role, rs.Expires.Unix())
	}
	s.witness.writeMetrics(w)
}

// statusCache holds what the status page and /metrics show beyond the
// head (threat model S4): the recent entries, verified once each, and the TUF
// roles' expiries. A request reads it; it is refreshed at most once per
// statusRefresh when the tree has grown (so the page lags the log by at
// most that), and the TUF roles at most once per tufRefresh: a flood of
// GET / costs no store reads, verifications or TUF reads.
type statusCache struct {
	mu         sync.Mutex
	size       uint64
	checkpoint string
	recent     []recentEntry
	at         time.Time
	tuf        []tufrepo.RoleStatus
	tufAt      time.Time

	// work counts entries read and verified for the page, refreshes the
	// refreshes, tufReads the TUF repository openings (tests read them).
	work, refreshes, tufReads atomic.Int64
}

const (
	statusRefresh = time.Second
	tufRefresh    = 10 * time.Second
	recentRows    = 20
)

// page returns the cached page state, refreshing it first if it is stale.
func (s *Server) page() (size uint64, checkpoint string, recent []recentEntry, roles []tufrepo.RoleStatus) {
	c := &s.status
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	if h := s.Log.Head(); c.at.IsZero() || (h.Size != c.size && now.Sub(c.at) >= statusRefresh) {
		c.recent = s.recent(recentRows, h.Size, c.recent)
		c.size, c.checkpoint, c.at = h.Size, strings.TrimSpace(string(h.Checkpoint)), now
		c.refreshes.Add(1)
	}
	return c.size, c.checkpoint, c.recent, s.tufStatusLocked(now)
}

// tufStatus returns the TUF roles' versions and expiries, at most
// tufRefresh old.
func (s *Server) tufStatus() []tufrepo.RoleStatus {
	s.status.mu.Lock()
	defer s.status.mu.Unlock()
	return s.tufStatusLocked(time.Now())
}

func (s *Server) tufStatusLocked(now time.Time) []tufrepo.RoleStatus {
	c := &s.status
	if !c.tufAt.IsZero() && now.Sub(c.tufAt) < tufRefresh {
		return c.tuf
	}
	c.tufAt = now
	c.tufReads.Add(1)
	r, err := tufrepo.Open(s.cfg.TUFDir, s.cfg.Now)
	if err != nil {
		return c.tuf // keep the last known
	}
	st := r.Status()
	sort.Slice(st, func(i, j int) bool { return st[i].Role < st[j].Role })
	c.tuf = st
	return st
}

// recentEntry is one row of the status page.
type recentEntry struct {
	Index              uint64
	Step, Signer, When string
}

// recent describes the last n entries of the tree of the given size: step
// (from the stored link), signer (SPIFFE ID, or key id) and genTime (from
// the verified token). Rows of prev, computed earlier, are reused: an entry
// never changes.
func (s *Server) recent(n int, size uint64, prev []recentEntry) []recentEntry {
	known := make(map[uint64]recentEntry, len(prev))
	for _, re := range prev {
		known[re.Index] = re
	}
	var out []recentEntry
	for i := size; i > 0 && len(out) < n; i-- {
		if re, ok := known[i-1]; ok && re.Step != "?" {
			out = append(out, re)
			continue
		}
		s.status.work.Add(1)
		raw, err := s.Log.Entry(i - 1)
		if err != nil {
			break
		}
		re := recentEntry{Index: i - 1, Step: "?", Signer: "?", When: "?"}
		var e evident.Entry
		if json.Unmarshal(raw, &e) == nil {
			re.Signer = "key " + e.KeyID
			// The link, when stored, gives the step and the payload that
			// an Ed25519 signature is checked over.
			var payload []byte
			if d, err := e.PayloadSum(); err == nil {
				if v, err := s.links.Get(context.Background(), d); err == nil {
					if mb, p, err := verify.ParseLink(v); err == nil {
						re.Step, payload = linkName(mb), p
					}
				} else if !errors.Is(err, linkstore.ErrNotFound) {
					s.cfg.Logger.Error("couldn't read the link store", "err", err)
				}
			}
			if ve, err := s.Entries.VerifyPayload(&e, payload); err == nil {
				re.When = ve.Timestamp.GenTime.UTC().Format(time.RFC3339)
				if len(ve.SignerChain) > 0 && len(ve.SignerChain[0].URIs) == 1 {
					re.Signer = ve.SignerChain[0].URIs[0].String()
				}
			}
		}
		out = append(out, re)
	}
	return out
}

var statusTemplate = template.Must(template.New("status").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>evident — {{.Origin}}</title>
<style>body{font-family:system-ui,sans-serif;margin:2rem;max-width:72rem}table{border-collapse:collapse}
td,th{padding:.25rem .75rem;border-bottom:1px solid #ddd;text-align:left}pre{background:#f6f6f6;padding:1rem}
.soon{color:#a40}</style></head>
<body>
<h1>evident</h1>
<p>Log <code>{{.Origin}}</code>: <strong id="tree-size">{{.Size}}</strong> entries.</p>
<h2>Latest checkpoint</h2>
<pre id="checkpoint">{{.Checkpoint}}</pre>
<h2>Recent entries</h2>
<table id="recent"><tr><th>index</th><th>step</th><th>signer</th><th>timestamp (genTime)</th></tr>
{{range .Recent}}<tr><td>{{.Index}}</td><td>{{.Step}}</td><td>{{.Signer}}</td><td>{{.When}}</td></tr>
{{else}}<tr><td colspan="4">none yet</td></tr>{{end}}</table>
<h2>TUF metadata</h2>
<table id="tuf"><tr><th>role</th><th>version</th><th>expires</th></tr>
{{range .TUF}}<tr><td>{{.Role}}</td><td>{{.Version}}</td><td>{{.Expires.UTC.Format "2006-01-02T15:04:05Z"}}</td></tr>{{end}}</table>
<p>Machine-readable: <a href="/log/checkpoint">/log/checkpoint</a>, <a href="/metrics">/metrics</a>, <a href="/healthz">/healthz</a>.</p>
</body></html>
`))

// statusPage serves the page at /: the log at a glance, from the cache.
func (s *Server) statusPage(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/" {
		httpapi.WriteError(w, "no such page", http.StatusNotFound)
		return
	}
	size, checkpoint, recent, roles := s.page()
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	statusTemplate.Execute(w, map[string]any{
		"Origin": s.cfg.Origin, "Size": size, "Checkpoint": checkpoint, "Recent": recent, "TUF": roles,
	})
}

func linkName(mb *in_toto.Metablock) string {
	if l, ok := mb.Signed.(in_toto.Link); ok {
		return l.Name
	}
	return "?"
}
