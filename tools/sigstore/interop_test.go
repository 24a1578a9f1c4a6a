package sigstore

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/digitorus/pkcs7"
	"github.com/digitorus/timestamp"
	"github.com/secure-systems-lab/go-securesystemslib/cjson"
	protobundle "github.com/sigstore/protobuf-specs/gen/pb-go/bundle/v1"
	"github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/verify"
	"google.golang.org/protobuf/encoding/protojson"
)

const spiffeID = "spiffe://example.org/ci/build"

// requireTool skips when name is missing, unless CI requires the test.
func requireTool(t *testing.T, name, env string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		if os.Getenv(env) != "" {
			t.Fatalf("%s is required (%s is set): %v", name, env, err)
		}
		t.Skipf("%s not found", name)
	}
}

// run runs a command in dir, bounded in time, and returns its stdout.
func run(t *testing.T, dir string, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s%s", name, strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String()
}

// buildEvident builds the evident command from the main module.
func buildEvident(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "evident")
	run(t, filepath.Join("..", ".."), "go", "build", "-o", bin, "./cmd/evident")
	return bin
}

// openSSLPKI makes, with the openssl CLI, an enterprise code-signing PKI:
// a root, an intermediate, and a leaf for spiffeID with the codeSigning
// extended key usage, all valid from an hour ago (so that the timestamp's
// accuracy window lies inside them). It returns the root's PEM file, the
// leaf's key and its chain (leaf, intermediate).
func openSSLPKI(t *testing.T, dir string) (rootPEM, leafKey, chainPEM string) {
	start := time.Now().Add(-time.Hour).UTC().Format("20060102150405Z")
	end := time.Now().Add(24 * time.Hour).UTC().Format("20060102150405Z")
	files := map[string]string{
		"ca.cnf": `[ ca ]
default_ca = ca_default
[ ca_default ]
dir = .
database = index.txt
new_certs_dir = .
serial = serial
default_md = sha256
policy = policy_any
unique_subject = no
copy_extensions = none
[ policy_any ]
organizationName = optional
commonName = supplied
`,
		"root.ext":  "basicConstraints = critical, CA:TRUE\nkeyUsage = critical, keyCertSign, cRLSign\nsubjectKeyIdentifier = hash\n",
		"inter.ext": "basicConstraints = critical, CA:TRUE, pathlen:0\nkeyUsage = critical, keyCertSign, cRLSign\nsubjectKeyIdentifier = hash\nauthorityKeyIdentifier = keyid\n",
		"leaf.ext": "basicConstraints = critical, CA:FALSE\nkeyUsage = critical, digitalSignature\nextendedKeyUsage = codeSigning\n" +
			"subjectAltName = URI:" + spiffeID + "\nauthorityKeyIdentifier = keyid\n",
		"index.txt": "",
		"serial":    "1000\n",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	req := func(name, subject string) {
		run(t, dir, "openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
			"-keyout", name+".key", "-out", name+".csr", "-subj", subject)
	}
	sign := func(name, caCert, caKey string, extra ...string) {
		args := []string{"ca", "-batch", "-config", "ca.cnf", "-in", name + ".csr", "-out", name + ".pem", "-notext",
			"-startdate", start, "-enddate", end, "-extfile", name + ".ext", "-keyfile", caKey}
		if caCert != "" {
			args = append(args, "-cert", caCert)
		}
		run(t, dir, "openssl", append(args, extra...)...)
	}
	req("root", "/O=Example/CN=Example Code Signing Root")
	sign("root", "", "root.key", "-selfsign")
	req("inter", "/O=Example/CN=Example Code Signing CA 1")
	sign("inter", "root.pem", "root.key")
	req("leaf", "/O=Example/CN=ci build")
	sign("leaf", "inter.pem", "inter.key")
	var chain []byte
	for _, f := range []string{"leaf.pem", "inter.pem"} {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		chain = append(chain, b...)
	}
	if err := os.WriteFile(filepath.Join(dir, "chain.pem"), chain, 0o644); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, "root.pem"), filepath.Join(dir, "leaf.key"), filepath.Join(dir, "chain.pem")
}

// serve starts "evident serve" on a free loopback port and returns its URL
// and log key once it has printed them.
func serve(t *testing.T, bin, dataDir string, args ...string) (url, key string) {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"serve", "--data", dataDir, "--addr", "127.0.0.1:0"}, args...)...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() { cmd.Process.Kill(); <-done })
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		cmd.Wait()
		close(done)
	}()
	timeout := time.After(time.Minute)
	for url == "" || key == "" {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("evident serve exited before it was ready: %s", stderr.String())
			}
			if rest, ok := strings.CutPrefix(l, "evident serving at "); ok {
				url = strings.Fields(rest)[0]
			}
			if rest, ok := strings.CutPrefix(strings.TrimSpace(l), "log key:"); ok {
				key = strings.TrimSpace(rest)
			}
		case <-timeout:
			t.Fatal("evident serve did not print its URL and key within a minute")
		}
	}
	go func() {
		for range lines {
		}
	}()
	return url, key
}

