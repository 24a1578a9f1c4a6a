package main

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/evident-dev/evident/internal/pkitest"
	"github.com/in-toto/in-toto-golang/in_toto"
	ssldsse "github.com/secure-systems-lab/go-securesystemslib/dsse"
	"github.com/secure-systems-lab/go-securesystemslib/signerverifier"
)

// sslSigner signs DSSE envelopes with go-securesystemslib's envelope
// signer — the DSSE code in-toto-golang signs with — and its own ECDSA
// signer, loaded from the key's PEM by go-securesystemslib, key id
// included: nothing of evident's makes the envelope.
type sslSigner struct {
	keyID string
	es    *ssldsse.EnvelopeSigner
	pub   []byte // PEM
}

func newSSLSigner(t *testing.T, key crypto.Signer) *sslSigner {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	sk, err := signerverifier.LoadKey(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	if err != nil {
		t.Fatal(err)
	}
	sv, err := signerverifier.NewECDSASignerVerifierFromSSLibKey(sk)
	if err != nil {
		t.Fatal(err)
	}
	es, err := ssldsse.NewEnvelopeSigner(sv)
	if err != nil {
		t.Fatal(err)
	}
	pubDER, _ := x509.MarshalPKIXPublicKey(key.Public())
	return &sslSigner{keyID: sk.KeyID, es: es, pub: pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})}
}

// sign writes the envelope of an in-toto Statement to path, as
// go-securesystemslib encodes it.
func (s *sslSigner) sign(t *testing.T, path string, statement []byte) {
	t.Helper()
	env, err := s.es.SignPayload(context.Background(), "application/vnd.in-toto+json", statement)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(env)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// statementJSON is an in-toto Statement v1 about one subject, written by
// hand.
func statementJSON(subject, digest, predicateType, predicate string) []byte {
	return fmt.Appendf(nil, `{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":%q,"digest":{"sha256":%q}}],"predicateType":%q,"predicate":%s}`,
		subject, digest, predicateType, predicate)
}

// TestSubmitDSSESignedElsewhere: DSSE envelopes signed by another tool
// (go-securesystemslib's envelope signer) are submitted through the CLI —
// a link of the build step with its functionary's --public-key, an SLSA
// provenance with a certificate chain (--cert) from a CA the server and the
// trust root trust — then fetched back by artifact and verified by evident
// verify: the step by its key, the provenance by its SPIFFE ID. An
// envelope whose payload was changed after signing, or submitted with
// another key, is refused before anything is logged.
func TestSubmitDSSESignedElsewhere(t *testing.T) {
	dir, work := t.TempDir(), t.TempDir()
	now := time.Now()
	ca := pkitest.NewCA(t, "Company CI CA", now.Add(-time.Hour), now.Add(24*time.Hour))
	caFile := filepath.Join(work, "ca.pem")
	os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Cert.Raw}), 0o644)
	s := startServer(t, dir, "--functionary-roots", caFile)
	run := cliRunner(t, work, "EVIDENT_SERVER="+s.url, "EVIDENT_LOG_KEY="+s.key)
	tsaRoots := filepath.Join(dir, "tsa-chain.pem")

	// The signers: a plain key, and a certificate with a SPIFFE ID.
	plainKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	plain := newSSLSigner(t, plainKey)
	os.WriteFile(filepath.Join(work, "plain.pub.pem"), plain.pub, 0o644)
	leaf, certKey := ca.SVID(t, "spiffe://example.org/ci/build", now.Add(-time.Hour), now.Add(time.Hour))
	byCert := newSSLSigner(t, certKey)
	os.WriteFile(filepath.Join(work, "build.crt"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leaf.Raw}), 0o644)

	// The release manager's trust root and layout: step build, signed by
	// the plain key.
	repo, keys := filepath.Join(dir, "tuf"), filepath.Join(dir, "tuf-keys")
	run(0, "tuf", "trust", "add", "--repo", repo, "--keys", keys, "--kind", "functionary-ca", "--name", "company", "--file", caFile)
	publishKeyStepLayout(t, run, work, repo, keys, plain)

	// The build step's link, as a DSSE envelope, and a provenance about its
	// product.
	os.WriteFile(filepath.Join(work, "main.c"), []byte("int main(void) { return 0; }\n"), 0o644)
	os.WriteFile(filepath.Join(work, "app"), []byte("the app\n"), 0o644)
	mainSHA, appSHA := sha("int main(void) { return 0; }\n"), sha("the app\n")
	link := statementJSON("app", appSHA, "https://in-toto.io/attestation/link/v0.3",
		fmt.Sprintf(`{"name":"build","command":["cc","-o","app","main.c"],"materials":[{"name":"main.c","digest":{"sha256":%q}}],"byproducts":{"return-value":0}}`, mainSHA))
	plain.sign(t, filepath.Join(work, "build.dsse.json"), link)
	provenance := statementJSON("app", appSHA, "https://slsa.dev/provenance/v1",
		`{"buildDefinition":{"buildType":"https://example.org/make/v1","externalParameters":{}},"runDetails":{"builder":{"id":"https://ci.example.org"}}}`)
	byCert.sign(t, filepath.Join(work, "provenance.dsse.json"), provenance)

	// Refused: the payload changed after signing; the right envelope with
	// another key.
	env, _ := os.ReadFile(filepath.Join(work, "build.dsse.json"))
	var tampered ssldsse.Envelope
	json.Unmarshal(env, &tampered)
	tampered.Payload = base64.StdEncoding.EncodeToString(bytes.Replace(link, []byte(`"app"`), []byte(`"ap2"`), 1))
	other, _ := json.Marshal(tampered)
	os.WriteFile(filepath.Join(work, "tampered.dsse.json"), other, 0o644)
	for _, c := range []struct{ args []string }{
		{[]string{"submit", "tampered.dsse.json", "--public-key", "plain.pub.pem"}},
		{[]string{"submit", "build.dsse.json", "--cert", "build.crt"}},
	} {
		out := run(1, append(c.args, "--tsa-roots", tsaRoots)...)
		if !strings.Contains(out, "its first signature is not by that key") {
			t.Errorf("evident %s: %s", strings.Join(c.args, " "), out)
		}
	}

	// Submitted with the signer's public key, and with its certificate.
	out := run(0, "submit", "build.dsse.json", "--public-key", "plain.pub.pem", "--tsa-roots", tsaRoots)
	if !strings.Contains(out, "build.dsse.json: logged at index 0, wrote ") {
		t.Errorf("submit --public-key: %s", out)
	}
	out = run(0, "submit", "provenance.dsse.json", "--cert", "build.crt", "--tsa-roots", tsaRoots)
	if !strings.Contains(out, "provenance.dsse.json: logged at index 1, wrote ") {
		t.Errorf("submit --cert: %s", out)
	}

	// Fetched back by artifact, and verified.
	out = run(0, "bundle", "fetch", "--artifact", "app", "--out", "bundles")
	for _, want := range []string{`wrote bundles/build\.` + plain.keyID[:8] + `\.0\.bundle\.json`, `wrote bundles/attestation\.[0-9a-f]{8}\.1\.bundle\.json`} {
		if !regexp.MustCompile(want).MatchString(out) {
			t.Errorf("bundle fetch --artifact app: want %s\n%s", want, out)
		}
	}
	verifyArgs := []string{"verify", "--tuf-root", filepath.Join(repo, "metadata", "1.root.json"), "--tuf", s.url + "/tuf",
		"--layout", "acme/release", "--bundles", "bundles", "--artifact", "app"}
	out = run(0, append(verifyArgs, "--require-predicate", "https://slsa.dev/provenance/v1=spiffe://example.org/ci/build")...)
	for _, want := range []string{
		"PASS  step build", "threshold 1 met by key " + plain.keyID,
		"PASS  predicate https://slsa.dev/provenance/v1 by spiffe://example.org/ci/build", "signed by spiffe://example.org/ci/build covers app",
		"verified",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("verify: want %q\n%s", want, out)
		}
	}
	// The provenance is by the certificate, not by the step's key.
	out = run(1, append(verifyArgs, "--require-predicate", "https://slsa.dev/provenance/v1=spiffe://example.org/ci/test")...)
	if !strings.Contains(out, "signed by spiffe://example.org/ci/build, not spiffe://example.org/ci/test") {
		t.Errorf("verify requiring another signer: %s", out)
	}
}

