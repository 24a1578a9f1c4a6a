// Package pemfile reads and writes the PEM files evident keeps and is
// given: private keys (PKCS #8, SEC 1 or PKCS #1), certificate chains
// (leaf first, root last), PKIX public keys, and certificate pools. It is
// the one place that decodes PEM into keys and certificates for the TSA,
// the development CA, TUF keys, the client commands and the server.
//
// It also issues the random serial numbers of the certificates evident
// makes itself (development CAs, TSAs and SVIDs).
package pemfile

import (
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
)

// ErrNoPEM: the input holds no PEM block of the kind asked for.
var ErrNoPEM = errors.New("no PEM block")

// ParsePrivateKey parses the first PEM block of b as a private key: PRIVATE
// KEY (PKCS #8), EC PRIVATE KEY (SEC 1) or RSA PRIVATE KEY (PKCS #1).
func ParsePrivateKey(b []byte) (crypto.Signer, error) {
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, ErrNoPEM
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

// LoadPrivateKey reads a private key file (see ParsePrivateKey); errors name
// the file.
func LoadPrivateKey(path string) (crypto.Signer, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	s, err := ParsePrivateKey(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

// LoadKeyAndChain reads a PEM private key and a PEM certificate chain, leaf
// first and root last.
func LoadKeyAndChain(keyPath, chainPath string) (crypto.Signer, []*x509.Certificate, error) {
	signer, err := LoadPrivateKey(keyPath)
	if err != nil {
		return nil, nil, err
	}
	chain, err := LoadCertificates(chainPath)
	if err != nil {
		return nil, nil, err
	}
	return signer, chain, nil
}

// ParseCertificates parses every CERTIFICATE block of b, in order, skipping
// blocks of other types. No certificate at all is an error, as is one that
// does not parse.
func ParseCertificates(b []byte) ([]*x509.Certificate, error) {
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

// ParseCertificate parses b, which must hold one PEM certificate first.
func ParseCertificate(b []byte) (*x509.Certificate, error) {
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, ErrNoPEM
	}
	if blk.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("PEM block %q is not a certificate", blk.Type)
	}
	return x509.ParseCertificate(blk.Bytes)
}

// LoadCertificates reads every certificate of a PEM file, in order; errors
// name the file.
func LoadCertificates(path string) ([]*x509.Certificate, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	certs, err := ParseCertificates(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return certs, nil
}

// AddCertificates adds every certificate of the PEM file at path to pool.
func AddCertificates(pool *x509.CertPool, path string) error {
	certs, err := LoadCertificates(path)
	if err != nil {
		return err
	}
	for _, c := range certs {
		pool.AddCert(c)
	}
	return nil
}

// EncodeCertificates returns the certificates as concatenated PEM blocks.
func EncodeCertificates(certs []*x509.Certificate) []byte {
	var out []byte
	for _, c := range certs {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	return out
}

// EncodePrivateKey returns key as a PKCS #8 PRIVATE KEY block.
func EncodePrivateKey(key crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// EncodePublicKey returns pub as a PKIX PUBLIC KEY block.
func EncodePublicKey(pub crypto.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), nil
}

// ParsePublicKey parses the first PEM block of b as a PKIX PUBLIC KEY.
func ParsePublicKey(b []byte) (crypto.PublicKey, error) {
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, ErrNoPEM
	}
	if blk.Type != "PUBLIC KEY" {
		return nil, fmt.Errorf("PEM block %q is not a public key", blk.Type)
	}
	return x509.ParsePKIXPublicKey(blk.Bytes)
}

// WriteKeyAndChain writes chain (mode 0644) and then key (PKCS #8, mode
// 0600) to new or truncated files. The key is written last: a key file is
// what marks a key pair as created.
func WriteKeyAndChain(keyPath, chainPath string, key crypto.Signer, chain []*x509.Certificate) error {
	kb, err := EncodePrivateKey(key)
	if err != nil {
		return err
	}
	if err := os.WriteFile(chainPath, EncodeCertificates(chain), 0o644); err != nil {
		return err
	}
	return os.WriteFile(keyPath, kb, 0o600)
}

// RandomSerial is a random 127-bit certificate serial number (RFC 5280
// §4.1.2.2: positive, at most 20 octets, unpredictable).
func RandomSerial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(err) // crypto/rand does not fail
	}
	return n
}