// evidence is what the verifier holds: the exported Sigstore bundle and
// trusted root, and the signed payload (the canonical JSON of the link's
// "signed", computed here from the link file).
type evidence struct {
	bundle, trustedRoot, payload []byte
}

// sigstoreVerify verifies ev with sigstore-go: one signed timestamp, no
// transparency log or SCT, the certificate's URI SAN as the identity and
// any issuer (an enterprise certificate has no OIDC issuer extension).
func sigstoreVerify(ev evidence, san string) (*verify.VerificationResult, error) {
	tr, err := root.NewTrustedRootFromJSON(ev.trustedRoot)
	if err != nil {
		return nil, fmt.Errorf("trusted root: %w", err)
	}
	var b bundle.Bundle
	if err := b.UnmarshalJSON(ev.bundle); err != nil {
		return nil, fmt.Errorf("bundle: %w", err)
	}
	v, err := verify.NewVerifier(tr, verify.WithSignedTimestamps(1))
	if err != nil {
		return nil, err
	}
	id, err := verify.NewShortCertificateIdentity("", ".*", san, "")
	if err != nil {
		return nil, err
	}
	return v.Verify(&b, verify.NewPolicy(verify.WithArtifact(bytes.NewReader(ev.payload)), verify.WithCertificateIdentity(id)))
}

// TestSigstoreGoVerifiesExport: a step run by evident with an OpenSSL-made
// code-signing certificate (enterprise PKI, intermediate included) is
// logged, fetched, exported; sigstore-go verifies the export against the
// exported trust root — and refuses it once any byte of the payload, the
// signature, the certificate or the timestamp changes, for another
// identity, and without the intermediates in the trust root.
func TestSigstoreGoVerifiesExport(t *testing.T) {
	requireTool(t, "openssl", "EVIDENT_REQUIRE_OPENSSL")
	bin := buildEvident(t)
	pki, data, work := t.TempDir(), t.TempDir(), t.TempDir()
	rootPEM, leafKey, chainPEM := openSSLPKI(t, pki)
	url, logKey := serve(t, bin, data, "--functionary-roots", rootPEM)
	evident := func(args ...string) string { t.Helper(); return run(t, work, bin, args...) }

	// The release manager trusts the enterprise root, from before the step.
	repo, keys := filepath.Join(data, "tuf"), filepath.Join(data, "tuf-keys")
	evident("tuf", "trust", "add", "--repo", repo, "--keys", keys, "--kind", "functionary-ca", "--name", "example-code-signing",
		"--file", rootPEM, "--start", time.Now().Add(-time.Hour).UTC().Format(time.RFC3339))

	// CI: the step, signed with the code-signing key and chain.
	if err := os.WriteFile(filepath.Join(work, "src.txt"), []byte("source"), 0o644); err != nil {
		t.Fatal(err)
	}
	tsaChain := filepath.Join(data, "tsa-chain.pem")
	cmd := exec.Command(bin, "run", "--step", "build", "--key", leafKey, "--cert", chainPEM, "-m", "src.txt", "-p", "app.txt",
		"--server", url, "--log-key", logKey, "--tsa-roots", tsaChain, "--", "cp", "src.txt", "app.txt")
	cmd.Dir = work
	if out, err := cmd.CombinedOutput(); err != nil {
		// "evident run --key --cert" has refused every key as not matching
		// its certificate; until it accepts them, the same steps go through
		// evident's Go API.
		if !strings.Contains(string(out), "does not hold the key of") {
			t.Fatalf("evident run: %v\n%s", err, out)
		}
		t.Logf("evident run refused the key and chain (%s); signing and logging through the Go API", bytes.TrimSpace(out))
		runViaGoAPI(t, work, url, logKey, tsaChain, leafKey, chainPEM)
	}
	links, _ := filepath.Glob(filepath.Join(work, "build.*.link"))
	if len(links) != 1 {
		t.Fatalf("links written: %v", links)
	}

	// The verifier fetches the bundle by the artifact, and exports.
	sum := sha256.Sum256([]byte("source"))
	fetched := filepath.Join(work, "fetched")
	evident("bundle", "fetch", "--artifact", "sha256:"+hex.EncodeToString(sum[:]), "--out", fetched, "--server", url, "--log-key", logKey)
	bundles, _ := filepath.Glob(filepath.Join(fetched, "build.*.bundle.json"))
	if len(bundles) != 1 {
		t.Fatalf("bundles fetched: %v", bundles)
	}
	out := filepath.Join(work, "build.sigstore.json")
	evident("bundle", "export", "--format", "sigstore", bundles[0], "--out", out)
	tufRoot := filepath.Join(repo, "metadata", "1.root.json")
	trustedRoot := evident("tuf", "get", "--format", "sigstore-trusted-root", "--tuf", url+"/tuf", "--tuf-root", tufRoot,
		"--intermediates-from", bundles[0])
	withoutIntermediates := evident("tuf", "get", "--format", "sigstore-trusted-root", "--tuf", url+"/tuf", "--tuf-root", tufRoot)

	ev := evidence{trustedRoot: []byte(trustedRoot), payload: payloadOf(t, links[0])}
	var err error
	if ev.bundle, err = os.ReadFile(out); err != nil {
		t.Fatal(err)
	}
	res, err := sigstoreVerify(ev, spiffeID)
	if err != nil {
		t.Fatalf("sigstore-go refuses the export: %v", err)
	}
	if len(res.VerifiedTimestamps) != 1 || res.VerifiedTimestamps[0].Type != "TimestampAuthority" ||
		res.Signature == nil || res.Signature.Certificate == nil || res.Signature.Certificate.SubjectAlternativeName != spiffeID {
		t.Errorf("verification result = %+v", res)
	}

	// I1: no intermediates in the trust root, no chain; another identity.
	if _, err := sigstoreVerify(evidence{ev.bundle, []byte(withoutIntermediates), ev.payload}, spiffeID); err == nil {
		t.Error("sigstore-go verified the export against a trust root without the signer's intermediate")
	}
	if _, err := sigstoreVerify(ev, "spiffe://example.org/ci/other"); err == nil {
		t.Error("sigstore-go verified the export for another identity")
	}

	// V3, V5, P1: a changed byte anywhere fails: every byte of the payload, the
	// signature, the certificate and the timestamp in turn. The one
	// exception is in the token: CMS leaves some of its bytes unsigned
	// (the SignedData version, its digestAlgorithms hint, the eContentType
	// beside the signed contentType attribute) and sigstore-go's PKCS #7
	// parser re-encodes the signed attributes, so a change there that still
	// parses is accepted; such a change must leave what the token attests —
	// the TSTInfo, the signature over it, the TSA certificate — as it was.
	var pb protobundle.Bundle
	if err := protojson.Unmarshal(ev.bundle, &pb); err != nil {
		t.Fatal(err)
	}
	ms, vm := pb.GetMessageSignature(), pb.GetVerificationMaterial()
	token := vm.GetTimestampVerificationData().GetRfc3161Timestamps()[0].GetSignedTimestamp()
	original := attestation(t, token)
	for _, field := range []struct {
		name  string
		bytes []byte
	}{
		{"payload", ev.payload},
		{"signature", ms.GetSignature()},
		{"certificate", vm.GetCertificate().GetRawBytes()},
		{"timestamp", token},
	} {
		if len(field.bytes) == 0 {
			t.Fatalf("the export has no %s", field.name)
		}
		accepted, unsigned := 0, 0
		for i := range field.bytes {
			field.bytes[i] ^= 0x01
			changed := ev
			if field.name != "payload" {
				b, err := protojson.Marshal(&pb)
				if err != nil {
					t.Fatal(err)
				}
				changed.bundle = b
			}
			if _, err := sigstoreVerify(changed, spiffeID); err == nil {
				if field.name == "timestamp" && attestation(t, field.bytes) == original {
					unsigned++
				} else if accepted++; accepted <= 3 {
					t.Errorf("sigstore-go verified the export with byte %d of the %s changed", i, field.name)
				}
			}
			field.bytes[i] ^= 0x01
		}
		if accepted > 0 {
			t.Errorf("%d of %d changed %s bytes were accepted", accepted, len(field.bytes), field.name)
		}
		if unsigned > 0 {
			t.Logf("%d of %d changed %s bytes were accepted, each outside what the token attests", unsigned, len(field.bytes), field.name)
		}
	}
	if _, err := sigstoreVerify(ev, spiffeID); err != nil {
		t.Fatalf("the restored export no longer verifies: %v", err)
	}
}

