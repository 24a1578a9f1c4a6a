package litewitness

import (
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
)

// TestRestartWhenThePortIsTaken: the port litewitness is given is picked
// free a moment before it binds it, so another process may take it in
// between (here, one that answers HTTP). litewitness then exits, and is
// started again on another port; its clients' address stays the same and
// reaches it, never the other process, before and after a stop.
func TestRestartWhenThePortIsTaken(t *testing.T) {
	bin := DefaultBin()
	if m := Missing(bin); m != "" {
		if os.Getenv("EVIDENT_REQUIRE_WITNESS") != "" {
			t.Fatalf("%s is required but missing", m)
		}
		t.Skipf("needs %s", m)
	}
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	other := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "another server\n") })}
	go other.Serve(taken)
	defer other.Close()
	picks := 0
	pickAddr = func() (string, error) {
		picks++
		if picks%2 == 1 {
			return taken.Addr().String(), nil // taken between the pick and the bind
		}
		return freeAddr()
	}
	defer func() { pickAddr = freeAddr }()

	w, err := Start(bin, t.TempDir(), "witness.test/restart")
	if err != nil {
		t.Fatalf("Start with its first port taken: %v", err)
	}
	defer w.Close()
	addr := w.Addr
	page := func() string {
		t.Helper()
		resp, err := http.Get(w.URL() + "/")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	if p := page(); !strings.Contains(p, w.VerifierKey) {
		t.Fatalf("GET %s/ = %q, want litewitness's page naming %s", w.URL(), p, w.VerifierKey)
	}
	w.Stop()
	if _, err := http.Get(w.URL() + "/"); err == nil {
		t.Error("a stopped witness answered")
	}
	if err := w.Restart(); err != nil {
		t.Fatalf("Restart with its first port taken: %v", err)
	}
	if w.Addr != addr {
		t.Errorf("address after Restart = %s, want %s, the one its clients know", w.Addr, addr)
	}
	if p := page(); !strings.Contains(p, w.VerifierKey) {
		t.Errorf("after Restart, GET %s/ = %q, want litewitness's page", w.URL(), p)
	}
	if picks != 4 {
		t.Errorf("%d ports picked, want 4 (each start's first was taken)", picks)
	}
}
