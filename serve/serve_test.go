package serve

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"
)

func startTest(t *testing.T) *Server {
	t.Helper()
	s, err := Open(Config{DataDir: t.TempDir(), Addr: "127.0.0.1:0", Logger: slog.New(slog.DiscardHandler),
		ReadHeaderTimeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close(context.Background()) })
	return s
}

// TestSlowloris covers THREATS S1: clients that never finish their headers
// are disconnected at the read-header timeout, and their goroutines go away.
func TestSlowloris(t *testing.T) {
	s := startTest(t)
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

// TestPanicIs500 covers THREATS S1: a panicking handler answers 500 with a
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
