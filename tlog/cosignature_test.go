package tlog_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"strings"
	"testing"
	"time"

	"filippo.io/torchwood"
	"github.com/evident-dev/evident/tlog"
	"golang.org/x/mod/sumdb/note"
)

func signedCheckpoint(t *testing.T, size uint64) ([]byte, tlog.Checkpoint) {
	t.Helper()
	skey, _, err := note.GenerateKey(rand.Reader, "log.test/witnessed")
	if err != nil {
		t.Fatal(err)
	}
	s, _ := note.NewSigner(skey)
	cp := tlog.Checkpoint{Origin: "log.test/witnessed", Size: size}
	cp.Hash[0] = byte(size)
	signed, err := tlog.SignCheckpoint(cp, s)
	if err != nil {
		t.Fatal(err)
	}
	return signed, cp
}

// TestCosignatureAgainstTorchwood checks evident's tlog-cosignature/v1
// verifier against torchwood's signer (the code litewitness signs with):
// the verifier key it prints parses to the same key hash, its cosignatures
// verify with their time, through VerifyCosignatures and through x/mod's
// note.Open, and a flipped bit anywhere is refused. K2: evident trusts only
// cosignatures it verified itself.
func TestCosignatureAgainstTorchwood(t *testing.T) {
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	tw, err := torchwood.NewCosignatureSigner("witness.test/w1", priv)
	if err != nil {
		t.Fatal(err)
	}
	v, err := tlog.NewCosignatureVerifier(tw.Verifier().String())
	if err != nil {
		t.Fatalf("NewCosignatureVerifier(%q) = %v", tw.Verifier().String(), err)
	}
	if v.KeyHash() != tw.KeyHash() || v.Name() != tw.Name() || v.String() != tw.Verifier().String() {
		t.Fatalf("verifier = %s %08x, torchwood %s %08x", v, v.KeyHash(), tw.Verifier(), tw.KeyHash())
	}
	signed, cp := signedCheckpoint(t, 7)
	before := time.Now().Add(-time.Second)
	cosigned, err := note.Sign(&note.Note{Text: string(cp.Marshal())}, tw)
	if err != nil {
		t.Fatal(err)
	}
	_, lines, err := tlog.SplitNote(cosigned)
	if err != nil || len(lines) != 1 {
		t.Fatalf("SplitNote = %v, %v", lines, err)
	}
	full := tlog.AddSignatureLines(signed, lines[0].Line)
	valid, invalid, err := tlog.VerifyCosignatures(full, []*tlog.CosignatureVerifier{v})
	if err != nil || len(valid) != 1 || len(invalid) != 0 {
		t.Fatalf("VerifyCosignatures = %v, %v, %v; want one valid", valid, invalid, err)
	}
	if valid[0].Time.Before(before.Truncate(time.Second)) || valid[0].Time.After(time.Now()) {
		t.Errorf("cosignature time = %v, want about now", valid[0].Time)
	}
	ts, _ := torchwood.CosignatureTimestamp(note.Signature{Base64: strings.Fields(lines[0].Line)[2]})
	if valid[0].Time.Unix() != ts {
		t.Errorf("time = %d, torchwood says %d", valid[0].Time.Unix(), ts)
	}
	// x/mod's note.Open with evident's verifier, and with torchwood's.
	for _, nv := range []note.Verifier{v, tw.Verifier()} {
		n, err := note.Open(full, note.VerifierList(nv))
		if err != nil || len(n.Sigs) != 1 {
			t.Errorf("note.Open with %T = %v", nv, err)
		}
	}
	// Every single-bit change of the signature is refused by both.
	raw, _ := base64.StdEncoding.DecodeString(strings.Fields(lines[0].Line)[2])
	for i := 4; i < len(raw); i += 7 {
		bad := append([]byte(nil), raw...)
		bad[i] ^= 1
		line := "— witness.test/w1 " + base64.StdEncoding.EncodeToString(bad) + "\n"
		note := tlog.AddSignatureLines(signed, line)
		valid, invalid, _ := tlog.VerifyCosignatures(note, []*tlog.CosignatureVerifier{v})
		if len(valid) != 0 || len(invalid) != 1 {
			t.Errorf("byte %d flipped: valid %v", i, valid)
		}
		if tw.Verifier().Verify(cp.Marshal(), bad[4:]) {
			t.Errorf("byte %d flipped: torchwood accepts", i)
		}
	}
	// A cosignature is over one checkpoint: not another size.
	other, _ := signedCheckpoint(t, 8)
	if valid, _, _ := tlog.VerifyCosignatures(tlog.AddSignatureLines(other, lines[0].Line), []*tlog.CosignatureVerifier{v}); len(valid) != 0 {
		t.Errorf("a cosignature of size 7 verified for size 8")
	}
}

