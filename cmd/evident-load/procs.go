package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/evident-dev/evident/internal/pgtest"
	"github.com/evident-dev/evident/log/logclient"
	"github.com/evident-dev/evident/serve"
	"golang.org/x/mod/sumdb/note"
)

// -serve-procs N: proofs from N `evident serve` processes on one
// PostgreSQL against proofs from one of them. The database is filled in
// bulk (-prefill entries, signed with the log key the first process made),
// then the processes start, and each of -rounds rounds measures proofs
// from the first process alone and spread over all of them, alternating
// which comes first. Each phase also says how much CPU the frontends,
// PostgreSQL and the load generator used, in cores, so that a frontend
// short of CPU is told from one held back by something serial. The last
// line:
//
//	proofs from N evident serve processes: M/s vs K/s from one (R×, median of K rounds; …)

// procsOpts configures -serve-procs.
type procsOpts struct {
	n       int
	bin     string // the evident binary; "" builds ./cmd/evident
	prefill int
	rounds  int
	logger  *slog.Logger
}

// maxServeProcs bounds -serve-procs.
const maxServeProcs = 8

func benchProcs(o procsOpts, ph phases) error {
	if o.n < 2 || o.n > maxServeProcs || o.prefill < 1 {
		return fmt.Errorf("-serve-procs must be 2 to %d, with -prefill at least 1", maxServeProcs)
	}
	tmp, err := os.MkdirTemp("", "evident-load-procs-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if o.bin == "" {
		o.bin = filepath.Join(tmp, "evident")
		if out, err := exec.Command("go", "build", "-o", o.bin, "./cmd/evident").CombinedOutput(); err != nil {
			return fmt.Errorf("building ./cmd/evident (run from the repository, or give -evident): %v\n%s", err, out)
		}
	}
	cluster, err := pgtest.New(io.Discard, pgtestSettings...)
	if err != nil {
		return err
	}
	defer cluster.Close()
	if err := cluster.CreateDatabase("procs"); err != nil {
		return err
	}
	url := cluster.URL("procs")
	procs, err := startFilledFrontends(o, tmp, url, ph.entryBytes)
	for _, p := range procs {
		defer p.stop()
	}
	if err != nil {
		return err
	}
	verifier, err := note.NewVerifier(procs[0].key)
	if err != nil {
		return fmt.Errorf("evident serve printed a bad key: %w", err)
	}
	all := make([]string, len(procs))
	pids := make([]int, len(procs))
	for i, p := range procs {
		all[i], pids[i] = p.url, p.cmd.Process.Pid
	}
	lc := &logclient.Client{URL: all[0], Origin: verifier.Name(), Verifier: verifier, HTTP: newHTTPClient(ph.conc)}
	var one, many []float64
	for r := 0; r < o.rounds; r++ {
		for k := 0; k < 2; k++ {
			readers := all[:1]
			if (r+k)%2 == 1 {
				readers = all
			}
			cpu := startCPU(pids, cluster.Pid())
			f, err := proofPhase(lc, readers, uint64(o.prefill), ph)
			if err != nil {
				return err
			}
			fmt.Printf("  cpu, in cores: %s\n", cpu.since())
			if len(readers) == 1 {
				one = append(one, f.proofs)
			} else {
				many = append(many, f.proofs)
			}
		}
	}
	fmt.Println(procsLine(o.n, one, many))
	return nil
}

// procsLine is the last line of -serve-procs.
func procsLine(n int, one, many []float64) string {
	ratios := make([]float64, len(one))
	for i := range one {
		ratios[i] = many[i] / one[i]
	}
	sorted := slices.Clone(ratios)
	slices.Sort(sorted)
	return fmt.Sprintf("proofs from %d evident serve processes: %.0f/s vs %.0f/s from one (%.2f×, median of %d rounds; per round %s)",
		n, medianOf(many), medianOf(one), medianOf(ratios), len(ratios), fmtRatios(sorted))
}

