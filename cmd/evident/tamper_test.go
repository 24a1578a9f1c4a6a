package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/evident-dev/evident/internal/pemfile"
	"github.com/evident-dev/evident/internal/pkitest"
	"github.com/evident-dev/evident/log/logclient"
	"github.com/in-toto/in-toto-golang/in_toto"
)

// injectSigned inserts member at the start of the first object following
// `"signed":` (in a bundle, the link's), leaving every other byte alone.
func injectSigned(t *testing.T, b []byte, member string) []byte {
	t.Helper()
	loc := regexp.MustCompile(`"signed":\s*\{`).FindIndex(b)
	if loc == nil {
		t.Fatalf("no signed object in %s", b)
	}
	return append(append(append([]byte(nil), b[:loc[1]]...), member...), b[loc[1]:]...)
}

// TestTamperedEvidenceCLI drives evident as a user does against tampered
// evidence. P1: a bundle whose link carries a second "products" (same
// digest, signature and proof) is no evidence and the step it claims fails;
// a layout with a second "steps" (same signature) is refused by tuf
// publish-layout and by layout check, and fails verify at the layout check
// when forced through. A1: beside the valid bundles, the tampered one is
// reported (SKIP) and ignored. I5 and K3-adjacent: publish-layout refuses
// what is not a valid signed layout. I4: two --artifact files naming one
// product with different contents are refused.
func TestTamperedEvidenceCLI(t *testing.T) {
	dir := t.TempDir()
	s := startServer(t, dir)
	repo, keys := filepath.Join(dir, "tuf"), filepath.Join(dir, "tuf-keys")
	root := filepath.Join(repo, "metadata", "1.root.json")
	work := t.TempDir()
	run := func(want int, args ...string) (string, string) {
		t.Helper()
		cmd := exec.Command(binary, args...)
		cmd.Dir = work
		cmd.Env = append(os.Environ(), "EVIDENT_SERVER="+s.url, "EVIDENT_LOG_KEY="+s.key)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		}
		if code != want {
			t.Fatalf("evident %s = exit %d, want %d\n%s%s", strings.Join(args, " "), code, want, stdout.String(), stderr.String())
		}
		return stdout.String(), stderr.String()
	}
	write := func(name string, b []byte) string {
		p := filepath.Join(work, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	der, _ := x509.MarshalPKCS8PrivateKey(priv)
	var lk in_toto.Key
	lk.LoadKeyReaderDefaults(bytes.NewReader(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})))
	pubDER, _ := x509.MarshalPKIXPublicKey(priv.Public())
	write("layout-key.pub", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}))
	run(0, "tuf", "trust", "add", "--repo", repo, "--keys", keys, "--kind", "layout-key", "--name", "release", "--file", "layout-key.pub")
	step := func(name string, mats, prods [][]string) in_toto.Step {
		return in_toto.Step{Type: "step", Threshold: 1, PubKeys: []string{}, ExpectedCommand: []string{},
			CertificateConstraints: []in_toto.CertificateConstraint{{CommonName: "*", DNSNames: []string{"*"}, Emails: []string{"*"},
				Organizations: []string{"*"}, URIs: []string{"spiffe://evident.dev/ci/" + name}, Roots: []string{"evident-dev-ca"}}},
			SupplyChainItem: in_toto.SupplyChainItem{Name: name, ExpectedMaterials: mats, ExpectedProducts: prods}}
	}
	layout := in_toto.Metablock{Signed: in_toto.Layout{Type: "layout", Expires: time.Now().Add(24 * time.Hour).UTC().Format(time.RFC3339),
		Keys: map[string]in_toto.Key{}, Inspect: []in_toto.Inspection{},
		Steps: []in_toto.Step{
			step("build", [][]string{{"ALLOW", "main.c"}, {"DISALLOW", "*"}}, [][]string{{"CREATE", "app"}, {"DISALLOW", "*"}}),
			step("package", [][]string{{"MATCH", "app", "WITH", "PRODUCTS", "FROM", "build"}, {"DISALLOW", "*"}}, [][]string{{"CREATE", "app.tar"}, {"DISALLOW", "*"}}),
		}}, Signatures: []in_toto.Signature{}}
	if err := layout.Sign(lk); err != nil {
		t.Fatal(err)
	}
	lb, _ := json.Marshal(layout)
	write("release.layout", lb)

	// layout check, against the trust root from TUF, then publish.
	out, _ := run(0, "layout", "check", "release.layout", "--tuf-root", root, "--tuf", s.url+"/tuf")
	if !regexp.MustCompile(`PASS  layout signature +signed by layout key "release"`).MatchString(out) || !strings.Contains(out, "PASS  layout form") {
		t.Errorf("layout check =\n%s", out)
	}
	tr, _ := run(0, "tuf", "get", "trusted_root.json", "--tuf", s.url+"/tuf", "--tuf-root", root)
	write("trusted_root.json", []byte(tr))
	if out, _ := run(0, "layout", "check", "release.layout", "--trust-root", "trusted_root.json", "--at", time.Now().Add(time.Hour).UTC().Format(time.RFC3339)); !strings.Contains(out, "PASS  layout expiry") {
		t.Errorf("layout check --trust-root =\n%s", out)
	}
	if out, _ := run(1, "layout", "check", "release.layout", "--trust-root", "trusted_root.json", "--at", time.Now().Add(48*time.Hour).UTC().Format(time.RFC3339)); !strings.Contains(out, "FAIL  layout expiry      layout has expired") {
		t.Errorf("layout check after expiry =\n%s", out)
	}
	if out, _ := run(0, "layout", "check", "release.layout"); !strings.Contains(out, "SKIP  layout signature   not checked") {
		t.Errorf("layout check without a trust root =\n%s", out)
	}
	// K3/I1: trust domains are set for functionary CAs only, and published.
	caPEM := write("ca-b.pem", pemfile.EncodeCertificates([]*x509.Certificate{pkitest.NewCA(t, "CA B", time.Now(), time.Now().Add(time.Hour)).Cert}))
	run(0, "tuf", "trust", "add", "--repo", repo, "--keys", keys, "--kind", "functionary-ca", "--name", "ca-b", "--file", caPEM, "--trust-domain", "b.example")
	if _, errOut := run(2, "tuf", "trust", "add", "--repo", repo, "--keys", keys, "--kind", "tsa", "--name", "t", "--file", caPEM, "--trust-domain", "b.example"); !strings.Contains(errOut, "--trust-domain is for --kind functionary-ca only") {
		t.Errorf("trust add --kind tsa --trust-domain: %s", errOut)
	}
	if out, _ := run(0, "tuf", "get", "trusted_root.json", "--tuf", s.url+"/tuf", "--tuf-root", root); !regexp.MustCompile(`"trust_domains": \[\s+"evident.dev"`).MatchString(out) ||
		!regexp.MustCompile(`"trust_domains": \[\s+"b.example"`).MatchString(out) {
		t.Errorf("trust root = %s", out)
	}
	run(2, "layout", "check")
	run(2, "layout", "frobnicate")
	run(0, "tuf", "publish-layout", "--repo", repo, "--keys", keys, "--project", "acme", "--name", "release", "--file", "release.layout")

	// publish-layout refuses what is not a valid signed layout; nothing is published.
	unsigned := layout
	unsigned.Signatures = []in_toto.Signature{}
	ub, _ := json.Marshal(unsigned)
	wide := `"steps":[{"_type":"step","name":"build","threshold":1,"pubkeys":[],"expected_command":[],"expected_materials":[],"expected_products":[],` +
		`"cert_constraints":[{"common_name":"*","dns_names":["*"],"emails":["*"],"organizations":["*"],"uris":["*"],"roots":["*"]}]}],`
	write("tampered.layout", injectSigned(t, lb, wide))
	for _, c := range []struct{ file, want string }{
		{write("hello.layout", []byte("hello")), "layout: layout is not acceptable: not an in-toto layout"},
		{write("unsigned.layout", ub), "layout signature: layout is not signed by a trusted layout key"},
		{write("a.link", []byte(`{"signed":{"_type":"link","name":"x","materials":{},"products":{},"byproducts":{},"command":[],"environment":{}},"signatures":[]}`)), `not an in-toto layout: json: unknown field`},
		{"tampered.layout", `duplicate key "steps" at $.signed`},
	} {
		_, errOut := run(1, "tuf", "publish-layout", "--repo", repo, "--keys", keys, "--project", "acme", "--name", "release", "--file", c.file)
		if !strings.Contains(errOut, c.want) || !strings.Contains(errOut, "layout not published") {
			t.Errorf("publish-layout %s: stderr =\n%s\nwant %q", c.file, errOut, c.want)
		}
	}
	if _, errOut := run(0, "tuf", "layout", "--tuf", s.url+"/tuf", "--tuf-root", root, "--project", "acme", "--name", "release"); !strings.Contains(errOut, "version 1,") {
		t.Errorf("after refused publications, the layout is %s", errOut)
	}
	out, errOut := run(1, "layout", "check", "tampered.layout", "--tuf-root", root, "--tuf", s.url+"/tuf")
	if !regexp.MustCompile(`FAIL  layout +layout is not acceptable: not an in-toto layout: decoding is not faithful to the signed bytes: duplicate key "steps" at \$\.signed`).MatchString(out) ||
		!strings.Contains(errOut, "the layout has 1 problem") {
		t.Errorf("layout check of a tampered layout =\n%s%s", out, errOut)
	}

	// CI: two steps with development SVIDs.
	write("main.c", []byte("int main(){}\n"))
	tsaRoots := filepath.Join(dir, "tsa-chain.pem")
	run(0, "run", "--step", "build", "-m", "main.c", "-p", "app", "--tsa-roots", tsaRoots, "--", "cp", "main.c", "app")
	run(0, "run", "--step", "package", "-m", "app", "-p", "app.tar", "--tsa-roots", tsaRoots, "--", "tar", "cf", "app.tar", "app")
	mirror := filepath.Join(work, "mirror")
	run(0, "tuf", "mirror", "--tuf", s.url+"/tuf", "--tuf-root", root, "--out", mirror)
	bundles, tampered := filepath.Join(work, "bundles"), filepath.Join(work, "tampered")
	os.MkdirAll(bundles, 0o755)
	os.MkdirAll(tampered, 0o755)
	for _, m := range []string{"build.*.bundle.json", "package.*.bundle.json"} {
		ps, _ := filepath.Glob(filepath.Join(work, m))
		if len(ps) != 1 {
			t.Fatalf("%s: %v", m, ps)
		}
		b, _ := os.ReadFile(ps[0])
		os.WriteFile(filepath.Join(bundles, filepath.Base(ps[0])), b, 0o644)
		if strings.HasPrefix(filepath.Base(ps[0]), "build.") {
			b = injectSigned(t, b, `"products":{"evil":{"sha256":"`+strings.Repeat("0", 64)+`"}},`)
		}
		os.WriteFile(filepath.Join(tampered, filepath.Base(ps[0])), b, 0o644)
	}
	verifyArgs := func(dir string, extra ...string) []string {
		return append([]string{"verify", "--tuf-root", root, "--tuf-mirror", mirror, "--layout", "acme/release", "--bundles", dir}, extra...)
	}
	out, _ = run(1, verifyArgs(tampered, "--artifact", "app.tar")...)
	if !regexp.MustCompile(`SKIP  build\.[0-9a-f]+\.bundle\.json +ignored: .*duplicate key "products" at \$\.link\.signed`).MatchString(out) ||
		!strings.Contains(out, "FAIL  step build") || strings.Contains(out, "verified") {
		t.Errorf("verify with a tampered build bundle =\n%s", out)
	}
	// A1: the tampered bundle beside the valid ones is ignored.
	tb, _ := filepath.Glob(filepath.Join(tampered, "build.*.bundle.json"))
	b, _ := os.ReadFile(tb[0])
	os.WriteFile(filepath.Join(bundles, "zz-tampered.bundle.json"), b, 0o644)
	out, _ = run(0, verifyArgs(bundles, "--artifact", "app.tar")...)
	if !strings.Contains(out, "SKIP  zz-tampered.bundle.json") || !strings.Contains(out, "PASS  artifact app.tar") || !strings.Contains(out, "verified") {
		t.Errorf("verify with a tampered bundle beside the valid ones =\n%s", out)
	}
	// I4: two files naming product app.tar, with different contents.
	os.MkdirAll(filepath.Join(work, "other"), 0o755)
	write("other/app.tar", []byte("other"))
	if _, errOut := run(2, verifyArgs(bundles, "--artifact", "app.tar", "--artifact", filepath.Join(work, "other", "app.tar"))...); !strings.Contains(errOut, "both name product app.tar") {
		t.Errorf("two --artifact app.tar = %s", errOut)
	}
	// The tampered layout, forced through, fails verification at the layout.
	_, errOut = run(0, "tuf", "publish-layout", "--repo", repo, "--keys", keys, "--project", "acme", "--name", "release", "--file", "tampered.layout", "--force")
	if !strings.Contains(errOut, "publishing anyway (--force)") {
		t.Errorf("publish-layout --force = %s", errOut)
	}
	mirror2 := filepath.Join(work, "mirror2")
	run(0, "tuf", "mirror", "--tuf", s.url+"/tuf", "--tuf-root", root, "--out", mirror2)
	out, _ = run(1, "verify", "--tuf-root", root, "--tuf-mirror", mirror2, "--layout", "acme/release", "--bundles", bundles)
	if !regexp.MustCompile(`FAIL  layout +layout is not acceptable: not an in-toto layout: decoding is not faithful to the signed bytes: duplicate key "steps" at \$\.signed`).MatchString(out) {
		t.Errorf("verify with a tampered layout =\n%s", out)
	}
}