// TestCosignatureMessage pins the signed message to the C2SP text.
func TestCosignatureMessage(t *testing.T) {
	got := string(tlog.CosignedMessage(1700000000, []byte("o\n1\nh\n")))
	if want := "cosignature/v1\ntime 1700000000\no\n1\nh\n"; got != want {
		t.Errorf("CosignedMessage = %q, want %q", got, want)
	}
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	v, _ := tlog.NewCosignatureVerifierFromKey("w", priv.Public().(ed25519.PublicKey))
	_, cp := signedCheckpoint(t, 3)
	sig := binary.BigEndian.AppendUint64(nil, 1700000000)
	sig = append(sig, ed25519.Sign(priv, tlog.CosignedMessage(1700000000, cp.Marshal()))...)
	if !v.Verify(cp.Marshal(), sig) {
		t.Error("a signature made to the C2SP text does not verify")
	}
	if v.Verify([]byte("not a checkpoint\n"), sig) {
		t.Error("verified a signature over a non-checkpoint")
	}
}

func TestNewCosignatureVerifierErrors(t *testing.T) {
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	tw, _ := torchwood.NewCosignatureSigner("w", priv)
	good := tw.Verifier().String()
	_, logVkey, _ := note.GenerateKey(rand.Reader, "w")
	parts := strings.SplitN(good, "+", 3) // base64 may hold a '+' too
	name, hash, key := parts[0], parts[1], parts[2]
	upper := strings.ToUpper(hash)
	if upper == hash { // an all-digit hash has no case to change
		upper = "A" + hash[1:]
	}
	for _, bad := range []string{
		"", "w", "w+" + hash, name + "+" + upper + "+" + key, name + "+00000000+" + key,
		"other+" + hash + "+" + key, name + "+" + hash + "+" + key[:len(key)-4],
		logVkey, // an Ed25519 note key (type 0x01) is not a cosignature key
		"w x+" + hash + "+" + key,
	} {
		if _, err := tlog.NewCosignatureVerifier(bad); !errors.Is(err, tlog.ErrCosignatureKey) {
			t.Errorf("NewCosignatureVerifier(%q) = %v, want ErrCosignatureKey", bad, err)
		}
	}
}

func FuzzVerifyCosignatures(f *testing.F) {
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	tw, _ := torchwood.NewCosignatureSigner("w", priv)
	v, _ := tlog.NewCosignatureVerifier(tw.Verifier().String())
	cp := tlog.Checkpoint{Origin: "o", Size: 1}
	signed, _ := note.Sign(&note.Note{Text: string(cp.Marshal())}, tw)
	f.Add(signed)
	f.Add([]byte("o\n1\nAAAA\n\n— w AAAAAAAA\n"))
	f.Add([]byte("\n\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		valid, _, err := tlog.VerifyCosignatures(b, []*tlog.CosignatureVerifier{v})
		if err == nil && len(valid) > 0 {
			// Whatever verifies here verifies with x/mod's note too.
			if _, err := note.Open(b, note.VerifierList(v)); err != nil {
				var inv *note.InvalidSignatureError
				if !errors.As(err, &inv) { // another line of w's may be bad
					t.Errorf("VerifyCosignatures accepted what note.Open refuses: %v", err)
				}
			}
		}
	})
}
