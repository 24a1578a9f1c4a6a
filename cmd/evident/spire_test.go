package main

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/evident-dev/evident"
	"github.com/evident-dev/evident/identity"
	"github.com/evident-dev/evident/internal/pemfile"
	"github.com/evident-dev/evident/internal/pkitest"
)

// spireBin finds spire-server and spire-agent (built by tools/spire; see
// .ci/run). Without them the test skips, unless EVIDENT_REQUIRE_SPIRE is set,
// as it is in CI.
func spireBin(t *testing.T) string {
	dir := os.Getenv("EVIDENT_SPIRE_BIN")
	if dir == "" {
		dir, _ = filepath.Abs("../../tools/spire/bin")
	}
	for _, b := range []string{"spire-server", "spire-agent"} {
		if _, err := os.Stat(filepath.Join(dir, b)); err != nil {
			if os.Getenv("EVIDENT_REQUIRE_SPIRE") != "" {
				t.Fatalf("%s is required but missing in %s (build it with tools/spire)", b, dir)
			}
			t.Skipf("no %s in %s (build it with tools/spire)", b, dir)
		}
	}
	return dir
}

func freePort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// waitFor polls check until it succeeds or the deadline passes.
func waitFor(t *testing.T, what string, limit time.Duration, check func() error) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not ready after %v: %v", what, limit, err)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// errExited is waitForProcess's error for a process that exited before it
// was ready.
var errExited = errors.New("exited before it was ready")

// waitForProcess is waitFor for a process that may exit while it starts:
// it returns errExited at once if exited is closed first.
func waitForProcess(t *testing.T, what string, limit time.Duration, exited <-chan struct{}, check func() error) error {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		err := check()
		if err == nil {
			return nil
		}
		select {
		case <-exited:
			return errExited
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not ready after %v: %v", what, limit, err)
		}
		time.Sleep(250 * time.Millisecond) // polling another process
	}
}

// spireServerConf is the SPIRE server's configuration: loopback port,
// a disk UpstreamAuthority in dir, SVIDs of one minute by default.
func spireServerConf(port int, socket, dir string) string {
	return fmt.Sprintf(`
server {
  bind_address = "127.0.0.1"
  bind_port = "%d"
  socket_path = "%s"
  trust_domain = "example.org"
  data_dir = "%s/server"
  log_level = "WARN"
  default_x509_svid_ttl = "1m"
  ca_ttl = "24h"
}
plugins {
  DataStore "sql" { plugin_data { database_type = "sqlite3"  connection_string = "%s/server/datastore.sqlite3" } }
  NodeAttestor "join_token" { plugin_data {} }
  KeyManager "memory" { plugin_data {} }
  UpstreamAuthority "disk" { plugin_data { key_file_path = "%s/upstream.key"  cert_file_path = "%s/upstream.pem" } }
}
`, port, socket, dir, dir, dir, dir)
}

