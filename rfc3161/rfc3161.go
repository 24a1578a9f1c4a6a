// Package rfc3161 verifies RFC 3161 time-stamp tokens: the CMS SignedData
// (RFC 5652) around a TSTInfo, its signer identified by the RFC 5816
// ESSCertIDv2 (or RFC 2634 ESSCertID) signing-certificate attribute, the
// message imprint, the nonce, the policy, and the TSA's chain to the roots
// at the time the token states, over the whole genTime ± accuracy window
// ([Verify]). [CheckTSACertificate] is the check of a TSA certificate
// (RFC 3161 §2.3: critical timeStamping-only extended key usage) that both
// the issuer and the verifiers apply; [ChainCache] remembers certificate
// paths that verified, for TSA chains here and signer chains in package
// verify.
//
// It is the one package that parses tokens, so the time-stamp authority
// (tsa), the signer (link) and the offline verifier (verify) agree on what
// a valid token is, and tsa and link need not import the verifier. It has
// no network or storage code.
package rfc3161

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	_ "crypto/sha512" // SHA-384 and SHA-512 imprints
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"time"
)

// Errors from [Verify], one per check, so callers and tests can tell
// which check failed. Each is wrapped with the details.
var (
	ErrTokenMalformed     = errors.New("timestamp token is malformed")
	ErrTokenImprint       = errors.New("timestamp token imprint does not match")
	ErrTokenNonce         = errors.New("timestamp token nonce does not match")
	ErrTokenPolicy        = errors.New("timestamp token policy is not accepted")
	ErrTokenSignature     = errors.New("timestamp token signature is invalid")
	ErrTokenUntrusted     = errors.New("timestamp token signer does not chain to a trusted TSA root")
	ErrTokenSignerCert    = errors.New("timestamp token signer certificate is not a TSA certificate")
	ErrTokenESSCertID     = errors.New("timestamp token signing-certificate attribute does not match the signer")
	ErrNoTSARoots         = errors.New("no trusted TSA root")
	errUnsupportedKeyType = errors.New("unsupported key type")
)

// MaxTokenSize bounds a timestamp token accepted by [Verify].
const MaxTokenSize = 32 << 10

// Object identifiers of RFC 3161, RFC 5652, RFC 5816 and RFC 5280.
var (
	oidSignedData        = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 2}
	oidTSTInfo           = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 16, 1, 4}
	oidAttrContentType   = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 3}
	oidAttrMessageDigest = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 4}
	oidAttrSigningCert   = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 16, 2, 12}
	oidAttrSigningCertV2 = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 16, 2, 47}
	oidExtKeyUsage       = asn1.ObjectIdentifier{2, 5, 29, 37}
	oidSHA256            = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 1}
	oidSHA384            = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 2}
	oidSHA512            = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 3}
)

// HashFromOID maps the digest algorithms an imprint may use (SHA-256/384/512)
// to their crypto.Hash; anything else, SHA-1 included, is 0.
func HashFromOID(oid asn1.ObjectIdentifier) crypto.Hash {
	switch {
	case oid.Equal(oidSHA256):
		return crypto.SHA256
	case oid.Equal(oidSHA384):
		return crypto.SHA384
	case oid.Equal(oidSHA512):
		return crypto.SHA512
	}
	return 0
}

// RFC 5652 and RFC 3161 structures, as much as verification needs.
type contentInfo struct {
	ContentType asn1.ObjectIdentifier
	Content     asn1.RawValue `asn1:"explicit,tag:0"`
}

type signedData struct {
	Version          int
	DigestAlgorithms asn1.RawValue
	EncapContent     encapContentInfo
	Certificates     asn1.RawValue `asn1:"optional,tag:0"`
	CRLs             asn1.RawValue `asn1:"optional,tag:1"`
	SignerInfos      []signerInfo  `asn1:"set"`
}

type encapContentInfo struct {
	EContentType asn1.ObjectIdentifier
	EContent     []byte `asn1:"explicit,optional,tag:0"`
}

type signerInfo struct {
	Version            int
	SID                asn1.RawValue
	DigestAlgorithm    pkix.AlgorithmIdentifier
	SignedAttrs        asn1.RawValue `asn1:"optional,tag:0"`
	SignatureAlgorithm pkix.AlgorithmIdentifier
	Signature          []byte
	UnsignedAttrs      asn1.RawValue `asn1:"optional,tag:1"`
}

type issuerAndSerial struct {
	Issuer asn1.RawValue
	Serial *big.Int
}

