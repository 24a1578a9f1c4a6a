package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net/http"
	neturl "net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/evident-dev/evident"
	"github.com/evident-dev/evident/internal/pemfile"
	"github.com/evident-dev/evident/internal/pkitest"
	"github.com/evident-dev/evident/internal/spiffetest"
	"github.com/evident-dev/evident/link"
	"github.com/evident-dev/evident/log"
	"github.com/evident-dev/evident/log/boltstore"
	"github.com/evident-dev/evident/log/logclient"
	"github.com/evident-dev/evident/serve"
	"github.com/evident-dev/evident/tsa"
	"github.com/evident-dev/evident/verify"
	"github.com/in-toto/in-toto-golang/in_toto"
	"github.com/rogpeppe/go-internal/testscript"
	"golang.org/x/mod/sumdb/note"
)

// binary is the evident command built once for the end-to-end tests.
var binary string

func TestMain(m *testing.M) {
	// Run as "evident" by the script tests, the test binary is the command.
	os.Exit(testscript.RunMain(withBinary{m}, map[string]func() int{"evident": evidentMain}))
}

// withBinary runs the tests with the evident command built into binary.
type withBinary struct{ m *testing.M }

func (w withBinary) Run() int {
	for _, a := range os.Args {
		if strings.HasPrefix(a, "-test.fuzzworker") {
			return w.m.Run() // a fuzzing worker runs no end-to-end test
		}
	}
	dir, err := os.MkdirTemp("", "evident-e2e-")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	binary = filepath.Join(dir, "evident")
	out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "building evident: %v\n%s", err, out)
		return 1
	}
	return w.m.Run()
}

// server is a running "evident serve" process.
type server struct {
	cmd      *exec.Cmd
	url      string
	key      string
	verifier note.Verifier
	done     chan error
}

// startServer starts evident serve on a free loopback port and waits until
// it prints its URL and key.
func startServer(t *testing.T, dataDir string, args ...string) *server {
	t.Helper()
	cmd := exec.Command(binary, append([]string{"serve", "--data", dataDir, "--addr", "127.0.0.1:0"}, args...)...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer // read only once the process has exited
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &server{cmd: cmd, done: make(chan error, 1)}
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		s.done <- cmd.Wait()
	}()
	timeout := time.After(30 * time.Second)
	for s.url == "" || s.key == "" {
		select {
		case l, ok := <-lines:
			if !ok {
				err := <-s.done
				t.Fatalf("evident serve exited before it was ready (%v):\n%s", err, stderr.Bytes())
			}
			if rest, ok := strings.CutPrefix(l, "evident serving at "); ok {
				s.url = strings.Fields(rest)[0]
			}
			if rest, ok := strings.CutPrefix(strings.TrimSpace(l), "log key:"); ok {
				s.key = strings.TrimSpace(rest)
			}
		case <-timeout:
			cmd.Process.Kill()
			t.Fatal("evident serve did not print its URL and key within 30s")
		}
	}
	go func() {
		for range lines {
		}
	}()
	v, err := note.NewVerifier(s.key)
	if err != nil {
		t.Fatalf("serve printed a bad key %q: %v", s.key, err)
	}
	s.verifier = v
	t.Cleanup(func() {
		s.cmd.Process.Kill()
		<-s.done
		if t.Failed() {
			lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
			t.Logf("evident serve at %s, the end of its log:\n%s", s.url, strings.Join(lines[max(0, len(lines)-30):], "\n"))
		}
	})
	return s
}

func (s *server) client() *logclient.Client {
	return &logclient.Client{URL: s.url, Origin: s.verifier.Name(), Verifier: s.verifier}
}

func (s *server) kill9(t *testing.T) {
	t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-s.done
	s.done <- nil // for the cleanup
}

// minter makes real entries for a server: signed by an SVID from the
// server's development CA, countersigned by the server's TSA.
type minter struct {
	key   *ecdsa.PrivateKey
	chain []*x509.Certificate
	tsa   *tsa.Client
}

