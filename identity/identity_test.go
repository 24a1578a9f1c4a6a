package identity_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/evident-dev/evident/identity"
	"github.com/evident-dev/evident/internal/pkitest"
)

// TestFromFilesKeyTypes: a key file and the certificate chain of that key
// load for ECDSA, RSA and Ed25519 keys (an enterprise PKI functionary),
// and a key that is not the certificate's is refused.
func TestFromFilesKeyTypes(t *testing.T) {
	ca := pkitest.NewCA(t, "company CA", time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	rs, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	dir := t.TempDir()
	write := func(name string, key crypto.Signer) (string, string) {
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
			NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, key.Public(), ca.Key)
		if err != nil {
			t.Fatal(err)
		}
		kder, _ := x509.MarshalPKCS8PrivateKey(key)
		kp, cp := filepath.Join(dir, name+".key"), filepath.Join(dir, name+".crt")
		os.WriteFile(kp, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600)
		chain := append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Cert.Raw})...)
		os.WriteFile(cp, chain, 0o644)
		return kp, cp
	}
	files := map[string][2]string{}
	for name, k := range map[string]crypto.Signer{"ecdsa": ec, "rsa": rs, "ed25519": ed} {
		kp, cp := write(name, k)
		files[name] = [2]string{kp, cp}
		s, err := identity.FromFiles(kp, cp)
		if err != nil {
			t.Errorf("FromFiles(%s key, its certificate) = %v", name, err)
			continue
		}
		if len(s.Chain) != 2 {
			t.Errorf("%s: chain of %d certificates, want 2", name, len(s.Chain))
		}
	}
	if _, err := identity.FromFiles(files["rsa"][0], files["ecdsa"][1]); err == nil || !strings.Contains(err.Error(), "does not hold the key of") {
		t.Errorf("FromFiles(RSA key, ECDSA certificate) = %v, want a key mismatch", err)
	}
}
