package tufrepo

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/evident-dev/evident"
	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// hostile serves dir like a file server, except that tamper may replace
// the bytes of a path (the second argument counts the requests for it). It
// does not clean paths.
type hostile struct {
	dir    string
	mu     sync.Mutex
	count  map[string]int
	tamper func(path string, n int, b []byte) []byte
}

func (h *hostile) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	h.count[r.URL.Path]++
	n := h.count[r.URL.Path]
	h.mu.Unlock()
	b, err := os.ReadFile(filepath.Join(h.dir, filepath.FromSlash(r.URL.Path)))
	if err != nil {
		http.NotFound(w, r)
		return
	}
	if h.tamper != nil {
		b = h.tamper(r.URL.Path, n, b)
	}
	w.Write(b)
}

func (f *fixture) hostile(t *testing.T, tamper func(string, int, []byte) []byte) string {
	srv := httptest.NewServer(&hostile{dir: f.repo.Dir(), count: map[string]int{}, tamper: tamper})
	t.Cleanup(srv.Close)
	return srv.URL
}

// publishTarget lists a target in the top-level targets role under name,
// unchecked, and publishes; the file is served at its hashed name if the
// name is local.
func (f *fixture) publishTarget(t *testing.T, name string, data []byte) {
	t.Helper()
	tf, err := metadata.TargetFile().FromBytes(name, data, "sha256")
	if err != nil {
		t.Fatal(err)
	}
	f.repo.targets[Targets].Signed.Targets[name] = tf
	f.repo.dirty[Targets] = true
	if err := f.repo.Publish(f.signers(t, Targets, Snapshot, Timestamp)); err != nil {
		t.Fatal(err)
	}
}

// noFileNamed fails if a file named like name exists anywhere under dir.
func noFileNamed(t *testing.T, dir, name string) {
	t.Helper()
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && strings.Contains(d.Name(), name) {
			t.Errorf("%s was written", p)
		}
		return nil
	})
}

// F1: target names in signed metadata that would leave the mirror
// directory are refused, and nothing is written outside it.
func TestMirrorUnsafeTargetNames(t *testing.T) {
	for _, name := range []string{"../../evil", "layouts/../../evil", "/abs/evil", `..\evil`, "a/./evil", ".evil"} {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t, InitOptions{})
			f.publishTarget(t, name, []byte("evil"))
			parent := t.TempDir()
			out := filepath.Join(parent, "a", "b", "mirror")
			_, err := Mirror(ClientOptions{Root: f.root1, URL: f.hostile(t, nil), At: f.clk.now()}, out)
			if !errors.Is(err, ErrUnsafeName) {
				t.Errorf("Mirror = %v, want ErrUnsafeName", err)
			}
			noFileNamed(t, parent, "evil")
			if _, err := os.Stat(filepath.Join(out, "metadata", "timestamp.json")); err == nil {
				t.Error("a refused mirror wrote its timestamp")
			}
		})
	}
}

// U1, F1: the mirror writes only bytes it verified. A server that answers
// the client's refresh honestly and the mirror's downloads with other
// bytes gets nothing written under those names.
func TestMirrorTampered(t *testing.T) {
	f := newFixture(t, InitOptions{})
	s := f.signers(t, Targets, Snapshot, Timestamp)
	if _, err := f.repo.PublishLayout("acme", "release", []byte(`{"v":1}`), s); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, suffix string }{
		{"target", "v1.layout"},
		{"targets metadata", ".targets.json"},
		{"snapshot", ".snapshot.json"},
		{"timestamp", "timestamp.json"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			url := f.hostile(t, func(p string, n int, b []byte) []byte {
				if strings.HasSuffix(p, tc.suffix) && n > 1 || tc.suffix == "v1.layout" && strings.HasSuffix(p, tc.suffix) {
					return bytes.Replace(b, []byte(`"`), []byte(`'`), 1)
				}
				return b
			})
			out := t.TempDir()
			if _, err := Mirror(ClientOptions{Root: f.root1, URL: url, At: f.clk.now()}, out); err == nil {
				t.Fatal("a mirror of tampered files succeeded")
			}
			filepath.WalkDir(out, func(p string, d fs.DirEntry, err error) error {
				if err == nil && !d.IsDir() {
					b, _ := os.ReadFile(p)
					if bytes.HasPrefix(b, []byte(`{'`)) || bytes.Contains(b, []byte(`{'v`)) {
						t.Errorf("%s holds tampered bytes", p)
					}
				}
				return nil
			})
		})
	}
}

