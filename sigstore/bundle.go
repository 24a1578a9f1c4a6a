// Package sigstore exports evident's evidence in Sigstore's formats, so that
// Sigstore verifiers (sigstore-go, cosign verify-blob) can check it: a
// logged signature as a Sigstore Bundle v0.3 ([BundleMediaType]) and the
// trust root as a Sigstore TrustedRoot ([TrustedRootMediaType]), both in the
// protobuf-specs JSON encoding (github.com/sigstore/protobuf-specs,
// sigstore_bundle.proto and sigstore_trustroot.proto).
//
// A Sigstore verifier checks, of an exported bundle: the signature over the
// payload with the signing certificate's key; the certificate's chain to a
// certificate authority of the TrustedRoot, with the codeSigning extended
// key usage, at the time of the RFC 3161 timestamp; the timestamp over the
// signature, against a timestamp authority of the TrustedRoot; and the
// signer's identity (its URI SAN). It checks nothing of evident's log (the
// entry, its inclusion proof, the checkpoint) nor of in-toto (layouts,
// thresholds, artifact rules): only evident verify does.
//
// Export is a faithful translation, not a verification: it refuses what a
// Sigstore bundle cannot carry or a Sigstore verifier cannot check (a
// functionary with a plain public key, an RSA-PSS or Ed25519 signature), and
// a bundle whose link is not the entry's payload or whose signature does not
// verify, each with an error wrapping [ErrNotExportable] or [ErrInconsistent].
package sigstore

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/evident-dev/evident"
	"github.com/evident-dev/evident/dsse"
	"github.com/evident-dev/evident/verify"
	protobundle "github.com/sigstore/protobuf-specs/gen/pb-go/bundle/v1"
	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	protodsse "github.com/sigstore/protobuf-specs/gen/pb-go/dsse"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// BundleMediaType is the Sigstore bundle version [ExportBundle] writes: v0.3,
// whose verification material is the signing certificate alone (the
// intermediates go into the TrustedRoot, see [ExportTrustedRoot]).
const BundleMediaType = "application/vnd.dev.sigstore.bundle.v0.3+json"

var (
	// ErrNotExportable: the evidence is valid for evident but cannot be
	// expressed in, or verified from, Sigstore's formats.
	ErrNotExportable = errors.New("not exportable to Sigstore")
	// ErrInconsistent: the evident bundle contradicts itself (its link is
	// not the entry's payload, its signature does not verify), so no
	// faithful Sigstore bundle exists for it.
	ErrInconsistent = errors.New("inconsistent evident bundle")
)

// ExportBundle converts an evident bundle into a Sigstore bundle, JSON
// encoded: the content that fits the entry's payload type, the signing
// certificate (leaf only) and the entry's RFC 3161 token. The log index,
// inclusion proof and checkpoint have no place in a Sigstore bundle (they
// prove inclusion in evident's log, not in Rekor) and are left out.
func ExportBundle(b *evident.Bundle) ([]byte, error) {
	e := b.Entry
	if e == nil {
		return nil, fmt.Errorf("%w: the bundle has no entry", ErrInconsistent)
	}
	leaf, err := signingCertificate(e)
	if err != nil {
		return nil, err
	}
	out := &protobundle.Bundle{MediaType: BundleMediaType}
	// One function per content kind. A DSSE payload type becomes the
	// bundle's dsseEnvelope content here, built from the envelope the
	// bundle carries (payload, payload type, signature over its PAE).
	switch e.PayloadType {
	case evident.PayloadTypeLink:
		if out.Content, err = messageSignature(b.Link, e, leaf); err != nil {
			return nil, err
		}
	case evident.PayloadTypeDSSE:
		if out.Content, err = dsseEnvelope(b.DSSEEnvelope, e, leaf); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("%w: payload type %q has no Sigstore content", ErrNotExportable, e.PayloadType)
	}
	if out.VerificationMaterial, err = verificationMaterial(leaf, e.Tokens()); err != nil {
		return nil, err
	}
	return marshal(out)
}

