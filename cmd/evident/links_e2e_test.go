package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"

	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"golang.org/x/mod/sumdb/note"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/evident-dev/evident"
	"github.com/evident-dev/evident/linkstore"
	"github.com/in-toto/in-toto-golang/in_toto"
	bolt "go.etcd.io/bbolt"
)

// foreignSigner signs links as another in-toto tool would, with one key.
type foreignSigner struct {
	key    in_toto.Key
	pubPEM string
}

func newForeignSigner(t *testing.T, dir string) *foreignSigner {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKCS8PrivateKey(key)
	fs := &foreignSigner{pubPEM: filepath.Join(dir, "pub.pem")}
	if err := fs.key.LoadKeyReaderDefaults(bytes.NewReader(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))); err != nil {
		t.Fatal(err)
	}
	pubDER, _ := x509.MarshalPKIXPublicKey(key.Public())
	os.WriteFile(fs.pubPEM, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}), 0o644)
	return fs
}

func sha(s string) string { d := sha256.Sum256([]byte(s)); return hex.EncodeToString(d[:]) }

// submit signs a link named name with these materials and products
// (path → content, or "sha256:" and the digest to record as is), logs it with evident submit and returns its bundle.
func (fs *foreignSigner) submit(t *testing.T, s *server, dataDir, file, name string, mats, prods map[string]string) *evident.Bundle {
	t.Helper()
	set := func(m map[string]string) map[string]in_toto.HashObj {
		out := map[string]in_toto.HashObj{}
		for p, c := range m {
			if d, ok := strings.CutPrefix(c, "sha256:"); ok { // a digest as given, well formed or not
				out[p] = in_toto.HashObj{"sha256": d}
				continue
			}
			out[p] = in_toto.HashObj{"sha256": sha(c)}
		}
		return out
	}
	mb := in_toto.Metablock{Signed: in_toto.Link{Type: "link", Name: name, Materials: set(mats), Products: set(prods),
		ByProducts: map[string]any{}, Command: []string{"true"}, Environment: map[string]any{}}}
	if err := mb.Sign(fs.key); err != nil {
		t.Fatal(err)
	}
	if err := mb.Dump(file); err != nil {
		t.Fatal(err)
	}
	env := []string{"EVIDENT_SERVER=" + s.url, "EVIDENT_LOG_KEY=" + s.key}
	out, errOut, code := runCLI(t, env, "submit", file, "--public-key", fs.pubPEM, "--tsa-roots", filepath.Join(dataDir, "tsa-chain.pem"))
	if code != 0 {
		t.Fatalf("submit = exit %d\n%s%s", code, out, errOut)
	}
	b, err := os.ReadFile(strings.TrimSuffix(file, ".link") + ".bundle.json")
	if err != nil {
		t.Fatal(err)
	}
	bu, err := evident.ParseBundle(b)
	if err != nil {
		t.Fatal(err)
	}
	return bu
}

// F1: bundle fetch names files from a link's signed name and an entry's
// key id. A name like ../../escape stays inside --out; two entries of one
// step and key get two files; an existing file holding another bundle is
// not overwritten.
func TestBundleFetchNames(t *testing.T) {
	dir := t.TempDir()
	s := startServer(t, dir)
	work := t.TempDir()
	fs := newForeignSigner(t, work)
	fs.submit(t, s, dir, filepath.Join(work, "escape.link"), "../../escape", nil, map[string]string{"x": "escaping"})
	fs.submit(t, s, dir, filepath.Join(work, "b1.link"), "build", map[string]string{"src": "shared"}, map[string]string{"app": "one"})
	fs.submit(t, s, dir, filepath.Join(work, "b2.link"), "build", map[string]string{"src": "shared"}, map[string]string{"app": "two"})
	env := []string{"EVIDENT_SERVER=" + s.url, "EVIDENT_LOG_KEY=" + s.key}
	parent := t.TempDir()
	out := filepath.Join(parent, "a", "b", "out")
	if o, e, code := runCLI(t, env, "bundle", "fetch", "--artifact", "sha256:"+sha("escaping"), "--out", out); code != 0 {
		t.Fatalf("bundle fetch = exit %d\n%s%s", code, o, e)
	}
	entries, _ := os.ReadDir(out)
	if len(entries) != 1 || !strings.HasSuffix(entries[0].Name(), ".0.bundle.json") || strings.ContainsAny(entries[0].Name(), "/") {
		t.Errorf("bundle fetch wrote %v into --out", entries)
	}
	filepath.WalkDir(parent, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && filepath.Dir(p) != out {
			t.Errorf("bundle fetch wrote %s, outside --out", p)
		}
		return nil
	})
	// One step, one key, two entries: two files.
	out2 := t.TempDir()
	o, e, code := runCLI(t, env, "bundle", "fetch", "--artifact", "sha256:"+sha("shared"), "--out", out2)
	got, _ := filepath.Glob(filepath.Join(out2, "build.*.bundle.json"))
	if code != 0 || len(got) != 2 {
		t.Fatalf("bundle fetch of two entries of one step and key = exit %d, files %v\n%s%s", code, got, o, e)
	}
	// A file of that name holding another entry's bundle is kept.
	other, _ := os.ReadFile(got[0])
	os.WriteFile(got[1], other, 0o644)
	o, e, code = runCLI(t, env, "bundle", "fetch", "--artifact", "sha256:"+sha("shared"), "--out", out2)
	if code != 1 || !strings.Contains(e, "holds a bundle of another entry") {
		t.Errorf("bundle fetch over another bundle = exit %d\n%s%s", code, o, e)
	}
	if now, _ := os.ReadFile(got[1]); !bytes.Equal(now, other) {
		t.Error("bundle fetch overwrote a file holding another entry's bundle")
	}
	// --step refuses names that are not file names.
	if _, e, code := runCLI(t, env, "run", "--step", "../x", "--", "true"); code != 2 || !strings.Contains(e, "--step") {
		t.Errorf("run --step ../x = exit %d, %s", code, e)
	}
}

