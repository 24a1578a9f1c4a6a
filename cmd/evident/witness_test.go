package main

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	neturl "net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"filippo.io/torchwood"
	"github.com/evident-dev/evident"
	"github.com/evident-dev/evident/internal/litewitness"
	"github.com/evident-dev/evident/link"
	"github.com/evident-dev/evident/linkstore"
	"github.com/evident-dev/evident/serve"
	"github.com/evident-dev/evident/tlog"
	"github.com/evident-dev/evident/tsa"
	"github.com/in-toto/in-toto-golang/in_toto"
	"golang.org/x/mod/sumdb/note"
)

// startWitness starts a litewitness (built by tools/litewitness; see
// .ci/run). Without it the test skips, unless EVIDENT_REQUIRE_WITNESS is
// set, as it is in CI.
func startWitness(t *testing.T, name string) *litewitness.Witness {
	t.Helper()
	bin := litewitness.DefaultBin()
	if m := litewitness.Missing(bin); m != "" {
		if os.Getenv("EVIDENT_REQUIRE_WITNESS") != "" {
			t.Fatalf("%s is required but missing (build litewitness with tools/litewitness)", m)
		}
		t.Skipf("no %s (build litewitness with tools/litewitness)", m)
	}
	w, err := litewitness.Start(bin, t.TempDir(), name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Close)
	return w
}

// countCosignatures returns the valid cosignatures on a bundle's checkpoint,
// by evident's verifier, and checks that code independent of evident agrees:
// golang.org/x/mod's note.Open with the log's key and torchwood's
// cosignature verifiers, built from the Ed25519 keys ssh-keygen wrote.
func countCosignatures(t *testing.T, path, logVkey string, ws ...*litewitness.Witness) []tlog.Cosignature {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	bu, err := evident.ParseBundle(b)
	if err != nil {
		t.Fatal(err)
	}
	var vs []*tlog.CosignatureVerifier
	for _, w := range ws {
		v, err := tlog.NewCosignatureVerifier(w.VerifierKey)
		if err != nil {
			t.Fatalf("litewitness printed %q: %v", w.VerifierKey, err)
		}
		vs = append(vs, v)
	}
	cs, invalid, err := tlog.VerifyCosignatures([]byte(bu.Checkpoint), vs)
	if err != nil || len(invalid) > 0 {
		t.Fatalf("cosignatures of %s: %v, invalid %v", path, err, invalid)
	}
	var evidentSaw, othersSaw []string
	for _, c := range cs {
		evidentSaw = append(evidentSaw, c.Name)
	}
	for _, n := range openIndependently(t, []byte(bu.Checkpoint), logVkey, ws...).Sigs {
		if n.Name != logName(logVkey) {
			othersSaw = append(othersSaw, n.Name)
		}
	}
	slices.Sort(evidentSaw)
	slices.Sort(othersSaw)
	if !slices.Equal(evidentSaw, othersSaw) {
		t.Errorf("%s: evident counts cosignatures by %v, x/mod's note.Open with torchwood's verifiers %v", path, evidentSaw, othersSaw)
	}
	return cs
}

// publicOnly is a crypto.Signer that only knows its public key: enough for
// torchwood.NewCosignatureSigner to build its verifier.
type publicOnly struct{ ed25519.PublicKey }

func (p publicOnly) Public() crypto.PublicKey { return p.PublicKey }
func (p publicOnly) Sign(io.Reader, []byte, crypto.SignerOpts) ([]byte, error) {
	return nil, errors.New("a public key does not sign")
}

// openIndependently opens a signed checkpoint with x/mod's note.Open, the
// log's note verifier and torchwood's cosignature verifiers of ws.
func openIndependently(t *testing.T, signed []byte, logVkey string, ws ...*litewitness.Witness) *note.Note {
	t.Helper()
	lv, err := note.NewVerifier(logVkey)
	if err != nil {
		t.Fatal(err)
	}
	verifiers := []note.Verifier{lv}
	for _, w := range ws {
		pub, err := w.PublicKey()
		if err != nil {
			t.Fatal(err)
		}
		tw, err := torchwood.NewCosignatureSigner(w.Name, publicOnly{pub})
		if err != nil {
			t.Fatal(err)
		}
		if tw.Verifier().String() != w.VerifierKey {
			t.Fatalf("torchwood's verifier key of %s's ssh key is %s, litewitness printed %s", w.Name, tw.Verifier(), w.VerifierKey)
		}
		verifiers = append(verifiers, tw.Verifier())
	}
	n, err := note.Open(signed, note.VerifierList(verifiers...))
	if err != nil {
		t.Fatalf("x/mod's note.Open with torchwood's verifiers: %v\n%s", err, signed)
	}
	return n
}

