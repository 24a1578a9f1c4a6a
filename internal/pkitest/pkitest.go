// Package pkitest makes certificate authorities and certificates for tests:
// TSA certificates with chosen (mis)configurations and SPIFFE-style SVIDs
// with chosen validity windows.
package pkitest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"math/big"
	"net/url"
	"testing"
	"time"
)

// CA is a certificate authority.
type CA struct {
	Cert *x509.Certificate
	Key  crypto.Signer
}

// Pool returns a pool holding just this CA.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.Cert)
	return p
}

func serial(t testing.TB) *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func key(t testing.TB) *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// NewCA makes a self-signed root CA valid from notBefore to notAfter.
func NewCA(t testing.TB, name string, notBefore, notAfter time.Time) *CA {
	t.Helper()
	k := key(t)
	tmpl := &x509.Certificate{SerialNumber: serial(t), Subject: pkix.Name{CommonName: name},
		NotBefore: notBefore, NotAfter: notAfter, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
	return &CA{Cert: sign(t, tmpl, tmpl, k, k), Key: k}
}

// Intermediate makes a CA certificate issued by ca.
func (ca *CA) Intermediate(t testing.TB, name string, notBefore, notAfter time.Time) *CA {
	t.Helper()
	k := key(t)
	tmpl := &x509.Certificate{SerialNumber: serial(t), Subject: pkix.Name{CommonName: name},
		NotBefore: notBefore, NotAfter: notAfter, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
	return &CA{Cert: sign(t, tmpl, ca.Cert, k, ca.Key), Key: k}
}

func sign(t testing.TB, tmpl, parent *x509.Certificate, pub, signer crypto.Signer) *x509.Certificate {
	t.Helper()
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub.Public(), signer)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TSAOptions bend a TSA certificate away from what RFC 3161 requires.
type TSAOptions struct {
	NonCriticalEKU bool // EKU extension not marked critical
	ExtraEKU       bool // serverAuth next to timeStamping
	IsCA           bool // a CA-flagged TSA certificate
	NoEKU          bool
}

// TSA makes a TSA certificate issued by ca, valid from notBefore to notAfter.
func (ca *CA) TSA(t testing.TB, notBefore, notAfter time.Time, o TSAOptions) (*x509.Certificate, crypto.Signer) {
	t.Helper()
	k := key(t)
	usages := []asn1.ObjectIdentifier{{1, 3, 6, 1, 5, 5, 7, 3, 8}}
	if o.ExtraEKU {
		usages = append(usages, asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 3, 1})
	}
	v, _ := asn1.Marshal(usages)
	tmpl := &x509.Certificate{SerialNumber: serial(t), Subject: pkix.Name{CommonName: "test TSA"},
		NotBefore: notBefore, NotAfter: notAfter, BasicConstraintsValid: true, IsCA: o.IsCA,
		KeyUsage: x509.KeyUsageDigitalSignature}
	if o.IsCA {
		tmpl.KeyUsage |= x509.KeyUsageCertSign
	}
	if !o.NoEKU {
		tmpl.ExtraExtensions = []pkix.Extension{{Id: asn1.ObjectIdentifier{2, 5, 29, 37}, Critical: !o.NonCriticalEKU, Value: v}}
	}
	return sign(t, tmpl, ca.Cert, k, ca.Key), k
}

// SVIDWithURIs is SVID with any list of URI SANs (a real SVID has one).
func (ca *CA) SVIDWithURIs(t testing.TB, uris []string, notBefore, notAfter time.Time) (*x509.Certificate, crypto.Signer) {
	t.Helper()
	c, k := ca.SVID(t, uris[0], notBefore, notAfter)
	tmpl := *c
	tmpl.URIs = nil
	for _, s := range uris {
		u, err := url.Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		tmpl.URIs = append(tmpl.URIs, u)
	}
	tmpl.ExtKeyUsage, tmpl.UnknownExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}, nil
	tmpl.Extensions, tmpl.ExtraExtensions = nil, nil
	return sign(t, &tmpl, ca.Cert, k, ca.Key), k
}

// SVID makes a SPIFFE X.509-SVID leaf for id (e.g. spiffe://example.org/ci)
// issued by ca, as SPIRE makes them: subject O=SPIRE, one URI SAN, EKU
// serverAuth and clientAuth.
func (ca *CA) SVID(t testing.TB, id string, notBefore, notAfter time.Time) (*x509.Certificate, crypto.Signer) {
	t.Helper()
	k := key(t)
	u, err := url.Parse(id)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: serial(t), Subject: pkix.Name{Organization: []string{"SPIRE"}, Country: []string{"US"}},
		NotBefore: notBefore, NotAfter: notAfter, BasicConstraintsValid: true, URIs: []*url.URL{u},
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment | x509.KeyUsageKeyAgreement,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}
	return sign(t, tmpl, ca.Cert, k, ca.Key), k
}
