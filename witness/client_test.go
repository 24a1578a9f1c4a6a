package witness_test

import (
	"context"
	"crypto/rand"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/evident-dev/evident/log"
	"github.com/evident-dev/evident/tlog"
	"github.com/evident-dev/evident/witness"
	"github.com/evident-dev/evident/witness/witnesstest"
	"golang.org/x/mod/sumdb/note"
)

type testLog struct {
	*log.Log
	vkey   string
	signer note.Signer
}

func newLog(t *testing.T) *testLog {
	t.Helper()
	skey, vkey, _ := note.GenerateKey(rand.Reader, "log.test/w")
	s, _ := note.NewSigner(skey)
	v, _ := note.NewVerifier(vkey)
	l, err := log.Open(log.NewMemStore(), log.Config{Origin: "log.test/w", Signer: s, Verifier: v, BatchPeriod: time.Microsecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return &testLog{Log: l, vkey: vkey, signer: s}
}

func (l *testLog) add(t *testing.T, n int) (log.Checkpoint, []byte) {
	t.Helper()
	for i := 0; i < n; i++ {
		if _, err := l.Add(context.Background(), []byte(t.Name()+time.Now().String()+string(rune('a'+i)))); err != nil {
			t.Fatal(err)
		}
	}
	h := l.Head()
	cp, err := log.ParseCheckpoint([]byte(strings.SplitN(string(h.Checkpoint), "\n\n", 2)[0] + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	return cp, h.Checkpoint
}

func (l *testLog) submitter(w *witnesstest.Witness, url string) *witness.Submitter {
	return &witness.Submitter{Client: &witness.Client{URL: url}, Verifier: w.Verifier(),
		Proof: func(_ context.Context, from, to uint64) ([][]byte, error) { return l.ConsistencyProof(from, to) }}
}

// TestSubmitter follows the protocol with the test witness: the first
// submission learns the witness's size from a 409, later ones send a proof
// from it, and each cosignature verifies for its checkpoint.
func TestSubmitter(t *testing.T) {
	l := newLog(t)
	w := witnesstest.New("witness.test/a")
	if err := w.AddLog(l.vkey); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(w)
	defer srv.Close()
	s := l.submitter(w, srv.URL)
	for round := 0; round < 3; round++ {
		cp, signed := l.add(t, 3)
		cs, err := s.Submit(context.Background(), cp, signed)
		if err != nil {
			t.Fatalf("round %d: Submit = %v", round, err)
		}
		if w.Size(cp.Origin) != cp.Size {
			t.Errorf("witness size = %d, want %d", w.Size(cp.Origin), cp.Size)
		}
		valid, _, _ := tlog.VerifyCosignatures(tlog.AddSignatureLines(signed, cs.Line), []*tlog.CosignatureVerifier{w.Verifier()})
		if len(valid) != 1 {
			t.Errorf("round %d: cosignature does not verify", round)
		}
	}
	// A second submitter (a restarted server) starts from 0 and learns.
	cp, signed := l.add(t, 1)
	if _, err := l.submitter(w, srv.URL).Submit(context.Background(), cp, signed); err != nil {
		t.Fatalf("fresh submitter: %v", err)
	}
}

// TestSubmitterSplitView: K2, L6. A log key that signs a second tree for a
// size the witness has cosigned gets ErrInconsistent, and so does a tree
// smaller than the witness's.
func TestSubmitterSplitView(t *testing.T) {
	l := newLog(t)
	w := witnesstest.New("witness.test/a")
	w.AddLog(l.vkey)
	srv := httptest.NewServer(w)
	defer srv.Close()
	s := l.submitter(w, srv.URL)
	cp, signed := l.add(t, 4)
	if _, err := s.Submit(context.Background(), cp, signed); err != nil {
		t.Fatal(err)
	}
	fork := cp
	fork.Hash[0] ^= 1
	forged, _ := tlog.SignCheckpoint(fork, l.signer)
	_, err := l.submitter(w, srv.URL).Submit(context.Background(), fork, forged)
	if !errors.Is(err, witness.ErrInconsistent) {
		t.Fatalf("Submit(second tree of size %d) = %v, want ErrInconsistent", cp.Size, err)
	}
	if w.Refused() != 1 {
		t.Errorf("witness refused %d, want 1", w.Refused())
	}
	small := tlog.Checkpoint{Origin: cp.Origin, Size: 2}
	smallSigned, _ := tlog.SignCheckpoint(small, l.signer)
	if _, err := l.submitter(w, srv.URL).Submit(context.Background(), small, smallSigned); !errors.Is(err, witness.ErrInconsistent) {
		t.Fatalf("Submit(smaller tree) = %v, want ErrInconsistent", err)
	}
}

func TestClientErrors(t *testing.T) {
	l := newLog(t)
	cp, signed := l.add(t, 1)
	w := witnesstest.New("witness.test/a") // the log is not registered
	srv := httptest.NewServer(w)
	defer srv.Close()
	if _, err := l.submitter(w, srv.URL).Submit(context.Background(), cp, signed); !errors.Is(err, witness.ErrUnknownLog) {
		t.Errorf("unknown log: %v, want ErrUnknownLog", err)
	}
	w.AddLog(l.vkey)
	w.SetDown(true)
	var se *witness.StatusError
	if _, err := l.submitter(w, srv.URL).Submit(context.Background(), cp, signed); !errors.As(err, &se) || se.Status != 503 {
		t.Errorf("down: %v, want a 503 StatusError", err)
	}
	// A witness that answers 200 with someone else's signature.
	other := witnesstest.New("witness.test/a")
	other.AddLog(l.vkey)
	osrv := httptest.NewServer(other)
	defer osrv.Close()
	if _, err := l.submitter(w, osrv.URL).Submit(context.Background(), cp, signed); !errors.Is(err, witness.ErrBadCosignature) {
		t.Errorf("wrong key: %v, want ErrBadCosignature", err)
	}
	// A 409 without a number, and an endless body, are bounded errors.
	bad := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.URL.RawQuery, "big") {
			rw.Write([]byte(strings.Repeat("— x AAAA\n", witness.MaxResponse)))
			return
		}
		http.Error(rw, "nope", http.StatusConflict)
	}))
	defer bad.Close()
	c := &witness.Client{URL: bad.URL}
	if _, err := c.AddCheckpoint(context.Background(), 0, nil, signed); !errors.As(err, &se) || se.Status != 409 {
		t.Errorf("409 without size: %v", err)
	}
	c.URL = bad.URL + "/?big=1#"
	if _, err := c.AddCheckpoint(context.Background(), 0, nil, signed); err == nil || !strings.Contains(err.Error(), "over") {
		t.Errorf("huge answer: %v, want an over-limit error", err)
	}
	// A witness that never answers: the client's timeout ends the call.
	hang := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) { <-hang }))
	defer slow.Close()
	defer close(hang)
	c = &witness.Client{URL: slow.URL, Timeout: 50 * time.Millisecond}
	if _, err := c.AddCheckpoint(context.Background(), 0, nil, signed); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("hanging witness: %v, want DeadlineExceeded", err)
	}
}