// signingCertificate returns the entry's leaf certificate, refusing what a
// Sigstore verifier cannot take as a signer.
func signingCertificate(e *evident.Entry) (*x509.Certificate, error) {
	if len(e.CertChain) == 0 {
		return nil, fmt.Errorf("%w: the signer is a plain public key (a key-only functionary); "+
			"a Sigstore bundle can name it only by a key hint that a TrustedRoot cannot resolve, so only evident verify checks it", ErrNotExportable)
	}
	leaf, err := x509.ParseCertificate(e.CertChain[0])
	if err != nil {
		return nil, fmt.Errorf("%w: the signer certificate: %v", ErrInconsistent, err)
	}
	if leaf.IsCA {
		return nil, fmt.Errorf("%w: the signer certificate is a CA", ErrInconsistent)
	}
	if !codeSigning(leaf) {
		return nil, fmt.Errorf("%w: the signer certificate lacks the codeSigning extended key usage, which Sigstore verifiers require "+
			"(SPIRE X509-SVIDs carry only serverAuth and clientAuth; use a code-signing certificate, e.g. evident run --key … --cert …)", ErrNotExportable)
	}
	return leaf, nil
}

// codeSigning reports whether c may sign code as crypto/x509 judges it for
// Sigstore's verifiers: no extended key usage at all, codeSigning, or any.
func codeSigning(c *x509.Certificate) bool {
	if len(c.ExtKeyUsage) == 0 && len(c.UnknownExtKeyUsage) == 0 {
		return true
	}
	return slices.Contains(c.ExtKeyUsage, x509.ExtKeyUsageCodeSigning) || slices.Contains(c.ExtKeyUsage, x509.ExtKeyUsageAny)
}

// messageSignature is the content for an in-toto Metablock link: the
// SHA-256 of its payload (the canonical JSON of "signed") and the signature,
// which in-toto-golang makes over that SHA-256.
func messageSignature(link []byte, e *evident.Entry, leaf *x509.Certificate) (*protobundle.Bundle_MessageSignature, error) {
	_, payload, err := verify.ParseLink(link)
	if err != nil {
		return nil, fmt.Errorf("%w: the link: %v", ErrInconsistent, err)
	}
	digest := sha256.Sum256(payload)
	if !e.IsPayload(payload) {
		return nil, fmt.Errorf("%w: the link is not the entry's payload (SHA-256 %x, entry %s)", ErrInconsistent, digest, e.PayloadSHA256)
	}
	if err := checkSigstoreSignature(leaf.PublicKey, digest[:], e.Signature); err != nil {
		return nil, err
	}
	return &protobundle.Bundle_MessageSignature{MessageSignature: &protocommon.MessageSignature{
		MessageDigest: &protocommon.HashOutput{Algorithm: protocommon.HashAlgorithm_SHA2_256, Digest: digest[:]},
		Signature:     bytes.Clone(e.Signature),
	}}, nil
}

// dsseEnvelope is the content for a DSSE entry: the envelope, strictly
// parsed, with the entry's signature only (a Sigstore bundle's envelope
// carries the one signature its verification material proves), checked
// over PAE(payload type, payload) as Sigstore verifiers check it.
//
// The signature's keyid is left empty, as Sigstore's own bundles leave it:
// it is an unsigned hint, and sigstore-go (through go-securesystemslib's
// envelope verifier) skips a signature whose keyid is not the SHA-256 SSH
// fingerprint of the certificate's key — which evident's key ID is not.
func dsseEnvelope(raw []byte, e *evident.Entry, leaf *x509.Certificate) (*protobundle.Bundle_DsseEnvelope, error) {
	env, err := dsse.ParseEnvelope(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: the envelope: %v", ErrInconsistent, err)
	}
	msg, err := e.SignedMessage(env.Payload)
	switch {
	case err != nil:
		return nil, fmt.Errorf("%w: the envelope: %v", ErrInconsistent, err)
	case env.PayloadType != e.PayloadType:
		return nil, fmt.Errorf("%w: the envelope's payload type %q is not the entry's", ErrInconsistent, env.PayloadType)
	case !env.HasSignature(e.KeyID, e.Signature):
		return nil, fmt.Errorf("%w: the envelope carries no signature equal to the entry's", ErrInconsistent)
	}
	digest := sha256.Sum256(msg)
	if err := checkSigstoreSignature(leaf.PublicKey, digest[:], e.Signature); err != nil {
		return nil, err
	}
	return &protobundle.Bundle_DsseEnvelope{DsseEnvelope: &protodsse.Envelope{Payload: bytes.Clone(env.Payload), PayloadType: env.PayloadType,
		Signatures: []*protodsse.Signature{{Sig: bytes.Clone(e.Signature)}}}}, nil
}

