package main

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/evident-dev/evident"
	"github.com/evident-dev/evident/internal/pkitest"
	"golang.org/x/mod/sumdb/note"
)

// TestTrustValue: trust material is parsed for its kind, and a private key
// is never accepted as trust material (K3).
func TestTrustValue(t *testing.T) {
	ca := pkitest.NewCA(t, "ca", time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	leaf, _ := ca.SVID(t, "spiffe://example.org/ci/build", time.Now().Add(-time.Minute), time.Now().Add(time.Hour))
	caPEM := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Cert.Raw}))
	leafPEM := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leaf.Raw}))
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	der, _ := x509.MarshalPKCS8PrivateKey(priv)
	privPEM := string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	pubDER, _ := x509.MarshalPKIXPublicKey(pub)
	pubPEM := string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}))
	skey, vkey, _ := note.GenerateKey(rand.Reader, "log.example/evident")
	for _, tc := range []struct {
		kind, in string
		want     string // "" for success, else a part of the error
	}{
		{evident.KindLayoutKey, pubPEM, ""},
		{evident.KindLayoutKey, privPEM, "pass the release manager's PUBLIC key"},
		{evident.KindLayoutKey, "-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n", "this is a private key"},
		{evident.KindLayoutKey, caPEM, "one PEM PUBLIC KEY block, not CERTIFICATE"},
		{evident.KindLayoutKey, "hello", "no PEM block"},
		{evident.KindFunctionaryCA, caPEM, ""},
		{evident.KindFunctionaryCA, leafPEM, "is not a CA certificate"},
		{evident.KindFunctionaryCA, pubPEM, "not a PUBLIC KEY"},
		{evident.KindFunctionaryCA, privPEM + caPEM, "this is a private key"},
		{evident.KindTSA, caPEM, ""},
		{evident.KindLog, vkey, ""},
		{evident.KindLog, skey, "private note signing key"},
		{evident.KindLog, pubPEM, "note verifier key"},
		{"layout", pubPEM, "unknown kind"},
	} {
		got, err := trustValue(tc.kind, []byte(tc.in))
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("trustValue(%s, %.30q) = %v", tc.kind, tc.in, err)
		case tc.want != "" && (!errors.Is(err, ErrTrustValue) || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("trustValue(%s, %.30q) = %q, %v; want ErrTrustValue saying %q", tc.kind, tc.in, got, err, tc.want)
		}
	}
}

func FuzzTrustValue(f *testing.F) {
	ca := pkitest.NewCA(f, "ca", time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	pub, _, _ := ed25519.GenerateKey(rand.Reader)
	pubDER, _ := x509.MarshalPKIXPublicKey(pub)
	_, vkey, _ := note.GenerateKey(rand.Reader, "log.example/evident")
	f.Add(evident.KindFunctionaryCA, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Cert.Raw}))
	f.Add(evident.KindLayoutKey, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}))
	f.Add(evident.KindLog, []byte(vkey))
	f.Fuzz(func(t *testing.T, kind string, b []byte) {
		v, err := trustValue(kind, b)
		if err != nil {
			return
		}
		// What is accepted is normalised: accepting it again changes nothing.
		if v2, err := trustValue(kind, []byte(v)); err != nil || v2 != v {
			t.Fatalf("trustValue(%s) is not stable: %q → %q, %v", kind, v, v2, err)
		}
		if kind != evident.KindLog && strings.Contains(v, "PRIVATE KEY") {
			t.Fatalf("accepted a private key as %s: %q", kind, v)
		}
	})
}