// P2: a tampered link for a logged entry — a duplicated "products" key
// before the real one, which keeps the payload digest — is refused, and
// bundle fetch still returns the original.
func TestTamperedLinkUpload(t *testing.T) {
	dir := t.TempDir()
	s := startServer(t, dir)
	work := t.TempDir()
	fs := newForeignSigner(t, work)
	bu := fs.submit(t, s, dir, filepath.Join(work, "build.link"), "build", nil, map[string]string{"app": "app"})
	original, _, err := linkstore.Canonical(bu.Link)
	if err != nil {
		t.Fatal(err)
	}
	tampered := bytes.Replace(original, []byte(`"products":{`), fmt.Appendf(nil, `"products":{"evil":{"sha256":"%s"}},"products":{`, sha("evil")), 1)
	if bytes.Equal(tampered, original) {
		t.Fatalf("no products in %s", original)
	}
	body, _ := json.Marshal(linkstore.UploadRequest{Index: bu.LogIndex, Link: tampered})
	resp, err := http.Post(s.url+linkstore.PathLinks, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	msg, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(msg), `duplicate key \"products\"`) {
		t.Errorf("tampered upload = %d %s, want 400 naming the duplicate key", resp.StatusCode, msg)
	}
	env := []string{"EVIDENT_SERVER=" + s.url, "EVIDENT_LOG_KEY=" + s.key}
	out := t.TempDir()
	if o, e, code := runCLI(t, env, "bundle", "fetch", "--index", fmt.Sprint(bu.LogIndex), "--out", out); code != 0 {
		t.Fatalf("bundle fetch = exit %d\n%s%s", code, o, e)
	}
	got, _ := filepath.Glob(filepath.Join(out, "*.bundle.json"))
	b, _ := os.ReadFile(got[0])
	fetched, err := evident.ParseBundle(b)
	if err != nil {
		t.Fatal(err)
	}
	if got, _, err := linkstore.Canonical(fetched.Link); err != nil || !bytes.Equal(got, original) {
		t.Errorf("fetched link = %s, %v; want the original", got, err)
	}
	if _, e, code := runCLI(t, env, "bundle", "fetch", "--artifact", "sha256:"+sha("evil"), "--out", t.TempDir()); code != 1 || !strings.Contains(e, "no logged link") {
		t.Errorf("the tampered artifact is indexed: exit %d, %s", code, e)
	}
}

