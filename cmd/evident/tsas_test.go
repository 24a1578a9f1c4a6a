package main

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/evident-dev/evident/internal/pemfile"
	"github.com/in-toto/in-toto-golang/in_toto"
)

// tsaProcess is a running "evident tsa serve".
type tsaProcess struct {
	url, root string // its URL, and a file holding its root (PEM)
	cmd       *exec.Cmd
	done      chan struct{}
}

// startTSA starts evident tsa serve on a free loopback port with its
// development key in dir.
func startTSA(t *testing.T, dir string) *tsaProcess {
	t.Helper()
	cmd := exec.Command(binary, "tsa", "serve", "--data", dir, "--addr", "127.0.0.1:0")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &tsaProcess{cmd: cmd, done: make(chan struct{})}
	urls := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if rest, ok := strings.CutPrefix(sc.Text(), "evident TSA serving at "); ok {
				urls <- strings.Fields(rest)[0]
			}
		}
		cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(p.stop)
	select {
	case p.url = <-urls:
	case <-p.done:
		t.Fatal("evident tsa serve exited before it was ready")
	case <-time.After(30 * time.Second):
		t.Fatal("evident tsa serve did not print its URL within 30s")
	}
	chain, err := pemfile.LoadCertificates(filepath.Join(dir, "tsa-chain.pem"))
	if err != nil {
		t.Fatal(err)
	}
	p.root = filepath.Join(dir, "root.pem")
	if err := os.WriteFile(p.root, pemfile.EncodeCertificates(chain[len(chain)-1:]), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func (p *tsaProcess) stop() {
	p.cmd.Process.Kill()
	<-p.done
}

// TestRunWithThreeTSAs: the trust root lists three TSAs and requires
// tokens from two; one is down, so evident run reports it, skips it and
// logs a version 2 entry with the other two tokens, which evident verify
// counts, naming both TSAs. With a second one down, run fails naming the
// TSAs that did not answer.
func TestRunWithThreeTSAs(t *testing.T) {
	dir := t.TempDir()
	var tsas []*tsaProcess
	var roots []byte
	for _, n := range []string{"a", "b", "c"} {
		p := startTSA(t, filepath.Join(dir, "tsa-"+n))
		tsas = append(tsas, p)
		b, _ := os.ReadFile(p.root)
		roots = append(roots, b...)
	}
	rootsFile := filepath.Join(dir, "tsa-roots.pem")
	os.WriteFile(rootsFile, roots, 0o644)
	data := filepath.Join(dir, "data")
	s := startServer(t, data, "--tsa-roots", rootsFile)
	repo, keys := filepath.Join(data, "tuf"), filepath.Join(data, "tuf-keys")
	root := filepath.Join(repo, "metadata", "1.root.json")
	work := t.TempDir()
	run := cliRunner(t, work, "EVIDENT_SERVER="+s.url)
	for i, p := range tsas {
		run(0, "tuf", "trust", "add", "--repo", repo, "--keys", keys, "--kind", "tsa", "--name", "tsa-"+"abc"[i:i+1], "--file", p.root)
	}
	out := run(0, "tuf", "trust", "policy", "--repo", repo, "--keys", keys, "--tsa-threshold", "2", "--max-tsa-skew", "1m")
	if !strings.Contains(out, "TSA threshold 2, max TSA skew 1m0s") {
		t.Errorf("trust policy = %s", out)
	}
	publishOneStepLayout(t, run, work, repo, keys)
	os.WriteFile(filepath.Join(work, "main.c"), []byte("int main(){}\n"), 0o644)

	tsas[2].stop()
	tsaFlags := []string{"--tsa", tsas[0].url, "--tsa", tsas[1].url + "," + tsas[2].url}
	out = run(0, append(append([]string{"run", "--step", "build", "--tuf-root", root}, tsaFlags...), "-m", "main.c", "-p", "app", "--", "cp", "main.c", "app")...)
	if !strings.Contains(out, "evident: warning: TSA "+tsas[2].url+" did not answer, skipped") {
		t.Errorf("run with one TSA down =\n%s", out)
	}
	out = run(0, "verify", "--tuf-root", root, "--tuf", s.url+"/tuf", "--layout", "acme/release", "--bundles", work)
	// verify lists the tokens earliest genTime first, and genTime has
	// whole seconds: tsa-b's may be a second before tsa-a's when the two
	// answers straddle a second's edge, so either order is right.
	if !regexp.MustCompile(`timestamps from (tsa-a at [^,]+, tsa-b|tsa-b at [^,]+, tsa-a) at [^ ]+ ± 1s \(TSA threshold 2\)`).MatchString(out) {
		t.Errorf("verify does not name both TSAs' timestamps:\n%s", out)
	}
	for _, want := range []string{"PASS  step build", "verified"} {
		if !strings.Contains(out, want) {
			t.Errorf("verify lacks %q:\n%s", want, out)
		}
	}

	tsas[1].stop()
	out = run(1, append(append([]string{"run", "--step", "build", "--tuf-root", root}, tsaFlags...), "-m", "main.c", "-p", "app", "--", "cp", "main.c", "app")...)
	for _, want := range []string{"1 of 3 TSAs answered, the threshold is 2; failed: ", tsas[1].url + ": ", tsas[2].url + ": "} {
		if !strings.Contains(out, want) {
			t.Errorf("run with two TSAs down lacks %q:\n%s", want, out)
		}
	}
}

// publishOneStepLayout publishes acme/release: one step, build, by the
// development SVID spiffe://evident.dev/ci/build, signed by a layout key
// that it adds to the trust root.
func publishOneStepLayout(t *testing.T, run func(int, ...string) string, work, repo, keys string) {
	t.Helper()
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	der, _ := x509.MarshalPKCS8PrivateKey(priv)
	var lk in_toto.Key
	lk.LoadKeyReaderDefaults(bytes.NewReader(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})))
	pubDER, _ := x509.MarshalPKIXPublicKey(priv.Public())
	os.WriteFile(filepath.Join(work, "layout-key.pub"), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}), 0o644)
	run(0, "tuf", "trust", "add", "--repo", repo, "--keys", keys, "--kind", "layout-key", "--name", "release", "--file", "layout-key.pub")
	layout := in_toto.Metablock{Signed: in_toto.Layout{Type: "layout", Expires: time.Now().Add(24 * time.Hour).UTC().Format(time.RFC3339),
		Keys: map[string]in_toto.Key{}, Inspect: []in_toto.Inspection{},
		Steps: []in_toto.Step{{Type: "step", Threshold: 1, PubKeys: []string{}, ExpectedCommand: []string{},
			CertificateConstraints: []in_toto.CertificateConstraint{{CommonName: "*", DNSNames: []string{"*"}, Emails: []string{"*"},
				Organizations: []string{"*"}, URIs: []string{"spiffe://evident.dev/ci/build"}, Roots: []string{"*"}}},
			SupplyChainItem: in_toto.SupplyChainItem{Name: "build", ExpectedMaterials: [][]string{{"ALLOW", "main.c"}, {"DISALLOW", "*"}},
				ExpectedProducts: [][]string{{"CREATE", "app"}, {"DISALLOW", "*"}}}}}}, Signatures: []in_toto.Signature{}}
	if err := layout.Sign(lk); err != nil {
		t.Fatal(err)
	}
	lb, _ := json.Marshal(layout)
	os.WriteFile(filepath.Join(work, "release.layout"), lb, 0o644)
	run(0, "tuf", "publish-layout", "--repo", repo, "--keys", keys, "--project", "acme", "--name", "release", "--file", "release.layout")
}
