package evident

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"testing"
	"time"

	"github.com/evident-dev/evident/tlog"
	"golang.org/x/mod/sumdb/note"
)

// TestOpenCheckpointWithTrustRootKeys: a checkpoint opens with the log key
// valid at the time asked, and with no key from before or after its
// validity (a retired or future key signs nothing).
func TestOpenCheckpointWithTrustRootKeys(t *testing.T) {
	sk, vk, err := note.GenerateKey(rand.Reader, "example.test/log")
	if err != nil {
		t.Fatal(err)
	}
	signer, _ := note.NewSigner(sk)
	signed, err := tlog.SignCheckpoint(tlog.Checkpoint{Origin: "example.test/log", Size: 1}, signer)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tr := &TrustRoot{}
	if err := tr.Add(KindLog, "example.test/log", vk, start); err != nil {
		t.Fatal(err)
	}
	cp, v, err := tr.OpenCheckpoint(signed, start.Add(time.Hour))
	if err != nil || cp.Size != 1 || v.Name() != "example.test/log" {
		t.Errorf("OpenCheckpoint = %v, %v, %v; want size 1 by example.test/log", cp, v, err)
	}
	if _, _, err := tr.OpenCheckpoint(signed, start.Add(-time.Hour)); !errors.Is(err, ErrNoLogKey) {
		t.Errorf("OpenCheckpoint before the key's start = %v, want ErrNoLogKey", err)
	}
	vs, err := tr.LogVerifiers(start.Add(time.Hour))
	if err != nil || len(vs) != 1 || vs[0].KeyHash() != v.KeyHash() {
		t.Errorf("LogVerifiers = %v, %v; want the one key", vs, err)
	}
}

// TestPayloadSum: the digest decodes, a malformed one is refused, and
// IsPayload tells the payload from another.
func TestPayloadSum(t *testing.T) {
	payload := []byte("payload")
	d := sha256.Sum256(payload)
	e := &Entry{PayloadSHA256: hex.EncodeToString(d[:])}
	if got, err := e.PayloadSum(); err != nil || got != d {
		t.Errorf("PayloadSum = %x, %v; want %x", got, err, d)
	}
	if !e.IsPayload(payload) || e.IsPayload([]byte("other")) {
		t.Error("IsPayload does not tell the payload from another")
	}
	for _, bad := range []string{"", "00", hex.EncodeToString(d[:]) + "00", "zz" + hex.EncodeToString(d[1:])} {
		if _, err := (&Entry{PayloadSHA256: bad}).PayloadSum(); err == nil {
			t.Errorf("PayloadSum(%q) succeeded", bad)
		}
	}
}
