package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/evident-dev/evident/internal/boltfile"
	"github.com/evident-dev/evident/log"
	"github.com/evident-dev/evident/serve"
)

// mintMany mints n entries of a round on 16 goroutines.
func mintMany(t *testing.T, m *minter, round, n int) [][]byte {
	t.Helper()
	out := make([][]byte, n)
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1)) - 1; i < n; i = int(next.Add(1)) - 1 {
				out[i] = m.entry(round, i)
			}
		}()
	}
	wg.Wait()
	for i, e := range out {
		if e == nil {
			t.Fatalf("couldn't mint entry %d", i)
		}
	}
	return out
}

// addAll appends entries on 16 goroutines, each add bounded by maxAdd, and
// returns the slowest add.
func addAll(t *testing.T, s *server, entries [][]byte, maxAdd time.Duration) time.Duration {
	return addAllThen(t, s, entries, maxAdd, nil)
}

// addAllThen is addAll calling then (if not nil) after each add.
func addAllThen(t *testing.T, s *server, entries [][]byte, maxAdd time.Duration, then func()) time.Duration {
	t.Helper()
	c := s.client()
	var next atomic.Int64
	var mu sync.Mutex
	var slowest time.Duration
	var wg sync.WaitGroup
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1)) - 1; i < len(entries); i = int(next.Add(1)) - 1 {
				ctx, cancel := context.WithTimeout(context.Background(), maxAdd)
				t0 := time.Now()
				_, err := c.Add(ctx, entries[i])
				d := time.Since(t0)
				cancel()
				if err != nil {
					t.Errorf("add %d: %v (after %v)", i, err, d.Round(time.Millisecond))
					return
				}
				mu.Lock()
				slowest = max(slowest, d)
				mu.Unlock()
				if then != nil {
					then()
				}
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	return slowest
}

// adminHTTP is a client of a server's admin socket.
func adminHTTP(dataDir string) *http.Client {
	sock := filepath.Join(dataDir, "admin.sock")
	return &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}}
}

// TestSlowBackupNeverStallsAppends covers threat model S3 against a real
// server: a backup client reads 4 kB for every 20 appends — so its download
// lasts longer than the appends, at any machine speed, and outlasts the
// appends only if they go on without it — while log.db grows through
// several memory maps (lowered to 1 MiB for the test with
// --store-mmap-size); the backup then completes with the length and digest
// the server announced.
func TestSlowBackupNeverStallsAppends(t *testing.T) {
	if testing.Short() {
		t.Skip("a real server under load")
	}
	dir := t.TempDir()
	s := startServer(t, dir, "--store-mmap-size", "1048576")
	entries := mintMany(t, newMinter(t, dir, s.url), 1, 3000)
	t0 := time.Now()
	addAll(t, s, entries[:500], 20*time.Second)
	baseline := 500 / time.Since(t0).Seconds()

	resp, err := adminHTTP(dir).Get("http://admin/admin/backup")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.ContentLength <= 0 {
		t.Fatalf("backup = %s, length %d", resp.Status, resp.ContentLength)
	}
	fast := make(chan struct{})
	progress := make(chan struct{}, len(entries))
	type result struct {
		n   int64
		sum []byte
		err error
	}
	done := make(chan result, 1)
	go func() {
		d := sha256.New()
		var n int64
		buf := make([]byte, 4096)
		for {
			for i := 0; i < 20; i++ {
				select {
				case <-fast:
					m, err := io.Copy(d, resp.Body)
					done <- result{n + m, d.Sum(nil), err}
					return
				case <-progress:
				}
			}
			k, err := io.ReadFull(resp.Body, buf)
			d.Write(buf[:k])
			n += int64(k)
			if err != nil {
				done <- result{n, d.Sum(nil), err}
				return
			}
		}
	}()

	t0 = time.Now()
	slowest := addAllThen(t, s, entries[500:], 20*time.Second, func() { progress <- struct{}{} })
	during := float64(len(entries)-500) / time.Since(t0).Seconds()
	select {
	case r := <-done:
		t.Fatalf("the backup (%d bytes, %v) finished before the appends did: they waited for it", r.n, r.err)
	default:
	}
	used, err := boltfile.UsedSize(filepath.Join(dir, "log.db"))
	if err != nil {
		t.Fatal(err)
	}
	if used < 8<<20 {
		t.Errorf("log.db uses %d bytes: it did not outgrow several 1 MiB-based maps", used)
	}
	close(fast)
	r := <-done
	if r.err != nil || r.n != resp.ContentLength {
		t.Fatalf("backup read %d of %d bytes: %v", r.n, resp.ContentLength, r.err)
	}
	if want := "sha-256=:" + base64.StdEncoding.EncodeToString(r.sum) + ":"; resp.Header.Get(serve.BackupDigestHeader) != want {
		t.Errorf("backup digest %q, computed %q", resp.Header.Get(serve.BackupDigestHeader), want)
	}
	t.Logf("appends: %.0f/s before the backup, %.0f/s while it downloads slowly (slowest add %v); log.db uses %d MiB",
		baseline, during, slowest.Round(time.Millisecond), used>>20)
}