// A1: bundle fetch --chain walks from an artifact back through the steps
// that made its materials, and only those.
func TestBundleFetchChain(t *testing.T) {
	dir := t.TempDir()
	s := startServer(t, dir)
	work := t.TempDir()
	fs := newForeignSigner(t, work)
	fs.submit(t, s, dir, filepath.Join(work, "checkout.link"), "checkout", nil, map[string]string{"main.c": "src"})
	fs.submit(t, s, dir, filepath.Join(work, "build.link"), "build", map[string]string{"main.c": "src"}, map[string]string{"app": "bin"})
	fs.submit(t, s, dir, filepath.Join(work, "lint.link"), "lint", map[string]string{"main.c": "src"}, nil)
	fs.submit(t, s, dir, filepath.Join(work, "package.link"), "package", map[string]string{"app": "bin"}, map[string]string{"app.tar": "tar"})
	fs.submit(t, s, dir, filepath.Join(work, "other.link"), "other", nil, map[string]string{"else": "x"})
	// A cycle: a step whose product is its own material.
	fs.submit(t, s, dir, filepath.Join(work, "loop.link"), "loop", map[string]string{"app.tar": "tar"}, map[string]string{"app.tar": "tar"})
	env := []string{"EVIDENT_SERVER=" + s.url, "EVIDENT_LOG_KEY=" + s.key}
	out := t.TempDir()
	o, e, code := runCLI(t, env, "bundle", "fetch", "--chain", "--artifact", "sha256:"+sha("tar"), "--out", out)
	if code != 0 || !strings.Contains(o, "4 bundles") {
		t.Fatalf("bundle fetch --chain = exit %d\n%s%s", code, o, e)
	}
	for _, step := range []string{"checkout", "build", "package", "loop"} {
		if got, _ := filepath.Glob(filepath.Join(out, step+".*.bundle.json")); len(got) != 1 {
			t.Errorf("step %s: %v", step, got)
		}
	}
	for _, step := range []string{"lint", "other"} {
		if got, _ := filepath.Glob(filepath.Join(out, step+".*.bundle.json")); len(got) != 0 {
			t.Errorf("step %s, no maker of the chain, was fetched: %v", step, got)
		}
	}
	// Bounded: two steps back is past --max-depth 1.
	if _, e, code := runCLI(t, env, "bundle", "fetch", "--chain", "--max-depth", "1", "--artifact", "sha256:"+sha("tar"), "--out", t.TempDir()); code != 1 || !strings.Contains(e, "--max-depth") {
		t.Errorf("--max-depth 1 = exit %d, %s", code, e)
	}
	if _, e, code := runCLI(t, env, "bundle", "fetch", "--chain", "--index", "0"); code != 2 || !strings.Contains(e, "--chain") {
		t.Errorf("--chain without --artifact = exit %d, %s", code, e)
	}
}

// A missing or empty --bundles directory is a usage error that says what
// to do, before anything else is read.
func TestVerifyBundlesUsage(t *testing.T) {
	empty := t.TempDir()
	for _, dir := range []string{filepath.Join(empty, "missing"), empty} {
		_, e, code := runCLI(t, nil, "verify", "--tuf-root", "root.json", "--tuf-mirror", "m", "--layout", "a/b", "--bundles", dir)
		if code != 2 || !strings.Contains(e, "--bundles") || !strings.Contains(e, "bundle fetch") {
			t.Errorf("verify --bundles %s = exit %d, %s", dir, code, e)
		}
	}
}

// U1: the TUF client keeps what it trusted between runs (--tuf-cache, by
// default under the user's cache directory): a server that later serves an
// older timestamp is refused; nothing is left in the temporary directory.
func TestTUFCacheAcrossRuns(t *testing.T) {
	dir := t.TempDir()
	s := startServer(t, dir)
	repo, keys := filepath.Join(dir, "tuf"), filepath.Join(dir, "tuf-keys")
	root := filepath.Join(repo, "metadata", "1.root.json")
	v1 := t.TempDir()
	if err := os.CopyFS(v1, os.DirFS(repo)); err != nil {
		t.Fatal(err)
	}
	old := httptest.NewServer(http.FileServer(http.Dir(v1)))
	defer old.Close()
	home, tmp := t.TempDir(), t.TempDir()
	env := []string{"HOME=" + home, "XDG_CACHE_HOME=", "TMPDIR=" + tmp}
	key := filepath.Join(t.TempDir(), "k.pub")
	_, otherLog, err := note.GenerateKey(rand.Reader, "log.example/x")
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(key, []byte(otherLog), 0o644)
	if o, e, code := runCLI(t, env, "tuf", "trust", "add", "--repo", repo, "--keys", keys, "--kind", "log", "--name", "other", "--file", key); code != 0 {
		t.Fatalf("trust add = exit %d\n%s%s", code, o, e)
	}
	if o, e, code := runCLI(t, env, "tuf", "get", "trusted_root.json", "--tuf", s.url+"/tuf", "--tuf-root", root); code != 0 {
		t.Fatalf("tuf get = exit %d\n%s%s", code, o, e)
	}
	caches, _ := filepath.Glob(filepath.Join(home, ".cache", "evident", "tuf", "*", "metadata", "timestamp.json"))
	if len(caches) != 1 {
		t.Errorf("the default cache holds %v", caches)
	}
	_, e, code := runCLI(t, env, "tuf", "get", "trusted_root.json", "--tuf", old.URL, "--tuf-root", root)
	if code != 1 || !strings.Contains(e, "version") {
		t.Errorf("tuf get from a rolled-back server = exit %d, %s", code, e)
	}
	mirror := filepath.Join(t.TempDir(), "mirror")
	if o, e, code := runCLI(t, env, "tuf", "mirror", "--tuf", s.url+"/tuf", "--tuf-root", root, "--out", mirror); code != 0 {
		t.Fatalf("tuf mirror = exit %d\n%s%s", code, o, e)
	}
	_, e, code = runCLI(t, env, "tuf", "mirror", "--tuf", old.URL, "--tuf-root", root, "--out", t.TempDir())
	if code != 1 || !strings.Contains(e, "version") {
		t.Errorf("tuf mirror of a rolled-back server = exit %d, %s", code, e)
	}
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Errorf("left in the temporary directory: %v", left)
	}
}

