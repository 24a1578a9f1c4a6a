package sigstore

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
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

var evidentBin struct {
	once sync.Once
	dir  string
	err  error
}

// TestMain removes the evident command built for the tests.
func TestMain(m *testing.M) {
	code := m.Run()
	if evidentBin.dir != "" {
		os.RemoveAll(evidentBin.dir)
	}
	os.Exit(code)
}

// buildEvident builds the evident command from the main module, once.
func buildEvident(t *testing.T) string {
	t.Helper()
	evidentBin.once.Do(func() {
		if evidentBin.dir, evidentBin.err = os.MkdirTemp("", "evident-sigstore-"); evidentBin.err != nil {
			return
		}
		cmd := exec.Command("go", "build", "-o", filepath.Join(evidentBin.dir, "evident"), "./cmd/evident")
		cmd.Dir = filepath.Join("..", "..")
		if out, err := cmd.CombinedOutput(); err != nil {
			evidentBin.err = fmt.Errorf("go build ./cmd/evident: %v\n%s", err, out)
		}
	})
	if evidentBin.err != nil {
		t.Fatal(evidentBin.err)
	}
	return filepath.Join(evidentBin.dir, "evident")
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
		writeFile(t, filepath.Join(dir, name), []byte(content))
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
	chain := slicesConcat(readFile(t, filepath.Join(dir, "leaf.pem")), readFile(t, filepath.Join(dir, "inter.pem")))
	writeFile(t, filepath.Join(dir, "chain.pem"), chain)
	return filepath.Join(dir, "root.pem"), filepath.Join(dir, "leaf.key"), filepath.Join(dir, "chain.pem")
}

func readFile(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func writeFile(t *testing.T, name string, b []byte) {
	t.Helper()
	if err := os.WriteFile(name, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func slicesConcat(bs ...[]byte) []byte { return bytes.Join(bs, nil) }

// start starts bin with args and returns once ready has seen, in its
// standard output, every line it waits for (within a minute); the process
// is killed when the test ends.
func start(t *testing.T, bin string, args []string, ready func(line string) bool) {
	t.Helper()
	cmd := exec.Command(bin, args...)
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
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("evident %s exited before it was ready: %s", args[0], stderr.String())
			}
			if ready(l) {
				go func() {
					for range lines {
					}
				}()
				return
			}
		case <-timeout:
			t.Fatalf("evident %s was not ready within a minute", args[0])
		}
	}
}

// serve starts "evident serve" on a free loopback port and returns its URL
// and log key once it has printed them.
func serve(t *testing.T, bin, dataDir string, args ...string) (url, key string) {
	t.Helper()
	start(t, bin, append([]string{"serve", "--data", dataDir, "--addr", "127.0.0.1:0"}, args...), func(l string) bool {
		if rest, ok := strings.CutPrefix(l, "evident serving at "); ok {
			url = strings.Fields(rest)[0]
		}
		if rest, ok := strings.CutPrefix(strings.TrimSpace(l), "log key:"); ok {
			key = strings.TrimSpace(rest)
		}
		return url != "" && key != ""
	})
	return url, key
}

// tsaServe starts "evident tsa serve", a second, independent TSA, and
// returns its URL.
func tsaServe(t *testing.T, bin, dataDir string) (url string) {
	t.Helper()
	start(t, bin, []string{"tsa", "serve", "--data", dataDir, "--addr", "127.0.0.1:0"}, func(l string) bool {
		if rest, ok := strings.CutPrefix(l, "evident TSA serving at "); ok {
			url = strings.Fields(rest)[0]
		}
		return url != ""
	})
	return url
}

// deployment is a log trusting an OpenSSL-made code-signing PKI, its TUF
// repository trusting that PKI's root from before the steps, and a working
// directory for CI.
type deployment struct {
	bin, data, work, url, logKey, repo string
	leafKey, chainPEM                  string
	// tsas are the TSA URLs of the log's own TSA and of the extra ones;
	// tsaRoots is a PEM file of all their chains, for the client.
	tsas     []string
	tsaRoots string
}

