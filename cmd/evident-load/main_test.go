package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/evident-dev/evident/internal/litewitness"
	"github.com/evident-dev/evident/internal/pgtest"
)

// evident and load are the binaries built once for these tests.
var evidentBin, load string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "evident-load-test-")
	if err != nil {
		panic(err)
	}
	evidentBin, load = filepath.Join(dir, "evident"), filepath.Join(dir, "evident-load")
	for _, b := range [][2]string{{evidentBin, "../evident"}, {load, "."}} {
		if out, err := exec.Command("go", "build", "-o", b[0], b[1]).CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "building %s: %v\n%s", b[1], err, out)
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// TestAgainstRealServer covers threat model M1: evident-load --server drives a
// separate evident serve process with real entries, every one verified at
// ingest, and reports its figures without a failure.
func TestAgainstRealServer(t *testing.T) {
	dir := t.TempDir()
	srv := exec.Command(evidentBin, "serve", "--data", dir, "--addr", "127.0.0.1:0")
	stdout, _ := srv.StdoutPipe()
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { srv.Process.Kill(); srv.Wait() }()
	var url, key string
	sc := bufio.NewScanner(stdout)
	for (url == "" || key == "") && sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if rest, ok := strings.CutPrefix(l, "evident serving at "); ok {
			url = strings.Fields(rest)[0]
		}
		if rest, ok := strings.CutPrefix(l, "log key:"); ok {
			key = strings.TrimSpace(rest)
		}
	}
	if url == "" || key == "" {
		t.Fatal("evident serve did not print its URL and key")
	}
	go io.Copy(io.Discard, stdout)
	cmd := exec.Command(load, "-server", url, "-key", key, "-c", "8", "-d", "2s", "-proof-d", "500ms", "-mint", "400", "-verify-every", "10")
	done := make(chan struct{})
	var out []byte
	var err error
	go func() { out, err = cmd.CombinedOutput(); close(done) }()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatalf("evident-load did not finish within 60s:\n%s", out)
	}
	if err != nil {
		t.Fatalf("evident-load --server: %v\n%s", err, out)
	}
	s := string(out)
	if !strings.Contains(s, "minted 400 real entries") || !strings.Contains(s, " 0 failures") || !strings.Contains(s, "append phase: 400 entries") {
		t.Errorf("evident-load output:\n%s", s)
	}
	t.Log(s)
}

