package main

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/in-toto/in-toto-golang/in_toto"
	"github.com/secure-systems-lab/go-securesystemslib/cjson"
)

// writeKeyPair writes a private key (PKCS #8 PEM) and its public key (PKIX
// PEM) into dir as NAME.pem and NAME.pub.pem.
func writeKeyPair(t testing.TB, dir, name string, key crypto.Signer) (string, string) {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	pubDER, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		t.Fatal(err)
	}
	priv, pub := filepath.Join(dir, name+".pem"), filepath.Join(dir, name+".pub.pem")
	os.WriteFile(priv, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600)
	os.WriteFile(pub, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}), 0o644)
	return priv, pub
}

func testKeys(t testing.TB) map[string]crypto.Signer {
	t.Helper()
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	rs, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return map[string]crypto.Signer{"ed25519": ed, "ecdsa": ec, "rsa": rs}
}

// TestSignLayoutKeepsEveryField: layout sign signs "signed" exactly as
// written — certificate constraints included, which the reference
// in-toto-sign drops — with RSA, ECDSA and Ed25519 keys, under in-toto's
// key ids; in-toto-golang (which evident verify uses) verifies each
// signature (P1: a layout means what its signers saw).
func TestSignLayoutKeepsEveryField(t *testing.T) {
	dir := t.TempDir()
	l, err := startingLayout([]string{"build", "package"}, "spiffe://example.org/ci/", time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	unsigned, _ := json.Marshal(in_toto.Metablock{Signed: l, Signatures: []in_toto.Signature{}})
	var keys []in_toto.Key
	pubs := map[string]in_toto.Key{}
	for name, k := range testKeys(t) {
		priv, pub := writeKeyPair(t, dir, name, k)
		key, err := loadLayoutSigningKey(priv)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		keys = append(keys, key)
		var pk in_toto.Key
		if err := pk.LoadKeyDefaults(pub); err != nil {
			t.Fatal(err)
		}
		if pk.KeyID != key.KeyID {
			t.Errorf("%s: key id %s, in-toto-golang gives its public key %s", name, key.KeyID, pk.KeyID)
		}
		pubs[pk.KeyID] = pk
	}
	signed, err := signLayout(unsigned, keys, false)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(signed, []byte(`"cert_constraints"`)) || !bytes.Contains(signed, []byte(`spiffe://example.org/ci/build`)) {
		t.Fatalf("the signed layout lost its certificate constraints:\n%s", signed)
	}
	p := filepath.Join(dir, "root.layout")
	os.WriteFile(p, signed, 0o644)
	var mb in_toto.Metablock
	if err := mb.Load(p); err != nil {
		t.Fatalf("in-toto-golang cannot load the signed layout: %v", err)
	}
	if len(mb.Signatures) != 3 {
		t.Fatalf("%d signatures, want 3", len(mb.Signatures))
	}
	for id, pk := range pubs {
		if err := mb.VerifySignature(pk); err != nil {
			t.Errorf("signature of %s (%s): %v", id, pk.Scheme, err)
		}
	}
	// The signature covers the bytes as written, not a struct's view of
	// them: a field in-toto-golang's structs do not know is signed too.
	withExtra := bytes.Replace(unsigned, []byte(`"_type":"layout"`), []byte(`"_type":"layout","x_note":"kept"`), 1)
	out, err := signLayout(withExtra, keys[:1], false)
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Signed     json.RawMessage
		Signatures []in_toto.Signature
	}
	json.Unmarshal(out, &got)
	raw := in_toto.Metablock{Signed: got.Signed, Signatures: got.Signatures}
	if err := raw.VerifySignature(pubs[keys[0].KeyID]); err != nil || !bytes.Contains(got.Signed, []byte("x_note")) {
		t.Errorf("a layout with a field in-toto-golang does not know: signature %v, signed %s", err, got.Signed)
	}
	// --append keeps other signatures and replaces the signer's own.
	again, err := signLayout(signed, keys[:1], true)
	if err != nil {
		t.Fatal(err)
	}
	json.Unmarshal(again, &got)
	if len(got.Signatures) != 3 {
		t.Errorf("re-signing with --append gave %d signatures, want 3", len(got.Signatures))
	}
}