type attribute struct {
	Type   asn1.ObjectIdentifier
	Values []asn1.RawValue `asn1:"set"`
}

type tstInfo struct {
	Version        int
	Policy         asn1.ObjectIdentifier
	MessageImprint messageImprint
	SerialNumber   *big.Int
	GenTime        time.Time        `asn1:"generalized"`
	Accuracy       accuracy         `asn1:"optional"`
	Ordering       bool             `asn1:"optional,default:false"`
	Nonce          *big.Int         `asn1:"optional"`
	TSA            asn1.RawValue    `asn1:"explicit,optional,tag:0"`
	Extensions     []pkix.Extension `asn1:"optional,tag:1"`
}

type messageImprint struct {
	HashAlgorithm pkix.AlgorithmIdentifier
	HashedMessage []byte
}

type accuracy struct {
	Seconds int64 `asn1:"optional"`
	Millis  int64 `asn1:"optional,tag:0"`
	Micros  int64 `asn1:"optional,tag:1"`
}

// MaxAccuracy bounds a token's accuracy: a TSA claiming to know the time
// only to within more than a day vouches for no useful time.
const MaxAccuracy = 24 * time.Hour

// duration returns the accuracy, refusing negative parts, millis or micros
// over 999 (RFC 3161 §2.4.2) and anything over MaxAccuracy, checked before
// any arithmetic can overflow.
func (a accuracy) duration() (time.Duration, error) {
	if a.Seconds < 0 || a.Millis < 0 || a.Micros < 0 || a.Millis > 999 || a.Micros > 999 {
		return 0, fmt.Errorf("bad accuracy: %d s %d ms %d µs", a.Seconds, a.Millis, a.Micros)
	}
	if a.Seconds > int64(MaxAccuracy/time.Second) {
		return 0, fmt.Errorf("bad accuracy: %d s is over the limit of %v", a.Seconds, MaxAccuracy)
	}
	d := time.Duration(a.Seconds)*time.Second + time.Duration(a.Millis)*time.Millisecond + time.Duration(a.Micros)*time.Microsecond
	if d > MaxAccuracy {
		return 0, fmt.Errorf("bad accuracy: %v is over the limit of %v", d, MaxAccuracy)
	}
	return d, nil
}

type signingCertificateV2 struct {
	Certs []essCertIDv2
}

type essCertIDv2 struct {
	HashAlgorithm pkix.AlgorithmIdentifier `asn1:"optional"`
	CertHash      []byte
	IssuerSerial  essIssuerSerial `asn1:"optional"`
}

type signingCertificate struct {
	Certs []essCertID
}

type essCertID struct {
	CertHash     []byte
	IssuerSerial essIssuerSerial `asn1:"optional"`
}

type essIssuerSerial struct {
	Issuer asn1.RawValue
	Serial *big.Int
}

// Options say what a token must prove.
type Options struct {
	// Roots are the trusted TSA roots; trust never comes from certificates
	// inside the token. Required.
	Roots *x509.CertPool
	// Intermediates may complete the chain (the token's own certificates are
	// used as untrusted path candidates too).
	Intermediates []*x509.Certificate
	// TSACertificates are candidate signer certificates, for tokens that
	// carry none. Like the token's own, they are trusted only through Roots.
	TSACertificates []*x509.Certificate
	// Hash and Digest are the expected message imprint. Required.
	Hash   crypto.Hash
	Digest []byte
	// Nonce, when set, must equal the token's nonce.
	Nonce *big.Int
	// Policies, when set, is the list of accepted TSA policies.
	Policies []asn1.ObjectIdentifier
	// Cache, when set, remembers verified TSA chains (see [ChainCache]).
	Cache *ChainCache
}

// Token is a verified RFC 3161 timestamp.
type Token struct {
	GenTime  time.Time
	Accuracy time.Duration
	Policy   asn1.ObjectIdentifier
	Serial   *big.Int
	Nonce    *big.Int
	// Chain is the verified chain, TSA certificate first, trusted root last.
	Chain []*x509.Certificate
}

// Earliest and Latest bound the time the token vouches for: genTime ±
// accuracy (RFC 3161 §2.4.2).
func (t *Token) Earliest() time.Time { return t.GenTime.Add(-t.Accuracy) }

// Latest: see Earliest.
func (t *Token) Latest() time.Time { return t.GenTime.Add(t.Accuracy) }

