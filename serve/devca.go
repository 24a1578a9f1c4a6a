package serve

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"time"

	"github.com/evident-dev/evident/internal/pemfile"
)

// DevCA is the development functionary CA: a root that issues short-lived
// SPIFFE X.509-SVIDs to local callers when no SPIRE is at hand. It is for
// development only; production trusts the SPIRE upstream root instead
// (--functionary-roots).
type DevCA struct {
	Cert *x509.Certificate
	Key  crypto.Signer
}

// LoadOrCreateDevCA loads dev-ca.pem and dev-ca.key from dir, creating them
// on first use (ECDSA P-256, ten years).
func LoadOrCreateDevCA(dir string, now time.Time) (*DevCA, error) {
	certPath, keyPath := DataDir(dir).DevCACert(), DataDir(dir).DevCAKey()
	if _, err := os.Stat(keyPath); errors.Is(err, fs.ErrNotExist) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, err
		}
		tmpl := &x509.Certificate{SerialNumber: pemfile.RandomSerial(),
			Subject:   pkix.Name{CommonName: "evident development SPIFFE CA", Organization: []string{"evident (development)"}},
			NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(10, 0, 0),
			IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
			URIs: []*url.URL{{Scheme: "spiffe", Host: "evident.dev"}}}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
		if err != nil {
			return nil, err
		}
		cert, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, err
		}
		if err := pemfile.WriteKeyAndChain(keyPath, certPath, key, []*x509.Certificate{cert}); err != nil {
			return nil, err
		}
	}
	key, chain, err := pemfile.LoadKeyAndChain(keyPath, certPath)
	if err != nil {
		return nil, fmt.Errorf("development CA: %w", err)
	}
	return &DevCA{Cert: chain[0], Key: key}, nil
}

// IssueSVID issues an X.509-SVID for the SPIFFE ID id with the given
// lifetime, as SPIRE shapes them (one URI SAN, subject O=SPIRE, serverAuth
// and clientAuth), for pub.
func (ca *DevCA) IssueSVID(id *url.URL, pub crypto.PublicKey, now time.Time, ttl time.Duration) (*x509.Certificate, error) {
	tmpl := &x509.Certificate{SerialNumber: pemfile.RandomSerial(),
		Subject:   pkix.Name{Organization: []string{"SPIRE"}, Country: []string{"US"}},
		NotBefore: now.Add(-10 * time.Second), NotAfter: now.Add(ttl), BasicConstraintsValid: true,
		URIs:        []*url.URL{id},
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment | x509.KeyUsageKeyAgreement,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, pub, ca.Key)
	if err != nil {
		return nil, err
	}
	return x509.ParseCertificate(der)
}
