package main

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/evident-dev/evident"
	"github.com/evident-dev/evident/verify"
)

// TestReadBundlesBadFiles covers threat model A1 and L7 at the verifier's
// input: a FIFO (which would block forever), a link to an endless device
// (which would be read into memory without end) and a file over
// evident.MaxBundleSize among the bundles are each reported as no evidence,
// promptly, and never stop the others from being read.
func TestReadBundlesBadFiles(t *testing.T) {
	dir := t.TempDir()
	if err := syscall.Mkfifo(filepath.Join(dir, "fifo.bundle.json"), 0o644); err != nil {
		t.Skipf("no FIFO here: %v", err)
	}
	if err := os.Symlink("/dev/zero", filepath.Join(dir, "zero.bundle.json")); err != nil {
		t.Fatal(err)
	}
	big, err := os.Create(filepath.Join(dir, "big.bundle.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := big.Truncate(evident.MaxBundleSize + 1); err != nil { // sparse: no disk used
		t.Fatal(err)
	}
	big.Close()
	if err := os.WriteFile(filepath.Join(dir, "ok.bundle.json"), []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	done := make(chan []string, 1)
	go func() {
		out, err := readBundles(dir)
		if err != nil {
			t.Error(err)
		}
		var got []string
		for _, nb := range out {
			got = append(got, nb.Name+": "+errString(nb.Err))
		}
		done <- got
	}()
	select {
	case got := <-done:
		want := []string{"big.bundle.json: bundle: file is over", "fifo.bundle.json: bundle: not a regular file",
			"ok.bundle.json: bundle:", "zero.bundle.json: bundle: not a regular file"}
		if len(got) != len(want) {
			t.Fatalf("readBundles = %q, want %d bundles", got, len(want))
		}
		for i := range want {
			if !strings.HasPrefix(got[i], want[i]) {
				t.Errorf("bundle %d: %q, want %q…", i, got[i], want[i])
			}
		}
	case <-time.After(20 * time.Second):
		t.Fatal("readBundles is still reading after 20 s (a FIFO or an endless file among the bundles)")
	}
}

func errString(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}

// TestReportIsTerminalSafe covers threat model A1 at the verifier's screen:
// a bundle file named, or a detail carrying, terminal escapes, newlines or
// bidirectional overrides cannot rewrite the report a person reads (erase
// a FAIL line, print a "verified" of its own); such text is shown quoted.
func TestReportIsTerminalSafe(t *testing.T) {
	rep := &verify.Report{Checks: []verify.Check{
		{Check: "x\x1b[1A\x1b[2K.bundle.json", Ignored: true, Detail: "ignored: bundle: \nverified\n"},
		{Check: "step build", OK: false, Detail: "step \u202egnp.exe is not satisfied"},
		{Check: "artifact app.tar", OK: true, Detail: "sha256 ab is product app.tar of step package"},
	}}
	var b strings.Builder
	printChecks(&b, rep)
	out := b.String()
	if strings.ContainsAny(out, "\x1b\u202e") || strings.Count(out, "\n") != len(rep.Checks) || strings.Contains(out, "\nverified") {
		t.Errorf("the report carries control text through:\n%q", out)
	}
	if !strings.Contains(out, "PASS  artifact app.tar                         sha256 ab is product app.tar of step package\n") {
		t.Errorf("plain text is not shown as is:\n%s", out)
	}
}