// TestIngestRefusesAmbiguousEntries covers P1 at ingest: an entry whose
// JSON repeats a key, or carries "public_key": "" beside its chain, or an
// unknown payload type, is refused with a 400 that says why.
func TestIngestRefusesAmbiguousEntries(t *testing.T) {
	dir := t.TempDir()
	s := startServer(t, dir)
	m := newMinter(t, dir, s.url)
	good := string(m.mustEntry(t, 0, 0))
	for _, c := range []struct{ name, entry, want string }{
		{"duplicate key", strings.Replace(good, `{`, `{"payload_sha256":"`+strings.Repeat("0", 64)+`",`, 1), `duplicate key "payload_sha256"`},
		{"empty public_key", strings.Replace(good, `,"timestamp"`, `,"public_key":"","timestamp"`, 1), "public_key is present but empty"},
		{"unknown payload type", strings.Replace(good, `"payload_type":"application/vnd.in-toto.link+json"`, `"payload_type":"text/plain"`, 1), `payload_type "text/plain" is unknown`},
	} {
		_, err := s.client().Add(context.Background(), []byte(c.entry))
		var he *logclient.HTTPError
		if !errors.As(err, &he) || he.Status != 400 || !strings.Contains(he.Message, c.want) {
			t.Errorf("%s: Add = %v, want 400 naming %q", c.name, err, c.want)
		}
	}
}
