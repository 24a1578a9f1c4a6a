package serve

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/evident-dev/evident/tlog"
	"github.com/evident-dev/evident/witness"
	"github.com/evident-dev/evident/witness/witnesstest"
)

type witnessedServer struct {
	*Server
	t    *testing.T
	ws   []*witnesstest.Witness
	logs *syncBuffer
	m    *minter
}

// openWitnessed opens a server in dir whose log the test witnesses ws
// know, submitting to them every 5ms. Entries are real and verified at ingest.
func openWitnessed(t *testing.T, dir string, ws []*witnesstest.Witness, urls []string) *witnessedServer {
	t.Helper()
	_, vkey, err := loadOrCreateNoteKey(DataDir(dir), "")
	if err != nil {
		t.Fatal(err)
	}
	var cfgs []WitnessConfig
	for i, w := range ws {
		if err := w.AddLog(vkey); err != nil {
			t.Fatal(err)
		}
		cfgs = append(cfgs, WitnessConfig{Name: w.Verifier().Name(), URL: urls[i], VerifierKey: w.VerifierKey()})
	}
	buf := &syncBuffer{}
	s, err := Open(Config{DataDir: dir, Addr: "127.0.0.1:0", Logger: slog.New(slog.NewTextHandler(buf, nil)),
		Witnesses: cfgs, WitnessPeriod: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	return &witnessedServer{Server: s, t: t, ws: ws, logs: buf, m: newMinter(t, s)}
}

// add appends a real entry and returns its index; tag names it in failures.
func (s *witnessedServer) add(tag string) uint64 {
	s.t.Helper()
	res, err := s.Log.Add(context.Background(), s.m.entry(s.t))
	if err != nil {
		s.t.Fatal(err)
	}
	return res.Index
}

// witnessed long-polls the first checkpoint covering index with k
// cosignatures.
func (s *witnessedServer) witnessed(index uint64, k int, wait string) (int, []byte) {
	s.t.Helper()
	resp, err := http.Get(s.URL() + PathWitnessed + "?index=" + itoa(index) + "&cosignatures=" + itoa(uint64(k)) + "&wait=" + wait)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func (s *witnessedServer) get(path string) string {
	s.t.Helper()
	resp, err := http.Get(s.URL() + path)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func itoa(n uint64) string { return strconv.FormatUint(n, 10) }

func verifiers(ws []*witnesstest.Witness) []*tlog.CosignatureVerifier {
	var out []*tlog.CosignatureVerifier
	for _, w := range ws {
		out = append(out, w.Verifier())
	}
	return out
}

// TestWitnessing: A2, K2, L6. Two witnesses cosign the log's checkpoints;
// one goes down and the log keeps appending, its checkpoints carrying one
// cosignature, the failures counted in /metrics; it comes back and cosigns
// again. Then the log's store is rolled back to an old backup and grows
// another tree: both witnesses refuse it, and the server says so in its log
// and its metrics.
func TestWitnessing(t *testing.T) {
	ws := []*witnesstest.Witness{witnesstest.New("witness.test/w1"), witnesstest.New("witness.test/w2")}
	var urls []string
	for _, w := range ws {
		srv := httptest.NewServer(w)
		t.Cleanup(srv.Close)
		urls = append(urls, srv.URL)
	}
	dir := t.TempDir()
	s := openWitnessed(t, dir, ws, urls)
	idx := s.add("first")
	code, note := s.witnessed(idx, 2, "10s")
	if code != 200 {
		t.Fatalf("witnessed(%d, 2) = %d %s", idx, code, note)
	}
	valid, _, err := tlog.VerifyCosignatures(note, verifiers(ws))
	if err != nil || len(valid) != 2 {
		t.Fatalf("cosignatures on the witnessed checkpoint = %v, %v; want 2", valid, err)
	}
	if _, err := tlog.OpenCheckpoint(note, s.Origin(), s.Verifier); err != nil {
		t.Fatalf("the witnessed note is not the log's checkpoint: %v", err)
	}
	// The published checkpoint carries them, for exactly that checkpoint.
	if cp := s.get("/log/checkpoint"); cp != string(note) {
		t.Errorf("/log/checkpoint = %q, want the cosigned note %q", cp, note)
	}
	var backup bytes.Buffer
	if _, err := s.store.Backup(&backup); err != nil {
		t.Fatal(err)
	}

	// w2 down: the log appends; checkpoints get w1's cosignature only.
	ws[1].SetDown(true)
	idx = s.add("second")
	if code, _ := s.witnessed(idx, 1, "10s"); code != 200 {
		t.Fatalf("with w2 down, witnessed(%d, 1) = %d", idx, code)
	}
	if code, _ := s.witnessed(idx, 2, "50ms"); code != 404 {
		t.Errorf("with w2 down, witnessed(%d, 2) = %d, want 404", idx, code)
	}
	if m := s.get("/metrics"); !strings.Contains(m, `evident_witness_failures_total{witness="witness.test/w2"}`) ||
		strings.Contains(m, `evident_witness_failures_total{witness="witness.test/w2"} 0`) {
		t.Errorf("metrics do not count w2's failures:\n%s", m)
	}
	ws[1].SetDown(false)
	idx = s.add("third")
	if code, _ := s.witnessed(idx, 2, "20s"); code != 200 {
		t.Fatalf("w2 back: witnessed(%d, 2) = %d", idx, code)
	}
	if m := s.get("/metrics"); !strings.Contains(m, `evident_witness_cosigned_tree_size{witness="witness.test/w2"} 3`) {
		t.Errorf("metrics lack w2's cosigned size 3:\n%s", m)
	}
	s.Close(context.Background())

	// Roll the store back to size 1 and grow another tree past size 3.
	if err := os.WriteFile(filepath.Join(dir, "log.db"), backup.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	s = openWitnessed(t, dir, ws, urls)
	defer s.Close(context.Background())
	refused := make(chan string, 16)
	hook := func(name string, err error) {
		if errors.Is(err, witness.ErrInconsistent) {
			select {
			case refused <- name:
			default:
			}
		}
	}
	s.witness.testHookResult.Store(&hook)
	for i := 0; i < 4; i++ {
		s.add("fork" + itoa(uint64(i)))
	}
	got := map[string]bool{}
	timeout := time.After(20 * time.Second)
	for len(got) < 2 {
		select {
		case n := <-refused:
			got[n] = true
		case <-timeout:
			t.Fatalf("witnesses refusing the forked tree: %v, want both (log size %d, w1 at %d)\n%s\n%s", got, s.Log.Head().Size, ws[0].Size(s.Origin()), s.logs.String(), s.get("/metrics"))
		}
	}
	if !strings.Contains(s.logs.String(), "split view") {
		t.Errorf("the server's log does not report the split view:\n%s", s.logs.String())
	}
	if m := s.get("/metrics"); strings.Contains(m, `evident_witness_inconsistent_total{witness="witness.test/w1"} 0`) {
		t.Errorf("metrics do not count the refusal:\n%s", m)
	}
	// The witness keeps the tree it saw; whether it refused a proof or the
	// submitter saw first that the witness is ahead of the forked log, the
	// outcome is ErrInconsistent (checked above) and no cosignature.
	if ws[0].Size(s.Origin()) != 3 {
		t.Errorf("w1 is at size %d, want 3", ws[0].Size(s.Origin()))
	}
}

func TestParseWitness(t *testing.T) {
	w := witnesstest.New("witness.test/w1")
	good := "witness.test/w1=http://127.0.0.1:7380," + w.VerifierKey()
	if c, err := ParseWitness(good); err != nil || c.URL != "http://127.0.0.1:7380" {
		t.Errorf("ParseWitness(%q) = %+v, %v", good, c, err)
	}
	for _, bad := range []string{"", "w", "witness.test/w1=http://x", "other=http://127.0.0.1:1," + w.VerifierKey(),
		"witness.test/w1=ftp://x," + w.VerifierKey(), "witness.test/w1=http://x,junk"} {
		if _, err := ParseWitness(bad); err == nil {
			t.Errorf("ParseWitness(%q) = nil error", bad)
		}
	}
}