// deploy starts the log and extraTSAs more TSAs, each of them a TSA item of
// the trust root ("tsa-b", "tsa-c", …; the log's own is evident-dev-tsa).
func deploy(t *testing.T, extraTSAs int) *deployment {
	t.Helper()
	requireTool(t, "openssl", "EVIDENT_REQUIRE_OPENSSL")
	d := &deployment{bin: buildEvident(t), data: t.TempDir(), work: t.TempDir()}
	pki := t.TempDir()
	rootPEM, leafKey, chainPEM := openSSLPKI(t, pki)
	d.leafKey, d.chainPEM = leafKey, chainPEM
	d.url, d.logKey = serve(t, d.bin, d.data, "--functionary-roots", rootPEM)
	d.repo = filepath.Join(d.data, "tuf")
	d.tsas = []string{d.url + "/tsa"}
	roots := [][]byte{readFile(t, filepath.Join(d.data, "tsa-chain.pem"))}

	// The release manager trusts the enterprise root, and the TSAs, from
	// before the steps.
	since := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)
	d.evident(t, "tuf", "trust", "add", "--repo", d.repo, "--keys", filepath.Join(d.data, "tuf-keys"), "--kind", "functionary-ca",
		"--name", "example-code-signing", "--file", rootPEM, "--start", since)
	for i := range extraTSAs {
		dir := t.TempDir()
		d.tsas = append(d.tsas, tsaServe(t, d.bin, dir))
		chain := readFile(t, filepath.Join(dir, "tsa-chain.pem"))
		roots = append(roots, chain)
		rootFile := filepath.Join(dir, "tsa-root.pem")
		writeFile(t, rootFile, lastPEM(t, chain))
		d.evident(t, "tuf", "trust", "add", "--repo", d.repo, "--keys", filepath.Join(d.data, "tuf-keys"), "--kind", "tsa",
			"--name", fmt.Sprintf("tsa-%c", 'b'+i), "--file", rootFile, "--start", since)
	}
	d.tsaRoots = filepath.Join(d.data, "all-tsa-roots.pem")
	writeFile(t, d.tsaRoots, slicesConcat(roots...))
	return d
}

// lastPEM is the last PEM block of a chain: its root.
func lastPEM(t *testing.T, chain []byte) []byte {
	t.Helper()
	var last *pem.Block
	for rest := chain; ; {
		b, r := pem.Decode(rest)
		if b == nil {
			break
		}
		last, rest = b, r
	}
	if last == nil {
		t.Fatal("a TSA chain with no PEM block")
	}
	return pem.EncodeToMemory(last)
}

func (d *deployment) evident(t *testing.T, args ...string) string {
	t.Helper()
	return run(t, d.work, d.bin, args...)
}

// signing are the flags that sign with the code-signing key and chain,
// log at d's server and ask every TSA of d.
func (d *deployment) signing() []string {
	args := []string{"--signing-key", d.leafKey, "--cert", d.chainPEM, "--server", d.url, "--log-key", d.logKey, "--tsa-roots", d.tsaRoots}
	for _, u := range d.tsas {
		args = append(args, "--tsa", u)
	}
	return args
}

// export fetches the bundles that name the artifact (exactly one is
// expected), exports it, and the trust root with its signer's
// intermediates, as a verifier does; and the trust root without them.
func (d *deployment) export(t *testing.T, artifact []byte) (ev evidence, withoutIntermediates []byte) {
	t.Helper()
	sum := sha256.Sum256(artifact)
	fetched := t.TempDir()
	d.evident(t, "bundle", "fetch", "--artifact", "sha256:"+hex.EncodeToString(sum[:]), "--out", fetched, "--server", d.url, "--log-key", d.logKey)
	bundles, _ := filepath.Glob(filepath.Join(fetched, "*.bundle.json"))
	if len(bundles) != 1 {
		t.Fatalf("bundles fetched: %v", bundles)
	}
	out := filepath.Join(fetched, "sigstore.json")
	d.evident(t, "bundle", "export", "--format", "sigstore", bundles[0], "--out", out)
	tufRoot := filepath.Join(d.repo, "metadata", "1.root.json")
	get := []string{"tuf", "get", "--format", "sigstore-trusted-root", "--tuf", d.url + "/tuf", "--tuf-root", tufRoot,
		"--tuf-cache", t.TempDir()}
	ev = evidence{
		bundle:       readFile(t, out),
		trustedRoot:  []byte(d.evident(t, append(get, "--intermediates-from", bundles[0])...)),
		artifact:     artifact,
		tsaThreshold: len(d.tsas),
	}
	return ev, []byte(d.evident(t, get...))
}

