package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/evident-dev/evident"
	"github.com/evident-dev/evident/log"
	"github.com/evident-dev/evident/log/logclient"
	"github.com/evident-dev/evident/tlog"
	"golang.org/x/mod/sumdb/note"
)

// TestAppendUnverified: a log that answers an append with a checkpoint or
// proof that does not verify is reported as exactly that, with the index
// it claimed, and no bundle is written (L8).
func TestAppendUnverified(t *testing.T) {
	skey, vkey, err := note.GenerateKey(rand.Reader, "test.example/log")
	if err != nil {
		t.Fatal(err)
	}
	signer, _ := note.NewSigner(skey)
	verifier, _ := note.NewVerifier(vkey)
	otherKey, _, _ := note.GenerateKey(rand.Reader, "test.example/log")
	other, _ := note.NewSigner(otherKey)
	for _, tc := range []struct {
		name   string
		signer note.Signer
		want   string
	}{
		{"bad proof", signer, "the log says it appended the entry at index 7, but its inclusion proof does not verify"},
		{"bad checkpoint", other, "the log says it appended the entry at index 7, but its checkpoint does not verify"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				cp, _ := tlog.SignCheckpoint(tlog.Checkpoint{Origin: "test.example/log", Size: 9}, tc.signer)
				json.NewEncoder(w).Encode(log.AddResponse{Index: 7, Checkpoint: string(cp), InclusionProof: [][]byte{make([]byte, 32)}})
			}))
			defer srv.Close()
			out := t.TempDir()
			a := &appender{log: &logclient.Client{URL: srv.URL, Origin: verifier.Name(), Verifier: verifier}, out: out}
			entry := &evident.Entry{PayloadType: evident.PayloadTypeLink, PayloadSHA256: strings.Repeat("0", 64)}
			_, _, err := a.append(context.Background(), entry, []byte("payload"), []byte("{}"), "build.12345678.link")
			var ue *logclient.UnverifiedAddError
			if !errors.As(err, &ue) || ue.Index != 7 || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "no bundle was written") {
				t.Errorf("append = %v, want an UnverifiedAddError at index 7 saying %q and that no bundle was written", err, tc.want)
			}
			if m, _ := filepath.Glob(filepath.Join(out, "*.bundle.json")); len(m) != 0 {
				t.Errorf("bundles written: %v", m)
			}
		})
	}
}

// TestHumanize: library text becomes words a person can act on.
func TestHumanize(t *testing.T) {
	for in, want := range map[string]string{
		"invalid entry: invalid entry: bad signature": "invalid entry: bad signature",
		"proof does not verify: inclusion of index 1 in size 3: calculated root:\n[15 192 3]\n does not match expected root:\n[1 2 3]": "proof does not verify: inclusion of index 1 in size 3: the proof leads to another root hash than the checkpoint's",
		`ca.pem: asn1: structure error: tags don't match (16 vs {class:0 tag:2})`:                                                      "ca.pem: not DER of the expected kind (a wrong or damaged file?)",
		`parsing time "yesterday" as "2006-01-02T15:04:05Z07:00": cannot parse "yesterday" as "2006"`:                                  `bad time "yesterday": want RFC 3339, e.g. 2026-11-25T10:00:00Z`,
	} {
		if got := humanize(errors.New(in)); got != want {
			t.Errorf("humanize(%q) = %q, want %q", in, got, want)
		}
	}
}
