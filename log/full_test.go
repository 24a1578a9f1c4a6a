package log_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/evident-dev/evident/log"
)

// fullStore fails commits the way a full disk does, naming a file.
type fullStore struct {
	log.Store
	mu   sync.Mutex
	full bool
	err  error
}

func (f *fullStore) Commit(b *log.Batch) error {
	f.mu.Lock()
	full, err := f.full, f.err
	f.mu.Unlock()
	if full {
		return err
	}
	return f.Store.Commit(b)
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// TestStorageFullAnswers covers threat model L3 and A2 with an injected ENOSPC:
// adds get 507 with Retry-After and a message without the store's path,
// the condition is logged once, Stats shows it until a commit succeeds; any
// other storage error is a 500 without details, logged at a bounded rate.
func TestStorageFullAnswers(t *testing.T) {
	k := newKey(t)
	fs := &fullStore{Store: log.NewMemStore(), err: &os.PathError{Op: "write", Path: "/srv/secret/log.db", Err: syscall.ENOSPC}}
	var logs lockedBuffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	l := openLog(t, fs, k, func(c *log.Config) { c.Logger = logger })
	srv := httptest.NewServer(log.Handler(l, logger))
	defer srv.Close()
	post := func(i int) (*http.Response, string) {
		resp, err := http.Post(srv.URL+log.PathEntries, "application/json", bytes.NewReader(entry(i)))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp, string(b)
	}
	fs.mu.Lock()
	fs.full = true
	fs.mu.Unlock()
	for i := 0; i < 20; i++ {
		resp, body := post(i)
		if resp.StatusCode != http.StatusInsufficientStorage || resp.Header.Get("Retry-After") == "" || strings.Contains(body, "/srv") {
			t.Fatalf("add on a full disk = %d (Retry-After %q) %s", resp.StatusCode, resp.Header.Get("Retry-After"), body)
		}
	}
	if st := l.Stats(); !st.StorageFull || st.FullFailures != 20 {
		t.Errorf("Stats = %+v, want StorageFull and 20 full failures", st)
	}
	if n := strings.Count(logs.String(), "storage is full"); n != 1 {
		t.Errorf("logged the full disk %d times, want once:\n%s", n, logs.String())
	}
	fs.mu.Lock()
	fs.err = &os.PathError{Op: "fdatasync", Path: "/srv/secret/log.db", Err: syscall.EIO}
	fs.mu.Unlock()
	for i := 20; i < 40; i++ {
		resp, body := post(i)
		if resp.StatusCode != 500 || strings.Contains(body, "/srv") {
			t.Fatalf("add on a failing disk = %d %s, want 500 without the path", resp.StatusCode, body)
		}
	}
	if n := strings.Count(logs.String(), "msg=\"commit failed\""); n != 1 {
		t.Errorf("logged %d commit failures for 20 in a row, want 1 (rate-limited)", n)
	}
	fs.mu.Lock()
	fs.full = false
	fs.mu.Unlock()
	if _, err := l.Add(context.Background(), entry(100)); err != nil {
		t.Fatal(err)
	}
	if l.Stats().StorageFull {
		t.Error("StorageFull after a successful commit")
	}
}