// TestSIGTERMWithSlowClients covers threat model S3 against a real server: with
// a backup nobody reads and 50 clients sending their bodies a byte at a
// time, SIGTERM makes the server exit 0 within its grace (2s here), and the
// store checks clean with every acknowledged entry.
func TestSIGTERMWithSlowClients(t *testing.T) {
	if testing.Short() {
		t.Skip("a real server")
	}
	dir := t.TempDir()
	s := startServer(t, dir, "--shutdown-grace", "2s")
	addAll(t, s, mintMany(t, newMinter(t, dir, s.url), 1, 800), 20*time.Second)

	resp, err := adminHTTP(dir).Get("http://admin/admin/backup")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close() // never read
	addr := strings.TrimPrefix(s.url, "http://")
	for i := 0; i < 50; i++ {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{", log.PathEntries)
	}
	// Every slow client is being served before the signal.
	deadline := time.Now().Add(10 * time.Second)
	for metric(t, s.url, "evident_http_connections") < 51 {
		if time.Now().After(deadline) {
			t.Fatal("the slow clients were not accepted within 10s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	t0 := time.Now()
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-s.done:
		s.done <- nil // for the cleanup
		if err != nil {
			t.Fatalf("evident serve exited with %v after SIGTERM, want 0", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("evident serve was still running 15s after SIGTERM, with a 2s grace")
	}
	if took := time.Since(t0); took > 5*time.Second {
		t.Errorf("shutdown took %v with a 2s grace", took)
	}
	t.Logf("exited 0 %v after SIGTERM (grace 2s)", time.Since(t0).Round(time.Millisecond))
	out, stderr, code := runCLI(t, nil, "log", "fsck", "--data", dir)
	if code != 0 || !strings.Contains(out, "ok: 800 entries") {
		t.Errorf("fsck after SIGTERM = %d %s %s", code, out, stderr)
	}
}

// metric reads one unlabelled value from /metrics.
func metric(t *testing.T, url, name string) float64 {
	t.Helper()
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, name+" "); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return f
		}
	}
	t.Fatalf("/metrics has no %s", name)
	return 0
}

// stopServer sends SIGTERM and waits for the exit.
func stopServer(t *testing.T, s *server) {
	t.Helper()
	s.cmd.Process.Signal(syscall.SIGTERM)
	if err := <-s.done; err != nil {
		t.Fatalf("evident serve: %v", err)
	}
	s.done <- nil
}

// TestTruncatedStoreIsReported covers threat model L9: copies of a data
// directory whose log.db or links.db is cut at 10 %, 60 % or 99 % of its
// pages in use, or whose pages are noise, make fsck say "corrupt or
// truncated" and exit 1, and serve refuse to start with that message —
// never a SIGBUS or a panic.
func TestTruncatedStoreIsReported(t *testing.T) {
	src := t.TempDir()
	s := startServer(t, src)
	addAll(t, s, mintMany(t, newMinter(t, src, s.url), 1, 200), 20*time.Second)
	stopServer(t, s)
	for _, name := range []string{"log.db", "links.db"} {
		for _, pct := range []int64{10, 60, 99, 0} {
			dir := t.TempDir()
			if err := os.CopyFS(dir, os.DirFS(src)); err != nil {
				t.Fatal(err)
			}
			p := filepath.Join(dir, name)
			used, err := boltfile.UsedSize(p)
			if err != nil {
				t.Fatal(err)
			}
			if pct == 0 { // not cut but garbled: every page after the metas is noise
				b, _ := os.ReadFile(p)
				rand.Read(b[2*os.Getpagesize() : used])
				os.WriteFile(p, b, 0o600)
			} else {
				os.Truncate(p, used*pct/100)
			}
			if name == "log.db" {
				_, stderr, code := runCLI(t, nil, "log", "fsck", "--data", dir)
				if code != 1 || !strings.Contains(stderr, "corrupt or truncated") {
					t.Errorf("fsck of log.db cut at %d%% = exit %d: %s", pct, code, stderr)
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			out, err := exec.CommandContext(ctx, binary, "serve", "--data", dir, "--addr", "127.0.0.1:0").CombinedOutput()
			cancel()
			if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || !strings.Contains(string(out), "corrupt or truncated") {
				t.Errorf("serve with %s cut at %d%% = %v: %s", name, pct, err, out)
			}
		}
	}
}

// TestBackupCommand covers threat model S3: evident backup writes a copy,
// into a directory it makes if need be, that fsck checks; a transfer cut
// short or altered is refused, exit 1, and leaves no file.
func TestBackupCommand(t *testing.T) {
	dir := t.TempDir()
	s := startServer(t, dir)
	addAll(t, s, mintMany(t, newMinter(t, dir, s.url), 1, 20), 20*time.Second)
	restore := filepath.Join(t.TempDir(), "backups") // not there yet, as in the README's recipe
	out, stderr, code := runCLI(t, nil, "backup", "--admin", "unix:"+filepath.Join(dir, "admin.sock"), "--out", filepath.Join(restore, "log.db"))
	if code != 0 || !strings.Contains(out, "checked against the server's length and digest") {
		t.Fatalf("backup = %d %s %s", code, out, stderr)
	}
	if _, _, code := runCLI(t, nil, "backup", "--admin", "unix:"+filepath.Join(dir, "admin.sock"), "--db", "links", "--out", filepath.Join(restore, "links.db")); code != 0 {
		t.Errorf("links backup = exit %d", code)
	}
	b, _ := os.ReadFile(filepath.Join(dir, "log.vkey"))
	os.WriteFile(filepath.Join(restore, "log.vkey"), b, 0o644)
	if out, stderr, code := runCLI(t, nil, "log", "fsck", "--data", restore); code != 0 || !strings.Contains(out, "ok: 20 entries") {
		t.Errorf("fsck of the backup = %d %s %s", code, out, stderr)
	}
	// The log's key is --log-key, as in every other command (--key still works).
	for _, flag := range []string{"--log-key", "--key"} {
		if out, stderr, code := runCLI(t, nil, "log", "fsck", "--data", restore, flag, string(b)); code != 0 {
			t.Errorf("fsck %s = %d %s %s", flag, code, out, stderr)
		}
	}
	if out, _, _ := runCLI(t, nil, "help", "log", "fsck"); !strings.Contains(out, "-log-key") || strings.Contains(out, "\n  -key ") {
		t.Errorf("help log fsck does not name --log-key alone:\n%s", out)
	}

	// A fake admin listener that cuts or alters what it sends.
	whole, _ := os.ReadFile(filepath.Join(restore, "log.db"))
	sum := sha256.Sum256(whole)
	digest := "sha-256=:" + base64.StdEncoding.EncodeToString(sum[:]) + ":"
	for _, tc := range []struct {
		name, want string
		serve      func(w http.ResponseWriter)
	}{
		{"cut", "backup is incomplete", func(w http.ResponseWriter) {
			w.Header().Set("Content-Length", strconv.Itoa(len(whole)))
			w.Header().Set(serve.BackupDigestHeader, digest)
			w.Write(whole[:len(whole)/2])
			panic(http.ErrAbortHandler)
		}},
		{"altered", "does not match the server's digest", func(w http.ResponseWriter) {
			bad := append([]byte(nil), whole...)
			bad[len(bad)-1] ^= 1
			w.Header().Set("Content-Length", strconv.Itoa(len(bad)))
			w.Header().Set(serve.BackupDigestHeader, digest)
			w.Write(bad)
		}},
		{"undigested", "no sha-256 Repr-Digest", func(w http.ResponseWriter) {
			w.Write(whole)
		}},
	} {
		sock := filepath.Join(t.TempDir(), "a.sock")
		ln, err := net.Listen("unix", sock)
		if err != nil {
			t.Fatal(err)
		}
		hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { tc.serve(w) })}
		go hs.Serve(ln)
		target := filepath.Join(t.TempDir(), "log.db")
		_, stderr, code := runCLI(t, nil, "backup", "--admin", "unix:"+sock, "--out", target)
		hs.Close()
		if code != 1 || !strings.Contains(stderr, tc.want) {
			t.Errorf("%s backup = exit %d %s, want 1 and %q", tc.name, code, stderr, tc.want)
		}
		if left, _ := os.ReadDir(filepath.Dir(target)); len(left) != 0 {
			t.Errorf("%s backup left %v", tc.name, left)
		}
	}
}

// FuzzParseReprDigest covers threat model S3 and L7: a Repr-Digest header from the network gives a
// 32-byte digest or an error, never a panic.
func FuzzParseReprDigest(f *testing.F) {
	f.Add("sha-256=:" + base64.StdEncoding.EncodeToString(make([]byte, 32)) + ":")
	f.Add("sha-512=:AAAA:, sha-256=:AAAA:")
	f.Add("sha-256=:")
	f.Fuzz(func(t *testing.T, h string) {
		if b, err := parseReprDigest(h); err == nil && len(b) != sha256.Size {
			t.Errorf("%q gave %d bytes", h, len(b))
		}
	})
}