// evidence is what the verifier holds: the exported Sigstore bundle and
// trusted root, the artifact, and how many timestamps it requires.
type evidence struct {
	bundle, trustedRoot, artifact []byte
	tsaThreshold                  int
}

// sigstoreVerify verifies ev with sigstore-go: ev.tsaThreshold signed
// timestamps, no transparency log or SCT, the certificate's URI SAN as the
// identity and any issuer (an enterprise certificate has no OIDC issuer
// extension). The artifact is the signed payload of a message signature,
// and for a DSSE envelope a subject of its in-toto Statement, whose
// digest sigstore-go finds among the subjects.
func sigstoreVerify(ev evidence, san string) (*verify.VerificationResult, error) {
	tr, err := root.NewTrustedRootFromJSON(ev.trustedRoot)
	if err != nil {
		return nil, fmt.Errorf("trusted root: %w", err)
	}
	var b bundle.Bundle
	if err := b.UnmarshalJSON(ev.bundle); err != nil {
		return nil, fmt.Errorf("bundle: %w", err)
	}
	v, err := verify.NewVerifier(tr, verify.WithSignedTimestamps(ev.tsaThreshold))
	if err != nil {
		return nil, err
	}
	id, err := verify.NewShortCertificateIdentity("", ".*", san, "")
	if err != nil {
		return nil, err
	}
	return v.Verify(&b, verify.NewPolicy(verify.WithArtifact(bytes.NewReader(ev.artifact)), verify.WithCertificateIdentity(id)))
}

// checkVerified: sigstore-go verifies ev, with one timestamp from each
// TSA URI in tsaURIs (in any order), signed by the expected identity; it
// refuses ev without the intermediates in the trust root, for another
// identity, and when asked for one more timestamp than there are TSAs.
func checkVerified(t *testing.T, ev evidence, withoutIntermediates []byte, tsaURIs ...string) {
	t.Helper()
	res, err := sigstoreVerify(ev, spiffeID)
	if err != nil {
		t.Fatalf("sigstore-go refuses the export: %v", err)
	}
	if res.Signature == nil || res.Signature.Certificate == nil || res.Signature.Certificate.SubjectAlternativeName != spiffeID {
		t.Errorf("verification result = %+v", res)
	}
	got := map[string]bool{}
	for _, ts := range res.VerifiedTimestamps {
		if ts.Type != "TimestampAuthority" {
			t.Errorf("verified timestamp of type %q", ts.Type)
		}
		got[ts.URI] = true
	}
	for _, u := range tsaURIs {
		if !got[u] {
			t.Errorf("no verified timestamp from %s among %+v", u, res.VerifiedTimestamps)
		}
	}
	if len(res.VerifiedTimestamps) != len(tsaURIs) {
		t.Errorf("%d verified timestamps, want %d", len(res.VerifiedTimestamps), len(tsaURIs))
	}

	// I1: no intermediates in the trust root, no chain; another identity.
	if _, err := sigstoreVerify(evidence{ev.bundle, withoutIntermediates, ev.artifact, ev.tsaThreshold}, spiffeID); err == nil {
		t.Error("sigstore-go verified the export against a trust root without the signer's intermediate")
	}
	if _, err := sigstoreVerify(ev, "spiffe://example.org/ci/other"); err == nil {
		t.Error("sigstore-go verified the export for another identity")
	}
	more := ev
	more.tsaThreshold++
	if _, err := sigstoreVerify(more, spiffeID); err == nil {
		t.Errorf("sigstore-go counted %d timestamps from %d TSAs", more.tsaThreshold, len(tsaURIs))
	}
}

// field is a byte string of the evidence to change: in the bundle (pb
// aliases it, so the bundle is re-encoded) or the artifact itself.
type field struct {
	name     string
	bytes    []byte
	inBundle bool
	token    bool // an RFC 3161 response
}