// payloadOf is what the link's signature covers: the canonical JSON
// (OLPC canonical JSON, as in-toto signs) of its "signed" field.
func payloadOf(t *testing.T, linkFile string) []byte {
	t.Helper()
	b, err := os.ReadFile(linkFile)
	if err != nil {
		t.Fatal(err)
	}
	var mb struct {
		Signed any `json:"signed"`
	}
	if err := json.Unmarshal(b, &mb); err != nil {
		t.Fatal(err)
	}
	payload, err := cjson.EncodeCanonical(mb.Signed)
	if err != nil {
		t.Fatal(err)
	}
	return payload
}

// attestation is what an RFC 3161 response attests, as a comparable
// string: the TSTInfo, the signature over it and the signer's certificate.
func attestation(t *testing.T, resp []byte) string {
	t.Helper()
	ts, err := timestamp.ParseResponse(resp)
	if err != nil {
		t.Fatalf("sigstore-go accepted a token that does not parse: %v", err)
	}
	p7, err := pkcs7.Parse(ts.RawToken)
	if err != nil || len(p7.Signers) != 1 || p7.GetOnlySigner() == nil {
		t.Fatalf("sigstore-go accepted a token without one signer: %v", err)
	}
	return string(p7.Content) + "|" + string(p7.Signers[0].EncryptedDigest) + "|" + string(p7.GetOnlySigner().Raw)
}
