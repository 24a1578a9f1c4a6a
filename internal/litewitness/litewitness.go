// Package litewitness runs litewitness (filippo.io/torchwood v0.6.1), an
// independent C2SP tlog-witness, for evident's integration tests and
// benchmarks: a fresh Ed25519 key held by its own ssh-agent (Debian's
// openssh-client), a SQLite database in a directory, a loopback address. The
// binaries litewitness and registerlog are built by tools/litewitness.
package litewitness

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
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
	front                 *front
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
	if w.front, err = listenFront(); err != nil {
		return err
	}
	w.Addr = w.front.ln.Addr().String()
	return nil
}

// errExited: litewitness exited before it served, as it does when another
// process took the port it was given.
var errExited = errors.New("exited before it served")

// Restart starts litewitness (again, after Stop: same key, database and
// address) and waits until it serves. litewitness binds the port it is
// given, which is picked free a moment before: should another process
// take it meanwhile, litewitness is started again on another.
func (w *Witness) Restart() error {
	for attempt := 1; ; attempt++ {
		backend, err := pickAddr()
		if err != nil {
			return err
		}
		err = w.start(backend)
		if err == nil {
			w.front.set(backend)
			return nil
		}
		if !errors.Is(err, errExited) || attempt == 3 {
			return fmt.Errorf("litewitness %s on %s (attempt %d): %w", w.Name, backend, attempt, err)
		}
	}
}

// pickAddr picks litewitness's address; tests replace it.
var pickAddr = freeAddr

// freeAddr is a loopback address with a port free now.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// start starts litewitness listening on backend and waits until its index
// page there names its key: a port another process took answers otherwise.
func (w *Witness) start(backend string) error {
	w.proc = exec.Command(filepath.Join(w.bin, "litewitness"), "-name", w.Name, "-db", filepath.Join(w.dir, "w.db"),
		"-ssh-agent", filepath.Join(w.dir, "agent.sock"), "-key", w.fingerprint, "-listen", backend)
	stderr, err := w.proc.StderrPipe()
	if err != nil {
		return err
	}
	if err := w.proc.Start(); err != nil {
		return err
	}
	w.done, w.VerifierKey = make(chan struct{}), ""
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
		return fmt.Errorf("exited without printing its verifier key")
	}
	client := &http.Client{Timeout: time.Second}
	for i := 0; ; i++ {
		select {
		case <-done:
			w.Stop()
			return errExited
		default:
		}
		if resp, err := client.Get("http://" + backend + "/"); err == nil {
			page, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
			resp.Body.Close()
			if bytes.Contains(page, []byte(w.VerifierKey)) {
				return nil
			}
		}
		if i == 500 {
			w.Stop()
			return fmt.Errorf("does not serve on %s", backend)
		}
		time.Sleep(20 * time.Millisecond) // until it listens, right after printing the key
	}
}

// front is the witness's address as its clients know it: a listener of the
// test's own, open from Start to Close, that forwards each connection to
// litewitness wherever it listens now. So the address never changes and
// is never another process's, though litewitness is stopped and started
// again on other ports; while it is stopped, connections are closed at
// once, as a witness that is down fails them.
type front struct {
	ln      net.Listener
	mu      sync.Mutex
	backend string // "" while litewitness is stopped
}

func listenFront() (*front, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	f := &front{ln: ln}
	go f.serve()
	return f, nil
}

func (f *front) set(backend string) {
	f.mu.Lock()
	f.backend = backend
	f.mu.Unlock()
}

func (f *front) serve() {
	for {
		c, err := f.ln.Accept()
		if err != nil {
			return // closed
		}
		f.mu.Lock()
		backend := f.backend
		f.mu.Unlock()
		go forward(c, backend)
	}
}

// forward copies between c and a new connection to backend until either
// side closes.
func forward(c net.Conn, backend string) {
	defer c.Close()
	if backend == "" {
		return
	}
	b, err := net.Dial("tcp", backend)
	if err != nil {
		return
	}
	defer b.Close()
	go func() {
		io.Copy(b, c)
		b.(*net.TCPConn).CloseWrite()
	}()
	io.Copy(c, b)
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

// Stop kills litewitness; its key, database, agent and address stay.
func (w *Witness) Stop() {
	if w.front != nil {
		w.front.set("")
	}
	if w.proc != nil && w.proc.Process != nil {
		w.proc.Process.Kill()
		<-w.done
		w.proc = nil
	}
}

// Close stops litewitness and its agent, and closes its address.
func (w *Witness) Close() {
	w.Stop()
	if w.front != nil {
		w.front.ln.Close()
	}
	if w.agent != nil && w.agent.Process != nil {
		w.agent.Process.Kill()
		w.agent.Wait()
		w.agent = nil
	}
}