// Timestamp verifies a DER RFC 3161 TimeStampToken and fails closed: strict
// DER with no trailing bytes; a SignedData whose eContentType is TSTInfo,
// with exactly one signer; signed contentType and messageDigest attributes
// that match; a signing-certificate (v2 or v1) attribute that names the
// signer; a valid signature; a signer certificate that is not a CA and whose
// extended key usage extension is critical and holds timeStamping only; a
// chain to opts.Roots valid over the whole genTime ± accuracy window; the
// expected imprint with SHA-256/384/512; and nonce and policy when asked.
func Verify(token []byte, opts Options) (*Token, error) {
	if opts.Roots == nil {
		return nil, ErrNoTSARoots
	}
	malformed := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrTokenMalformed}, args...)...)
	}
	if len(token) > MaxTokenSize {
		return nil, malformed("%d bytes is over the limit of %d", len(token), MaxTokenSize)
	}
	var ci contentInfo
	if rest, err := asn1.Unmarshal(token, &ci); err != nil {
		return nil, malformed("%v", err)
	} else if len(rest) > 0 {
		return nil, malformed("trailing data after the token")
	}
	if !ci.ContentType.Equal(oidSignedData) {
		return nil, malformed("content type %v is not signedData", ci.ContentType)
	}
	var sd signedData
	if rest, err := asn1.Unmarshal(ci.Content.Bytes, &sd); err != nil {
		return nil, malformed("signedData: %v", err)
	} else if len(rest) > 0 {
		return nil, malformed("trailing data after signedData")
	}
	if !sd.EncapContent.EContentType.Equal(oidTSTInfo) {
		return nil, malformed("eContentType %v is not id-ct-TSTInfo", sd.EncapContent.EContentType)
	}
	if len(sd.SignerInfos) != 1 {
		return nil, malformed("%d signers, want exactly 1", len(sd.SignerInfos))
	}
	si := sd.SignerInfos[0]
	var info tstInfo
	if rest, err := asn1.Unmarshal(sd.EncapContent.EContent, &info); err != nil {
		return nil, malformed("TSTInfo: %v", err)
	} else if len(rest) > 0 {
		return nil, malformed("trailing data after TSTInfo")
	}
	if info.Version != 1 {
		return nil, malformed("TSTInfo version %d", info.Version)
	}
	for _, e := range info.Extensions {
		if e.Critical {
			return nil, malformed("unknown critical TSTInfo extension %v", e.Id)
		}
	}
	var certs []*x509.Certificate
	if len(sd.Certificates.Bytes) > 0 {
		var err error
		if certs, err = x509.ParseCertificates(sd.Certificates.Bytes); err != nil {
			return nil, malformed("certificates: %v", err)
		}
	}

	// The message imprint, nonce and policy.
	h := HashFromOID(info.MessageImprint.HashAlgorithm.Algorithm)
	if h == 0 {
		return nil, fmt.Errorf("%w: imprint algorithm %v is not SHA-256/384/512", ErrTokenImprint, info.MessageImprint.HashAlgorithm.Algorithm)
	}
	if h != opts.Hash || !bytes.Equal(info.MessageImprint.HashedMessage, opts.Digest) {
		return nil, fmt.Errorf("%w: the token is over %v %x, want %v %x", ErrTokenImprint, h, info.MessageImprint.HashedMessage, opts.Hash, opts.Digest)
	}
	if opts.Nonce != nil && (info.Nonce == nil || info.Nonce.Cmp(opts.Nonce) != 0) {
		return nil, fmt.Errorf("%w: got %v, sent %v", ErrTokenNonce, info.Nonce, opts.Nonce)
	}
	if len(opts.Policies) > 0 && !slices.ContainsFunc(opts.Policies, info.Policy.Equal) {
		return nil, fmt.Errorf("%w: %v", ErrTokenPolicy, info.Policy)
	}

	// The signer and its signature.
	signer, err := findSigner(si, certs, opts.TSACertificates)
	if err != nil {
		return nil, err
	}
	if err := checkSignerInfo(si, sd.EncapContent.EContent, signer); err != nil {
		return nil, err
	}
	if err := CheckTSACertificate(signer); err != nil {
		return nil, err
	}
	acc, err := info.Accuracy.duration()
	if err != nil {
		return nil, malformed("%v", err)
	}
	tok := &Token{GenTime: info.GenTime, Accuracy: acc, Policy: info.Policy, Serial: info.SerialNumber, Nonce: info.Nonce}
	chain, err := opts.Cache.Verify(signer, append(certs, opts.Intermediates...), opts.Roots, x509.ExtKeyUsageTimeStamping, tok.Earliest(), tok.Latest())
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrTokenUntrusted, err)
	}
	tok.Chain = chain
	return tok, nil
}