func logName(vkey string) string {
	name, _, _ := strings.Cut(vkey, "+")
	return name
}

// TestLitewitness: K2, A2, L6, end to end with two real, independent
// witnesses (litewitness, signing with keys held by ssh-agent). evident
// serve submits its checkpoints to both; a trust root requires both, with a
// ten-minute maximum log delay; evident run returns a bundle whose checkpoint
// both cosigned, and evident verify passes offline, printing the delay. One
// witness down: the log keeps appending, bundles carry one cosignature, and
// verify fails naming the witness check. The witness back up: new bundles
// pass again; bundle fetch adds the proof to the first witnessed checkpoint;
// log watch checks the cosignatures. A backdated token is refused by the
// delay check (K1). And a rollback of the log's store that grows another
// tree is refused by both witnesses and counted in /metrics.
func TestLitewitness(t *testing.T) {
	dir := t.TempDir()
	// The log's key first, so the witnesses know the log before it starts.
	skey, vkey, err := note.GenerateKey(rand.Reader, "evident.test/witnessed")
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "log.key"), []byte(skey+"\n"), 0o600)
	os.WriteFile(filepath.Join(dir, "log.vkey"), []byte(vkey+"\n"), 0o644)
	w1 := startWitness(t, "witness.test/w1")
	w2 := startWitness(t, "witness.test/w2")
	var args []string
	for _, w := range []*litewitness.Witness{w1, w2} {
		if err := w.Register("evident.test/witnessed", vkey); err != nil {
			t.Fatal(err)
		}
		args = append(args, "--witness", w.Name+"="+w.URL()+","+w.VerifierKey)
	}
	s := startServer(t, dir, append(args, "--witness-period", "200ms")...)
	repo, keys := filepath.Join(dir, "tuf"), filepath.Join(dir, "tuf-keys")
	root := filepath.Join(repo, "metadata", "1.root.json")
	work := t.TempDir()
	run := cliRunner(t, work, "EVIDENT_SERVER="+s.url, "EVIDENT_LOG_KEY="+s.key, "EVIDENT_TUF_ROOT="+root)
	// The trust root: both witnesses, threshold 2, one hour; a layout key.
	for _, w := range []*litewitness.Witness{w1, w2} {
		f := filepath.Join(work, strings.ReplaceAll(w.Name, "/", "_")+".vkey")
		os.WriteFile(f, []byte(w.VerifierKey+"\n"), 0o644)
		run(0, "tuf", "trust", "add", "--repo", repo, "--keys", keys, "--kind", "witness", "--name", w.Name, "--file", f)
	}
	run(0, "tuf", "trust", "policy", "--repo", repo, "--keys", keys, "--witness-threshold", "2", "--max-log-delay", "10m")
	publishOneStepLayout(t, run, work, repo, keys)
	tsaRoots := filepath.Join(dir, "tsa-chain.pem")
	mirror := filepath.Join(work, "mirror")

	// build runs the step into its own directory and verifies it offline.
	build := func(name string, wantVerify int, waitFlag string) (string, string) {
		t.Helper()
		out := filepath.Join(work, name)
		os.MkdirAll(out, 0o755)
		os.WriteFile(filepath.Join(work, "main.c"), []byte("int main(){} // "+name+"\n"), 0o644)
		runOut := run(0, "run", "--step", "build", "-m", "main.c", "-p", "app", "--tsa-roots", tsaRoots, "--out-dir", out,
			"--witness-wait", waitFlag, "--", "cp", "main.c", "app")
		os.RemoveAll(mirror)
		run(0, "tuf", "mirror", "--tuf", s.url+"/tuf", "--tuf-root", root, "--out", mirror)
		vout := run(wantVerify, "verify", "--tuf-root", root, "--tuf-mirror", mirror, "--layout", "acme/release", "--bundles", out)
		return runOut + vout, out
	}
	out, bdir := build("both", 0, "10s")
	if !strings.Contains(out, "witnessed by witness.test/w1, witness.test/w2") {
		t.Errorf("run with both witnesses up does not say who cosigned:\n%s", out)
	}
	backupFile := filepath.Join(t.TempDir(), "log.db")
	run(0, "backup", "--admin", "unix:"+filepath.Join(dir, "admin.sock"), "--out", backupFile)
	backup, err := os.ReadFile(backupFile)
	if err != nil {
		t.Fatal(err)
	}
	bundles, _ := filepath.Glob(filepath.Join(bdir, "*.bundle.json"))
	if n := len(countCosignatures(t, bundles[0], vkey, w1, w2)); n != 2 {
		t.Errorf("bundle with both witnesses up has %d cosignatures, want 2\n%s", n, out)
	}
	firstBundle, err := os.ReadFile(bundles[0])
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "PASS  build.") || !strings.Contains(out, ": log delay") || !strings.Contains(out, "verified") {
		t.Errorf("verify with both witnesses:\n%s", out)
	}

	// w2 down: the log appends, the bundle has w1's cosignature only, and
	// verify ignores the bundle, naming the witness check, and the step fails.
	w2.Stop()
	out, bdir = build("one", 1, "2s")
	bundles, _ = filepath.Glob(filepath.Join(bdir, "*.bundle.json"))
	if cs := countCosignatures(t, bundles[0], vkey, w1, w2); len(cs) != 1 || cs[0].Name != w1.Name {
		t.Errorf("bundle with w2 down has cosignatures %v, want w1's only\n%s", cs, out)
	}
	if !strings.Contains(out, "only witness.test/w1 cosigned") || !strings.Contains(out, "the bundle proves the entry is logged but not when") {
		t.Errorf("run with w2 down does not say the threshold was not met:\n%s", out)
	}
	if !strings.Contains(out, "SKIP  build.") || !strings.Contains(out, ": witnesses") || !strings.Contains(out, "threshold 2") {
		t.Errorf("verify with w2 down:\n%s", out)
	}

	// w2 back: newer bundles pass.
	if err := w2.Restart(); err != nil {
		t.Fatal(err)
	}
	out, bdir = build("again", 0, "20s")
	bundles, _ = filepath.Glob(filepath.Join(bdir, "*.bundle.json"))
	if n := len(countCosignatures(t, bundles[0], vkey, w1, w2)); n != 2 {
		t.Errorf("bundle with w2 back has %d cosignatures, want 2\n%s", n, out)
	}

	// bundle fetch adds the proof to the first witnessed checkpoint.
	fetched := filepath.Join(work, "fetched")
	run(0, "bundle", "fetch", "--index", "0", "--out", fetched)
	fb, _ := filepath.Glob(filepath.Join(fetched, "*.bundle.json"))
	b, _ := os.ReadFile(fb[0])
	// Later, it still proves when: its witnessed proof is to the first
	// checkpoint both witnesses cosigned after entry 0, the one run wrote
	// at the time; beside it, a proof to the latest checkpoint.
	first, _ := evident.ParseBundle(firstBundle)
	if bu, err := evident.ParseBundle(b); err != nil || bu.Witnessed == nil {
		t.Errorf("fetched bundle: %v, witnessed proof %v", err, bu != nil && bu.Witnessed != nil)
	} else if bu.Witnessed.Checkpoint != first.Checkpoint || bu.Checkpoint == first.Checkpoint {
		t.Errorf("fetched bundle of entry 0: witnessed checkpoint\n%s\nwant run's\n%s\nand a fresh checkpoint beside it, got\n%s", bu.Witnessed.Checkpoint, first.Checkpoint, bu.Checkpoint)
	}
	if out := run(0, "verify", "--tuf-root", root, "--tuf-mirror", mirror, "--layout", "acme/release", "--bundles", fetched); !strings.Contains(out, "verified") {
		t.Errorf("verify of a fetched bundle:\n%s", out)
	}
	// K1, the backdating attack: the TSA's real key and the development
	// CA (both valid for the last hour) make a token at a genTime inside
	// an SVID's life that ended 49 minutes ago, appended now. The log
	// accepts it — every signature is valid — and its checkpoints are
	// witnessed, but now: verify fails naming the delay check.
	genTime := time.Now().Add(-50 * time.Minute).Truncate(time.Second)
	logKeyFile := filepath.Join(dir, "log.vkey")
	run(0, "tuf", "trust", "add", "--repo", repo, "--keys", keys, "--kind", "log", "--name", "evident.test/witnessed-since-long",
		"--file", logKeyFile, "--start", time.Now().Add(-2*time.Hour).UTC().Format(time.RFC3339))
	tsaKey, tsaChain, err := serve.DataDir(dir).LoadTSA("", "", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	backdated, err := tsa.NewServer(tsa.Config{Signer: tsaKey, Chain: tsaChain, Now: func() time.Time { return genTime }})
	if err != nil {
		t.Fatal(err)
	}
	tsaSrv := httptest.NewServer(backdated.Handler())
	defer tsaSrv.Close()
	pool := x509.NewCertPool()
	pool.AddCert(tsaChain[len(tsaChain)-1])
	ca, err := serve.LoadOrCreateDevCA(dir, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	svidKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	id, _ := neturl.Parse("spiffe://evident.dev/ci/build")
	svid, err := ca.IssueSVID(id, svidKey.Public(), genTime.Add(-time.Minute), 2*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	mats := map[string]in_toto.HashObj{"main.c": {"sha256": strings.Repeat("ab", 32)}}
	prods := map[string]in_toto.HashObj{"app": {"sha256": strings.Repeat("cd", 32)}}
	mb, _, err := link.Sign(link.NewLink("build", []string{"cp", "main.c", "app"}, mats, prods, &link.Result{}),
		link.Signer{Key: svidKey, Chain: []*x509.Certificate{svid}})
	if err != nil {
		t.Fatal(err)
	}
	entry, err := link.Entry(context.Background(), &tsa.Client{URL: tsaSrv.URL + "/tsa", Roots: pool}, mb, []*x509.Certificate{svid}, nil)
	if err != nil {
		t.Fatal(err)
	}
	canonical, _ := entry.Marshal()
	res, err := s.client().Add(context.Background(), canonical)
	if err != nil {
		t.Fatalf("the log refused the backdated entry (every signature in it is valid): %v", err)
	}
	blb, _ := link.MarshalMetablock(mb)
	if err := (&linkstore.Client{URL: s.url}).Upload(context.Background(), res.Index, blb); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := fetchWitnessed(context.Background(), s.client(), res.Index, canonical, nil, 2, 20*time.Second); err != nil {
		t.Fatal(err)
	}
	attack := filepath.Join(work, "backdated")
	run(0, "bundle", "fetch", "--index", fmt.Sprint(res.Index), "--out", attack)
	os.RemoveAll(mirror)
	run(0, "tuf", "mirror", "--tuf", s.url+"/tuf", "--tuf-root", root, "--out", mirror)
	out = run(1, "verify", "--tuf-root", root, "--tuf-mirror", mirror, "--layout", "acme/release", "--bundles", attack)
	if !strings.Contains(out, "PASS  build.") || !strings.Contains(out, "SKIP  build.") || !strings.Contains(out, ": log delay") ||
		!strings.Contains(out, "entry was logged too long after its timestamp") {
		t.Errorf("verify of backdated evidence:\n%s", out)
	}
	t.Logf("verify of backdated evidence:\n%s", out)

	// log watch checks the cosignatures.
	if out := run(0, "log", "watch", "--once", "--state", filepath.Join(work, "watch.state")); !strings.Contains(out, "cosigned by witness.test/w1, witness.test/w2") {
		t.Errorf("log watch:\n%s", out)
	}

	// K2, L6: the log's store rolled back to the backup and grown into
	// another tree, so the log signs a second tree for sizes the witnesses
	// have seen. Both refuse it; evident counts it in /metrics.
	s.kill9(t)
	if err := os.WriteFile(filepath.Join(dir, "log.db"), backup, 0o600); err != nil {
		t.Fatal(err)
	}
	// This time the witnesses come from a configuration file.
	var conf strings.Builder
	conf.WriteString("# the log's witnesses\n")
	for _, w := range []*litewitness.Witness{w1, w2} {
		fmt.Fprintf(&conf, "%s=%s,%s\n", w.Name, w.URL(), w.VerifierKey)
	}
	confFile := filepath.Join(work, "witnesses.conf")
	os.WriteFile(confFile, []byte(conf.String()), 0o644)
	s = startServer(t, dir, "--witness-config", confFile, "--witness-period", "200ms")
	run = cliRunner(t, work, "EVIDENT_SERVER="+s.url, "EVIDENT_LOG_KEY="+s.key, "EVIDENT_TUF_ROOT="+root)
	for i := 0; i < 6; i++ {
		os.WriteFile(filepath.Join(work, "main.c"), []byte(fmt.Sprintf("int main(){} // fork %d\n", i)), 0o644)
		run(0, "run", "--step", "build", "-m", "main.c", "-p", "app", "--tsa-roots", tsaRoots, "--out-dir", t.TempDir(),
			"--witness-wait", "0s", "--", "cp", "main.c", "app")
	}
	for i := 0; ; i++ {
		m := string(getURL(t, s.url+"/metrics"))
		if !strings.Contains(m, `evident_witness_inconsistent_total{witness="witness.test/w1"} 0`) &&
			!strings.Contains(m, `evident_witness_inconsistent_total{witness="witness.test/w2"} 0`) {
			break
		}
		if i == 100 {
			t.Fatalf("the witnesses' refusals are not in /metrics:\n%s", m)
		}
		time.Sleep(100 * time.Millisecond) // the next witness period
	}
}

func getURL(t *testing.T, u string) []byte {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET %s: %v %s", u, err, resp.Status)
	}
	return b
}
