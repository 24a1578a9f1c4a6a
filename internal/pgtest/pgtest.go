// Package pgtest starts real PostgreSQL clusters for tests: initdb and
// postgres from the machine's PostgreSQL installation (Debian's postgresql
// package), in a temporary directory, listening on a unix socket only, run
// as an unprivileged user when the test runs as root (PostgreSQL refuses
// root).
//
// Tests skip with a message when PostgreSQL is not installed, unless
// EVIDENT_REQUIRE_POSTGRES=1, which makes them fail instead (CI sets it).
// EVIDENT_POSTGRES_BIN names the directory holding initdb and postgres when
// they are not in /usr/lib/postgresql/*/bin or on PATH.
//
// A test binary shares one cluster ([Main], [NewDatabase]: a fresh database
// per test); a test that restarts or kills PostgreSQL starts its own
// ([Start]).
package pgtest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Cluster is one running PostgreSQL cluster.
type Cluster struct {
	dir    string // owns data/ and the socket
	bin    string
	cred   *syscall.Credential
	logw   io.Writer
	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
	// settings are extra postgres -c settings (name=value).
	settings []string
}

// errMissing: PostgreSQL is not installed.
var errMissing = errors.New("PostgreSQL (initdb, postgres) not found: apt-get install postgresql, or set EVIDENT_POSTGRES_BIN")

// findBin returns the directory holding initdb and postgres.
func findBin() (string, error) {
	var dirs []string
	if d := os.Getenv("EVIDENT_POSTGRES_BIN"); d != "" {
		dirs = append(dirs, d)
	}
	found, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Sort(sort.Reverse(sort.StringSlice(found))) // newest major first
	dirs = append(dirs, found...)
	if p, err := exec.LookPath("initdb"); err == nil {
		dirs = append(dirs, filepath.Dir(p))
	}
	for _, d := range dirs {
		if isExec(filepath.Join(d, "initdb")) && isExec(filepath.Join(d, "postgres")) {
			return d, nil
		}
	}
	return "", errMissing
}

func isExec(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir() && st.Mode()&0o111 != 0
}

// skipOrFail skips t (or fails it under EVIDENT_REQUIRE_POSTGRES=1).
func skipOrFail(t testing.TB, err error) {
	t.Helper()
	if os.Getenv("EVIDENT_REQUIRE_POSTGRES") == "1" {
		t.Fatalf("EVIDENT_REQUIRE_POSTGRES=1: %v", err)
	}
	t.Skipf("skipping: %v", err)
}

// Installed skips t (or fails it under EVIDENT_REQUIRE_POSTGRES=1) unless
// PostgreSQL is installed: for a test whose program starts its own cluster.
func Installed(t testing.TB) {
	t.Helper()
	if _, err := findBin(); err != nil {
		skipOrFail(t, err)
	}
}

// Start starts a cluster of its own for t, stopped when t ends.
func Start(t testing.TB) *Cluster {
	t.Helper()
	c, err := start(&testWriter{t: t})
	if errors.Is(err, errMissing) {
		skipOrFail(t, err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// New starts a cluster outside a test (the load generator's benchmarks),
// writing postgres's log to logw, with extra settings (name=value, as
// postgres -c takes them) over the tests'. Close stops it and removes its
// files.
func New(logw io.Writer, settings ...string) (*Cluster, error) { return start(logw, settings...) }

// start runs initdb in a new temporary directory and starts postgres.
func start(logw io.Writer, settings ...string) (*Cluster, error) {
	bin, err := findBin()
	if err != nil {
		return nil, err
	}
	// Short: a unix socket path must fit in 107 bytes.
	dir, err := os.MkdirTemp("", "evident-pg-")
	if err != nil {
		return nil, err
	}
	c := &Cluster{dir: dir, bin: bin, logw: logw, settings: settings}
	if os.Getuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("running as root, PostgreSQL needs an unprivileged user: %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		c.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		if err := os.Chown(dir, uid, gid); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	initdb := exec.Command(filepath.Join(bin, "initdb"), "-D", c.dataDir(), "-U", "postgres",
		"--auth=trust", "--no-sync", "--encoding=UTF8", "--locale=C")
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: c.cred}
	if out, err := initdb.CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("initdb: %w\n%s", err, out)
	}
	if err := c.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return c, nil
}

func (c *Cluster) dataDir() string { return filepath.Join(c.dir, "data") }

// URL returns the connection URL of database db (fsync and synchronous
// commit are on, PostgreSQL's defaults).
func (c *Cluster) URL(db string) string {
	return "postgres://postgres@/" + db + "?host=" + c.dir + "&sslmode=disable"
}

// Start starts postgres (again, after [Cluster.Stop]) and waits until it
// accepts connections.
func (c *Cluster) Start() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cmd != nil {
		return errors.New("pgtest: postgres is already running")
	}
	args := []string{"-D", c.dataDir(), "-c", "listen_addresses=", "-c", "unix_socket_directories=" + c.dir,
		"-c", "max_connections=300", "-c", "shared_buffers=256MB"}
	for _, s := range c.settings {
		args = append(args, "-c", s)
	}
	cmd := exec.Command(filepath.Join(c.bin, "postgres"), args...)
	// Pdeathsig: the cluster goes down with the test binary, however it ends.
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: c.cred, Pdeathsig: syscall.SIGQUIT}
	cmd.Stdout, cmd.Stderr = c.logw, c.logw
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting postgres: %w", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	c.cmd, c.exited = cmd, exited
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for {
		conn, err := pgx.Connect(ctx, c.URL("postgres"))
		if err == nil {
			conn.Close(ctx)
			return nil
		}
		select {
		case <-exited:
			c.cmd = nil
			return fmt.Errorf("postgres exited at start: %w", err)
		case <-ctx.Done():
			return fmt.Errorf("postgres did not accept connections within 60s: %w", err)
		case <-time.After(50 * time.Millisecond): // polling a child process, not a test race
		}
	}
}

