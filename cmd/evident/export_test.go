package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/evident-dev/evident/sigstore"
)

// TestExportCLI: the Sigstore exports from the command line — the trust
// root as a TrustedRoot; a development SVID's bundle refused, with the
// reason (SVIDs carry no codeSigning usage) and exit 1; bad usage exit 2.
// sigstore-go verifying an export is tools/sigstore's test.
func TestExportCLI(t *testing.T) {
	dir := t.TempDir()
	s := startServer(t, dir)
	work := t.TempDir()
	env := []string{"EVIDENT_SERVER=" + s.url, "EVIDENT_LOG_KEY=" + s.key}
	cmd := exec.Command(binary, "run", "--step", "build", "--tsa-roots", filepath.Join(dir, "tsa-chain.pem"), "--", "true")
	cmd.Dir, cmd.Env = work, append(os.Environ(), env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("evident run: %v\n%s", err, out)
	}
	bundles, _ := filepath.Glob(filepath.Join(work, "build.*.bundle.json"))
	if len(bundles) != 1 {
		t.Fatalf("bundles: %v", bundles)
	}
	if _, errOut, code := runCLI(t, env, "bundle", "export", "--format", "sigstore", bundles[0]); code != 1 || !strings.Contains(errOut, "codeSigning") {
		t.Errorf("bundle export of an SVID's bundle = exit %d, %s; want 1 naming codeSigning", code, errOut)
	}
	for _, args := range [][]string{
		{"bundle", "export", bundles[0]},
		{"bundle", "export", "--format", "cosign", bundles[0]},
		{"bundle", "export", "--format", "sigstore"},
		{"tuf", "get", "--intermediates-from", bundles[0], "trusted_root.json", "--tuf", s.url + "/tuf", "--tuf-root", "r.json"},
		{"tuf", "get", "--format", "sigstore-trusted-root", "layouts/x", "--tuf", s.url + "/tuf", "--tuf-root", "r.json"},
	} {
		if _, errOut, code := runCLI(t, env, args...); code != 2 {
			t.Errorf("evident %s = exit %d, want 2\n%s", strings.Join(args, " "), code, errOut)
		}
	}
	root := filepath.Join(dir, "tuf", "metadata", "1.root.json")
	out, errOut, code := runCLI(t, env, "tuf", "get", "--format", "sigstore-trusted-root", "--tuf", s.url+"/tuf", "--tuf-root", root)
	if code != 0 {
		t.Fatalf("tuf get --format sigstore-trusted-root = exit %d\n%s", code, errOut)
	}
	var tr struct {
		MediaType              string `json:"mediaType"`
		CertificateAuthorities []any  `json:"certificateAuthorities"`
		TimestampAuthorities   []any  `json:"timestampAuthorities"`
	}
	if err := json.Unmarshal([]byte(out), &tr); err != nil || tr.MediaType != sigstore.TrustedRootMediaType ||
		len(tr.CertificateAuthorities) != 1 || len(tr.TimestampAuthorities) != 1 {
		t.Errorf("trusted root = %+v, %v\n%s", tr, err, out)
	}
}
