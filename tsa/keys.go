package tsa

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"os"
	"time"

	"github.com/evident-dev/evident/verify"
)

// ErrBadChain wraps every reason [CheckChain] refuses a signing chain.
var ErrBadChain = errors.New("TSA signing chain is misconfigured")

// CheckChain checks a TSA signing configuration before it is used (THREATS
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
	if err := verify.CheckTSACertificate(leaf); err != nil {
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

// LoadFiles reads a PEM private key (PKCS #8, SEC 1 or PKCS #1) and a PEM
// certificate chain, leaf first and root last.
func LoadFiles(keyPath, chainPath string) (crypto.Signer, []*x509.Certificate, error) {
	kb, err := os.ReadFile(keyPath)
	if err != nil {
		return nil, nil, err
	}
	signer, err := ParsePrivateKeyPEM(kb)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", keyPath, err)
	}
	chain, err := LoadCertificatesFile(chainPath)
	if err != nil {
		return nil, nil, err
	}
	return signer, chain, nil
}

// ParsePrivateKeyPEM parses the first PEM private key in b.
func ParsePrivateKeyPEM(b []byte) (crypto.Signer, error) {
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, errors.New("no PEM block")
	}
	var key any
	var err error
	switch blk.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(blk.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(blk.Bytes)
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(blk.Bytes)
	default:
		return nil, fmt.Errorf("PEM block %q is not a private key", blk.Type)
	}
	if err != nil {
		return nil, err
	}
	s, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("%T cannot sign", key)
	}
	return s, nil
}

// LoadCertificatesFile reads every certificate of a PEM file, in order.
func LoadCertificatesFile(path string) ([]*x509.Certificate, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	certs, err := ParseCertificatesPEM(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return certs, nil
}

// ParseCertificatesPEM parses every CERTIFICATE block in b, in order.
func ParseCertificatesPEM(b []byte) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			break
		}
		if blk.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, errors.New("no certificates")
	}
	return out, nil
}

// EncodeCertificatesPEM returns the certificates as concatenated PEM blocks.
func EncodeCertificatesPEM(certs []*x509.Certificate) []byte {
	var out []byte
	for _, c := range certs {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	return out
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
		SerialNumber: randomSerial(), Subject: pkix.Name{CommonName: name + " development TSA root", Organization: []string{"evident (development)"}},
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
		SerialNumber: randomSerial(), Subject: pkix.Name{CommonName: name + " development TSA", Organization: []string{"evident (development)"}},
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

func randomSerial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(err)
	}
	return n
}

// LoadOrCreateDev loads the development TSA from keyPath and chainPath,
// creating both on first use.
func LoadOrCreateDev(keyPath, chainPath string, now time.Time) (crypto.Signer, []*x509.Certificate, error) {
	if _, err := os.Stat(keyPath); errors.Is(err, fs.ErrNotExist) {
		key, chain, err := NewDevChain("evident", now)
		if err != nil {
			return nil, nil, err
		}
		der, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			return nil, nil, err
		}
		if err := os.WriteFile(chainPath, EncodeCertificatesPEM(chain), 0o644); err != nil {
			return nil, nil, err
		}
		if err := os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
			return nil, nil, err
		}
	}
	return LoadFiles(keyPath, chainPath)
}
