package serve

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/evident-dev/evident"
	"github.com/evident-dev/evident/identity"
	"github.com/evident-dev/evident/internal/boltfile"
	"github.com/evident-dev/evident/internal/pemfile"
	"github.com/evident-dev/evident/link"
	"github.com/evident-dev/evident/log"
	"github.com/evident-dev/evident/log/boltstore"
	"github.com/evident-dev/evident/log/logclient"
	"github.com/evident-dev/evident/tsa"
)

// adminClient talks to the server's admin socket.
func adminClient(s *Server) *http.Client {
	sock := strings.TrimPrefix(s.AdminURL(), "unix:")
	return &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}}
}

// TestBackupOnAdminListener covers threat model S2 and S3: the public listener
// has no backup endpoint, whatever the caller's address; the admin socket
// serves a consistent copy with its length and SHA-256, which checks clean.
func TestBackupOnAdminListener(t *testing.T) {
	s := statusFixture(t)
	resp, err := http.Get(s.URL() + "/admin/backup")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /admin/backup on the public listener = %d, want 404", resp.StatusCode)
	}
	fi, err := os.Stat(strings.TrimPrefix(s.AdminURL(), "unix:"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("admin socket mode = %v, %v; want 0600", fi.Mode(), err)
	}
	for _, db := range []string{"log", "links"} {
		resp, err := adminClient(s).Get("http://admin/admin/backup?db=" + db)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		sum := sha256.Sum256(b)
		if resp.StatusCode != 200 || resp.ContentLength != int64(len(b)) ||
			resp.Header.Get(BackupDigestHeader) != "sha-256=:"+base64.StdEncoding.EncodeToString(sum[:])+":" {
			t.Fatalf("backup of %s = %d, length %d of %d, digest %q", db, resp.StatusCode, resp.ContentLength, len(b), resp.Header.Get(BackupDigestHeader))
		}
		if db != "log" {
			continue
		}
		p := filepath.Join(t.TempDir(), "log.db")
		os.WriteFile(p, b, 0o600)
		store, err := boltstore.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		if h, err := log.Check(store, s.Origin(), s.Verifier); err != nil || h.Size != 1 {
			t.Errorf("the backup checks = size %d, %v", h.Size, err)
		}
		store.Close()
	}
	if left, _ := filepath.Glob(filepath.Join(s.cfg.DataDir, ".backup-*")); len(left) > 0 {
		t.Errorf("backup snapshots left behind: %v", left)
	}
}

// TestDevSVIDOptIn covers threat model S2: development SVIDs are not handed to
// loopback callers unless the server was told to, and the opt-in needs the
// development CA.
func TestDevSVIDOptIn(t *testing.T) {
	s := startTest(t)
	if _, err := identity.FromDevServer(context.Background(), s.URL(), "spiffe://evident.dev/ci/x"); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("dev SVID without --dev-svid = %v, want 404", err)
	}
	on := startDevSVID(t)
	if _, err := identity.FromDevServer(context.Background(), on.URL(), "spiffe://evident.dev/ci/x"); err != nil {
		t.Errorf("dev SVID with DevSVID: %v", err)
	}
	if on.AdminURL() != "" {
		t.Errorf("an admin listener nobody asked for: %s", on.AdminURL())
	}
	pem := filepath.Join(t.TempDir(), "roots.pem")
	os.WriteFile(pem, pemfile.EncodeCertificates([]*x509.Certificate{on.DevCA.Cert}), 0o600)
	if _, err := Open(Config{DataDir: t.TempDir(), DevSVID: true, FunctionaryRootsFile: pem, Logger: slog.New(slog.DiscardHandler)}); err == nil ||
		!strings.Contains(err.Error(), "need the development CA") {
		t.Errorf("DevSVID with production roots = %v, want a refusal", err)
	}
}

