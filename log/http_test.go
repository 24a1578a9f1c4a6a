package log_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/evident-dev/evident/internal/httpapi"
	"github.com/evident-dev/evident/log"
	"github.com/evident-dev/evident/log/logclient"
)

func newHTTPLog(t *testing.T, n int) (*log.Log, testKey, *httptest.Server) {
	k := newKey(t)
	l := openLog(t, log.NewMemStore(), k, nil)
	for i := 0; i < n; i++ {
		if _, err := l.Add(context.Background(), entry(i)); err != nil {
			t.Fatal(err)
		}
	}
	srv := httptest.NewServer(log.Handler(l, nil))
	t.Cleanup(srv.Close)
	return l, k, srv
}

func get(t *testing.T, u string) (int, []byte) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// TestHandlerStatuses covers threat model L4 and L7 at the handler: malformed or
// out-of-range numbers are 400 with a JSON error, never a panic.
func TestHandlerStatuses(t *testing.T) {
	_, _, srv := newHTTPLog(t, 5)
	for _, c := range []struct {
		path string
		want int
		msg  string
	}{
		{"/log/v1/proof/inclusion?index=0&size=5", 200, ""},
		{"/log/v1/proof/inclusion?index=5&size=5", 400, "out of range"},
		{"/log/v1/proof/inclusion?index=0&size=0", 400, "out of range"},
		{"/log/v1/proof/inclusion?index=0&size=6", 400, "out of range"},
		{"/log/v1/proof/inclusion?index=-1&size=5", 400, "not a non-negative decimal"},
		{"/log/v1/proof/inclusion?index=%2B1&size=5", 400, "not a non-negative decimal"},
		{"/log/v1/proof/inclusion?index=0&size=99999999999999999999", 400, "does not fit in 64 bits"},
		{"/log/v1/proof/inclusion?size=5", 400, "index is required"},
		{"/log/v1/proof/inclusion?hash=zz&size=5", 400, "hash must be 32 bytes"},
		{"/log/v1/proof/inclusion?hash=" + strings.Repeat("00", 32) + "&size=5", 404, "not found"},
		{"/log/v1/proof/consistency?from=1&to=5", 200, ""},
		{"/log/v1/proof/consistency?from=0&to=5", 400, "out of range"},
		{"/log/v1/proof/consistency?from=5&to=4", 400, "out of range"},
		{"/log/v1/proof/consistency?from=1&to=18446744073709551615", 400, "out of range"},
		{"/log/v1/entries/4", 200, ""},
		{"/log/v1/entries/5", 400, "out of range"},
		{"/log/v1/entries/x", 400, "not a non-negative decimal"},
		{"/log/tile/0/000.p/5", 200, ""},
		{"/log/tile/0/000.p/6", 404, "not found"},
		{"/log/tile/0/000", 404, "not found"},
		{"/log/tile/0/0", 400, "bad tile path"},
		{"/log/tile/entries/000.p/5", 200, ""},
	} {
		code, body := get(t, srv.URL+c.path)
		if code != c.want {
			t.Errorf("GET %s = %d %s, want %d", c.path, code, body, c.want)
			continue
		}
		if c.msg != "" {
			var e struct{ Error string }
			if err := json.Unmarshal(body, &e); err != nil || !strings.Contains(e.Error, c.msg) {
				t.Errorf("GET %s error body = %s, want a JSON error containing %q", c.path, body, c.msg)
			}
		}
	}
}

