// Package logtest opens in-memory transparency logs with fresh note keys,
// for tests of what is built on package log: witnesses, watchers,
// verifiers.
package logtest

import (
	"crypto/rand"
	"testing"
	"time"

	"github.com/evident-dev/evident/log"
	"golang.org/x/mod/sumdb/note"
)

// Log is an in-memory log and its keys.
type Log struct {
	*log.Log
	Signer      note.Signer
	Verifier    note.Verifier
	VerifierKey string
}

// Open opens an empty in-memory log named origin with a fresh key, whose
// batches commit at once; it is closed when the test ends.
func Open(t testing.TB, origin string) *Log {
	t.Helper()
	skey, vkey, err := note.GenerateKey(rand.Reader, origin)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	verifier, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	l, err := log.Open(log.NewMemStore(), log.Config{Origin: origin, Signer: signer, Verifier: verifier, BatchPeriod: time.Microsecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return &Log{Log: l, Signer: signer, Verifier: verifier, VerifierKey: vkey}
}