// startFilledFrontends starts one evident serve process to make the data
// directory (keys, TUF) and the schema, stops it, fills the log in bulk,
// and starts o.n processes, each in a copy of the data directory.
func startFilledFrontends(o procsOpts, tmp, url string, entryBytes int) ([]*serveProc, error) {
	first := filepath.Join(tmp, "fe0")
	p, err := startServeProc(o.bin, first, url)
	if err != nil {
		return nil, err
	}
	p.stop()
	skey, err := os.ReadFile(serve.DataDir(first).LogKey())
	if err != nil {
		return nil, err
	}
	signer, err := note.NewSigner(strings.TrimSpace(string(skey)))
	if err != nil {
		return nil, err
	}
	start := time.Now()
	if err := bulkFillPG(url, signer, o.prefill, entryBytes, o.logger); err != nil {
		return nil, err
	}
	fmt.Printf("bulk fill: %d entries in %v\n", o.prefill, time.Since(start).Round(time.Millisecond))
	var procs []*serveProc
	for i := 0; i < o.n; i++ {
		dir := first
		if i > 0 {
			dir = filepath.Join(tmp, fmt.Sprintf("fe%d", i))
			if err := copyKeys(first, dir); err != nil {
				return procs, err
			}
		}
		p, err := startServeProc(o.bin, dir, url)
		if err != nil {
			return procs, err
		}
		procs = append(procs, p)
	}
	return procs, nil
}

// serveProc is a running evident serve process.
type serveProc struct {
	cmd      *exec.Cmd
	url, key string
	done     chan struct{}
}

// startServeProc starts evident serve on 127.0.0.1 with its log in the
// PostgreSQL database at url and waits until it prints its URL and key.
func startServeProc(bin, dir, url string) (*serveProc, error) {
	cmd := exec.Command(bin, "serve", "--data", dir, "--addr", "127.0.0.1:0", "--store", url, "--admin-socket", "off")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &serveProc{cmd: cmd, done: make(chan struct{})}
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			l := strings.TrimSpace(sc.Text())
			if rest, ok := strings.CutPrefix(l, "evident serving at "); ok {
				p.url = strings.Fields(rest)[0]
			}
			if rest, ok := strings.CutPrefix(l, "log key:"); ok && p.url != "" {
				p.key = strings.TrimSpace(rest)
				close(ready)
			}
		}
		cmd.Wait()
		close(p.done)
	}()
	select {
	case <-ready:
		return p, nil
	case <-p.done:
		return nil, errors.New("evident serve exited before it was ready")
	case <-time.After(time.Minute):
		p.stop()
		return nil, errors.New("evident serve did not print its URL and key within a minute")
	}
}

// stop ends the process as an operator does (SIGTERM: it gives up its
// lease) and waits for it, killing it after a grace period.
func (p *serveProc) stop() {
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
	}
}

// copyKeys copies what all frontends of one log share — keys and the TUF
// repository — from one data directory to a new one; the log itself is
// in the database.
func copyKeys(from, to string) error {
	return filepath.WalkDir(from, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(from, p)
		if err != nil || rel == "links.db" {
			return err
		}
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(to, rel), 0o700)
		}
		if !d.Type().IsRegular() {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(to, rel), b, 0o600)
	})
}

// cpuSample is the CPU time used so far by the frontends, by PostgreSQL
// (the postmaster and its children) and by this process.
type cpuSample struct {
	at               time.Time
	fronts, pg, self time.Duration
	frontPids        []int
	postmaster       int
}

func startCPU(frontPids []int, postmaster int) cpuSample {
	s := cpuSample{at: time.Now(), frontPids: frontPids, postmaster: postmaster}
	s.fronts, s.pg, s.self = cpuNow(frontPids, postmaster)
	return s
}

// since says how many cores each group used on average since s.
func (s cpuSample) since() string {
	f, pg, self := cpuNow(s.frontPids, s.postmaster)
	secs := time.Since(s.at).Seconds()
	return fmt.Sprintf("frontends %.2f, PostgreSQL %.2f, load generator %.2f (of %d on the machine)",
		(f-s.fronts).Seconds()/secs, (pg-s.pg).Seconds()/secs, (self-s.self).Seconds()/secs, runtime.NumCPU())
}

func cpuNow(frontPids []int, postmaster int) (fronts, pg, self time.Duration) {
	for _, pid := range frontPids {
		fronts += procCPU(pid)
	}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if pid == postmaster || procParent(pid) == postmaster {
			pg += procCPU(pid)
		}
	}
	return fronts, pg, procCPU(os.Getpid())
}

// procStat returns the fields of /proc/pid/stat after the command name.
func procStat(pid int) []string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil
	}
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return nil
	}
	return strings.Fields(string(b[i+1:]))
}

// clockTick is USER_HZ, the unit of /proc/pid/stat's times on Linux.
const clockTick = 100

func procCPU(pid int) time.Duration {
	f := procStat(pid)
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	s, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(u+s) * time.Second / clockTick
}

func procParent(pid int) int {
	f := procStat(pid)
	if len(f) < 2 {
		return -1
	}
	p, _ := strconv.Atoi(f[1])
	return p
}