// TestOpenRefusesTruncatedStore covers threat model L9: a log.db or links.db cut
// at 10 %, 60 % or 99 % of its pages in use is refused at start with
// "corrupt or truncated", before bbolt maps it.
func TestOpenRefusesTruncatedStore(t *testing.T) {
	src := t.TempDir()
	s, err := Open(Config{DataDir: src, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	s.Close(context.Background())
	for _, name := range []string{"log.db", "links.db"} {
		for _, pct := range []int64{10, 60, 99} {
			dir := t.TempDir()
			if err := os.CopyFS(dir, os.DirFS(src)); err != nil {
				t.Fatal(err)
			}
			p := filepath.Join(dir, name)
			used, err := boltfile.UsedSize(p)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.Truncate(p, used*pct/100); err != nil {
				t.Fatal(err)
			}
			_, err = Open(Config{DataDir: dir, Logger: slog.New(slog.DiscardHandler)})
			if !errors.Is(err, boltstore.ErrDamaged) || !strings.Contains(err.Error(), "corrupt or truncated") {
				t.Errorf("%s cut at %d%%: Open = %v, want corrupt or truncated", name, pct, err)
			}
		}
	}
}

// minter makes real entries for a test server: one SVID, tokens from its TSA.
type minter struct {
	s    *Server
	key  *ecdsa.PrivateKey
	svid *x509.Certificate
	ts   *tsa.Client
	n    atomic.Int64
}

func newMinter(t *testing.T, s *Server) *minter {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	svid, err := s.DevCA.IssueSVID(&url.URL{Scheme: "spiffe", Host: DevTrustDomain, Path: "/ci/mint"}, key.Public(), time.Now(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(s.TSA.Chain()[len(s.TSA.Chain())-1])
	return &minter{s: s, key: key, svid: svid, ts: &tsa.Client{URL: s.URL() + "/tsa", Roots: roots}}
}

func (m *minter) entry(t *testing.T) []byte {
	payload := fmt.Sprintf(`{"_type":"link","name":"mint","n":%d}`, m.n.Add(1))
	e, err := link.Countersign(context.Background(), m.ts, evident.PayloadTypeLink, []byte(payload), "k", m.key, []*x509.Certificate{m.svid})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := e.Marshal()
	return b
}

// TestStatusFloodDoesNoStoreWork covers threat model S4: a flood of GET / while
// entries are appended reads and verifies each recent entry once per
// refresh, at most once per second, and opens the TUF repository at most
// once per ten seconds; the appends all succeed.
func TestStatusFloodDoesNoStoreWork(t *testing.T) {
	s := statusFixture(t)
	m := newMinter(t, s)
	lc := &logclient.Client{URL: s.URL(), Origin: s.Origin(), Verifier: s.Verifier}
	start := time.Now()
	done := make(chan struct{})
	var pages, failed atomic.Int64
	var wg sync.WaitGroup
	flood := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-done:
					return
				default:
				}
				resp, err := flood.Get(s.URL() + "/")
				if err != nil {
					failed.Add(1) // counted, not fatal: the flood is the attacker's
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				pages.Add(1)
			}
		}()
	}
	const adds = 30
	for i := 0; i < adds; i++ {
		if _, err := lc.Add(context.Background(), m.entry(t)); err != nil {
			t.Fatalf("add %d under the flood: %v", i, err)
		}
	}
	for deadline := time.Now().Add(2 * time.Minute); pages.Load() < 500; { // enough of a flood, whatever the machine's speed
		if time.Now().After(deadline) {
			t.Fatalf("%d pages served (%d requests failed) in 2 minutes of the flood, want 500", pages.Load(), failed.Load())
		}
		if _, err := lc.Add(context.Background(), m.entry(t)); err != nil {
			t.Fatal(err)
		}
	}
	close(done)
	wg.Wait()
	elapsed := time.Since(start)
	c := &s.status
	maxRefreshes := int64(elapsed/statusRefresh) + 2
	if r := c.refreshes.Load(); r > maxRefreshes {
		t.Errorf("%d refreshes in %v, want at most %d", r, elapsed, maxRefreshes)
	}
	if w := c.work.Load(); w > recentRows*c.refreshes.Load() {
		t.Errorf("%d entry reads for %d refreshes", w, c.refreshes.Load())
	}
	if r := c.tufReads.Load(); r > int64(elapsed/tufRefresh)+2 {
		t.Errorf("%d TUF reads in %v", r, elapsed)
	}
	t.Logf("%d pages (%d failed requests) and %d adds in %v: %d refreshes, %d entry reads, %d TUF reads",
		pages.Load(), failed.Load(), s.Log.Head().Size, elapsed.Round(time.Millisecond), c.refreshes.Load(), c.work.Load(), c.tufReads.Load())
}

// TestConnectionCap covers threat model S1: with the cap full of slow clients and
// more arriving, health and checkpoint reads still answer through the
// reserve, other requests there get 503, and the counts stay within bounds.
func TestConnectionCap(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(Config{DataDir: dir, Addr: "127.0.0.1:0", Logger: slog.New(slog.DiscardHandler), MaxConns: 8, ConnReserve: 2})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	addr := strings.TrimPrefix(s.URL(), "http://")
	const slow = 60
	for i := 0; i < slow; i++ {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.Write([]byte("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: "))
	}
	// Every slow client is accepted (and counted, or closed) before the
	// probe: a probe request is answered only once its connection is.
	deadline := time.Now().Add(10 * time.Second)
	for {
		open, reserve := s.conns.counts()
		if open > 8 || reserve > 2 {
			t.Fatalf("%d connections and %d in reserve, over the cap of 8+2", open, reserve)
		}
		if open == 8 && reserve == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the slow clients were not accepted: %d open, %d reserve", open, reserve)
		}
		time.Sleep(time.Millisecond)
	}
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	for _, path := range []string{"/healthz", "/log/checkpoint"} {
		resp, err := client.Get(s.URL() + path)
		if err != nil {
			t.Fatalf("GET %s at the cap: %v", path, err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("GET %s at the cap = %d, want 200", path, resp.StatusCode)
		}
	}
	resp, err := client.Post(s.URL()+log.PathEntries, "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Errorf("an add at the cap = %d (Retry-After %q), want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	m := get(t, s.URL()+"/metrics")
	if !strings.Contains(m, "evident_http_connections_max 8\n") {
		t.Errorf("/metrics lacks the cap:\n%s", m)
	}
}

// TestStorageFull covers threat model L3 and A2 on a real full file system (a
// small tmpfs; root only): adds get 507 with Retry-After and no local path,
// the condition is logged once and shown in /metrics, and once space is
// freed adds succeed and the store checks clean.
func TestStorageFull(t *testing.T) {
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs here: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", dir).Run() })
	var logs syncBuffer
	s, err := Open(Config{DataDir: dir, Addr: "127.0.0.1:0", StoreMmapSize: 1 << 20,
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	m := newMinter(t, s)
	entries := make([][]byte, 40)
	for i := range entries {
		entries[i] = m.entry(t)
	}
	filler := filepath.Join(dir, "filler")
	f, err := os.Create(filler)
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := f.Write(make([]byte, 64<<10)); err != nil {
			break
		}
	}
	f.Close()
	var full int
	for i, e := range entries[:20] {
		resp, err := http.Post(s.URL()+log.PathEntries, "application/json", bytes.NewReader(e))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == 200 {
			continue // a batch that still fitted
		}
		full++
		if resp.StatusCode != http.StatusInsufficientStorage || resp.Header.Get("Retry-After") == "" || strings.Contains(string(body), dir) {
			t.Errorf("add %d on a full disk = %d (Retry-After %q) %s, want 507 with Retry-After and no path", i, resp.StatusCode, resp.Header.Get("Retry-After"), body)
		}
	}
	if full < 10 {
		t.Fatalf("only %d of 20 adds failed on a full disk", full)
	}
	if !strings.Contains(get(t, s.URL()+"/metrics"), "evident_log_storage_full 1\n") {
		t.Error("/metrics does not show the full disk")
	}
	if n := strings.Count(logs.String(), "storage is full"); n != 1 {
		t.Errorf("the full disk was logged %d times, want once:\n%s", n, logs.String())
	}
	os.Remove(filler)
	lc := &logclient.Client{URL: s.URL(), Origin: s.Origin(), Verifier: s.Verifier}
	for _, e := range entries[20:] {
		if _, err := lc.Add(context.Background(), e); err != nil {
			t.Fatalf("add once space is freed: %v", err)
		}
	}
	if !strings.Contains(get(t, s.URL()+"/metrics"), "evident_log_storage_full 0\n") {
		t.Error("/metrics still shows a full disk")
	}
	if _, err := log.Check(s.store, s.Origin(), s.Verifier); err != nil {
		t.Errorf("the store after a full disk: %v", err)
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// answered reports whether the server has answered on c (a stalled
// client is answered only if it was refused).
func answered(c net.Conn) bool {
	c.SetReadDeadline(time.Now().Add(10 * time.Millisecond))
	defer c.SetReadDeadline(time.Time{})
	n, err := c.Read(make([]byte, 1))
	var ne net.Error
	return n > 0 || err != nil && !(errors.As(err, &ne) && ne.Timeout())
}

// TestLargeSubmissionsAtOnce covers threat model L7 and S1: a submission
// over the entry size (an entry with its payload) is read into a buffer of
// its own, by at most 4 requests at once. Four clients that send the start
// of one and stall hold the four slots; a fifth large submission gets 503
// with Retry-After at once (it is not read, so memory stays bounded); a
// small request still gets through; and once a stalled client goes, its
// slot is free again.
func TestLargeSubmissionsAtOnce(t *testing.T) {
	s := startTest(t)
	addr := strings.TrimPrefix(s.URL(), "http://")
	// The start of a submission, longer than any entry: the server must read
	// on into the payload, in a large-body slot.
	prefix := append([]byte(`{"payload":"`), bytes.Repeat([]byte("A"), log.MaxEntrySize+1024)...)
	const bodyLen = log.MaxEntrySize + 64<<10
	stall := func() net.Conn {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		// A stalled body says it is 1 MiB long: more than net/http reads
		// of an unread body before it answers, so a stalled client the
		// server refused (it came to the slots while a probe held one) is
		// answered at once, and replaced below.
		fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", log.PathEntries, log.MaxEntrySize+1<<20)
		if _, err := c.Write(prefix); err != nil {
			t.Fatal(err)
		}
		return c // the rest of the body never comes
	}
	// probe posts a whole large submission (malformed, so that it is never
	// logged): 503 while every slot is held, else the 400 of its content.
	probe := func() (int, string) {
		body := append(bytes.Clone(prefix), bytes.Repeat([]byte("A"), bodyLen-len(prefix)-2)...)
		body = append(body, `"}`...)
		resp, err := http.Post(s.URL()+log.PathEntries, "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		io.Copy(io.Discard, resp.Body)
		return resp.StatusCode, resp.Header.Get("Retry-After")
	}
	var stalled []net.Conn
	for i := 0; i < 4; i++ {
		c := stall()
		defer c.Close()
		stalled = append(stalled, c)
	}
	// The stalled clients take their slots when the server reads their
	// bodies, which it does on its own goroutines: probe until all four are
	// held. A probe that finds a slot free uses it while it is read, and a
	// stalled client that came to the slots meanwhile was answered 503: it
	// is replaced.
	code, retry := 0, ""
	for deadline := time.Now().Add(20 * time.Second); ; {
		if code, retry = probe(); code == http.StatusServiceUnavailable || time.Now().After(deadline) {
			break
		}
		if code != http.StatusBadRequest {
			t.Fatalf("a malformed large submission with a slot free = %d, want 400", code)
		}
		for i, c := range stalled {
			if answered(c) {
				c.Close()
				stalled[i] = stall()
				defer stalled[i].Close()
			}
		}
	}
	if code != http.StatusServiceUnavailable || retry == "" {
		t.Fatalf("a fifth large submission while four stall = %d (Retry-After %q), want 503 with Retry-After", code, retry)
	}
	// Small requests are not held up by the large ones.
	if resp, err := http.Post(s.URL()+log.PathEntries, "application/json", strings.NewReader("{}")); err != nil || resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("a small submission while four large ones stall = %v, %v, want 400", resp, err)
	} else {
		resp.Body.Close()
	}
	// One stalled client goes: its slot is released.
	stalled[0].Close()
	for deadline := time.Now().Add(20 * time.Second); ; {
		if code, _ = probe(); code != http.StatusServiceUnavailable || time.Now().After(deadline) {
			break
		}
	}
	if code != http.StatusBadRequest {
		t.Fatalf("a large submission after a stalled one went = %d, want 400 (read, then refused as malformed)", code)
	}
}