// publishKeyStepLayout publishes layout acme/release: one step, build,
// whose functionary is signer's key (its key id as go-securesystemslib
// computes it), signed by a new layout key in the trust root.
func publishKeyStepLayout(t *testing.T, run func(int, ...string) string, work, repo, keys string, signer *sslSigner) {
	t.Helper()
	layoutKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKCS8PrivateKey(layoutKey)
	var lk in_toto.Key
	if err := lk.LoadKeyReaderDefaults(bytes.NewReader(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))); err != nil {
		t.Fatal(err)
	}
	pubDER, _ := x509.MarshalPKIXPublicKey(layoutKey.Public())
	os.WriteFile(filepath.Join(work, "layout-key.pub"), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}), 0o644)
	run(0, "tuf", "trust", "add", "--repo", repo, "--keys", keys, "--kind", "layout-key", "--name", "release", "--file", "layout-key.pub")
	var fk in_toto.Key
	if err := fk.LoadKeyReaderDefaults(bytes.NewReader(signer.pub)); err != nil {
		t.Fatal(err)
	}
	if fk.KeyID != signer.keyID {
		t.Fatalf("in-toto-golang names the functionary key %s, go-securesystemslib %s", fk.KeyID, signer.keyID)
	}
	layout := in_toto.Metablock{Signed: in_toto.Layout{Type: "layout", Expires: time.Now().Add(24 * time.Hour).UTC().Format(time.RFC3339),
		Keys: map[string]in_toto.Key{fk.KeyID: fk}, Inspect: []in_toto.Inspection{},
		Steps: []in_toto.Step{{Type: "step", Threshold: 1, PubKeys: []string{fk.KeyID}, ExpectedCommand: []string{},
			SupplyChainItem: in_toto.SupplyChainItem{Name: "build", ExpectedMaterials: [][]string{{"ALLOW", "main.c"}, {"DISALLOW", "*"}},
				ExpectedProducts: [][]string{{"CREATE", "app"}, {"DISALLOW", "*"}}}}}}, Signatures: []in_toto.Signature{}}
	if err := layout.Sign(lk); err != nil {
		t.Fatal(err)
	}
	lb, _ := json.Marshal(layout)
	os.WriteFile(filepath.Join(work, "release.layout"), lb, 0o644)
	run(0, "tuf", "publish-layout", "--repo", repo, "--keys", keys, "--project", "acme", "--name", "release", "--file", "release.layout")
}
