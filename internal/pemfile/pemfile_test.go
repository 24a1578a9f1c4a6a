package pemfile

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"path/filepath"
	"testing"
	"time"
)

func selfSigned(t *testing.T) (*ecdsa.PrivateKey, *x509.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: RandomSerial(), Subject: pkix.Name{CommonName: "t"},
		NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return key, c
}

// TestKeyAndChainRoundTrip: what WriteKeyAndChain writes, LoadKeyAndChain
// reads back, the key private (0600).
func TestKeyAndChainRoundTrip(t *testing.T) {
	key, cert := selfSigned(t)
	dir := t.TempDir()
	kp, cp := filepath.Join(dir, "k.pem"), filepath.Join(dir, "c.pem")
	if err := WriteKeyAndChain(kp, cp, key, []*x509.Certificate{cert, cert}); err != nil {
		t.Fatal(err)
	}
	k, chain, err := LoadKeyAndChain(kp, cp)
	if err != nil {
		t.Fatal(err)
	}
	if !key.Equal(k) || len(chain) != 2 || !chain[0].Equal(cert) {
		t.Errorf("LoadKeyAndChain = %v, %d certificates; want the key and 2", k, len(chain))
	}
	pub, err := EncodePublicKey(key.Public())
	if err != nil {
		t.Fatal(err)
	}
	if p, err := ParsePublicKey(pub); err != nil || !key.PublicKey.Equal(p) {
		t.Errorf("ParsePublicKey(EncodePublicKey) = %v, %v; want the key", p, err)
	}
}

// TestRefusesWhatIsNotAsked: a certificate is not a private key, a file
// without PEM has no certificates, a key is not a public key.
func TestRefusesWhatIsNotAsked(t *testing.T) {
	_, cert := selfSigned(t)
	certPEM := EncodeCertificates([]*x509.Certificate{cert})
	if _, err := ParsePrivateKey(certPEM); err == nil {
		t.Error("ParsePrivateKey(certificate) succeeded")
	}
	if _, err := ParsePrivateKey([]byte("not pem")); !errors.Is(err, ErrNoPEM) {
		t.Errorf("ParsePrivateKey(not pem) = %v, want ErrNoPEM", err)
	}
	if _, err := ParseCertificates([]byte("not pem")); err == nil {
		t.Error("ParseCertificates(not pem) succeeded")
	}
	if _, err := ParsePublicKey(certPEM); err == nil {
		t.Error("ParsePublicKey(certificate) succeeded")
	}
	if c, err := ParseCertificate(certPEM); err != nil || !c.Equal(cert) {
		t.Errorf("ParseCertificate = %v, %v; want the certificate", c, err)
	}
}

// FuzzParse: no PEM input makes the parsers panic.
func FuzzParse(f *testing.F) {
	key, cert := selfSigned(&testing.T{})
	kb, _ := EncodePrivateKey(key)
	f.Add(kb)
	f.Add(EncodeCertificates([]*x509.Certificate{cert}))
	f.Add([]byte("-----BEGIN PUBLIC KEY-----\nAA==\n-----END PUBLIC KEY-----\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		ParsePrivateKey(b)
		ParseCertificates(b)
		ParseCertificate(b)
		ParsePublicKey(b)
	})
}