// The mirror never panics on malformed metadata: a timestamp without a
// snapshot entry, a snapshot without the targets entry, both validly
// signed.
func TestMirrorMissingEntries(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(r *Repo)
	}{
		{"timestamp without snapshot", func(r *Repo) { delete(r.ts.Signed.Meta, "snapshot.json") }},
		{"snapshot without targets", func(r *Repo) { delete(r.snap.Signed.Meta, "targets.json") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, InitOptions{})
			s := f.signers(t, Targets, Snapshot, Timestamp)
			if err := f.repo.EditTrustRoot(func(tr *evident.TrustRoot) error { return nil }, s); err != nil {
				t.Fatal(err)
			}
			tc.edit(f.repo)
			// Re-sign the snapshot and timestamp as they are now.
			for _, md := range []interface {
				ClearSignatures()
			}{f.repo.snap, f.repo.ts} {
				md.ClearSignatures()
			}
			f.repo.snap.Signed.Version++
			for _, k := range s[Snapshot] {
				f.repo.snap.Sign(k)
			}
			f.repo.write(fmt.Sprintf("%d.snapshot.json", f.repo.snap.Signed.Version), f.repo.snap)
			if m := f.repo.ts.Signed.Meta["snapshot.json"]; m != nil {
				m.Version = f.repo.snap.Signed.Version
			}
			f.repo.ts.Signed.Version++
			for _, k := range s[Timestamp] {
				f.repo.ts.Sign(k)
			}
			f.repo.write("timestamp.json", f.repo.ts)
			_, err := Mirror(ClientOptions{Root: f.root1, URL: f.hostile(t, nil), At: f.clk.now()}, t.TempDir())
			if err == nil {
				t.Error("a mirror of incomplete metadata succeeded")
			}
		})
	}
}

// U1: the client keeps what it trusted between runs: a server that later
// serves an older (validly signed) timestamp is refused by the next run.
func TestRollbackAcrossRuns(t *testing.T) {
	f := newFixture(t, InitOptions{})
	s := f.signers(t, Targets, Snapshot, Timestamp)
	edit := func(v string) {
		t.Helper()
		if err := f.repo.EditTrustRoot(func(tr *evident.TrustRoot) error { return tr.Add(evident.KindLog, "log-"+v, v, f.clk.now()) }, s); err != nil {
			t.Fatal(err)
		}
	}
	edit("a")
	v1 := t.TempDir()
	if err := os.CopyFS(v1, os.DirFS(f.repo.Dir())); err != nil {
		t.Fatal(err)
	}
	old := httptest.NewServer(http.FileServer(http.Dir(v1)))
	defer old.Close()
	edit("b")
	cache := t.TempDir()
	// Run 1 sees version 2 of the timestamp.
	if _, err := NewClient(ClientOptions{Root: f.root1, URL: f.srv.URL, CacheDir: cache, At: f.clk.now()}); err != nil {
		t.Fatal(err)
	}
	// Run 2, a new client on the same cache, is served version 1.
	_, err := NewClient(ClientOptions{Root: f.root1, URL: old.URL, CacheDir: cache, At: f.clk.now()})
	var bad *metadata.ErrBadVersionNumber
	if !errors.As(err, &bad) {
		t.Errorf("a rolled-back timestamp in a later run = %v, want ErrBadVersionNumber", err)
	}
	// And a mirror of the old state, read with that cache, too.
	if _, err := Mirror(ClientOptions{Root: f.root1, URL: old.URL, CacheDir: cache, At: f.clk.now()}, t.TempDir()); !errors.As(err, &bad) {
		t.Errorf("mirroring a rolled-back repository = %v, want ErrBadVersionNumber", err)
	}
	// Without the cache, the old state alone is consistent: that is what
	// the cache is for.
	if _, err := NewClient(ClientOptions{Root: f.root1, URL: old.URL, At: f.clk.now()}); err != nil {
		t.Errorf("the old repository on its own: %v", err)
	}
	// A cache is bound to its trusted root.
	other := newFixture(t, InitOptions{})
	if _, err := NewClient(ClientOptions{Root: other.root1, URL: other.srv.URL, CacheDir: cache, At: f.clk.now()}); !errors.Is(err, ErrOtherCache) {
		t.Errorf("another root on this cache = %v, want ErrOtherCache", err)
	}
}

// U1: a later run starts from the newest root an earlier run verified, not
// from the one given: a server that stops serving the rotation is not
// believed.
func TestCacheKeepsRotatedRoot(t *testing.T) {
	f := newFixture(t, InitOptions{})
	next, err := NewKeyFile(filepath.Join(t.TempDir(), "root2.pem"))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.repo.RotateKey(Root, []signature.Signer{next}, 1, f.signers(t, Root)[Root]); err != nil {
		t.Fatal(err)
	}
	cache := t.TempDir()
	if c, err := NewClient(ClientOptions{Root: f.root1, URL: f.srv.URL, CacheDir: cache, At: f.clk.now()}); err != nil || c.RootVersion() != 2 {
		t.Fatalf("first run: %v", err)
	}
	os.Remove(filepath.Join(f.repo.Dir(), "metadata", "2.root.json"))
	c, err := NewClient(ClientOptions{Root: f.root1, URL: f.srv.URL, CacheDir: cache, At: f.clk.now()})
	if err != nil || c.RootVersion() != 2 {
		t.Errorf("second run: root version %v, %v; want 2, from the cache", c, err)
	}
}

// With no cache directory the client writes nothing at all: no temporary
// directory is left behind.
func TestNoTemporaryFiles(t *testing.T) {
	f := newFixture(t, InitOptions{})
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	if _, err := NewClient(ClientOptions{Root: f.root1, URL: f.srv.URL, At: f.clk.now()}); err != nil {
		t.Fatal(err)
	}
	if _, err := Mirror(ClientOptions{Root: f.root1, URL: f.srv.URL, At: f.clk.now()}, t.TempDir()); err != nil {
		t.Fatal(err)
	}
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Errorf("left in the temporary directory: %v", left)
	}
}
