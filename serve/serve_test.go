package serve

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/evident-dev/evident/internal/httpapi"
	"github.com/evident-dev/evident/link"
	"github.com/evident-dev/evident/linkstore"
	"github.com/evident-dev/evident/log"
	"github.com/evident-dev/evident/log/logclient"
	"github.com/evident-dev/evident/tsa"
)

// startTest starts a server on a loopback port with the default limits.
func startTest(t testing.TB) *Server {
	return startTestHeaderTimeout(t, 0)
}

// startDevSVID starts a server that hands out development SVIDs, with no
// admin listener, until the test ends.
func startDevSVID(t *testing.T) *Server {
	t.Helper()
	return startConfig(t, Config{DataDir: t.TempDir(), Addr: "127.0.0.1:0", Logger: slog.New(slog.DiscardHandler), DevSVID: true})
}

// startConfig opens and starts a server of cfg until the test ends.
func startConfig(t testing.TB, cfg Config) *Server {
	t.Helper()
	s, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close(context.Background()) })
	return s
}

// startTestHeaderTimeout is startTest with a read-header timeout of its
// own. Only slowloris tests shorten it: a client of a loaded machine under
// -race can take longer than 200ms between connecting and sending its
// headers, and the server then closes the connection under it.
func startTestHeaderTimeout(t testing.TB, headerTimeout time.Duration) *Server {
	t.Helper()
	dir := t.TempDir()
	return startConfig(t, Config{DataDir: dir, Addr: "127.0.0.1:0", Logger: slog.New(slog.DiscardHandler),
		ReadHeaderTimeout: headerTimeout, AdminSocket: filepath.Join(dir, "admin.sock")})
}

// TestSlowloris covers threat model S1: clients that never finish their headers
// are disconnected at the read-header timeout, and their goroutines go away.
func TestSlowloris(t *testing.T) {
	s := startTestHeaderTimeout(t, 200*time.Millisecond)
	before := runtime.NumGoroutine()
	const n = 100
	conns := make([]net.Conn, n)
	for i := range conns {
		c, err := net.Dial("tcp", strings.TrimPrefix(s.URL(), "http://"))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.Write([]byte("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: "))
		conns[i] = c
	}
	for i, c := range conns {
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.ReadAll(c); err != nil {
			t.Fatalf("connection %d was not closed by the server within 5s: %v", i, err)
		}
	}
	// The server's per-connection goroutines exit once their connections
	// close; allow a bounded wait for the scheduler.
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before+5 {
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines remain, %d before the attack", runtime.NumGoroutine(), before)
		}
		runtime.Gosched()
	}
	resp, err := http.Get(s.URL() + "/healthz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("healthz after the attack = %v, %v", resp, err)
	}
	resp.Body.Close()
}

// TestPanicIs500 covers threat model S1: a panicking handler answers 500 with a
// JSON error, and the server goes on.
func TestPanicIs500(t *testing.T) {
	h := recoverer(slog.New(slog.DiscardHandler), http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		panic("boom")
	}))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	if rec.Code != 500 || !strings.Contains(rec.Body.String(), `"error":"internal error"`) {
		t.Errorf("panicking handler = %d %q, want 500 with a JSON error", rec.Code, rec.Body)
	}
}