func TestHandlerAdd(t *testing.T) {
	l, k, srv := newHTTPLog(t, 0)
	post := func(body []byte, ce string) (int, []byte) {
		req, _ := http.NewRequest("POST", srv.URL+log.PathEntries, bytes.NewReader(body))
		if ce != "" {
			req.Header.Set("Content-Encoding", ce)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	code, body := post(entry(1), "")
	if code != 200 {
		t.Fatalf("POST = %d %s", code, body)
	}
	var ar log.AddResponse
	if err := json.Unmarshal(body, &ar); err != nil {
		t.Fatal(err)
	}
	checkAdd(t, k, entry(1), &log.AddResult{Index: ar.Index, Checkpoint: []byte(ar.Checkpoint), Proof: ar.InclusionProof})
	if code, _ := post(bytes.Repeat([]byte("x"), log.MaxEntrySize+1), ""); code != 413 {
		t.Errorf("POST of MaxEntrySize+1 bytes = %d, want 413", code)
	}
	if code, _ := post(bytes.Repeat([]byte("x"), log.MaxEntrySize), ""); code != 200 {
		t.Errorf("POST of MaxEntrySize bytes = %d, want 200", code)
	}
	if code, _ := post(nil, ""); code != 400 {
		t.Errorf("POST of nothing = %d, want 400", code)
	}
	if code, _ := post(entry(2), "gzip"); code != 415 {
		t.Errorf("POST gzip = %d, want 415", code)
	}
	if l.Head().Size != 2 {
		t.Errorf("size = %d, want 2", l.Head().Size)
	}
	// The client verifies what the server says, and names a lie.
	c := &logclient.Client{URL: srv.URL, Origin: testOrigin, Verifier: k.verifier}
	if _, err := c.Add(context.Background(), entry(3)); err != nil {
		t.Errorf("Client.Add = %v", err)
	}
	if _, _, err := c.ProveEntry(context.Background(), 0, mustCheckpoint(t, c)); err != nil {
		t.Errorf("ProveEntry = %v", err)
	}
}

func mustCheckpoint(t *testing.T, c *logclient.Client) log.Checkpoint {
	cp, _, err := c.Checkpoint(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return cp
}

// TestClientRejectsLies: a server answering with proofs for other entries or
// checkpoints signed by another key is caught by the client (threat model V5 at
// the log's edge).
func TestClientRejectsLies(t *testing.T) {
	_, k, honest := newHTTPLog(t, 10)
	lie := func(rewrite func(path string, body []byte) []byte) *logclient.Client {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			resp, err := http.Get(honest.URL + r.URL.RequestURI())
			if err != nil {
				t.Error(err)
				return
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			w.WriteHeader(resp.StatusCode)
			w.Write(rewrite(r.URL.Path, b))
		}))
		t.Cleanup(srv.Close)
		return &logclient.Client{URL: srv.URL, Origin: testOrigin, Verifier: k.verifier}
	}
	// Entry 3 served for index 4.
	swapped := lie(func(path string, b []byte) []byte {
		if path == "/log/v1/entries/4" {
			return entry(3)
		}
		return b
	})
	cp := mustCheckpoint(t, swapped)
	if _, _, err := swapped.ProveEntry(context.Background(), 4, cp); !errors.Is(err, log.ErrBadProof) {
		t.Errorf("ProveEntry with a swapped entry = %v, want ErrBadProof", err)
	}
	// A proof with one hash flipped.
	flipped := lie(func(path string, b []byte) []byte {
		if path == log.PathInclusionProof {
			var pr log.ProofResponse
			json.Unmarshal(b, &pr)
			pr.Hashes[0][0] ^= 1
			b, _ = json.Marshal(pr)
		}
		return b
	})
	if _, _, err := flipped.ProveEntry(context.Background(), 4, cp); !errors.Is(err, log.ErrBadProof) {
		t.Errorf("ProveEntry with a flipped hash = %v, want ErrBadProof", err)
	}
	// A checkpoint with its size changed.
	resized := lie(func(path string, b []byte) []byte {
		if path == log.PathCheckpoint {
			return bytes.Replace(b, []byte("\n10\n"), []byte("\n11\n"), 1)
		}
		return b
	})
	if _, _, err := resized.Checkpoint(context.Background()); !errors.Is(err, log.ErrCheckpointSignature) {
		t.Errorf("Checkpoint with a changed size = %v, want ErrCheckpointSignature", err)
	}
}

func TestAddResponseEncoding(t *testing.T) {
	for _, res := range []*log.AddResult{
		{Index: 7, Checkpoint: []byte("origin\n8\nAAAA\n\n— origin abc+/=\n"), Proof: [][]byte{{1, 2}, bytes.Repeat([]byte{0xff}, 32)}},
		{Index: 0, Duplicate: true, Checkpoint: []byte("a\"b\\c<d>&\x01\t\r"), Proof: [][]byte{}},
		{Index: 1, Checkpoint: []byte("bad utf8 \xff and \u2028"), Proof: nil},
	} {
		want, _ := json.Marshal(&log.AddResponse{Index: res.Index, Duplicate: res.Duplicate, Checkpoint: string(res.Checkpoint), InclusionProof: res.Proof})
		got := log.AppendAddResponse(nil, res)
		if !bytes.Equal(got, append(want, '\n')) {
			t.Errorf("appendAddResponse = %s, want %s", got, want)
		}
	}
}

// FuzzHandler sends arbitrary queries and tile paths: never a panic, never
// a 5xx.
func FuzzHandler(f *testing.F) {
	f.Add("/log/v1/proof/inclusion", "index=1&size=3")
	f.Add("/log/v1/proof/inclusion", "hash="+hex.EncodeToString(make([]byte, 32))+"&size=3")
	f.Add("/log/v1/proof/consistency", "from=1&to=3")
	f.Add("/log/tile/0/000.p/3", "")
	f.Add("/log/v1/entries/2", "")
	k := newKey(f)
	l := openLog(f, log.NewMemStore(), k, nil)
	for i := 0; i < 3; i++ {
		l.Add(context.Background(), entry(i))
	}
	h := log.Handler(l, nil)
	f.Fuzz(func(t *testing.T, path, query string) {
		req := httptest.NewRequest("GET", "/", nil)
		req.URL = &url.URL{Path: path, RawQuery: query}
		req.RequestURI = req.URL.RequestURI()
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("GET %s?%s = %d %s", path, query, rec.Code, rec.Body)
		}
	})
}