// tokenFields are the bundle's RFC 3161 responses, one field each.
func tokenFields(vm *protobundle.VerificationMaterial) []field {
	var out []field
	for i, ts := range vm.GetTimestampVerificationData().GetRfc3161Timestamps() {
		out = append(out, field{fmt.Sprintf("timestamp %d", i+1), ts.GetSignedTimestamp(), true, true})
	}
	return out
}

// checkEveryByte: V3, V5, P1: a changed byte anywhere fails: every byte of
// every field in turn, with the threshold of timestamps the evidence
// holds. The one exception is in a token: CMS leaves some of its bytes
// unsigned (the SignedData version, its digestAlgorithms hint, the
// eContentType beside the signed contentType attribute), sigstore-go's
// PKCS #7 parser re-encodes the signed attributes, and its BER parser
// takes a certificate's length loosely, so a change there that still
// parses is accepted; such a change must leave what the token attests —
// the TSTInfo, the signature over it, the TSA certificate — as it was.
func checkEveryByte(t *testing.T, ev evidence, pb *protobundle.Bundle, fields []field) {
	t.Helper()
	for _, f := range fields {
		if len(f.bytes) == 0 {
			t.Fatalf("the export has no %s", f.name)
		}
		var original string
		if f.token {
			original = attestation(t, f.bytes)
		}
		accepted, unsigned := 0, 0
		for i := range f.bytes {
			f.bytes[i] ^= 0x01
			changed := ev
			if f.inBundle {
				b, err := protojson.Marshal(pb)
				if err != nil {
					t.Fatal(err)
				}
				changed.bundle = b
			}
			if _, err := sigstoreVerify(changed, spiffeID); err == nil {
				if f.token && attestation(t, f.bytes) == original {
					unsigned++
				} else if accepted++; accepted <= 3 {
					t.Errorf("sigstore-go verified the export with byte %d of the %s changed", i, f.name)
				}
			}
			f.bytes[i] ^= 0x01
		}
		if accepted > 0 {
			t.Errorf("%d of %d changed %s bytes were accepted", accepted, len(f.bytes), f.name)
		}
		if unsigned > 0 {
			t.Logf("%d of %d changed %s bytes were accepted, each outside what the token attests", unsigned, len(f.bytes), f.name)
		}
	}
	if _, err := sigstoreVerify(ev, spiffeID); err != nil {
		t.Fatalf("the restored export no longer verifies: %v", err)
	}
}

func parseBundle(t *testing.T, b []byte) *protobundle.Bundle {
	t.Helper()
	var pb protobundle.Bundle
	if err := protojson.Unmarshal(b, &pb); err != nil {
		t.Fatal(err)
	}
	return &pb
}

// TestSigstoreGoVerifiesExport: a step run by evident with an OpenSSL-made
// code-signing certificate (enterprise PKI, intermediate included) as a
// Metablock link is logged, fetched, exported as a message signature;
// sigstore-go verifies the export against the exported trust root — and
// refuses it once any byte of the payload, the signature, the certificate
// or the timestamp changes, for another identity, and without the
// intermediates in the trust root.
func TestSigstoreGoVerifiesExport(t *testing.T) {
	d := deploy(t, 0)
	writeFile(t, filepath.Join(d.work, "src.txt"), []byte("source"))
	d.evident(t, append(append([]string{"run", "--step", "build", "-m", "src.txt", "-p", "app.txt"}, d.signing()...),
		"--", "cp", "src.txt", "app.txt")...)
	links, _ := filepath.Glob(filepath.Join(d.work, "build.*.link"))
	if len(links) != 1 {
		t.Fatalf("links written: %v", links)
	}

	ev, withoutIntermediates := d.export(t, []byte("source"))
	ev.artifact = payloadOf(t, links[0]) // a message signature is over the payload
	checkVerified(t, ev, withoutIntermediates, "evident-trust-root:tsa/evident-dev-tsa")

	pb := parseBundle(t, ev.bundle)
	ms, vm := pb.GetMessageSignature(), pb.GetVerificationMaterial()
	checkEveryByte(t, ev, pb, append([]field{
		{name: "payload", bytes: ev.artifact},
		{name: "signature", bytes: ms.GetSignature(), inBundle: true},
		{name: "certificate", bytes: vm.GetCertificate().GetRawBytes(), inBundle: true},
	}, tokenFields(vm)...))
}