// Shutdown modes, as pg_ctl -m names them.
const (
	Fast      = syscall.SIGINT  // roll back open transactions, checkpoint, exit
	Immediate = syscall.SIGQUIT // exit at once; crash recovery at next start
)

// Stop stops postgres with the given shutdown mode and waits for it to exit.
func (c *Cluster) Stop(mode syscall.Signal) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cmd == nil {
		return nil
	}
	if err := c.cmd.Process.Signal(mode); err != nil {
		return err
	}
	select {
	case <-c.exited:
	case <-time.After(60 * time.Second):
		c.cmd.Process.Kill()
		<-c.exited
		return errors.New("postgres did not stop within 60s; killed")
	}
	c.cmd = nil
	return nil
}

// Pid is the postmaster's process id (the backends are its children), or
// 0 while postgres is not running.
func (c *Cluster) Pid() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cmd == nil {
		return 0
	}
	return c.cmd.Process.Pid
}

// Close stops the cluster at once and removes its directory.
func (c *Cluster) Close() {
	c.Stop(Immediate)
	os.RemoveAll(c.dir)
}

// CreateDatabase creates an empty database named name.
func (c *Cluster) CreateDatabase(name string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, c.URL("postgres"))
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
	return err
}

var (
	shared    *Cluster
	sharedErr error
	sharedMu  sync.Mutex
	dbSeq     atomic.Int64
)

// Main runs the tests of a package that uses [NewDatabase] and stops the
// shared cluster afterwards: call it from TestMain.
func Main(m *testing.M) {
	code := m.Run()
	sharedMu.Lock()
	if shared != nil {
		shared.Close()
	}
	sharedMu.Unlock()
	os.Exit(code)
}

// NewDatabase returns the URL of a fresh, empty database in the test
// binary's shared cluster, started on first use.
func NewDatabase(t testing.TB) string {
	t.Helper()
	sharedMu.Lock()
	if shared == nil && sharedErr == nil {
		shared, sharedErr = start(io.Discard)
	}
	c, err := shared, sharedErr
	sharedMu.Unlock()
	if errors.Is(err, errMissing) {
		skipOrFail(t, err)
	}
	if err != nil {
		t.Fatal(err)
	}
	name := fmt.Sprintf("t%d_%d", os.Getpid(), dbSeq.Add(1))
	if err := c.CreateDatabase(name); err != nil {
		t.Fatal(err)
	}
	return c.URL(name)
}

// testWriter sends postgres's log to the test's log.
type testWriter struct{ t testing.TB }

func (w *testWriter) Write(p []byte) (int, error) {
	for _, l := range strings.Split(strings.TrimRight(string(p), "\n"), "\n") {
		w.t.Log("postgres: " + l)
	}
	return len(p), nil
}

// Tables returns the number of tables in the public schema of the database
// at url: 0 for a database nothing was created in.
func Tables(t testing.TB, url string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}