// checkSigstoreSignature verifies sig over a SHA-256 digest in a scheme
// Sigstore verifiers accept for a certificate's key: ECDSA (ASN.1; for P-384
// and P-521 keys over SHA-256, which sigstore-go accepts from v0.3 bundles
// as its compatibility verifier) or RSA PKCS #1 v1.5. in-toto-golang signs
// with RSA-PSS, which Sigstore verifiers check only when told to, and a
// certificate cannot tell them.
func checkSigstoreSignature(pub crypto.PublicKey, digest, sig []byte) error {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		if ecdsa.VerifyASN1(k, digest, sig) {
			return nil
		}
	case *rsa.PublicKey:
		if rsa.VerifyPKCS1v15(k, crypto.SHA256, digest, sig) == nil {
			return nil
		}
		if rsa.VerifyPSS(k, crypto.SHA256, digest, sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthAuto}) == nil {
			return fmt.Errorf("%w: the signature is RSA-PSS (in-toto-golang's RSA scheme); "+
				"Sigstore verifiers check RSA PKCS #1 v1.5 signatures for a certificate's key", ErrNotExportable)
		}
	default:
		return fmt.Errorf("%w: a %T signing key (Sigstore bundles from evident carry ECDSA and RSA PKCS #1 v1.5 signatures)", ErrNotExportable, pub)
	}
	return fmt.Errorf("%w: the signature does not verify over the payload digest with the signer certificate's key", ErrInconsistent)
}

// verificationMaterial carries the leaf certificate and the token. Sigstore
// reads a TimeStampResp (RFC 3161 section 2.4.2), where the entry holds the
// TimeStampToken: the token is wrapped, with status granted, unchanged.
func verificationMaterial(leaf *x509.Certificate, tokens [][]byte) (*protobundle.VerificationMaterial, error) {
	var stamps []*protocommon.RFC3161SignedTimestamp
	for _, token := range tokens {
		resp, err := timeStampResp(token)
		if err != nil {
			return nil, err
		}
		stamps = append(stamps, &protocommon.RFC3161SignedTimestamp{SignedTimestamp: resp})
	}
	return &protobundle.VerificationMaterial{
		Content:                   &protobundle.VerificationMaterial_Certificate{Certificate: &protocommon.X509Certificate{RawBytes: bytes.Clone(leaf.Raw)}},
		TimestampVerificationData: &protobundle.TimestampVerificationData{Rfc3161Timestamps: stamps},
	}, nil
}

// timeStampResp wraps a DER TimeStampToken as
// TimeStampResp ::= SEQUENCE { status PKIStatusInfo, timeStampToken }
// with PKIStatusInfo ::= SEQUENCE { status PKIStatus (0, granted) }.
func timeStampResp(token []byte) ([]byte, error) {
	var raw asn1.RawValue
	rest, err := asn1.Unmarshal(token, &raw)
	if err != nil || len(rest) != 0 || raw.Class != asn1.ClassUniversal || raw.Tag != asn1.TagSequence {
		return nil, fmt.Errorf("%w: the timestamp is not one DER TimeStampToken", ErrInconsistent)
	}
	type pkiStatusInfo struct{ Status int }
	return asn1.Marshal(struct {
		Status pkiStatusInfo
		Token  asn1.RawValue
	}{pkiStatusInfo{0}, raw})
}

// marshal encodes m in the protobuf JSON mapping, re-indented so that the
// output does not depend on protojson's deliberately unstable spacing.
func marshal(m proto.Message) ([]byte, error) {
	b, err := protojson.Marshal(m)
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	if err := json.Indent(&out, b, "", "  "); err != nil {
		return nil, err
	}
	out.WriteByte('\n')
	return out.Bytes(), nil
}