// findSigner picks the certificate the SignerInfo names by issuer and
// serial, among the token's certificates and the configured one.
func findSigner(si signerInfo, certs, configured []*x509.Certificate) (*x509.Certificate, error) {
	var ias issuerAndSerial
	if rest, err := asn1.Unmarshal(si.SID.FullBytes, &ias); err != nil || len(rest) > 0 || ias.Serial == nil {
		return nil, fmt.Errorf("%w: signer identifier is not issuerAndSerialNumber", ErrTokenMalformed)
	}
	for _, c := range append(certs[:len(certs):len(certs)], configured...) {
		if c.SerialNumber.Cmp(ias.Serial) == 0 && bytes.Equal(c.RawIssuer, ias.Issuer.FullBytes) {
			return c, nil
		}
	}
	return nil, fmt.Errorf("%w: no certificate for the signer (the token carries %d, %d configured)",
		ErrTokenSignature, len(certs), len(configured))
}

// checkSignerInfo checks the signed attributes and the signature.
func checkSignerInfo(si signerInfo, content []byte, signer *x509.Certificate) error {
	h := HashFromOID(si.DigestAlgorithm.Algorithm)
	if h == 0 {
		return fmt.Errorf("%w: digest algorithm %v", ErrTokenSignature, si.DigestAlgorithm.Algorithm)
	}
	if len(si.SignedAttrs.Bytes) == 0 {
		return fmt.Errorf("%w: no signed attributes", ErrTokenMalformed)
	}
	var attrs []attribute
	// Signed attributes are [0] IMPLICIT SET OF Attribute: parse them as a SET.
	setDER := append([]byte{0x31}, si.SignedAttrs.FullBytes[1:]...)
	if rest, err := asn1.UnmarshalWithParams(setDER, &attrs, "set"); err != nil || len(rest) > 0 {
		return fmt.Errorf("%w: signed attributes: %v", ErrTokenMalformed, err)
	}
	one := func(oid asn1.ObjectIdentifier) ([]byte, error) {
		var found []byte
		for _, a := range attrs {
			if a.Type.Equal(oid) {
				if found != nil || len(a.Values) != 1 {
					return nil, fmt.Errorf("%w: attribute %v must appear once with one value", ErrTokenMalformed, oid)
				}
				found = a.Values[0].FullBytes
			}
		}
		return found, nil
	}
	ct, err := one(oidAttrContentType)
	if err != nil {
		return err
	}
	var ctOID asn1.ObjectIdentifier
	if _, err := asn1.Unmarshal(ct, &ctOID); err != nil || !ctOID.Equal(oidTSTInfo) {
		return fmt.Errorf("%w: signed content-type attribute is %v, not id-ct-TSTInfo", ErrTokenMalformed, ctOID)
	}
	md, err := one(oidAttrMessageDigest)
	if err != nil {
		return err
	}
	var digest []byte
	if _, err := asn1.Unmarshal(md, &digest); err != nil {
		return fmt.Errorf("%w: message-digest attribute: %v", ErrTokenMalformed, err)
	}
	d := h.New()
	d.Write(content)
	if !bytes.Equal(d.Sum(nil), digest) {
		return fmt.Errorf("%w: message-digest attribute does not match the TSTInfo", ErrTokenSignature)
	}
	if err := checkESSCertID(one, signer); err != nil {
		return err
	}
	if err := checkSignature(signer.PublicKey, h, setDER, si.Signature); err != nil {
		return fmt.Errorf("%w: %v", ErrTokenSignature, err)
	}
	return nil
}

