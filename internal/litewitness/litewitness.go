// Package litewitness runs litewitness (filippo.io/torchwood v0.6.1), an
// independent C2SP tlog-witness, for evident's integration tests and
// benchmarks: a fresh Ed25519 key held by its own ssh-agent (Debian's
// openssh-client), a SQLite database in a directory, a loopback port. The
// binaries litewitness and registerlog are built by tools/litewitness.
package litewitness

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// DefaultBin is where .ci/run caches the binaries.
func DefaultBin() string {
	if d := os.Getenv("EVIDENT_LITEWITNESS_BIN"); d != "" {
		return d
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".cache", "evident", "litewitness-v0.6.1")
}

// Missing names the first of the needed programs that is not there, or "".
func Missing(bin string) string {
	for _, b := range []string{filepath.Join(bin, "litewitness"), filepath.Join(bin, "registerlog")} {
		if _, err := os.Stat(b); err != nil {
			return b
		}
	}
	for _, b := range []string{"ssh-agent", "ssh-add", "ssh-keygen"} {
		if _, err := exec.LookPath(b); err != nil {
			return b + " (Debian's openssh-client)"
		}
	}
	return ""
}

// Witness is a running litewitness.
type Witness struct {
	// Name is its key name; Addr its host:port; VerifierKey its
	// tlog-cosignature/v1 verifier key, as it printed it.
	Name, Addr, VerifierKey string

	bin, dir, fingerprint string
	agent, proc           *exec.Cmd
	done                  chan struct{}
}

// Start makes a key in dir, starts its ssh-agent and litewitness.
func Start(bin, dir, name string) (*Witness, error) {
	w := &Witness{Name: name, bin: bin, dir: dir}
	if err := w.setup(); err != nil {
		w.Close()
		return nil, err
	}
	if err := w.Restart(); err != nil {
		w.Close()
		return nil, err
	}
	return w, nil
}

func (w *Witness) setup() error {
	if err := os.MkdirAll(w.dir, 0o700); err != nil {
		return err
	}
	key, sock := filepath.Join(w.dir, "key"), filepath.Join(w.dir, "agent.sock")
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key).CombinedOutput(); err != nil {
		return fmt.Errorf("ssh-keygen: %v %s", err, out)
	}
	w.agent = exec.Command("ssh-agent", "-D", "-a", sock)
	if err := w.agent.Start(); err != nil {
		return err
	}
	for i := 0; ; i++ {
		add := exec.Command("ssh-add", "-q", key)
		add.Env = append(os.Environ(), "SSH_AUTH_SOCK="+sock)
		out, err := add.CombinedOutput()
		if err == nil {
			break
		}
		if i == 100 {
			return fmt.Errorf("ssh-add: %v %s", err, out)
		}
		time.Sleep(50 * time.Millisecond) // until the agent has made its socket
	}
	out, err := exec.Command("ssh-keygen", "-l", "-E", "sha256", "-f", key+".pub").Output()
	if err != nil || len(strings.Fields(string(out))) < 2 {
		return fmt.Errorf("ssh-keygen -l: %v %s", err, out)
	}
	w.fingerprint = strings.Fields(string(out))[1]
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	w.Addr = ln.Addr().String()
	return ln.Close()
}

// Restart starts litewitness (again, after Stop: same key, database and
// port) and waits until it listens.
func (w *Witness) Restart() error {
	w.proc = exec.Command(filepath.Join(w.bin, "litewitness"), "-name", w.Name, "-db", filepath.Join(w.dir, "w.db"),
		"-ssh-agent", filepath.Join(w.dir, "agent.sock"), "-key", w.fingerprint, "-listen", w.Addr)
	stderr, err := w.proc.StderrPipe()
	if err != nil {
		return err
	}
	if err := w.proc.Start(); err != nil {
		return err
	}
	w.done = make(chan struct{})
	sc := bufio.NewScanner(stderr)
	for sc.Scan() {
		if i := strings.Index(sc.Text(), "vkey="); i >= 0 {
			w.VerifierKey = strings.Trim(strings.Fields(sc.Text()[i+len("vkey="):])[0], `"`)
			break
		}
	}
	proc, done := w.proc, w.done
	go func() { io.Copy(io.Discard, stderr); proc.Wait(); close(done) }()
	if w.VerifierKey == "" {
		w.Stop()
		return fmt.Errorf("litewitness %s exited without printing its verifier key", w.Name)
	}
	for i := 0; ; i++ {
		c, err := net.Dial("tcp", w.Addr)
		if err == nil {
			c.Close()
			return nil
		}
		if i == 250 {
			w.Stop()
			return fmt.Errorf("litewitness %s does not listen on %s", w.Name, w.Addr)
		}
		time.Sleep(20 * time.Millisecond) // until it listens, right after printing the key
	}
}

// PublicKey is its Ed25519 public key, read from the OpenSSH public key
// file ssh-keygen wrote (not from what litewitness printed), for tests that
// check its cosignatures independently.
func (w *Witness) PublicKey() (ed25519.PublicKey, error) {
	b, err := os.ReadFile(filepath.Join(w.dir, "key.pub"))
	if err != nil {
		return nil, err
	}
	f := strings.Fields(string(b))
	if len(f) < 2 || f[0] != "ssh-ed25519" {
		return nil, fmt.Errorf("key.pub is not an ssh-ed25519 key")
	}
	blob, err := base64.StdEncoding.DecodeString(f[1])
	// SSH wire format: string "ssh-ed25519", string key (RFC 8709).
	prefix := append([]byte{0, 0, 0, 11}, "ssh-ed25519\x00\x00\x00\x20"...)
	if err != nil || len(blob) != len(prefix)+ed25519.PublicKeySize || !bytes.HasPrefix(blob, prefix) {
		return nil, fmt.Errorf("key.pub: malformed ssh-ed25519 key")
	}
	return ed25519.PublicKey(blob[len(prefix):]), nil
}

// URL is its submission prefix.
func (w *Witness) URL() string { return "http://" + w.Addr }

// Register adds the log to its database, as witnessctl's add-log and
// add-key would; it may run while litewitness runs.
func (w *Witness) Register(origin, vkey string) error {
	out, err := exec.Command(filepath.Join(w.bin, "registerlog"), "-db", filepath.Join(w.dir, "w.db"), "-origin", origin, "-key", vkey).CombinedOutput()
	if err != nil {
		return fmt.Errorf("registerlog: %v %s", err, out)
	}
	return nil
}

// Stop kills litewitness; its key, database and agent stay.
func (w *Witness) Stop() {
	if w.proc != nil && w.proc.Process != nil {
		w.proc.Process.Kill()
		<-w.done
		w.proc = nil
	}
}

// Close stops litewitness and its agent.
func (w *Witness) Close() {
	w.Stop()
	if w.agent != nil && w.agent.Process != nil {
		w.agent.Process.Kill()
		w.agent.Wait()
		w.agent = nil
	}
}