// TestSignLayoutRefuses: what is not a layout is not signed.
func TestSignLayoutRefuses(t *testing.T) {
	k := testKeys(t)["ed25519"]
	priv, pub := writeKeyPair(t, t.TempDir(), "k", k)
	key, err := loadLayoutSigningKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	for name, in := range map[string]string{
		"not JSON":      `hello`,
		"a link":        `{"signed":{"_type":"link","name":"build"},"signatures":[]}`,
		"trailing data": `{"signed":{"_type":"layout","expires":"2099-01-01T00:00:00Z"},"signatures":[]} {}`,
		"unknown field": `{"signed":{"_type":"layout","expires":"2099-01-01T00:00:00Z"},"signatures":[],"extra":1}`,
		// P1: a duplicate key means one layout to cjson and another to Go.
		"duplicate key": `{"signed":{"_type":"layout","expires":"2099-01-01T00:00:00Z","steps":[],"steps":[{"name":"x"}]},"signatures":[]}`,
	} {
		if _, err := signLayout([]byte(in), []in_toto.Key{key}, false); !errors.Is(err, ErrNotLayout) {
			t.Errorf("signLayout(%s) = %v, want ErrNotLayout", name, err)
		}
	}
	if _, err := signLayout([]byte(`{"signed":{"_type":"layout","expires":"2001-01-01T00:00:00Z"},"signatures":[]}`), []in_toto.Key{key}, false); err == nil || !strings.Contains(err.Error(), "expired") {
		t.Errorf("signing an expired layout = %v, want an error saying it expired", err)
	}
	if _, err := loadLayoutSigningKey(pub); err == nil || !strings.Contains(err.Error(), "needs the private key") {
		t.Errorf("loadLayoutSigningKey(public key) = %v, want a refusal naming the private key", err)
	}
}

func FuzzSignLayout(f *testing.F) {
	_, ed, _ := ed25519.GenerateKey(bytes.NewReader(make([]byte, 64)))
	der, _ := x509.MarshalPKCS8PrivateKey(ed)
	var key in_toto.Key
	if err := key.LoadKeyReaderDefaults(bytes.NewReader(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))); err != nil {
		f.Fatal(err)
	}
	l, _ := startingLayout([]string{"a", "b"}, "spiffe://x/", time.Now().Add(time.Hour))
	seed, _ := json.Marshal(in_toto.Metablock{Signed: l, Signatures: []in_toto.Signature{}})
	f.Add(seed)
	f.Add([]byte(`{"signed":{"_type":"layout","expires":"2099-01-01T00:00:00Z","n":1.5},"signatures":[]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		out, err := signLayout(b, []in_toto.Key{key}, true)
		if err != nil {
			return
		}
		var in, got struct{ Signed json.RawMessage }
		json.Unmarshal(b, &in)
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatalf("signLayout wrote a layout that does not parse: %v", err)
		}
		c1, err1 := cjson.EncodeCanonical(in.Signed)
		c2, err2 := cjson.EncodeCanonical(got.Signed)
		if err1 != nil || err2 != nil || !bytes.Equal(c1, c2) {
			t.Fatalf("signed changed: %s → %s", c1, c2)
		}
	})
}

// TestLayoutSignReferenceInToto: the reference in-toto implementation
// (Debian package in-toto, Python) verifies a layout that evident layout
// sign signed with its RSA key, as it would one signed by in-toto-sign.
func TestLayoutSignReferenceInToto(t *testing.T) {
	py := strings.Replace(mkLayoutPy, "mb.sign(owner)\nmb.dump(\"root.layout\")", "mb.dump(\"unsigned.layout\")", 1)
	work, sh := referenceChain(t, py)
	out, errOut, code := runCLI(t, nil, "layout", "sign", filepath.Join(work, "unsigned.layout"), "--signing-key", filepath.Join(work, "owner"),
		"--out", filepath.Join(work, "root.layout"))
	if code != 0 {
		t.Fatalf("evident layout sign = exit %d\n%s%s", code, out, errOut)
	}
	sh("in-toto-verify", "--layout", "root.layout", "--layout-keys", "owner.pub")
}