// TestReopenKeepsKeyAndOrigin: a data directory keeps its key, and refuses
// another origin.
func TestReopenKeepsKeyAndOrigin(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(Config{DataDir: dir, Origin: "log.example/one", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	key := s.VerifierKey
	s.Close(context.Background())
	s, err = Open(Config{DataDir: dir, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if s.VerifierKey != key || s.Origin() != "log.example/one" {
		t.Errorf("reopened key %q origin %q, want %q and log.example/one", s.VerifierKey, s.Origin(), key)
	}
	s.Close(context.Background())
	if _, err := Open(Config{DataDir: dir, Origin: "log.example/two"}); err == nil || !strings.Contains(err.Error(), "a log's origin cannot change") {
		t.Errorf("Open with another origin = %v, want the origin error", err)
	}
}

// statusFixture starts a server and logs one real entry with its link.
func statusFixture(t *testing.T) *Server {
	t.Helper()
	s := startTest(t)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	svid, err := s.DevCA.IssueSVID(&url.URL{Scheme: "spiffe", Host: DevTrustDomain, Path: "/ci/build"}, key.Public(), time.Now(), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(s.TSA.Chain()[len(s.TSA.Chain())-1])
	ts := &tsa.Client{URL: s.URL() + "/tsa", Roots: roots}
	mb, _, err := link.Sign(link.NewLink("build", []string{"make"}, nil, nil, &link.Result{}), link.Signer{Key: key, Chain: []*x509.Certificate{svid}})
	if err != nil {
		t.Fatal(err)
	}
	e, err := link.Entry(context.Background(), ts, mb, []*x509.Certificate{svid}, nil)
	if err != nil {
		t.Fatal(err)
	}
	canonical, _ := e.Marshal()
	lc := &logclient.Client{URL: s.URL(), Origin: s.Origin(), Verifier: s.Verifier}
	res, err := lc.Add(context.Background(), canonical)
	if err != nil {
		t.Fatal(err)
	}
	lb, _ := link.MarshalMetablock(mb)
	if err := (&linkstore.Client{URL: s.URL()}).Upload(context.Background(), res.Index, lb); err != nil {
		t.Fatalf("link upload: %v", err)
	}
	return s
}

func get(t *testing.T, u string) string {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s = %d %s", u, resp.StatusCode, b)
	}
	return string(b)
}

func TestMetricsAndStatus(t *testing.T) {
	s := statusFixture(t)
	m := get(t, s.URL()+"/metrics")
	for _, want := range []string{"evident_log_tree_size 1\n", "evident_log_entries_total 1\n", "evident_log_batches_total 1\n",
		"evident_tsa_tokens_total 1\n", `evident_log_add_seconds_count 1`, `evident_tuf_expiry_timestamp_seconds{role="timestamp"}`} {
		if !strings.Contains(m, want) {
			t.Errorf("/metrics lacks %q:\n%s", want, m)
		}
	}
	page := get(t, s.URL()+"/")
	for _, want := range []string{`id="tree-size">1<`, "spiffe://evident.dev/ci/build", "<td>build</td>", "<td>timestamp</td>", s.Origin()} {
		if !strings.Contains(page, want) {
			t.Errorf("status page lacks %q:\n%s", want, page)
		}
	}
}

// TestStatusPageInChromium renders the status page in headless Chromium
// and reads the DOM it built.
func TestStatusPageInChromium(t *testing.T) {
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		if os.Getenv("EVIDENT_REQUIRE_CHROMIUM") != "" {
			t.Fatal("chromium is required but not installed")
		}
		t.Skip("chromium is not installed")
	}
	s := statusFixture(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync", "--user-data-dir="+t.TempDir(),
		"--dump-dom", s.URL()+"/")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium: %v", err)
	}
	dom := string(out)
	for _, want := range []string{`<strong id="tree-size">1</strong>`, "spiffe://evident.dev/ci/build", "<td>snapshot</td>"} {
		if !strings.Contains(dom, want) {
			t.Errorf("the page Chromium rendered lacks %q:\n%s", want, dom)
		}
	}
}

// TestAPIErrorsAreJSON: under the API's paths (/log/, /links/, /dev/) a
// path no endpoint serves, or a method an endpoint does not take, is
// answered in the API's error dialect, {"error","code"} as JSON, like every
// other error there, with Allow for a 405; so a client reads one dialect.
func TestAPIErrorsAreJSON(t *testing.T) {
	s := startTest(t)
	dev := startDevSVID(t)
	for _, c := range []struct {
		srv          *Server
		method, path string
		status       int
		allow        string
	}{
		{s, "GET", "/log/v1/nothing", 404, ""},
		{s, "GET", "/log/", 404, ""},
		{s, "DELETE", log.PathEntries, 405, "POST"},
		{s, "POST", log.PathCheckpoint, 405, "GET, HEAD"},
		{s, "GET", "/links/nothing", 404, ""},
		{s, "GET", linkstore.PathLinks, 405, "POST"},
		{s, "PUT", linkstore.PathLinks + "/" + strings.Repeat("ab", 32), 405, "GET, HEAD"},
		{s, "POST", "/dev/svid", 404, ""}, // development SVIDs are off
		{dev, "GET", "/dev/svid", 405, "POST"},
		{dev, "GET", "/dev/nothing", 404, ""},
	} {
		req, _ := http.NewRequest(c.method, c.srv.URL()+c.path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var e httpapi.Error
		if resp.StatusCode != c.status || resp.Header.Get("Content-Type") != "application/json" ||
			decodeStrict(b, &e) != nil || e.Code != httpapi.Code(c.status) || e.Message == "" {
			t.Errorf("%s %s = %d %s %q, want %d in the JSON error dialect", c.method, c.path, resp.StatusCode, resp.Header.Get("Content-Type"), b, c.status)
		}
		if got := resp.Header.Get("Allow"); got != c.allow {
			t.Errorf("%s %s: Allow %q, want %q", c.method, c.path, got, c.allow)
		}
	}
}

// decodeStrict decodes one JSON value, refusing unknown fields.
func decodeStrict(b []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	return d.Decode(v)
}