// A1: one bad entry among those naming an artifact — here a link stored
// by an earlier version as its uploader sent it, with a duplicated key —
// is reported and skipped; the others are fetched. An earlier links.db
// opens as it is.
func TestBundleFetchSkipsBadEntry(t *testing.T) {
	dir := t.TempDir()
	s := startServer(t, dir)
	work := t.TempDir()
	fs := newForeignSigner(t, work)
	good := fs.submit(t, s, dir, filepath.Join(work, "good.link"), "good", nil, map[string]string{"app": "app"})
	bad := fs.submit(t, s, dir, filepath.Join(work, "bad.link"), "bad", map[string]string{"x": "x"}, map[string]string{"app": "app"})
	s.kill9(t)
	db, err := bolt.Open(filepath.Join(dir, "links.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	legacy := bytes.Replace(bad.Link, []byte(`"products": {`), fmt.Appendf(nil, `"products": {"evil": {"sha256": "%s"}}, "products": {`, sha("evil")), 1)
	err = db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket([]byte("links")).Put([]byte(bad.Entry.PayloadSHA256), legacy)
	})
	db.Close()
	if err != nil || bytes.Equal(legacy, bad.Link) {
		t.Fatalf("writing the legacy link: %v", err)
	}
	s = startServer(t, dir)
	env := []string{"EVIDENT_SERVER=" + s.url, "EVIDENT_LOG_KEY=" + s.key}
	out := t.TempDir()
	o, e, code := runCLI(t, env, "bundle", "fetch", "--artifact", "sha256:"+sha("app"), "--out", out)
	if code != 0 || !strings.Contains(e, fmt.Sprintf("skipped log index %d", bad.LogIndex)) {
		t.Errorf("bundle fetch with one bad entry = exit %d\n%s%s", code, o, e)
	}
	if got, _ := filepath.Glob(filepath.Join(out, fmt.Sprintf("good.*.%d.bundle.json", good.LogIndex))); len(got) != 1 {
		t.Errorf("the good entry's bundle was not written: %v", got)
	}
	if got, _ := filepath.Glob(filepath.Join(out, "bad.*")); len(got) != 0 {
		t.Errorf("the bad entry's bundle was written: %v", got)
	}
}

// L7 and A1: a signed link may record any string as an artifact's sha256.
// One longer than a SHA-256 in hex (which encoding/hex would write past a
// 32-byte buffer) is stored by the server, not indexed, and skipped by the
// chain walk; the same on the command line is a usage error.
func TestOverlongDigestInLink(t *testing.T) {
	dir := t.TempDir()
	s := startServer(t, dir)
	work := t.TempDir()
	fs := newForeignSigner(t, work)
	long := strings.Repeat("ab", 33)
	fs.submit(t, s, dir, filepath.Join(work, "build.link"), "build", map[string]string{"src": "sha256:" + long}, map[string]string{"app.tar": "tar"})
	env := []string{"EVIDENT_SERVER=" + s.url, "EVIDENT_LOG_KEY=" + s.key}
	if o, e, code := runCLI(t, env, "bundle", "fetch", "--chain", "--artifact", "sha256:"+sha("tar"), "--out", t.TempDir()); code != 0 || !strings.Contains(o, "1 bundles") {
		t.Errorf("bundle fetch --chain over a link with an overlong material digest = exit %d\n%s%s", code, o, e)
	}
	if _, e, code := runCLI(t, env, "bundle", "fetch", "--artifact", "sha256:"+long); code != 2 || !strings.Contains(e, "--artifact must be sha256:<64 hex digits>") {
		t.Errorf("bundle fetch --artifact sha256:<66 hex digits> = exit %d, %s", code, e)
	}
}
