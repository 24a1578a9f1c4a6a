package verify

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"sync"

	"github.com/evident-dev/evident"
)

// Errors from [EntryVerifier.Verify] besides the ErrToken… ones.
var (
	// ErrSignerUntrusted: the signer's chain does not reach a functionary
	// root, or not over the whole time the timestamp vouches for.
	ErrSignerUntrusted = errors.New("signer certificate is not trusted at the timestamp's time")
	// ErrSignerKey: the signer's certificate or public key cannot be used.
	ErrSignerKey = errors.New("signer key is unusable")
	// ErrEntrySignature: the signature does not verify over the payload digest.
	ErrEntrySignature = errors.New("signature does not verify over the payload digest")
)

// EntryVerifier checks log entries (the shape of evident.Entry is checked
// by evident.ParseEntry first): the RFC 3161 token is valid for the
// SHA-256 of the signature bytes under TSARoots; the signer certificate
// chains to FunctionaryRoots over the whole genTime ± accuracy window; the
// signature verifies over the payload digest with the signer's key. Entries
// signed by a plain public key (key-based functionaries) are checked for the
// signature only: which keys to trust is the layout's business.
//
// It is safe for concurrent use. Verified chains and parsed certificates
// are cached, so the same SVID or TSA certificate costs its signature
// checks once.
type EntryVerifier struct {
	TSARoots *x509.CertPool
	// TSACertificates are candidates for tokens that carry no certificate.
	TSACertificates  []*x509.Certificate
	FunctionaryRoots *x509.CertPool
	Cache            *ChainCache

	mu    sync.Mutex
	certs map[[32]byte]*x509.Certificate
}

// VerifiedEntry is what an entry proves once verified.
type VerifiedEntry struct {
	Timestamp *TimestampToken
	// SignerChain is the verified chain, leaf first; nil for a key-only entry.
	SignerChain []*x509.Certificate
	PublicKey   crypto.PublicKey
}

// maxParsedCerts bounds the parsed-certificate cache.
const maxParsedCerts = 4096

func (v *EntryVerifier) parse(der []byte) (*x509.Certificate, error) {
	h := sha256.Sum256(der)
	v.mu.Lock()
	c, ok := v.certs[h]
	v.mu.Unlock()
	if ok {
		return c, nil
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	v.mu.Lock()
	if v.certs == nil || len(v.certs) >= maxParsedCerts {
		v.certs = make(map[[32]byte]*x509.Certificate)
	}
	v.certs[h] = c
	v.mu.Unlock()
	return c, nil
}

// Verify checks e; see [EntryVerifier]. The error names the check that failed.
//
// A DSSE entry's signature covers PAE(payload type, payload), which the
// entry does not carry: Verify checks its timestamp and signer only, and
// [EntryVerifier.VerifyPayload] checks its signature too.
func (v *EntryVerifier) Verify(e *evident.Entry) (*VerifiedEntry, error) {
	out, err := v.verifySigner(e)
	if err != nil {
		return nil, err
	}
	if e.PayloadType == evident.PayloadTypeDSSE {
		return out, nil
	}
	digest, err := e.PayloadDigest()
	if err != nil {
		return nil, fmt.Errorf("%w: payload_sha256: %v", ErrEntrySignature, err)
	}
	if err := checkDigestSignature(out.PublicKey, digest, e.Signature); err != nil {
		return nil, err
	}
	return out, nil
}

// VerifyPayload checks e as Verify does, and that payload is the entry's
// payload and its signature verifies over it (for a DSSE entry, over
// PAE(payload type, payload); Ed25519 included).
func (v *EntryVerifier) VerifyPayload(e *evident.Entry, payload []byte) (*VerifiedEntry, error) {
	out, err := v.verifySigner(e)
	if err != nil {
		return nil, err
	}
	msg, err := e.SignedMessage(payload)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrEntrySignature, err)
	}
	if err := checkMessageSignature(out.PublicKey, msg, e.Signature); err != nil {
		return nil, err
	}
	return out, nil
}

// verifySigner checks e's first timestamp token over the signature and the
// signer's chain over the token's time, or parses its public key.
func (v *EntryVerifier) verifySigner(e *evident.Entry) (*VerifiedEntry, error) {
	tokens := e.Tokens()
	if len(tokens) == 0 {
		return nil, fmt.Errorf("timestamp: %w", ErrTokenMalformed)
	}
	sigDigest := sha256.Sum256(e.Signature)
	tok, err := Timestamp(tokens[0], TimestampOptions{Roots: v.TSARoots, TSACertificates: v.TSACertificates,
		Hash: crypto.SHA256, Digest: sigDigest[:], Cache: v.Cache})
	if err != nil {
		return nil, fmt.Errorf("timestamp: %w", err)
	}
	out := &VerifiedEntry{Timestamp: tok}
	if len(e.CertChain) > 0 {
		if v.FunctionaryRoots == nil {
			return nil, fmt.Errorf("%w: no functionary roots are configured", ErrSignerUntrusted)
		}
		chain := make([]*x509.Certificate, len(e.CertChain))
		for i, der := range e.CertChain {
			if chain[i], err = v.parse(der); err != nil {
				return nil, fmt.Errorf("%w: cert_chain[%d]: %v", ErrSignerKey, i, err)
			}
		}
		if chain[0].IsCA {
			return nil, fmt.Errorf("%w: the signer certificate is a CA", ErrSignerKey)
		}
		path, err := v.Cache.verify(chain[0], chain[1:], v.FunctionaryRoots, x509.ExtKeyUsageAny, tok.Earliest(), tok.Latest())
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrSignerUntrusted, err)
		}
		out.SignerChain, out.PublicKey = path, chain[0].PublicKey
	} else {
		if out.PublicKey, err = x509.ParsePKIXPublicKey(e.PublicKey); err != nil {
			return nil, fmt.Errorf("%w: public_key: %v", ErrSignerKey, err)
		}
	}
	return out, nil
}

// checkMessageSignature verifies a signature over msg: Ed25519 over msg
// itself, ECDSA and RSA over its SHA-256.
func checkMessageSignature(pub crypto.PublicKey, msg, sig []byte) error {
	if k, ok := pub.(ed25519.PublicKey); ok {
		if ed25519.Verify(k, msg, sig) {
			return nil
		}
		return ErrEntrySignature
	}
	d := sha256.Sum256(msg)
	return checkDigestSignature(pub, d[:], sig)
}

// checkDigestSignature verifies a signature over a SHA-256 payload digest:
// ECDSA (ASN.1), RSA PKCS #1 v1.5 or PSS. Ed25519 signs the payload itself,
// not a digest, so it cannot be checked from the digest alone.
func checkDigestSignature(pub crypto.PublicKey, digest, sig []byte) error {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		if ecdsa.VerifyASN1(k, digest, sig) {
			return nil
		}
	case *rsa.PublicKey:
		if rsa.VerifyPKCS1v15(k, crypto.SHA256, digest, sig) == nil ||
			rsa.VerifyPSS(k, crypto.SHA256, digest, sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthAuto}) == nil {
			return nil
		}
	case ed25519.PublicKey:
		return fmt.Errorf("%w: Ed25519 signs the payload itself, which the entry does not carry", ErrEntrySignature)
	default:
		return fmt.Errorf("%w: %T", ErrSignerKey, pub)
	}
	return ErrEntrySignature
}