// TestSPIRE runs evident run against a real SPIRE server and agent (v1.13.3)
// on loopback: join-token attestation, a workload entry with a 60 s
// X.509-SVID TTL, SVIDs chained to a disk UpstreamAuthority the evident
// server trusts. After the SVID has expired the bundle still verifies,
// because certificates are checked at the timestamp's genTime.
func TestSPIRE(t *testing.T) {
	bin := spireBin(t)
	dir, err := os.MkdirTemp("", "spire") // short: unix socket paths are limited
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	upstream := pkitest.NewCA(t, "evident test SPIRE upstream", time.Now().Add(-time.Hour), time.Now().Add(72*time.Hour))
	keyDER, _ := x509.MarshalPKCS8PrivateKey(upstream.Key)
	os.WriteFile(filepath.Join(dir, "upstream.key"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600)
	os.WriteFile(filepath.Join(dir, "upstream.pem"), pemfile.EncodeCertificates([]*x509.Certificate{upstream.Cert}), 0o644)
	serverSock, agentSock := filepath.Join(dir, "server.sock"), filepath.Join(dir, "agent.sock")
	start := func(name string, args ...string) <-chan struct{} {
		cmd := exec.Command(filepath.Join(bin, name), args...)
		logf, _ := os.Create(filepath.Join(dir, name+".log"))
		cmd.Stdout, cmd.Stderr = logf, logf
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan struct{})
		go func() { cmd.Wait(); close(exited) }()
		t.Cleanup(func() {
			cmd.Process.Kill()
			<-exited
			if t.Failed() {
				b, _ := os.ReadFile(filepath.Join(dir, name+".log"))
				t.Logf("%s log:\n%s", name, b)
			}
		})
		return exited
	}
	spire := func(name string, args ...string) (string, error) {
		out, err := exec.Command(filepath.Join(bin, name), args...).CombinedOutput()
		return string(out), err
	}
	// The agent reaches the server over TCP only, so the server's port is
	// picked free and bound by another process a moment later: another
	// test or process may take it in between. A server that exits at start
	// is started again on another port.
	var port int
	for attempt := 1; ; attempt++ {
		port = freePort(t)
		os.WriteFile(filepath.Join(dir, "server.conf"), []byte(spireServerConf(port, serverSock, dir)), 0o644)
		exited := start("spire-server", "run", "-config", filepath.Join(dir, "server.conf"))
		err := waitForProcess(t, "spire-server", 60*time.Second, exited, func() error {
			_, err := spire("spire-server", "healthcheck", "-socketPath", serverSock)
			return err
		})
		if err == nil {
			break
		}
		if attempt == 3 {
			t.Fatalf("spire-server on port %d, attempt %d: %v", port, attempt, err)
		}
		t.Logf("spire-server on port %d: %v; trying another port", port, err)
	}
	os.WriteFile(filepath.Join(dir, "agent.conf"), []byte(fmt.Sprintf(`
agent {
  data_dir = "%s/agent"
  log_level = "WARN"
  server_address = "127.0.0.1"
  server_port = "%d"
  socket_path = "%s"
  trust_domain = "example.org"
  insecure_bootstrap = true
}
plugins {
  NodeAttestor "join_token" { plugin_data {} }
  KeyManager "memory" { plugin_data {} }
  WorkloadAttestor "unix" { plugin_data {} }
}
`, dir, port, agentSock)), 0o644)
	out, err := spire("spire-server", "token", "generate", "-socketPath", serverSock, "-spiffeID", "spiffe://example.org/agent")
	if err != nil {
		t.Fatalf("token generate: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`Token: (\S+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no token in %q", out)
	}
	start("spire-agent", "run", "-config", filepath.Join(dir, "agent.conf"), "-joinToken", m[1])
	waitFor(t, "spire-agent", 60*time.Second, func() error {
		_, err := spire("spire-agent", "healthcheck", "-socketPath", agentSock)
		return err
	})
	const id = "spiffe://example.org/ci/builder"
	if out, err := spire("spire-server", "entry", "create", "-socketPath", serverSock,
		"-parentID", "spiffe://example.org/agent", "-spiffeID", id,
		"-selector", "unix:uid:"+strconv.Itoa(os.Getuid()), "-x509SVIDTTL", "60"); err != nil {
		t.Fatalf("entry create: %v\n%s", err, out)
	}
	waitFor(t, "the workload's SVID", 60*time.Second, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s, got, err := identity.FromWorkloadAPI(ctx, agentSock)
		if err == nil && (got != id || len(s.Chain) < 2) {
			err = fmt.Errorf("SVID %s with %d certificates", got, len(s.Chain))
		}
		return err
	})

	// evident, trusting the SPIRE upstream root for functionaries.
	edir := t.TempDir()
	srv := startServer(t, edir, "--functionary-roots", filepath.Join(dir, "upstream.pem"))
	work := t.TempDir()
	os.WriteFile(filepath.Join(work, "main.c"), []byte("int main(){return 0;}\n"), 0o644)
	cmd := exec.Command(binary, "run", "--step", "build", "-m", "main.c", "-p", "app", "--spiffe-socket", agentSock,
		"--server", srv.url, "--log-key", srv.key, "--tsa-roots", filepath.Join(edir, "tsa-chain.pem"),
		"--", "sh", "-c", "cp main.c app")
	cmd.Dir = work
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("evident run through SPIRE: %v\n%s", err, out)
	}
	matches, _ := filepath.Glob(filepath.Join(work, "build.*.bundle.json"))
	if len(matches) != 1 {
		t.Fatalf("bundles: %v", matches)
	}
	b, _ := os.ReadFile(matches[0])
	bundle, err := evident.ParseBundle(b)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(bundle.Entry.CertChain[0])
	if err != nil {
		t.Fatal(err)
	}
	if len(leaf.URIs) != 1 || leaf.URIs[0].String() != id || leaf.NotAfter.Sub(leaf.NotBefore) > 2*time.Minute {
		t.Fatalf("the signer is %v, valid %v to %v: not the short-lived SVID", leaf.URIs, leaf.NotBefore, leaf.NotAfter)
	}
	if len(bundle.Entry.CertChain) < 2 {
		t.Error("the SPIRE intermediate was not captured with the leaf")
	}
	// Wait (wall clock, bounded by the SVID's TTL) until the SVID has expired.
	time.Sleep(time.Until(leaf.NotAfter) + 2*time.Second)
	inters := x509.NewCertPool()
	for _, der := range bundle.Entry.CertChain[1:] {
		c, _ := x509.ParseCertificate(der)
		inters.AddCert(c)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: upstream.Pool(), Intermediates: inters, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err == nil || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("checked at wall-clock time the SVID should have expired: %v", err)
	}
	if err := verifyBundle(bundle, upstream.Pool(), filepath.Join(edir, "tsa-chain.pem"), srv.verifier); err != nil {
		t.Fatalf("after the SVID expired: %v", err)
	}
	if !bytes.Contains(bundle.Link, []byte(`"app"`)) {
		t.Error("the link does not record the product")
	}
}