func newMinter(t *testing.T, dataDir, url string) *minter {
	t.Helper()
	ca, err := serve.LoadOrCreateDevCA(dataDir, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	svid, err := ca.IssueSVID(&neturl.URL{Scheme: "spiffe", Host: "evident.dev", Path: "/ci/test"}, key.Public(), time.Now(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	tsaChain, err := pemfile.LoadCertificates(filepath.Join(dataDir, "tsa-chain.pem"))
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(tsaChain[len(tsaChain)-1])
	return &minter{key: key, chain: []*x509.Certificate{svid}, tsa: &tsa.Client{URL: url + "/tsa", Roots: roots}}
}

// entry returns a canonical entry, distinct per (round, n), or nil if the
// server could not be reached.
func (m *minter) entry(round, n int) []byte {
	payload := fmt.Sprintf(`{"round":%d,"entry":%d}`, round, n)
	e, err := link.Countersign(context.Background(), m.tsa, evident.PayloadTypeLink, []byte(payload), "test", m.key, m.chain)
	if err != nil {
		return nil
	}
	b, err := e.Marshal()
	if err != nil {
		panic(err)
	}
	return b
}

func (m *minter) mustEntry(t *testing.T, round, n int) []byte {
	t.Helper()
	b := m.entry(round, n)
	if b == nil {
		t.Fatal("couldn't mint an entry")
	}
	return b
}

// TestKill9DuringAppends covers threat model L1 and L2 out of process: a real
// server is SIGKILLed at random moments while 16 clients append; after each
// kill the store is checked offline (the root recomputed from every entry
// equals the signed checkpoint) and every acknowledged entry is at its index.
func TestKill9DuringAppends(t *testing.T) {
	if testing.Short() {
		t.Skip("starts and kills server processes")
	}
	dir := t.TempDir()
	seed := time.Now().UnixNano()
	t.Logf("seed %d", seed)
	rng := mrand.New(mrand.NewPCG(uint64(seed), 0))
	acked := map[uint64][]byte{}
	var lastCheckpoint []byte
	const rounds = 6
	for round := 0; round < rounds; round++ {
		s := startServer(t, dir)
		c := s.client()
		m := newMinter(t, dir, s.url)
		// What the log showed before the crash must still hold after it.
		if lastCheckpoint != nil {
			prev, err := log.OpenCheckpoint(lastCheckpoint, c.Origin, c.Verifier)
			if err != nil {
				t.Fatal(err)
			}
			cp, _, err := c.Checkpoint(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if err := c.Consistent(context.Background(), prev, cp); err != nil {
				t.Fatalf("round %d: checkpoint after restart is not consistent with the last one seen: %v", round, err)
			}
		}
		var mu sync.Mutex
		var wg sync.WaitGroup
		stop := make(chan struct{})
		for w := 0; w < 16; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for n := w; ; n += 16 {
					select {
					case <-stop:
						return
					default:
					}
					e := m.entry(round, n)
					if e == nil {
						return // the server died under us
					}
					res, err := c.Add(context.Background(), e)
					if err != nil {
						return // the server died under us
					}
					mu.Lock()
					if prev, ok := acked[res.Index]; ok && !bytes.Equal(prev, e) {
						t.Errorf("index %d acknowledged for two entries", res.Index)
					}
					acked[res.Index] = e
					lastCheckpoint = res.Checkpoint
					mu.Unlock()
				}
			}()
		}
		time.Sleep(time.Duration(50+rng.IntN(400)) * time.Millisecond) // a random moment to crash at
		s.kill9(t)
		close(stop)
		wg.Wait()

		store, err := boltstore.Open(filepath.Join(dir, "log.db"))
		if err != nil {
			t.Fatalf("round %d: reopening the store after kill -9: %v", round, err)
		}
		h, err := log.Check(store, s.verifier.Name(), s.verifier)
		if err != nil {
			t.Fatalf("round %d: offline check after kill -9: %v", round, err)
		}
		for idx, e := range acked {
			if idx >= h.Size {
				t.Fatalf("round %d: acknowledged entry %d is past the recovered size %d", round, idx, h.Size)
			}
			got, err := store.Entries(idx, 1)
			if err != nil || !bytes.Equal(got[0], e) {
				t.Fatalf("round %d: acknowledged entry %d lost or changed after kill -9", round, idx)
			}
		}
		store.Close()
		t.Logf("round %d: %d entries, %d acknowledged so far, store checks clean", round, h.Size, len(acked))
	}
	if len(acked) == 0 {
		t.Fatal("no append was acknowledged in any round")
	}
}

// postEntry posts body to a server's append endpoint with the given
// headers and returns the status and body of the answer.
func postEntry(t *testing.T, s *server, body []byte, hdr map[string]string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("POST", s.url+"/log/v1/entries", bytes.NewReader(body))
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// run runs the evident binary and returns its stdout, stderr and exit code.
// cliRunner runs evident in dir with env added, and fails the test unless it
// exits with want; it returns the combined output.
func cliRunner(t *testing.T, dir string, env ...string) func(want int, args ...string) string {
	return func(want int, args ...string) string {
		t.Helper()
		cmd := exec.Command(binary, args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), env...)
		out, err := cmd.CombinedOutput()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		}
		if code != want {
			t.Fatalf("evident %s = exit %d, want %d\n%s", strings.Join(args, " "), code, want, out)
		}
		return string(out)
	}
}

func runCLI(t *testing.T, env []string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return stdout.String(), stderr.String(), code
}

func TestCLILog(t *testing.T) {
	dir := t.TempDir()
	s := startServer(t, dir)
	env := []string{"EVIDENT_SERVER=" + s.url, "EVIDENT_LOG_KEY=" + s.key}
	m := newMinter(t, dir, s.url)
	var entries [][]byte
	for i := 0; i < 5; i++ {
		entries = append(entries, m.mustEntry(t, 0, i))
		if _, err := s.client().Add(context.Background(), entries[i]); err != nil {
			t.Fatal(err)
		}
	}
	out, errOut, code := runCLI(t, env, "log", "checkpoint")
	if code != 0 || !strings.HasPrefix(out, s.verifier.Name()+"\n5\n") {
		t.Errorf("log checkpoint = %q, %q, exit %d", out, errOut, code)
	}
	out, _, code = runCLI(t, env, "log", "proof", "3")
	if code != 0 || !strings.HasPrefix(out, "c2sp.org/tlog-proof@v1\nindex 3\n") {
		t.Errorf("log proof 3 = %q, exit %d", out, code)
	}
	out, _, code = runCLI(t, env, "log", "get", "2")
	if code != 0 || strings.TrimSpace(out) != string(entries[2]) {
		t.Errorf("log get 2 = %q, exit %d", out, code)
	}
	_, errOut, code = runCLI(t, env, "log", "get", "9")
	if code != 1 || !strings.Contains(errOut, "evident: error: server answered 400") {
		t.Errorf("log get 9 = %q, exit %d, want a 400 error and exit 1", errOut, code)
	}
	_, errOut, code = runCLI(t, env, "log", "get")
	if code != 2 || !strings.Contains(errOut, "takes one INDEX") {
		t.Errorf("log get (no index) = %q, exit %d, want exit 2", errOut, code)
	}
	_, otherKey, _ := note.GenerateKey(nil, s.verifier.Name())
	_, errOut, code = runCLI(t, []string{"EVIDENT_SERVER=" + s.url, "EVIDENT_LOG_KEY=" + otherKey}, "log", "checkpoint")
	if code != 1 || !strings.Contains(errOut, "not signed by the log key") {
		t.Errorf("log checkpoint with the wrong key = %q, exit %d, want exit 1", errOut, code)
	}
	out, _, code = runCLI(t, nil, "-h")
	if code != 0 || !strings.Contains(out, "serve") || !strings.Contains(out, "Exit status") {
		t.Errorf("evident -h = %q, exit %d", out, code)
	}
	out, _, code = runCLI(t, nil, "serve", "-h")
	if code != 0 || !strings.Contains(out, "--data") && !strings.Contains(out, "-data") {
		t.Errorf("evident serve -h = %q, exit %d", out, code)
	}
	_, errOut, code = runCLI(t, nil, "frobnicate")
	if code != 2 || !strings.Contains(errOut, `unknown command "frobnicate"`) {
		t.Errorf("evident frobnicate = %q, exit %d, want exit 2", errOut, code)
	}
}

// TestWatchSplitView covers threat model L6: two servers with the same key but
// different histories (a forked data directory) are a split view, which
// watch reports with both checkpoints and exit 1; so is a rollback.
func TestWatchSplitView(t *testing.T) {
	dirA := t.TempDir()
	a := startServer(t, dirA)
	m := newMinter(t, dirA, a.url)
	add := func(s *server, round, n int) {
		t.Helper()
		if _, err := s.client().Add(context.Background(), m.mustEntry(t, round, n)); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 3; i++ {
		add(a, 1, i)
	}
	a.kill9(t)
	dirB := t.TempDir()
	for _, f := range []string{"log.db", "log.key", "log.vkey", "tsa.key", "tsa-chain.pem", "dev-ca.key", "dev-ca.pem"} {
		b, err := os.ReadFile(filepath.Join(dirA, f))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dirB, f), b, 0o600)
	}
	a = startServer(t, dirA)
	b := startServer(t, dirB)
	m.tsa.URL = a.url + "/tsa"
	add(a, 2, 0)
	add(b, 3, 0) // same size 4, another root

	state := filepath.Join(t.TempDir(), "state")
	envA := []string{"EVIDENT_SERVER=" + a.url, "EVIDENT_LOG_KEY=" + a.key}
	envB := []string{"EVIDENT_SERVER=" + b.url, "EVIDENT_LOG_KEY=" + b.key}
	if out, errOut, code := runCLI(t, envA, "log", "watch", "--once", "--state", state); code != 0 {
		t.Fatalf("first watch = %q %q, exit %d", out, errOut, code)
	}
	add(a, 2, 1)
	if out, _, code := runCLI(t, envA, "log", "watch", "--once", "--state", state); code != 0 || !strings.Contains(out, "ok: size 5 extends size 4") {
		t.Fatalf("second watch = %q, exit %d", out, code)
	}
	before, _ := os.ReadFile(state)
	_, errOut, code := runCLI(t, envB, "log", "watch", "--once", "--state", state)
	if code != 1 || !strings.Contains(errOut, "ALERT") || !strings.Contains(errOut, "rollback from size 5 to 4") ||
		!strings.Contains(errOut, "last verified checkpoint") || !strings.Contains(errOut, "checkpoint now served") {
		t.Errorf("watch against a rolled-back fork = %q, exit %d, want the alert with both checkpoints and exit 1", errOut, code)
	}
	if after, _ := os.ReadFile(state); !bytes.Equal(before, after) {
		t.Error("a failed watch changed the state file")
	}
	add(b, 3, 1) // B is now size 5 too, with another root
	_, errOut, code = runCLI(t, envB, "log", "watch", "--once", "--state", state)
	if code != 1 || !strings.Contains(errOut, "split view: two roots for size 5") {
		t.Errorf("watch against a fork of the same size = %q, exit %d", errOut, code)
	}
	add(b, 3, 2) // B grows past A: the proof cannot verify
	_, errOut, code = runCLI(t, envB, "log", "watch", "--once", "--state", state)
	if code != 1 || !strings.Contains(errOut, "consistency from 5 to 6") {
		t.Errorf("watch against a larger fork = %q, exit %d", errOut, code)
	}
}