// TestSigstoreGoVerifiesDSSEAttestations: attestations made with an
// OpenSSL-made code-signing certificate and timestamped by two TSAs — an
// SLSA provenance by "evident attest" and a step by "evident run --format
// dsse" — are logged as version 2 entries with both tokens, fetched by
// their subject, and exported as DSSE envelopes carrying both tokens.
// sigstore-go verifies each against the exported trust root, the artifact
// among the Statement's subjects, counting one timestamp per TSA (and not
// three: K4); and refuses each once any byte of the artifact, the envelope's
// payload, its signature, the certificate or either token changes.
func TestSigstoreGoVerifiesDSSEAttestations(t *testing.T) {
	d := deploy(t, 1)
	writeFile(t, filepath.Join(d.work, "src.txt"), []byte("source"))
	writeFile(t, filepath.Join(d.work, "app.tar"), []byte("release archive"))
	writeFile(t, filepath.Join(d.work, "provenance.json"),
		[]byte(`{"buildDefinition":{"buildType":"https://example.org/make/v1","externalParameters":{"target":"app.tar"}},"runDetails":{"builder":{"id":"https://example.org/ci"}}}`))

	for _, c := range []struct {
		name     string
		args     []string
		artifact string // the subject the verifier holds
	}{
		{"attest", []string{"attest", "--name", "provenance", "--predicate-type", "https://slsa.dev/provenance/v1",
			"--predicate", "provenance.json", "--subject", "app.tar"}, "app.tar"},
		{"run --format dsse", []string{"run", "--format", "dsse", "--step", "build", "-m", "src.txt", "-p", "app.txt"}, "app.txt"},
	} {
		t.Run(c.name, func(t *testing.T) {
			args := append(c.args, d.signing()...)
			if c.args[0] == "run" {
				args = append(args, "--", "cp", "src.txt", "app.txt")
			}
			d.evident(t, args...)
			ev, withoutIntermediates := d.export(t, readFile(t, filepath.Join(d.work, c.artifact)))
			pb := parseBundle(t, ev.bundle)
			env, vm := pb.GetDsseEnvelope(), pb.GetVerificationMaterial()
			if env == nil || env.PayloadType != "application/vnd.in-toto+json" || len(env.Signatures) != 1 {
				t.Fatalf("the export's content is not one signed in-toto DSSE envelope: %v", pb.Content)
			}
			if n := len(vm.GetTimestampVerificationData().GetRfc3161Timestamps()); n != 2 {
				t.Fatalf("the export carries %d RFC 3161 timestamps, want the entry's 2", n)
			}
			checkVerified(t, ev, withoutIntermediates, "evident-trust-root:tsa/evident-dev-tsa", "evident-trust-root:tsa/tsa-b")
			checkEveryByte(t, ev, pb, append([]field{
				{name: "artifact", bytes: ev.artifact},
				{name: "envelope payload", bytes: env.Payload, inBundle: true},
				{name: "signature", bytes: env.Signatures[0].Sig, inBundle: true},
				{name: "certificate", bytes: vm.GetCertificate().GetRawBytes(), inBundle: true},
			}, tokenFields(vm)...))
		})
	}
}

// payloadOf is what the link's signature covers: the canonical JSON
// (OLPC canonical JSON, as in-toto signs) of its "signed" field.
func payloadOf(t *testing.T, linkFile string) []byte {
	t.Helper()
	var mb struct {
		Signed any `json:"signed"`
	}
	if err := json.Unmarshal(readFile(t, linkFile), &mb); err != nil {
		t.Fatal(err)
	}
	payload, err := cjson.EncodeCanonical(mb.Signed)
	if err != nil {
		t.Fatal(err)
	}
	return payload
}

// attestation is what an RFC 3161 response attests, as a comparable
// string: the TSTInfo, the signature over it and the signer's certificate
// (its signed part and signature: the BER parser may fold bytes after it
// into its raw encoding).
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
	signer := p7.GetOnlySigner()
	return string(p7.Content) + "|" + string(p7.Signers[0].EncryptedDigest) + "|" +
		string(signer.RawTBSCertificate) + "|" + string(signer.Signature)
}