// The PostgreSQL benchmark starts its own cluster, alternates PostgreSQL
// and bbolt rounds, and prints the comparison last; -frontends measures
// proofs from followers too.
func TestPostgresVsBbolt(t *testing.T) {
	pgtest.Installed(t)
	for _, c := range []struct {
		args []string
		last string
	}{
		{[]string{"-vs-bbolt", "-rounds", "2"}, "postgres vs bbolt (median of 2 rounds): append "},
		{[]string{"-frontends", "2"}, "; from 2 frontends: "},
	} {
		args := append([]string{"-store", "pgtest", "-c", "8", "-d", "1s", "-proof-d", "300ms"}, c.args...)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		out, err := exec.CommandContext(ctx, load, args...).CombinedOutput()
		cancel()
		if err != nil {
			t.Fatalf("evident-load %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		if last := lines[len(lines)-1]; !strings.Contains(last, c.last) {
			t.Errorf("evident-load %s: last line %q, want it to contain %q", strings.Join(args, " "), last, c.last)
		}
	}
}

// Proof latency at two sizes: both logs are filled in bulk, measured from
// new frontends, and the ratio is the last line.
func TestProofSizes(t *testing.T) {
	pgtest.Installed(t)
	args := []string{"-store", "pgtest", "-proof-sizes", "300,3000", "-c", "8", "-proof-d", "300ms", "-rounds", "2", "-entry-bytes", "256"}
	last := runLoad(t, args)
	if !strings.HasPrefix(last, "proof latency, warm: p50 ") || !strings.Contains(last, " at 300 entries, ") || !strings.Contains(last, " at 3000 entries (") ||
		!strings.Contains(last, "median of 2 rounds") || !strings.Contains(last, "| cold: p50 ") {
		t.Errorf("last line = %q", last)
	}
}

// Proofs from two evident serve processes on one database against one of
// them: real processes, the ratio last, and CPU reported per phase.
func TestServeProcs(t *testing.T) {
	pgtest.Installed(t)
	args := []string{"-store", "pgtest", "-serve-procs", "2", "-evident", evidentBin, "-prefill", "500", "-c", "8", "-proof-d", "300ms", "-entry-bytes", "256"}
	last := runLoad(t, args)
	if !strings.HasPrefix(last, "proofs from 2 evident serve processes: ") || !strings.Contains(last, "from one (") {
		t.Errorf("last line = %q", last)
	}
}

// runLoad runs evident-load with args (within two minutes) and returns its
// last line.
func runLoad(t *testing.T, args []string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, load, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("evident-load %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	if !strings.Contains(string(out), "cpu, in cores: ") && strings.Contains(strings.Join(args, " "), "-serve-procs") {
		t.Errorf("no CPU figures:\n%s", out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	return lines[len(lines)-1]
}

// TestWitnessMode runs -mode witness briefly with two real litewitnesses
// (skipped without them, unless EVIDENT_REQUIRE_WITNESS is set): both
// phases run, witnessed bundles are measured, and the last line has the
// figures.
func TestWitnessMode(t *testing.T) {
	bin := litewitness.DefaultBin()
	if m := litewitness.Missing(bin); m != "" {
		if os.Getenv("EVIDENT_REQUIRE_WITNESS") != "" {
			t.Fatalf("%s is required but missing", m)
		}
		t.Skipf("no %s (build litewitness with tools/litewitness)", m)
	}
	out, err := exec.Command(load, "-mode", "witness", "-c", "4", "-d", "2s", "-rounds", "2", "-mint", "2000", "-samplers", "2").CombinedOutput()
	if err != nil {
		t.Fatalf("evident-load -mode witness: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	last := lines[len(lines)-1]
	if !strings.HasPrefix(last, "witness: unwitnessed ") || !strings.Contains(last, "witnessed bundle p50=") || !strings.Contains(last, "2 rounds of 2s") ||
		strings.Contains(last, " 0 bundles") {
		t.Errorf("last line = %q\n%s", last, out)
	}
	t.Log(string(out))
}

// -verify-ingest with two formats measures both, in rounds alternating
// which goes first, each on a new server verifying every entry, and ends
// with their ratio.
func TestIngestFormats(t *testing.T) {
	args := []string{"-verify-ingest", "-with-payload", "-format", "dsse,metablock", "-rounds", "2", "-c", "8", "-d", "1s", "-proof-d", "200ms", "-mint", "500"}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, load, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("evident-load %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	var order []string
	for _, l := range lines {
		if strings.HasPrefix(l, "round ") {
			order = append(order, strings.SplitN(l, ":", 2)[0])
		}
	}
	want := []string{"round 1, dsse", "round 1, metablock", "round 2, metablock", "round 2, dsse"}
	if strings.Join(order, "; ") != strings.Join(want, "; ") || strings.Count(string(out), " 0 failures") != 4 {
		t.Errorf("rounds %q, want %q\n%s", order, want, out)
	}
	if last := lines[len(lines)-1]; !regexp.MustCompile(`^dsse/metablock ingest \(median of 2 rounds\): \d+/s vs \d+/s = \d+%; paired by round \d+%; by CPU time per entry \d+%$`).MatchString(last) {
		t.Errorf("last line %q\n%s", last, out)
	}
	for _, bad := range [][]string{{"-format", "dsse,dsse"}, {"-format", "jsonl"}, {"-format", "dsse,metablock,dsse"}} {
		if out, err := exec.Command(load, append([]string{"-verify-ingest", "-d", "1s"}, bad...)...).CombinedOutput(); err == nil || !strings.Contains(string(out), "-format") {
			t.Errorf("evident-load %s = %v\n%s", strings.Join(bad, " "), err, out)
		}
	}
}