// TestServeLimits covers threat model L7 and S1 over a real server: oversized and
// compressed bodies, random paths and methods.
func TestServeLimits(t *testing.T) {
	dir := t.TempDir()
	s := startServer(t, dir)
	m := newMinter(t, dir, s.url)
	post := func(body []byte, hdr map[string]string) int {
		status, _ := postEntry(t, s, body, hdr)
		return status
	}
	if got := post(bytes.Repeat([]byte("a"), 10<<20), nil); got != http.StatusRequestEntityTooLarge {
		t.Errorf("10 MiB body = %d, want 413", got)
	}
	if got := post(m.mustEntry(t, 0, 0), map[string]string{"Content-Encoding": "gzip"}); got != http.StatusUnsupportedMediaType {
		t.Errorf("gzip body = %d, want 415", got)
	}
	if got := post([]byte(`{"payload_type":null}`), nil); got != http.StatusBadRequest {
		t.Errorf("null fields = %d, want 400", got)
	}
	for _, c := range []struct {
		method, path string
		want         int
	}{
		{"GET", "/nope", 404},
		{"DELETE", "/log/v1/entries", 405},
		{"GET", "/log/v1/proof/inclusion?index=-1&size=1", 400},
		{"GET", "/log/v1/proof/inclusion?index=0&size=18446744073709551616", 400},
		{"GET", "/log/v1/proof/consistency?from=2&to=1", 400},
		{"GET", "/log/tile/0/x000/000", 400},
		{"GET", "/healthz", 200},
	} {
		req, _ := http.NewRequest(c.method, s.url+c.path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != c.want {
			t.Errorf("%s %s = %d, want %d", c.method, c.path, resp.StatusCode, c.want)
		}
	}
}

// TestIngestRejects: the log verifies every entry before logging it, and a
// rejection is a 400 that names the failed check.
func TestIngestRejects(t *testing.T) {
	dir := t.TempDir()
	s := startServer(t, dir)
	m := newMinter(t, dir, s.url)
	foreign := pkitest.NewCA(t, "another trust domain", time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	cert, key := foreign.SVID(t, "spiffe://other.org/ci", time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	stranger := &minter{key: key.(*ecdsa.PrivateKey), chain: []*x509.Certificate{cert}, tsa: m.tsa}
	good := m.mustEntry(t, 0, 0)
	var e evident.Entry
	json.Unmarshal(good, &e)
	e.PayloadSHA256 = strings.Repeat("0", 64)
	tampered, _ := e.Marshal()
	for _, c := range []struct {
		name  string
		entry []byte
		want  string
	}{
		{"signer from another trust domain", stranger.mustEntry(t, 0, 1), "signer certificate is not trusted"},
		{"payload digest changed", tampered, "signature does not verify over the payload: checked over its digest"},
	} {
		_, err := s.client().Add(context.Background(), c.entry)
		var he *logclient.HTTPError
		if !errors.As(err, &he) || he.Status != 400 || !strings.Contains(he.Message, c.want) {
			t.Errorf("%s: Add = %v, want 400 naming %q", c.name, err, c.want)
		}
	}
	if _, err := s.client().Add(context.Background(), good); err != nil {
		t.Errorf("valid entry: %v", err)
	}
}

// TestTUFJourney: a release manager publishes through the running server's
// repository; a verifier mirrors it and reads it offline; keys rotate.
func TestTUFJourney(t *testing.T) {
	dir := t.TempDir()
	s := startServer(t, dir)
	repo, keys := filepath.Join(dir, "tuf"), filepath.Join(dir, "tuf-keys")
	root := filepath.Join(repo, "metadata", "1.root.json")
	layout := filepath.Join(t.TempDir(), "release.layout")
	os.WriteFile(layout, []byte(`{"signed":{"_type":"layout","steps":[]}}`), 0o644)
	run := func(want int, args ...string) string {
		t.Helper()
		out, errOut, code := runCLI(t, nil, args...)
		if code != want {
			t.Fatalf("evident %s = exit %d, want %d\n%s%s", strings.Join(args, " "), code, want, out, errOut)
		}
		return out + errOut
	}
	// The layout is not a valid one (no steps, unsigned): only --force publishes it, and says so.
	if out := run(0, "tuf", "publish-layout", "--repo", repo, "--keys", keys, "--project", "acme", "--name", "release", "--file", layout, "--force"); !strings.Contains(out, "publishing anyway (--force)") {
		t.Errorf("publish-layout --force = %s", out)
	}
	ca := filepath.Join(t.TempDir(), "ca.pem")
	os.WriteFile(ca, pemfile.EncodeCertificates([]*x509.Certificate{pkitest.NewCA(t, "upstream", time.Now(), time.Now().Add(time.Hour)).Cert}), 0o644)
	run(0, "tuf", "trust", "rotate", "--repo", repo, "--keys", keys, "--kind", "functionary-ca", "--name", "evident-dev-ca", "--new-name", "spire-upstream", "--file", ca)
	run(0, "tuf", "rotate-key", "root", "--repo", repo, "--keys", keys)
	run(0, "tuf", "rotate-key", "timestamp", "--repo", repo, "--keys", keys)
	if out := run(0, "tuf", "status", "--repo", repo); !regexp.MustCompile(`(?m)^root +version 3 `).MatchString(out) {
		t.Errorf("status = %s", out)
	}
	mirror := filepath.Join(t.TempDir(), "mirror")
	run(0, "tuf", "mirror", "--tuf", s.url+"/tuf", "--tuf-root", root, "--out", mirror)
	tr := run(0, "tuf", "get", evident.TrustRootTarget, "--tuf-mirror", mirror, "--tuf-root", root)
	if !strings.Contains(tr, s.key) || !strings.Contains(tr, "spire-upstream") || !strings.Contains(tr, `"end"`) {
		t.Errorf("trust root from the mirror = %s", tr)
	}
	if out := run(0, "tuf", "layout", "--tuf", s.url+"/tuf", "--tuf-root", root, "--project", "acme", "--name", "release"); !strings.Contains(out, `"layout"`) {
		t.Errorf("layout = %s", out)
	}
	// An expired mirror fails, and says how to proceed deliberately.
	late := time.Now().Add(40 * 24 * time.Hour).UTC().Format(time.RFC3339)
	if out := run(1, "tuf", "get", evident.TrustRootTarget, "--tuf-mirror", mirror, "--tuf-root", root, "--tuf-at", late); !strings.Contains(out, "expired") {
		t.Errorf("expired mirror = %s", out)
	}
	// The server serves no listings and no lock files.
	for _, p := range []string{"/tuf/", "/tuf/metadata/", "/tuf/.lock"} {
		resp, err := http.Get(s.url + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 404 {
			t.Errorf("GET %s = %d, want 404", p, resp.StatusCode)
		}
	}
}

// TestRunWithWorkloadAPI: evident run signs with the SVID current when it
// signs — here one rotated, with its intermediate, while the command ran —
// and the bundle it writes verifies: entry, timestamp, chain, inclusion.
func TestRunWithWorkloadAPI(t *testing.T) {
	dir := t.TempDir()
	ca := pkitest.NewCA(t, "spire upstream", time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	roots := filepath.Join(t.TempDir(), "roots.pem")
	os.WriteFile(roots, pemfile.EncodeCertificates([]*x509.Certificate{ca.Cert}), 0o644)
	s := startServer(t, dir, "--functionary-roots", roots)
	api := spiffetest.Start(t)
	const id = "spiffe://example.org/ci/build"
	mint := func(name string) (*x509.Certificate, *pkitest.CA) {
		inter := ca.Intermediate(t, name, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
		leaf, key := inter.SVID(t, id, time.Now().Add(-time.Minute), time.Now().Add(time.Minute))
		if err := api.Set(id, []*x509.Certificate{leaf, inter.Cert}, key, []*x509.Certificate{ca.Cert}); err != nil {
			t.Fatal(err)
		}
		return leaf, inter
	}
	mint("first intermediate")
	work := t.TempDir()
	os.WriteFile(filepath.Join(work, "in.txt"), []byte("source"), 0o644)
	started, resume := filepath.Join(work, "started"), filepath.Join(work, "resume")
	for _, f := range []string{started, resume} {
		if err := syscall.Mkfifo(f, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	rotatedc := make(chan *x509.Certificate, 1)
	go func() {
		os.ReadFile(started) // returns once the command is running
		leaf, _ := mint("rotated intermediate")
		rotatedc <- leaf
		os.WriteFile(resume, []byte("go\n"), 0o600)
	}()
	cmd := exec.Command(binary, "run", "--step", "build", "-m", "in.txt", "-p", "out.txt", "--spiffe-socket", api.Socket,
		"--server", s.url, "--log-key", s.key, "--tsa-roots", filepath.Join(dir, "tsa-chain.pem"), "--record-streams",
		"--", "sh", "-c", "echo started > started; cat resume > /dev/null; cp in.txt out.txt; echo built")
	cmd.Dir = work
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("evident run: %v\n%s", err, out)
	}
	matches, _ := filepath.Glob(filepath.Join(work, "build.*.bundle.json"))
	if len(matches) != 1 {
		t.Fatalf("bundles: %v\n%s", matches, out)
	}
	b, _ := os.ReadFile(matches[0])
	bundle, err := evident.ParseBundle(b)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(bundle.Entry.CertChain[0])
	if err != nil || !leaf.Equal(<-rotatedc) || len(bundle.Entry.CertChain) != 2 {
		t.Fatalf("the entry's signer is not the SVID rotated in during the run")
	}
	// The bundle verifies offline: entry checks, and inclusion under the checkpoint.
	if err := verifyBundle(bundle, ca.Pool(), filepath.Join(dir, "tsa-chain.pem"), s.verifier); err != nil {
		t.Error(err)
	}
	if !bytes.Contains(bundle.Link, []byte(`"stdout": "built\n"`)) || !bytes.Contains(bundle.Link, []byte(`"out.txt"`)) {
		t.Errorf("the link lacks the recorded stream or product: %s", bundle.Link)
	}
	// bundle fetch finds the link by its product's digest, and by index.
	sum := sha256.Sum256([]byte("source"))
	fetched := t.TempDir()
	fetch := exec.Command(binary, "bundle", "fetch", "--artifact", "sha256:"+hex.EncodeToString(sum[:]), "--out", fetched,
		"--server", s.url, "--log-key", s.key)
	if out, err := fetch.CombinedOutput(); err != nil || !strings.Contains(string(out), "log index "+strconv.FormatUint(bundle.LogIndex, 10)) {
		t.Fatalf("bundle fetch --artifact: %v\n%s", err, out)
	}
	got, _ := filepath.Glob(filepath.Join(fetched, "build.*.bundle.json"))
	if len(got) != 1 {
		t.Fatalf("fetched %v", got)
	}
	fb, _ := os.ReadFile(got[0])
	refetched, err := evident.ParseBundle(fb)
	if err != nil || refetched.LogIndex != bundle.LogIndex || !bytes.Equal(refetched.Link, bundle.Link) {
		t.Errorf("fetched bundle = %+v, %v", refetched, err)
	}
	if out, err := exec.Command(binary, "bundle", "fetch", "--index", "0", "--out", t.TempDir(), "--server", s.url, "--log-key", s.key).CombinedOutput(); err != nil {
		t.Errorf("bundle fetch --index 0: %v\n%s", err, out)
	}
	// The server keeps a link only as the payload of the entry it names,
	// written once (P2).
	other := bytes.Replace(bundle.Link, []byte(`"build"`), []byte(`"forged"`), 1)
	body, _ := json.Marshal(map[string]any{"index": bundle.LogIndex, "link": json.RawMessage(other)})
	resp, err := http.Post(s.url+"/links/v1", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	msg, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusConflict || !strings.Contains(string(msg), "already stored under that digest") {
		t.Errorf("uploading another link for the entry = %d %s, want 409", resp.StatusCode, msg)
	}
	// A failing command's status is recorded and returned.
	cmd = exec.Command(binary, "run", "--step", "fail", "--spiffe-socket", api.Socket, "--server", s.url, "--log-key", s.key,
		"--tsa-roots", filepath.Join(dir, "tsa-chain.pem"), "--", "sh", "-c", "exit 7")
	cmd.Dir = work
	if err := cmd.Run(); err == nil || cmd.ProcessState.ExitCode() != 7 {
		t.Errorf("evident run of a failing command exited %d, want 7", cmd.ProcessState.ExitCode())
	}
}

// TestSubmitForeignLink: a link signed by in-toto-golang itself with a plain
// ECDSA key (a key-based functionary, another in-toto tool) is timestamped,
// logged and bundled by evident submit.
func TestSubmitForeignLink(t *testing.T) {
	dir := t.TempDir()
	s := startServer(t, dir)
	work := t.TempDir()
	signer := newForeignSigner(t, work)
	k := signer.key
	mb := in_toto.Metablock{Signed: in_toto.Link{Type: "link", Name: "package", Materials: map[string]in_toto.HashObj{},
		Products:   map[string]in_toto.HashObj{"app.tar": {"sha256": strings.Repeat("ab", 32)}},
		ByProducts: map[string]interface{}{}, Command: []string{"tar"}, Environment: map[string]interface{}{}}}
	if err := mb.Sign(k); err != nil {
		t.Fatal(err)
	}
	linkPath := filepath.Join(work, fmt.Sprintf(in_toto.LinkNameFormat, "package", k.KeyID))
	if err := mb.Dump(linkPath); err != nil {
		t.Fatal(err)
	}
	pubPath := signer.pubPEM
	env := []string{"EVIDENT_SERVER=" + s.url, "EVIDENT_LOG_KEY=" + s.key}
	if _, errOut, code := runCLI(t, env, "submit", linkPath, "--tsa-roots", filepath.Join(dir, "tsa-chain.pem")); code != 2 || !strings.Contains(errOut, "--public-key") {
		t.Errorf("submit of a key-signed link without --public-key = exit %d, %s", code, errOut)
	}
	out, errOut, code := runCLI(t, env, "submit", linkPath, "--public-key", pubPath, "--tsa-roots", filepath.Join(dir, "tsa-chain.pem"))
	if code != 0 {
		t.Fatalf("submit = exit %d\n%s%s", code, out, errOut)
	}
	b, err := os.ReadFile(strings.TrimSuffix(linkPath, ".link") + ".bundle.json")
	if err != nil {
		t.Fatal(err)
	}
	bundle, err := evident.ParseBundle(b)
	if err != nil || len(bundle.Entry.PublicKey) == 0 || bundle.Entry.KeyID != k.KeyID {
		t.Fatalf("bundle = %+v, %v", bundle, err)
	}
}

// TestVerifyJourney: a release manager publishes a layout key and a signed
// layout through TUF; two CI steps run with development SVIDs that expire
// ten seconds later; a verifier mirrors TUF and, once every SVID has
// expired, verifies the chain offline; a tampered artifact fails.
func TestVerifyJourney(t *testing.T) {
	dir := t.TempDir()
	// Ten seconds, not less: the signer must be valid over the token's
	// whole genTime ± 1s, so a shorter life fails a run that a loaded
	// machine slows by a second between the SVID and its timestamp.
	s := startServer(t, dir, "--dev-svid-ttl", "10s")
	repo, keys := filepath.Join(dir, "tuf"), filepath.Join(dir, "tuf-keys")
	root := filepath.Join(repo, "metadata", "1.root.json")
	work := t.TempDir()
	run := cliRunner(t, work, "EVIDENT_SERVER="+s.url, "EVIDENT_LOG_KEY="+s.key)
	// The release manager's layout key, in the trust root.
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	der, _ := x509.MarshalPKCS8PrivateKey(priv)
	var lk in_toto.Key
	lk.LoadKeyReaderDefaults(bytes.NewReader(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})))
	pubDER, _ := x509.MarshalPKIXPublicKey(priv.Public())
	os.WriteFile(filepath.Join(work, "layout-key.pub"), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}), 0o644)
	run(0, "tuf", "trust", "add", "--repo", repo, "--keys", keys, "--kind", "layout-key", "--name", "release", "--file", "layout-key.pub")
	cc := func(step string) []in_toto.CertificateConstraint {
		return []in_toto.CertificateConstraint{{CommonName: "*", DNSNames: []string{"*"}, Emails: []string{"*"}, Organizations: []string{"*"},
			URIs: []string{"spiffe://evident.dev/ci/" + step}, Roots: []string{"*"}}}
	}
	layout := in_toto.Metablock{Signed: in_toto.Layout{Type: "layout", Expires: time.Now().Add(24 * time.Hour).UTC().Format(time.RFC3339),
		Keys: map[string]in_toto.Key{}, Inspect: []in_toto.Inspection{{Type: "inspection", Run: []string{"tar", "xf", "app.tar"},
			SupplyChainItem: in_toto.SupplyChainItem{Name: "untar",
				ExpectedMaterials: [][]string{{"MATCH", "app.tar", "WITH", "PRODUCTS", "FROM", "package"}, {"DISALLOW", "*"}},
				ExpectedProducts:  [][]string{{"MATCH", "app", "WITH", "PRODUCTS", "FROM", "build"}, {"ALLOW", "app.tar"}, {"DISALLOW", "*"}}}}},
		Steps: []in_toto.Step{
			{Type: "step", Threshold: 1, PubKeys: []string{}, ExpectedCommand: []string{}, CertificateConstraints: cc("build"),
				SupplyChainItem: in_toto.SupplyChainItem{Name: "build", ExpectedMaterials: [][]string{{"ALLOW", "main.c"}, {"DISALLOW", "*"}},
					ExpectedProducts: [][]string{{"CREATE", "app"}, {"DISALLOW", "*"}}}},
			{Type: "step", Threshold: 1, PubKeys: []string{}, ExpectedCommand: []string{}, CertificateConstraints: cc("package"),
				SupplyChainItem: in_toto.SupplyChainItem{Name: "package", ExpectedMaterials: [][]string{{"MATCH", "app", "WITH", "PRODUCTS", "FROM", "build"}, {"DISALLOW", "*"}},
					ExpectedProducts: [][]string{{"CREATE", "app.tar"}, {"DISALLOW", "*"}}}},
		}}, Signatures: []in_toto.Signature{}}
	if err := layout.Sign(lk); err != nil {
		t.Fatal(err)
	}
	lb, _ := json.Marshal(layout)
	os.WriteFile(filepath.Join(work, "release.layout"), lb, 0o644)
	run(0, "tuf", "publish-layout", "--repo", repo, "--keys", keys, "--project", "acme", "--name", "release", "--file", "release.layout")
	// CI.
	os.WriteFile(filepath.Join(work, "main.c"), []byte("int main(){}\n"), 0o644)
	tsaRoots := filepath.Join(dir, "tsa-chain.pem")
	run(0, "run", "--step", "build", "-m", "main.c", "-p", "app", "--tsa-roots", tsaRoots, "--", "cp", "main.c", "app")
	run(0, "run", "--step", "package", "-m", "app", "-p", "app.tar", "--tsa-roots", tsaRoots, "--", "tar", "cf", "app.tar", "app")
	// The verifier: mirror, fetch bundles, wait for the SVIDs to expire.
	mirror := filepath.Join(work, "mirror")
	run(0, "tuf", "mirror", "--tuf", s.url+"/tuf", "--tuf-root", root, "--out", mirror)
	// The whole chain, from the artifact back, as the README shows it.
	bundles := filepath.Join(work, "bundles")
	sum, _ := fileSHA256(filepath.Join(work, "app.tar"))
	run(0, "bundle", "fetch", "--chain", "--artifact", "sha256:"+hex.EncodeToString(sum), "--out", bundles)
	for _, m := range []string{"build.*.bundle.json", "package.*.bundle.json"} {
		if ps, _ := filepath.Glob(filepath.Join(bundles, m)); len(ps) != 1 {
			t.Fatalf("%s: %v", m, ps)
		}
	}
	waitUntilExpired(t, bundles)
	out := run(0, "verify", "--tuf-root", root, "--tuf-mirror", mirror, "--layout", "acme/release", "--bundles", bundles, "--artifact", "app.tar")
	if !strings.Contains(out, "verified") || !strings.Contains(out, "PASS  step package") || !strings.Contains(out, "PASS  inspection untar") || strings.Contains(out, "FAIL") {
		t.Errorf("verify =\n%s", out)
	}
	// Online, the bundles' checkpoints are also checked against the log's.
	out = run(0, "verify", "--tuf-root", root, "--tuf-mirror", mirror, "--layout", "acme/release", "--bundles", bundles, "--log", s.url, "--artifact", "app.tar")
	if !strings.Contains(out, "is consistent with the log's current size") {
		t.Errorf("verify --log =\n%s", out)
	}
	os.WriteFile(filepath.Join(work, "app.tar"), []byte("tampered"), 0o644)
	out = run(1, "verify", "--tuf-root", root, "--tuf-mirror", mirror, "--layout", "acme/release", "--bundles", bundles, "--artifact", "app.tar")
	if !strings.Contains(out, "FAIL  inspection untar") {
		t.Errorf("verify with a tampered artifact =\n%s", out)
	}
	// A tarball holding another app: the inspection's MATCH against build fails.
	os.WriteFile(filepath.Join(work, "app"), []byte("another app"), 0o644)
	sh := exec.Command("tar", "cf", "app.tar", "app")
	sh.Dir = work
	if b, err := sh.CombinedOutput(); err != nil {
		t.Fatalf("tar: %v %s", err, b)
	}
	out = run(1, "verify", "--tuf-root", root, "--tuf-mirror", mirror, "--layout", "acme/release", "--bundles", bundles, "--artifact", "app.tar")
	if !strings.Contains(out, "FAIL  inspection untar") && !strings.Contains(out, "FAIL  artifact rules") {
		t.Errorf("verify of a tarball with another app =\n%s", out)
	}
}

// waitUntilExpired waits (wall clock) until the signer certificate of every
// bundle in dir has expired, so that what follows proves evidence outlives
// its SVIDs.
func waitUntilExpired(t *testing.T, dir string) {
	t.Helper()
	paths, _ := filepath.Glob(filepath.Join(dir, "*.bundle.json"))
	var last time.Time
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		bundle, err := evident.ParseBundle(b)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		leaf, err := x509.ParseCertificate(bundle.Entry.CertChain[0])
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		if leaf.NotAfter.After(last) {
			last = leaf.NotAfter
		}
	}
	if len(paths) == 0 || time.Until(last) > time.Minute {
		t.Fatalf("bundles in %s: %d, the last SVID expiring at %v: not short-lived evidence", dir, len(paths), last)
	}
	time.Sleep(time.Until(last) + time.Second) // NotAfter has one-second resolution
}

// mkLayoutPy writes a layout with the reference implementation's Python API.
const mkLayoutPy = `
from securesystemslib.interface import import_rsa_privatekey_from_file, import_rsa_publickey_from_file
from in_toto.models.layout import Layout
from in_toto.models.metadata import Metablock
owner = import_rsa_privatekey_from_file("owner")
alice = import_rsa_publickey_from_file("alice.pub")
layout = Layout.read({"_type": "layout", "keys": {alice["keyid"]: alice}, "inspect": [],
    "steps": [{"name": "build", "expected_materials": [["ALLOW", "src/x.py"], ["DISALLOW", "*"]],
               "expected_products": [["CREATE", "app"], ["DISALLOW", "*"]],
               "pubkeys": [alice["keyid"]], "expected_command": ["cp", "src/x.py", "app"], "threshold": 1}]})
layout.set_relative_expiration(months=4)
mb = Metablock(signed=layout)
mb.sign(owner)
mb.dump("root.layout")
`

// referenceChain makes, with the reference in-toto implementation (Debian
// package in-toto, Python), keys owner and alice, alice's link of step
// build, and runs layoutPy in the work directory it returns, with a
// function that runs a command there. It skips when in-toto is missing,
// unless EVIDENT_REQUIRE_INTOTO is set.
func referenceChain(t *testing.T, layoutPy string) (string, func(string, ...string)) {
	t.Helper()
	return referenceChainOf(t, "rsa", layoutPy)
}

// referenceChainOf is referenceChain with alice's key of type keyType
// (rsa, ed25519 or ecdsa, as in-toto-keygen -t names them).
func referenceChainOf(t *testing.T, keyType, layoutPy string) (string, func(string, ...string)) {
	t.Helper()
	if _, err := exec.LookPath("in-toto-run"); err != nil {
		if os.Getenv("EVIDENT_REQUIRE_INTOTO") != "" {
			t.Fatal("the in-toto package is required but not installed")
		}
		t.Skip("the reference in-toto implementation (Debian package in-toto) is not installed")
	}
	work := t.TempDir()
	sh := func(name string, args ...string) {
		t.Helper()
		cmd := exec.Command(name, args...)
		cmd.Dir = work
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
		}
	}
	sh("in-toto-keygen", "owner")
	sh("in-toto-keygen", "-t", keyType, "alice")
	os.MkdirAll(filepath.Join(work, "src"), 0o755)
	os.WriteFile(filepath.Join(work, "src", "x.py"), []byte("print('hi')\n"), 0o644)
	sh("in-toto-run", "--step-name", "build", "--key", "alice", "--key-type", keyType, "--materials", "src", "--products", "app", "--", "cp", "src/x.py", "app")
	os.WriteFile(filepath.Join(work, "mklayout.py"), []byte(layoutPy), 0o644)
	sh("/usr/bin/python3", "mklayout.py")
	return work, sh
}

// TestReferenceInToto: keys, a link and a layout made by the reference
// in-toto implementation (Debian package in-toto, Python) are logged with
// evident submit, published through TUF, and verified by evident verify.
func TestReferenceInToto(t *testing.T) {
	work, _ := referenceChain(t, mkLayoutPy)
	submitAndVerifyReference(t, work)
}

// TestReferenceInTotoEd25519: the same with alice's key made by
// in-toto-keygen -t ed25519 (securesystemslib JSON): ingest checks the
// Ed25519 signature over the link's payload, posted with the entry, and
// evident verify checks it offline over the bundle's link.
func TestReferenceInTotoEd25519(t *testing.T) {
	py := strings.Replace(mkLayoutPy, `alice = import_rsa_publickey_from_file("alice.pub")`,
		`from securesystemslib.interface import import_ed25519_publickey_from_file
alice = import_ed25519_publickey_from_file("alice.pub")`, 1)
	work, _ := referenceChainOf(t, "ed25519", py)
	submitAndVerifyReference(t, work)
}

// submitAndVerifyReference logs the reference chain of work (referenceChain)
// with evident submit, publishes its layout, and verifies it.
func submitAndVerifyReference(t *testing.T, work string) {
	t.Helper()
	dir := t.TempDir()
	s := startServer(t, dir)
	links, _ := filepath.Glob(filepath.Join(work, "build.*.link"))
	if len(links) != 1 {
		t.Fatalf("reference links: %v", links)
	}
	repo, keys := filepath.Join(dir, "tuf"), filepath.Join(dir, "tuf-keys")
	env := []string{"EVIDENT_SERVER=" + s.url, "EVIDENT_LOG_KEY=" + s.key}
	for _, args := range [][]string{
		{"tuf", "trust", "add", "--repo", repo, "--keys", keys, "--kind", "layout-key", "--name", "owner", "--file", filepath.Join(work, "owner.pub")},
		{"tuf", "publish-layout", "--repo", repo, "--keys", keys, "--project", "ref", "--name", "demo", "--file", filepath.Join(work, "root.layout")},
		{"submit", links[0], "--public-key", filepath.Join(work, "alice.pub"), "--tsa-roots", filepath.Join(dir, "tsa-chain.pem")},
	} {
		if out, errOut, code := runCLI(t, env, args...); code != 0 {
			t.Fatalf("evident %s = exit %d\n%s%s", strings.Join(args, " "), code, out, errOut)
		}
	}
	bundles := filepath.Join(work, "bundles")
	os.MkdirAll(bundles, 0o755)
	bs, _ := filepath.Glob(filepath.Join(work, "build.*.bundle.json"))
	for _, b := range bs {
		data, _ := os.ReadFile(b)
		os.WriteFile(filepath.Join(bundles, filepath.Base(b)), data, 0o644)
	}
	out, errOut, code := runCLI(t, nil, "verify", "--tuf-root", filepath.Join(repo, "metadata", "1.root.json"), "--tuf", s.url+"/tuf",
		"--layout", "ref/demo", "--bundles", bundles)
	if code != 0 || !strings.Contains(out, "verified") {
		t.Errorf("verify of the reference implementation's chain = exit %d\n%s%s", code, out, errOut)
	}
}

// TestDemo runs evident demo and checks its exit status and key lines.
func TestDemo(t *testing.T) {
	out, errOut, code := runCLI(t, nil, "demo")
	if code != 0 {
		t.Fatalf("evident demo = exit %d\n%s%s", code, out, errOut)
	}
	for _, want := range []string{
		"== 1. The operator starts evident serve",
		"== 5. Time passes: every SVID has expired",
		"PASS  artifact app.tar",
		"FAIL  artifact app.tar",
		"layout demo/release version 1",
		"layout demo/release version 2",
		"FAIL  step test",
		"The demo took",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the demo's output lacks %q:\n%s", want, out)
		}
	}
	if n := strings.Count(out, "     verified"); n != 3 {
		t.Errorf("the demo verified %d times, want 3", n)
	}
}

// verifyBundle checks a bundle offline, as a verifier would, short of the
// layout: its entry (timestamp, signer chain at genTime, signature) against
// the functionary roots and the TSA chain's root, and its inclusion proof
// under a checkpoint signed by the log key.
func verifyBundle(b *evident.Bundle, functionaryRoots *x509.CertPool, tsaChainFile string, logKey note.Verifier) error {
	ev := &verify.EntryVerifier{TSARoots: x509.NewCertPool(), FunctionaryRoots: functionaryRoots}
	tsaChain, err := pemfile.LoadCertificates(tsaChainFile)
	if err != nil {
		return err
	}
	ev.TSARoots.AddCert(tsaChain[len(tsaChain)-1])
	if _, err := ev.Verify(b.Entry); err != nil {
		return fmt.Errorf("the bundle's entry: %w", err)
	}
	cp, err := log.OpenCheckpoint([]byte(b.Checkpoint), logKey.Name(), logKey)
	if err != nil {
		return fmt.Errorf("the bundle's checkpoint: %w", err)
	}
	canonical, err := b.Entry.Marshal()
	if err != nil {
		return err
	}
	if err := log.VerifyInclusion(b.LogIndex, cp, log.LeafHash(canonical), b.InclusionProof); err != nil {
		return fmt.Errorf("the bundle's inclusion proof: %w", err)
	}
	return nil
}
