package tufrepo

import (
	"bytes"
	"crypto"
	"encoding/json"
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
	"time"

	"github.com/evident-dev/evident"
	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type fixture struct {
	repo  *Repo
	keys  string
	clk   *clock
	srv   *httptest.Server
	root1 []byte
}

func newFixture(t *testing.T, o InitOptions) *fixture {
	t.Helper()
	dir, keys := t.TempDir(), t.TempDir()
	clk := &clock{t: time.Now().UTC().Truncate(time.Second)}
	o.Now = clk.now
	r, err := Init(dir, keys, o)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.FileServer(http.Dir(dir)))
	t.Cleanup(srv.Close)
	root1, err := r.RootJSON(1)
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{repo: r, keys: keys, clk: clk, srv: srv, root1: root1}
}

func (f *fixture) signers(t *testing.T, roles ...string) Signers {
	t.Helper()
	s, err := LoadKeys(f.keys, roles...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func (f *fixture) client(t *testing.T, cache string) (*Client, error) {
	t.Helper()
	if cache == "" {
		cache = t.TempDir()
	}
	return NewClient(ClientOptions{Root: f.root1, URL: f.srv.URL, CacheDir: cache, At: f.clk.now()})
}

func mustClient(t *testing.T, f *fixture, cache string) *Client {
	t.Helper()
	c, err := f.client(t, cache)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestTrustRootRoundTrip(t *testing.T) {
	f := newFixture(t, InitOptions{RootKeys: 3, RootThreshold: 2})
	s := f.signers(t, Targets, Snapshot, Timestamp)
	start := f.clk.now()
	err := f.repo.EditTrustRoot(func(tr *evident.TrustRoot) error {
		if err := tr.Add(evident.KindFunctionaryCA, "spire-2026", "PEM-A", start); err != nil {
			return err
		}
		return tr.Add(evident.KindLog, "log", "localhost/evident+1234+AAAA", start)
	}, s)
	if err != nil {
		t.Fatal(err)
	}
	f.clk.add(time.Hour)
	// Rotating is one edit: retire the old, add the new.
	err = f.repo.EditTrustRoot(func(tr *evident.TrustRoot) error {
		if err := tr.Retire(evident.KindFunctionaryCA, "spire-2026", f.clk.now()); err != nil {
			return err
		}
		return tr.Add(evident.KindFunctionaryCA, "spire-2027", "PEM-B", f.clk.now())
	}, s)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := mustClient(t, f, "").TrustRoot()
	if err != nil {
		t.Fatal(err)
	}
	then, _ := tr.At(evident.KindFunctionaryCA, start.Add(time.Minute))
	now, _ := tr.At(evident.KindFunctionaryCA, f.clk.now())
	if len(then) != 1 || then[0].Name != "spire-2026" || len(now) != 1 || now[0].Name != "spire-2027" {
		t.Errorf("functionary CAs valid then = %v, now = %v", then, now)
	}
	if err := tr.Retire(evident.KindFunctionaryCA, "spire-2026", f.clk.now()); !errors.Is(err, evident.ErrTrustRoot) {
		t.Errorf("retiring twice = %v, want ErrTrustRoot", err)
	}
}

// TestTwoReleaseManagers: a project's layouts are delegated to its two
// release managers; each publishes a version; the client gets the latest by
// default and the one current at a given time when asked.
func TestTwoReleaseManagers(t *testing.T) {
	f := newFixture(t, InitOptions{})
	rm1, err := NewKeyFile(filepath.Join(t.TempDir(), "rm1.pem"))
	if err != nil {
		t.Fatal(err)
	}
	rm2, _ := NewKeyFile(filepath.Join(t.TempDir(), "rm2.pem"))
	p1, _ := rm1.PublicKey()
	p2, _ := rm2.PublicKey()
	if err := f.repo.Delegate("acme", []crypto.PublicKey{p1, p2}, 1); err != nil {
		t.Fatal(err)
	}
	online := f.signers(t, Targets, Snapshot, Timestamp)
	if err := f.repo.Publish(online); err != nil {
		t.Fatal(err)
	}
	withRM := func(rm signature.Signer) Signers {
		s := f.signers(t, Snapshot, Timestamp)
		s[ProjectRole("acme")] = []signature.Signer{rm}
		return s
	}
	v1, err := f.repo.PublishLayout("acme", "release", []byte(`{"steps":["build"]}`), withRM(rm1))
	if err != nil {
		t.Fatal(err)
	}
	f.clk.add(24 * time.Hour)
	between := f.clk.now()
	f.clk.add(24 * time.Hour)
	v2, err := f.repo.PublishLayout("acme", "release", []byte(`{"steps":["build","package"]}`), withRM(rm2))
	if err != nil {
		t.Fatal(err)
	}
	if v1.Version != 1 || v2.Version != 2 {
		t.Fatalf("versions %d and %d", v1.Version, v2.Version)
	}
	c := mustClient(t, f, "")
	latest, v, err := c.Layout("acme", "release", time.Time{})
	if err != nil || v.Version != 2 || !bytes.Contains(latest, []byte("package")) {
		t.Errorf("latest layout = %s (v%d), %v", latest, v.Version, err)
	}
	old, v, err := c.Layout("acme", "release", between)
	if err != nil || v.Version != 1 || bytes.Contains(old, []byte("package")) {
		t.Errorf("layout at %v = %s (v%d), %v", between, old, v.Version, err)
	}
	if _, _, err := c.Layout("acme", "release", v1.Published.Add(-time.Hour)); err == nil {
		t.Error("a layout before the first version was returned")
	}
	// The targets key cannot sign the project's layouts, and a release
	// manager of another project cannot either.
	if _, err := f.repo.PublishLayout("acme", "release", []byte(`{}`), f.signers(t, Targets, Snapshot, Timestamp)); !errors.Is(err, ErrThreshold) {
		t.Errorf("publishing acme's layout without its keys = %v, want ErrThreshold", err)
	}
}

// TestRollbackAndFreeze covers threat model U1: rollback of timestamp, snapshot
// and targets, a freeze (expired timestamp), a tampered and an oversized
// target.
func TestRollbackAndFreeze(t *testing.T) {
	f := newFixture(t, InitOptions{})
	s := f.signers(t, Targets, Snapshot, Timestamp)
	edit := func(v string) {
		t.Helper()
		err := f.repo.EditTrustRoot(func(tr *evident.TrustRoot) error {
			return tr.Add(evident.KindLog, "log-"+v, v, f.clk.now())
		}, s)
		if err != nil {
			t.Fatal(err)
		}
	}
	edit("a")
	md := filepath.Join(f.repo.Dir(), "metadata")
	oldTS, _ := os.ReadFile(filepath.Join(md, "timestamp.json"))
	oldSnapV := f.repo.snap.Signed.Version
	oldTargetsV := f.repo.targets[Targets].Signed.Version
	oldSnap, _ := os.ReadFile(filepath.Join(md, fmt.Sprintf("%d.snapshot.json", oldSnapV)))
	oldTargets, _ := os.ReadFile(filepath.Join(md, fmt.Sprintf("%d.targets.json", oldTargetsV)))
	edit("b")
	cache := t.TempDir()
	if _, err := mustClient(t, f, cache).TrustRoot(); err != nil {
		t.Fatal(err)
	}
	restore := func(name string, b []byte) func() {
		p := filepath.Join(md, name)
		cur, _ := os.ReadFile(p)
		os.WriteFile(p, b, 0o644)
		return func() { os.WriteFile(p, cur, 0o644) }
	}
	// Timestamp rollback: an older, validly signed timestamp.
	undo := restore("timestamp.json", oldTS)
	if _, err := f.client(t, cache); err == nil || !strings.Contains(err.Error(), "version") {
		t.Errorf("rolled-back timestamp = %v, want a version error", err)
	}
	undo()
	// Snapshot rollback: the current snapshot's name, an older snapshot.
	undo = restore(fmt.Sprintf("%d.snapshot.json", f.repo.snap.Signed.Version), oldSnap)
	if _, err := f.client(t, t.TempDir()); err == nil {
		t.Error("rolled-back snapshot accepted")
	}
	undo()
	// Targets rollback (mix-and-match): the current targets' name, older content.
	undo = restore(fmt.Sprintf("%d.targets.json", f.repo.targets[Targets].Signed.Version), oldTargets)
	if _, err := f.client(t, t.TempDir()); err == nil {
		t.Error("rolled-back targets accepted")
	}
	undo()
	// Tampered and oversized target.
	_, tf, _ := f.repo.Target(Targets, evident.TrustRootTarget)
	tp := filepath.Join(f.repo.Dir(), "targets", fmt.Sprintf("%x.%s", []byte(tf.Hashes["sha256"]), evident.TrustRootTarget))
	good, _ := os.ReadFile(tp)
	for name, bad := range map[string][]byte{
		"tampered":  bytes.Replace(good, []byte("log-b"), []byte("log-x"), 1),
		"oversized": append(bytes.Clone(good), bytes.Repeat([]byte(" "), 1<<20)...),
	} {
		os.WriteFile(tp, bad, 0o644)
		if _, err := mustClient(t, f, t.TempDir()).TrustRoot(); err == nil {
			t.Errorf("%s target accepted", name)
		}
	}
	os.WriteFile(tp, good, 0o644)
	// Freeze: two days later the timestamp has expired.
	f.clk.add(48 * time.Hour)
	if _, err := f.client(t, t.TempDir()); !errors.Is(err, ErrExpired) {
		t.Errorf("expired timestamp = %v, want ErrExpired", err)
	}
	// The server re-signs the online roles; the client is happy again.
	if did, err := f.repo.RefreshOnline(f.signers(t, Snapshot, Timestamp), 12*time.Hour); err != nil || !did {
		t.Fatalf("RefreshOnline = %v, %v", did, err)
	}
	if _, err := f.client(t, t.TempDir()); err != nil {
		t.Errorf("after RefreshOnline: %v", err)
	}
}

// TestRotations covers threat model U1: root rotation followed across several
// versions, threshold not met, and a rotated-out key signing nothing that
// is accepted.
func TestRotations(t *testing.T) {
	f := newFixture(t, InitOptions{RootKeys: 2, RootThreshold: 2})
	cache := t.TempDir()
	mustClient(t, f, cache)
	rootSigners := f.signers(t, Root)[Root]
	for i := 0; i < 3; i++ {
		a, _ := NewKeyFile(filepath.Join(t.TempDir(), "a.pem"))
		b, _ := NewKeyFile(filepath.Join(t.TempDir(), "b.pem"))
		// A rotation signed by one old key only does not meet the old threshold.
		if err := f.repo.RotateKey(Root, []signature.Signer{a, b}, 2, rootSigners[:1]); !errors.Is(err, ErrThreshold) {
			t.Fatalf("root rotation with 1 of 2 old keys = %v, want ErrThreshold", err)
		}
		if err := f.repo.RotateKey(Root, []signature.Signer{a, b}, 2, rootSigners); err != nil {
			t.Fatal(err)
		}
		rootSigners = []signature.Signer{a, b}
	}
	oldTargets := f.signers(t, Targets)[Targets]
	newTargets, _ := NewKeyFile(filepath.Join(t.TempDir(), "targets2.pem"))
	if err := f.repo.RotateKey(Targets, []signature.Signer{newTargets}, 1, rootSigners); err != nil {
		t.Fatal(err)
	}
	s := f.signers(t, Snapshot, Timestamp)
	s[Targets] = []signature.Signer{newTargets}
	if err := f.repo.Publish(s); err != nil {
		t.Fatal(err)
	}
	c := mustClient(t, f, cache) // starts from version 1 in its cache, walks to 5
	if c.RootVersion() != 5 {
		t.Errorf("client root version %d, want 5", c.RootVersion())
	}
	// The rotated-out targets key cannot publish anything.
	s[Targets] = oldTargets
	err := f.repo.EditTrustRoot(func(tr *evident.TrustRoot) error { return tr.Add(evident.KindLog, "x", "y", f.clk.now()) }, s)
	if !errors.Is(err, ErrThreshold) {
		t.Errorf("publishing with the rotated-out targets key = %v, want ErrThreshold", err)
	}
	// Nor is metadata it signs accepted by clients: forge targets v+1 with it.
	forged := *f.repo.targets[Targets]
	forged.Signed.Version++
	forged.ClearSignatures()
	forged.Sign(oldTargets[0])
	b, _ := forged.ToBytes(true)
	os.WriteFile(filepath.Join(f.repo.Dir(), "metadata", fmt.Sprintf("%d.targets.json", f.repo.targets[Targets].Signed.Version)), b, 0o644)
	if _, err := f.client(t, t.TempDir()); err == nil {
		t.Error("targets signed by a rotated-out key accepted")
	}
	// Same version number, signed by the old key: refused for the signature.
	forged.Signed.Version--
	forged.ClearSignatures()
	forged.Sign(oldTargets[0])
	b, _ = forged.ToBytes(true)
	os.WriteFile(filepath.Join(f.repo.Dir(), "metadata", fmt.Sprintf("%d.targets.json", forged.Signed.Version)), b, 0o644)
	if _, err := f.client(t, t.TempDir()); err == nil || !strings.Contains(err.Error(), "signatures") {
		t.Errorf("targets signed by a rotated-out key = %v, want a signature error", err)
	}
}

// TestDuplicateKeyIDsCountOnce covers threat model U1: one key listed under two
// key ids, with two signatures, does not meet a threshold of 2.
func TestDuplicateKeyIDsCountOnce(t *testing.T) {
	f := newFixture(t, InitOptions{})
	rs := f.signers(t, Root)[Root]
	ts := f.signers(t, Targets)[Targets][0]
	k, _ := tufKey(ts)
	id1, _ := k.ID()
	k2 := metadata.Key{Type: k.Type, Scheme: k.Scheme, Value: k.Value, UnrecognizedFields: map[string]any{"x-alias": true}}
	id2, _ := k2.ID()
	if id1 == id2 {
		t.Fatal("fixture: the alias has the same key id")
	}
	root := f.repo.root
	root.Signed.Keys[id2] = &k2
	root.Signed.Roles[Targets].KeyIDs = []string{id1, id2}
	root.Signed.Roles[Targets].Threshold = 2
	root.Signed.Version++
	if err := f.repo.signRoot(rs, nil); err != nil {
		t.Fatal(err)
	}
	tgt := f.repo.targets[Targets]
	tgt.Signed.Version++
	tgt.ClearSignatures()
	sig, _ := tgt.Sign(ts)
	tgt.Signatures = append(tgt.Signatures, metadata.Signature{KeyID: id2, Signature: sig.Signature})
	if err := root.VerifyDelegate(Targets, tgt); err == nil {
		t.Fatal("one key under two ids met a threshold of 2")
	}
}

// TestCrashMidPublish covers threat model U2: a publisher that dies after writing
// the targets but before the snapshot leaves the repository as it was, and
// the next publish carries on with growing versions.
func TestCrashMidPublish(t *testing.T) {
	f := newFixture(t, InitOptions{})
	s := f.signers(t, Targets, Snapshot, Timestamp)
	before := f.repo.Status()
	errCrash := errors.New("killed")
	f.repo.testHookAfterTargets = func() error { return errCrash }
	err := f.repo.EditTrustRoot(func(tr *evident.TrustRoot) error { return tr.Add(evident.KindLog, "l", "v", f.clk.now()) }, s)
	if !errors.Is(err, errCrash) {
		t.Fatalf("publish = %v, want the crash", err)
	}
	// The repository as a client sees it: unchanged and valid.
	tr, err := mustClient(t, f, "").TrustRoot()
	if err == nil && len(tr.Logs) != 0 {
		t.Error("a half-published trust root is visible")
	}
	reopened, err := Open(f.repo.Dir(), f.clk.now)
	if err != nil {
		t.Fatal(err)
	}
	if got := reopened.Status(); fmt.Sprint(got) != fmt.Sprint(before) {
		t.Errorf("status after the crash = %v, want %v", got, before)
	}
	if err := reopened.EditTrustRoot(func(tr *evident.TrustRoot) error { return tr.Add(evident.KindLog, "l", "v", f.clk.now()) }, s); err != nil {
		t.Fatal(err)
	}
	tr, err = mustClient(t, f, "").TrustRoot()
	if err != nil || len(tr.Logs) != 1 {
		t.Fatalf("after re-publishing: %v, %v", tr, err)
	}
	for _, st := range reopened.Status() {
		for _, b := range before {
			if st.Role == b.Role && st.Role != Root && st.Version <= b.Version {
				t.Errorf("%s version %d did not grow past %d", st.Role, st.Version, b.Version)
			}
		}
	}
}

// TestMalformedMetadata covers threat model U3: a 10 MB timestamp and
// schema-breaking JSON give errors, not panics.
func TestMalformedMetadata(t *testing.T) {
	f := newFixture(t, InitOptions{})
	p := filepath.Join(f.repo.Dir(), "metadata", "timestamp.json")
	for name, b := range map[string][]byte{
		"10 MB":          bytes.Repeat([]byte("{"), 10<<20),
		"schema":         []byte(`{"signed":{"_type":"timestamp","version":"one"},"signatures":[]}`),
		"wrong key type": []byte(`{"signed":{"_type":"root"},"signatures":[]}`),
	} {
		os.WriteFile(p, b, 0o644)
		if _, err := f.client(t, ""); err == nil {
			t.Errorf("%s timestamp accepted", name)
		}
	}
}

// TestMirror: an air-gapped verifier reads a mirror directory; an expired
// mirror fails with ErrExpired unless evaluated, explicitly, at a time it
// was valid.
func TestMirror(t *testing.T) {
	f := newFixture(t, InitOptions{})
	s := f.signers(t, Targets, Snapshot, Timestamp)
	if _, err := f.repo.PublishLayout("acme", "release", []byte(`{"v":1}`), s); err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	n, err := Mirror(ClientOptions{Root: f.root1, URL: f.srv.URL, CacheDir: t.TempDir(), At: f.clk.now()}, out)
	if err != nil || n != 2 {
		t.Fatalf("Mirror = %d targets, %v", n, err)
	}
	c, err := NewClient(ClientOptions{Root: f.root1, MirrorDir: out, At: f.clk.now()})
	if err != nil {
		t.Fatal(err)
	}
	if b, _, err := c.Layout("acme", "release", time.Time{}); err != nil || string(b) != `{"v":1}` {
		t.Errorf("layout from the mirror = %s, %v", b, err)
	}
	later := f.clk.now().Add(30 * 24 * time.Hour)
	if _, err := NewClient(ClientOptions{Root: f.root1, MirrorDir: out, At: later}); !errors.Is(err, ErrExpired) || !strings.Contains(err.Error(), "--tuf-at") {
		t.Errorf("expired mirror = %v, want ErrExpired naming --tuf-at", err)
	}
}

// BenchmarkRefreshAndLayout measures what a verifier pays after its first
// run: a client's refresh against a local server plus one layout.
//
//	go test -run '^$' -bench RefreshAndLayout ./tufrepo | grep ^Benchmark
func BenchmarkRefreshAndLayout(b *testing.B) {
	t := &testing.T{}
	dir, keys := b.TempDir(), b.TempDir()
	r, err := Init(dir, keys, InitOptions{})
	if err != nil {
		b.Fatal(err)
	}
	s, _ := LoadKeys(keys, Targets, Snapshot, Timestamp)
	if _, err := r.PublishLayout("acme", "release", bytes.Repeat([]byte("x"), 20<<10), s); err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(http.FileServer(http.Dir(dir)))
	defer srv.Close()
	root, _ := r.RootJSON(1)
	cache := b.TempDir()
	run := func() {
		c, err := NewClient(ClientOptions{Root: root, URL: srv.URL, CacheDir: cache})
		if err != nil {
			b.Fatal(err)
		}
		if _, _, err := c.Layout("acme", "release", time.Time{}); err != nil {
			b.Fatal(err)
		}
	}
	run() // the first run fills the cache
	_ = t
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		run()
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/refresh+layout")
}

// TestThresholdZero covers threat model U1: a root that sets a role's threshold
// to 0 does not make unsigned metadata acceptable.
func TestThresholdZero(t *testing.T) {
	f := newFixture(t, InitOptions{})
	f.repo.root.Signed.Roles[Targets].Threshold = 0
	f.repo.root.Signed.Version++
	if err := f.repo.signRoot(f.signers(t, Root)[Root], nil); err != nil {
		t.Fatal(err)
	}
	tgt := f.repo.targets[Targets]
	tgt.ClearSignatures() // unsigned, same version: the client re-reads it under root v2
	b, _ := tgt.ToBytes(true)
	os.WriteFile(filepath.Join(f.repo.Dir(), "metadata", fmt.Sprintf("%d.targets.json", tgt.Signed.Version)), b, 0o644)
	if _, err := f.client(t, ""); err == nil || !strings.Contains(err.Error(), "insufficient threshold") {
		t.Errorf("threshold 0 = %v, want the client to refuse", err)
	}
}

// FuzzMetadata covers threat model U3: go-tuf's decoding of every role's
// metadata, and the client's trust in a root, never panic on bad input.
func FuzzMetadata(f *testing.F) {
	dir, keys := f.TempDir(), f.TempDir()
	r, err := Init(dir, keys, InitOptions{})
	if err != nil {
		f.Fatal(err)
	}
	for _, name := range []string{"1.root.json", "timestamp.json", "1.snapshot.json", "1.targets.json"} {
		b, _ := os.ReadFile(filepath.Join(r.Dir(), "metadata", name))
		f.Add(b)
	}
	f.Add([]byte(`{"signed":{"_type":"root","keys":{"x":{"keytype":"ed25519","keyval":{"public":"zz"}}}},"signatures":[]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		metadata.Root().FromBytes(b)
		metadata.Timestamp().FromBytes(b)
		metadata.Snapshot().FromBytes(b)
		metadata.Targets().FromBytes(b)
		NewClient(ClientOptions{Root: b, MirrorDir: dir, CacheDir: t.TempDir()})
	})
}

func FuzzLayoutIndex(f *testing.F) {
	f.Add([]byte(`{"project":"p","name":"n","versions":[{"version":1,"target":"layouts/p/n/v1.layout","published":"2026-01-01T00:00:00Z"}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var idx LayoutIndex
		if json.Unmarshal(b, &idx) != nil {
			return
		}
		idx.Pick(time.Time{})
		idx.Pick(time.Unix(1e9, 0))
	})
}

// TestDelegationSurvivesReopen: a delegation published by one process
// holds in the next one (U4): the project's layouts then need its release
// managers' keys and never go to the top-level targets.
func TestDelegationSurvivesReopen(t *testing.T) {
	f := newFixture(t, InitOptions{})
	rm, err := NewKeyFile(filepath.Join(t.TempDir(), "rm.pem"))
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := rm.PublicKey()
	if err := f.repo.Delegate("acme", []crypto.PublicKey{pub}, 1); err != nil {
		t.Fatal(err)
	}
	if err := f.repo.Publish(f.signers(t, Targets, Snapshot, Timestamp)); err != nil {
		t.Fatal(err)
	}
	r, err := Open(f.repo.Dir(), f.clk.now)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.PublishLayout("acme", "release", []byte(`{}`), f.signers(t, Targets, Snapshot, Timestamp)); !errors.Is(err, ErrThreshold) {
		t.Fatalf("PublishLayout without the delegated key after reopening = %v, want ErrThreshold", err)
	}
	if err := r.Delegate("acme", []crypto.PublicKey{pub}, 1); err == nil {
		t.Error("delegating acme twice succeeded")
	}
	s := f.signers(t, Snapshot, Timestamp)
	s[ProjectRole("acme")] = []signature.Signer{rm}
	if _, err := r.PublishLayout("acme", "release", []byte(`{"v":1}`), s); err != nil {
		t.Fatal(err)
	}
	if _, _, err := r.Target(Targets, "layouts/acme/release/index.json"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the top-level targets hold acme's index: %v", err)
	}
	if b, _, err := mustClient(t, f, "").Layout("acme", "release", time.Time{}); err != nil || string(b) != `{"v":1}` {
		t.Errorf("Layout = %s, %v", b, err)
	}
}

// TestWithdrawLayout: a withdrawn version is never picked, at any time;
// the one before it is current again (U5).
func TestWithdrawLayout(t *testing.T) {
	f := newFixture(t, InitOptions{})
	s := f.signers(t, Targets, Snapshot, Timestamp)
	if _, err := f.repo.PublishLayout("acme", "release", []byte(`good`), s); err != nil {
		t.Fatal(err)
	}
	f.clk.add(time.Hour)
	bad, err := f.repo.PublishLayout("acme", "release", []byte(`bad`), s)
	if err != nil {
		t.Fatal(err)
	}
	f.clk.add(time.Hour)
	if _, err := f.repo.WithdrawLayout("acme", "release", 3, "typo", s); !errors.Is(err, ErrNoLayoutVersion) {
		t.Errorf("WithdrawLayout(version 3 of 2) = %v, want ErrNoLayoutVersion", err)
	}
	if _, err := f.repo.WithdrawLayout("acme", "release", 2, "signed a link by mistake", s); err != nil {
		t.Fatal(err)
	}
	if _, err := f.repo.WithdrawLayout("acme", "release", 2, "again", s); err == nil {
		t.Error("withdrawing twice succeeded")
	}
	c := mustClient(t, f, "")
	for _, at := range []time.Time{{}, bad.Published, bad.Published.Add(30 * time.Minute)} {
		b, v, err := c.Layout("acme", "release", at)
		if err != nil || v.Version != 1 || string(b) != "good" {
			t.Errorf("Layout(at %v) = %s (v%d), %v; want version 1", at, b, v.Version, err)
		}
	}
	if _, err := f.repo.WithdrawLayout("acme", "release", 1, "all bad", s); err != nil {
		t.Fatal(err)
	}
	if _, _, err := mustClient(t, f, "").Layout("acme", "release", time.Time{}); err == nil || !strings.Contains(err.Error(), "withdrawn") {
		t.Errorf("Layout with every version withdrawn = %v, want an error saying so", err)
	}
}
