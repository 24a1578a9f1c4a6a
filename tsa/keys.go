package tsa

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	"github.com/evident-dev/evident/internal/pemfile"
	"github.com/evident-dev/evident/rfc3161"
)

// ErrBadChain wraps every reason [CheckChain] refuses a signing chain.
var ErrBadChain = errors.New("TSA signing chain is misconfigured")

// CheckChain checks a TSA signing configuration before it is used (threat model
// T4): the key belongs to the leaf certificate; the leaf is no CA and its
// extended key usage is critical and timeStamping only; the chain verifies
// from the leaf to its last certificate, a self-signed root, for
// timeStamping, at now. Every error wraps ErrBadChain and says why.
func CheckChain(signer crypto.Signer, chain []*x509.Certificate, now time.Time) error {
	if len(chain) == 0 {
		return fmt.Errorf("%w: no certificates", ErrBadChain)
	}
	leaf := chain[0]
	pub, ok := signer.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(leaf.PublicKey) {
		return fmt.Errorf("%w: the private key does not belong to the TSA certificate %q", ErrBadChain, leaf.Subject)
	}
	if err := rfc3161.CheckTSACertificate(leaf); err != nil {
		return fmt.Errorf("%w: %v", ErrBadChain, err)
	}
	root := chain[len(chain)-1]
	if len(chain) == 1 || root.CheckSignatureFrom(root) != nil {
		return fmt.Errorf("%w: the chain must end in its self-signed root certificate", ErrBadChain)
	}
	roots, inters := x509.NewCertPool(), x509.NewCertPool()
	roots.AddCert(root)
	for _, c := range chain[1 : len(chain)-1] {
		inters.AddCert(c)
	}
	_, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inters, CurrentTime: now,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageTimeStamping}})
	if err != nil {
		return fmt.Errorf("%w: %v", ErrBadChain, err)
	}
	return nil
}

// oidExtKeyUsage is the extended key usage extension (RFC 5280 §4.2.1.12).
var oidExtKeyUsage = asn1.ObjectIdentifier{2, 5, 29, 37}

// TimeStampingEKU is the extended key usage extension a TSA certificate
// needs: timeStamping only, critical. crypto/x509 marks the ExtKeyUsage
// field non-critical, so certificates carry this in ExtraExtensions.
func TimeStampingEKU() pkix.Extension {
	v, err := asn1.Marshal([]asn1.ObjectIdentifier{{1, 3, 6, 1, 5, 5, 7, 3, 8}})
	if err != nil {
		panic(err)
	}
	return pkix.Extension{Id: oidExtKeyUsage, Critical: true, Value: v}
}

// NewDevChain generates a development TSA: an ECDSA P-256 root CA valid for
// ten years and a TSA certificate valid for five, with the critical
// timeStamping-only extended key usage. It returns the TSA's key and the
// chain, TSA certificate first.
func NewDevChain(name string, now time.Time) (crypto.Signer, []*x509.Certificate, error) {
	rootKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	rootTmpl := &x509.Certificate{
		SerialNumber: pemfile.RandomSerial(), Subject: pkix.Name{CommonName: name + " development TSA root", Organization: []string{"evident (development)"}},
		NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(10, 0, 0),
		IsCA: true, BasicConstraintsValid: true, MaxPathLen: 0, MaxPathLenZero: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	rootDER, err := x509.CreateCertificate(rand.Reader, rootTmpl, rootTmpl, rootKey.Public(), rootKey)
	if err != nil {
		return nil, nil, err
	}
	root, _ := x509.ParseCertificate(rootDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	leafTmpl := &x509.Certificate{
		SerialNumber: pemfile.RandomSerial(), Subject: pkix.Name{CommonName: name + " development TSA", Organization: []string{"evident (development)"}},
		NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(5, 0, 0),
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtraExtensions: []pkix.Extension{TimeStampingEKU()},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, root, key.Public(), rootKey)
	if err != nil {
		return nil, nil, err
	}
	leaf, _ := x509.ParseCertificate(leafDER)
	return key, []*x509.Certificate{leaf, root}, nil
}

// LoadOrCreateDev loads the development TSA from keyPath and chainPath,
// creating both on first use.
func LoadOrCreateDev(keyPath, chainPath string, now time.Time) (crypto.Signer, []*x509.Certificate, error) {
	if _, err := os.Stat(keyPath); errors.Is(err, fs.ErrNotExist) {
		key, chain, err := NewDevChain("evident", now)
		if err != nil {
			return nil, nil, err
		}
		if err := pemfile.WriteKeyAndChain(keyPath, chainPath, key, chain); err != nil {
			return nil, nil, err
		}
	}
	return pemfile.LoadKeyAndChain(keyPath, chainPath)
}