// checkESSCertID checks the RFC 5816 (or RFC 2634) signing-certificate
// attribute: it must exist and its first certificate hash must be the
// signer's.
func checkESSCertID(one func(asn1.ObjectIdentifier) ([]byte, error), signer *x509.Certificate) error {
	v2, err := one(oidAttrSigningCertV2)
	if err != nil {
		return err
	}
	var certHash, issuer []byte
	var serial *big.Int
	var h crypto.Hash
	switch {
	case v2 != nil:
		var sc signingCertificateV2
		if _, err := asn1.Unmarshal(v2, &sc); err != nil || len(sc.Certs) == 0 {
			return fmt.Errorf("%w: signingCertificateV2: %v", ErrTokenMalformed, err)
		}
		h = crypto.SHA256 // the default of RFC 5816
		if len(sc.Certs[0].HashAlgorithm.Algorithm) > 0 {
			if h = HashFromOID(sc.Certs[0].HashAlgorithm.Algorithm); h == 0 {
				return fmt.Errorf("%w: ESSCertIDv2 hash %v", ErrTokenESSCertID, sc.Certs[0].HashAlgorithm.Algorithm)
			}
		}
		certHash, issuer, serial = sc.Certs[0].CertHash, sc.Certs[0].IssuerSerial.Issuer.FullBytes, sc.Certs[0].IssuerSerial.Serial
	default:
		v1, err := one(oidAttrSigningCert)
		if err != nil {
			return err
		}
		if v1 == nil {
			return fmt.Errorf("%w: no signing-certificate attribute", ErrTokenESSCertID)
		}
		var sc signingCertificate
		if _, err := asn1.Unmarshal(v1, &sc); err != nil || len(sc.Certs) == 0 {
			return fmt.Errorf("%w: signingCertificate: %v", ErrTokenMalformed, err)
		}
		h, certHash, serial = crypto.SHA1, sc.Certs[0].CertHash, sc.Certs[0].IssuerSerial.Serial
		issuer = sc.Certs[0].IssuerSerial.Issuer.FullBytes
		if !h.Available() {
			return fmt.Errorf("%w: SHA-1 is not available", ErrTokenESSCertID)
		}
	}
	d := h.New()
	d.Write(signer.Raw)
	if !bytes.Equal(d.Sum(nil), certHash) {
		return fmt.Errorf("%w: certificate hash differs", ErrTokenESSCertID)
	}
	if serial != nil && serial.Cmp(signer.SerialNumber) != 0 {
		return fmt.Errorf("%w: serial %v, signer's %v", ErrTokenESSCertID, serial, signer.SerialNumber)
	}
	_ = issuer // GeneralNames wrapping varies between TSAs; the hash and serial bind the certificate
	return nil
}

// checkSignature verifies sig over msg with pub: ECDSA and RSA PKCS #1 v1.5
// over the digest h(msg), Ed25519 over msg itself.
func checkSignature(pub crypto.PublicKey, h crypto.Hash, msg, sig []byte) error {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		d := h.New()
		d.Write(msg)
		if !ecdsa.VerifyASN1(k, d.Sum(nil), sig) {
			return errors.New("ECDSA signature does not verify")
		}
		return nil
	case *rsa.PublicKey:
		d := h.New()
		d.Write(msg)
		if rsa.VerifyPKCS1v15(k, h, d.Sum(nil), sig) != nil && rsa.VerifyPSS(k, h, d.Sum(nil), sig, nil) != nil {
			return errors.New("RSA signature does not verify")
		}
		return nil
	case ed25519.PublicKey:
		if !ed25519.Verify(k, msg, sig) {
			return errors.New("Ed25519 signature does not verify")
		}
		return nil
	}
	return fmt.Errorf("%w %T", errUnsupportedKeyType, pub)
}

// CheckTSACertificate checks what RFC 3161 §2.3 requires of a TSA's
// certificate: not a CA, and an extended key usage extension that is marked
// critical and holds timeStamping and nothing else. It wraps
// ErrTokenSignerCert.
func CheckTSACertificate(c *x509.Certificate) error {
	if c.IsCA {
		return fmt.Errorf("%w: it is a CA certificate", ErrTokenSignerCert)
	}
	var eku *pkix.Extension
	for i, e := range c.Extensions {
		if e.Id.Equal(oidExtKeyUsage) {
			eku = &c.Extensions[i]
		}
	}
	switch {
	case eku == nil:
		return fmt.Errorf("%w: no extended key usage extension", ErrTokenSignerCert)
	case !eku.Critical:
		return fmt.Errorf("%w: the extended key usage extension is not critical", ErrTokenSignerCert)
	case len(c.ExtKeyUsage) != 1 || c.ExtKeyUsage[0] != x509.ExtKeyUsageTimeStamping || len(c.UnknownExtKeyUsage) != 0:
		return fmt.Errorf("%w: extended key usage must be timeStamping only", ErrTokenSignerCert)
	}
	if c.KeyUsage != 0 && c.KeyUsage&(x509.KeyUsageDigitalSignature|x509.KeyUsageContentCommitment) == 0 {
		return fmt.Errorf("%w: key usage allows no signatures", ErrTokenSignerCert)
	}
	return nil
}

// certHash identifies a certificate in caches.
func certHash(c *x509.Certificate) [32]byte { return sha256.Sum256(c.Raw) }
