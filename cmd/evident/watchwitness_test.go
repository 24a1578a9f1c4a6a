package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/evident-dev/evident/internal/logtest"
	"github.com/evident-dev/evident/log"
	"github.com/evident-dev/evident/log/logclient"
	"github.com/evident-dev/evident/tlog"
	"github.com/evident-dev/evident/witness/witnesstest"
)

// TestWatchWitnessedHead: K2. log watch checks the log's latest witnessed
// checkpoint: cosigned by the threshold and consistent with the log, it
// says so; a forged cosignature by a trusted witness and a witnessed tree
// the log does not extend are errors; too few cosignatures (a witness
// down) only a warning.
func TestWatchWitnessedHead(t *testing.T) {
	l := logtest.Open(t, "log.test/watched")
	signer, verifier := l.Signer, l.Verifier
	for i := 0; i < 3; i++ {
		if _, err := l.Add(context.Background(), []byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
	ws := []*witnesstest.Witness{witnesstest.New("witness.test/w1"), witnesstest.New("witness.test/w2")}
	policy := &witnessPolicy{threshold: 2, verifiers: []*tlog.CosignatureVerifier{ws[0].Verifier(), ws[1].Verifier()}}
	var witnessed []byte // what the server answers on /log/v1/witnessed
	mux := http.NewServeMux()
	mux.Handle("/", log.Handler(l.Log, slog.New(slog.NewTextHandler(io.Discard, nil))))
	mux.HandleFunc("GET "+pathWitnessed, func(w http.ResponseWriter, r *http.Request) { w.Write(witnessed) })
	srv := httptest.NewServer(mux)
	defer srv.Close()
	c := &logclient.Client{URL: srv.URL, Origin: "log.test/watched", Verifier: verifier}
	cur, _, err := c.Checkpoint(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	head := l.Head().Checkpoint
	body := noteText(head)
	cosign := func(signed []byte, which ...int) []byte {
		for _, i := range which {
			signed = tlog.AddSignatureLines(signed, ws[i].Cosign(body, time.Now()))
		}
		return signed
	}
	watch := func() (string, string, error) {
		var out, errOut bytes.Buffer
		err := checkWitnessedHead(context.Background(), &env{stdout: &out, stderr: &errOut, getenv: func(string) string { return "" }}, c, policy, cur)
		return out.String(), errOut.String(), err
	}

	witnessed = cosign(head, 0, 1)
	if out, _, err := watch(); err != nil || !strings.Contains(out, "size 3 cosigned by witness.test/w1, witness.test/w2") {
		t.Errorf("both cosigned: %q, %v", out, err)
	}
	witnessed = cosign(head, 0)
	if _, errOut, err := watch(); err != nil || !strings.Contains(errOut, "warning: the latest witnessed checkpoint (size 3) has 1 valid cosignatures, the trust root wants 2") {
		t.Errorf("one cosignature: %q, %v, want a warning", errOut, err)
	}
	// A line under w2's name and key hash that w2 did not sign.
	good := ws[1].Cosign(body, time.Now())
	f := strings.Fields(good)
	raw, _ := base64.StdEncoding.DecodeString(f[2])
	raw[len(raw)-1] ^= 1
	witnessed = tlog.AddSignatureLines(cosign(head, 0), "— "+f[1]+" "+base64.StdEncoding.EncodeToString(raw)+"\n")
	if _, _, err := watch(); !errors.Is(err, errBadCosignature) || !strings.Contains(err.Error(), "witness.test/w2") {
		t.Errorf("forged cosignature: %v, want errBadCosignature naming witness.test/w2", err)
	}
	// A witnessed tree of size 3 with another root: both witnesses
	// cosigned a tree this log does not extend.
	fork, err := tlog.ParseCheckpoint(body)
	if err != nil {
		t.Fatal(err)
	}
	fork.Hash[0] ^= 1
	forked, _ := tlog.SignCheckpoint(fork, signer)
	body = noteText(forked)
	witnessed = cosign(forked, 0, 1)
	var sv *logclient.SplitViewError
	if _, _, err := watch(); !errors.As(err, &sv) {
		t.Errorf("witnessed fork: %v, want a SplitViewError", err)
	}
}

// noteText is the text of a signed note, up to its blank line.
func noteText(signed []byte) []byte {
	i := bytes.LastIndex(signed, []byte("\n\n"))
	return signed[:i+1]
}
