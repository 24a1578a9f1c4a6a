package main

import (
	"context"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/evident-dev/evident/serve"
)

// journeyBlock finds the README's journey blocks: a shell code block right
// after a "<!-- journey: NAME -->" line.
var journeyBlock = regexp.MustCompile("(?s)<!-- journey: ([a-z-]+) -->\n```sh\n(.*?)```")

// readmeJourneys returns the README's journey blocks, in order.
func readmeJourneys(t *testing.T) (names []string, script string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	var blocks []string
	for _, m := range journeyBlock.FindAllStringSubmatch(string(b), -1) {
		names = append(names, m[1])
		blocks = append(blocks, "# README: "+m[1]+"\n"+m[2])
	}
	return names, strings.Join(blocks, "\n")
}

// TestREADMEJourneys walks the README's journeys — release manager, CI
// job, verifier — running its marked blocks in order with bash, each
// command a separate evident process, against a server started where the
// README starts it. Only the server's address is substituted, so the
// README cannot drift from what the commands do.
func TestREADMEJourneys(t *testing.T) {
	for _, tool := range []string{"bash", "openssl", "sha256sum", "tar"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s", tool)
		}
	}
	names, script := readmeJourneys(t)
	if got, want := strings.Join(names, ","), "release-manager,ci-job,verifier"; got != want {
		t.Fatalf("README journey blocks = %s, want %s", got, want)
	}
	work := t.TempDir()
	s, err := serve.Open(serve.Config{DataDir: filepath.Join(work, "evident-data"), Addr: "127.0.0.1:0", DevSVID: true,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	script = strings.ReplaceAll(script, "http://127.0.0.1:8080", s.URL())
	cmd := exec.Command("bash", "-euxo", "pipefail", "-c", script)
	cmd.Dir = work
	cmd.Env = append(os.Environ(), "PATH="+filepath.Dir(binary)+string(os.PathListSeparator)+os.Getenv("PATH"))
	for _, k := range []string{"EVIDENT_SERVER", "EVIDENT_TUF_ROOT", "EVIDENT_LOG_KEY", "EVIDENT_TSA_ROOTS", "SPIFFE_ENDPOINT_SOCKET"} {
		cmd.Env = append(cmd.Env, k+"=")
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the README's journeys failed: %v\n%s", err, out)
	}
	for _, want := range []string{"published layouts/acme/release/v1.layout (version 1)", "logged at index 1", "PASS  artifact app.tar", "\nverified\n"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("the README's journeys printed no %q:\n%s", want, out)
		}
	}
}