// H1: during a failover appends are answered 503 with Retry-After; the
// client retries them (a bounded number of times) and gets its proof.
func TestClientAddRetries(t *testing.T) {
	l, k, _ := newHTTPLog(t, 3)
	h := log.Handler(l, nil)
	var unavailable atomic.Int64
	unavailable.Store(2)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && unavailable.Add(-1) >= 0 {
			w.Header().Set("Retry-After", "0")
			w.WriteHeader(http.StatusServiceUnavailable)
			io.WriteString(w, `{"error":"log is unavailable: no sequencer is elected"}`)
			return
		}
		h.ServeHTTP(w, r)
	}))
	defer srv.Close()
	c := &logclient.Client{URL: srv.URL, Origin: testOrigin, Verifier: k.verifier}
	res, err := c.Add(context.Background(), entry(3))
	if err != nil || res.Index != 3 {
		t.Fatalf("Add through two 503s = %+v, %v, want index 3", res, err)
	}
	unavailable.Store(2)
	c.AddRetries = 1
	var he *logclient.HTTPError
	if _, err := c.Add(context.Background(), entry(4)); !errors.As(err, &he) || he.Status != 503 {
		t.Fatalf("Add through two 503s with one retry = %v, want the 503", err)
	}
	unavailable.Store(1)
	c.AddRetries = -1
	if _, err := c.Add(context.Background(), entry(4)); !errors.As(err, &he) || he.Status != 503 {
		t.Fatalf("Add with retries off = %v, want the 503", err)
	}
}

// TestClientTimesOut covers threat model A2 at the client: a Client
// without its own HTTP client uses httpapi's default, whose requests time
// out, so a server that accepts a request and never answers cannot hold a
// CI job (evident run, bundle fetch) forever; with a client of its own, the
// timeout is that client's.
func TestClientTimesOut(t *testing.T) {
	if d := httpapi.Client(nil).Timeout; d <= 0 {
		t.Fatalf("the default client has no timeout (%v)", d)
	}
	release := make(chan struct{})
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-release }))
	defer ts.Close()
	defer close(release)
	done := make(chan error, 1)
	go func() {
		_, _, err := (&logclient.Client{URL: ts.URL, HTTP: &http.Client{Timeout: 300 * time.Millisecond}}).Checkpoint(context.Background())
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil {
			t.Error("a server that never answers gave a checkpoint")
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the client is still waiting for a server that never answers after 20 s")
	}
}
