package dsse

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"errors"
	"fmt"

	"github.com/evident-dev/evident"
)

// ErrSignature: a signature does not verify over PAE(payloadType, payload).
var ErrSignature = errors.New("DSSE signature does not verify")

// Sign signs PAE(payloadType, payload) with key: the SHA-256 of it for
// ECDSA (ASN.1) and RSA (PSS, salt as long as the hash: in-toto's
// rsassa-pss-sha256, which in-toto-golang verifies), the whole of it for
// Ed25519.
func Sign(key crypto.Signer, payloadType string, payload []byte) ([]byte, error) {
	msg := evident.PAE(payloadType, payload)
	var sig []byte
	var err error
	switch key.Public().(type) {
	case ed25519.PublicKey:
		sig, err = key.Sign(rand.Reader, msg, crypto.Hash(0))
	case *rsa.PublicKey:
		d := sha256.Sum256(msg)
		sig, err = key.Sign(rand.Reader, d[:], &rsa.PSSOptions{SaltLength: sha256.Size, Hash: crypto.SHA256})
	default:
		d := sha256.Sum256(msg)
		sig, err = key.Sign(rand.Reader, d[:], crypto.SHA256)
	}
	if err != nil {
		return nil, fmt.Errorf("couldn't sign the DSSE envelope: %w", err)
	}
	return sig, nil
}

// NewEnvelope signs payload as a DSSE envelope of payloadType with one
// signature under keyID.
func NewEnvelope(key crypto.Signer, keyID, payloadType string, payload []byte) (*Envelope, error) {
	sig, err := Sign(key, payloadType, payload)
	if err != nil {
		return nil, err
	}
	return &Envelope{PayloadType: payloadType, Payload: payload, Signatures: []Signature{{KeyID: keyID, Sig: sig}}}, nil
}

// Verify checks sig over PAE(payloadType, payload) with pub: ECDSA
// (ASN.1) or RSA (PKCS #1 v1.5 or PSS) over its SHA-256, Ed25519 over it
// whole. It wraps [ErrSignature] when the signature is wrong.
func Verify(pub crypto.PublicKey, payloadType string, payload, sig []byte) error {
	msg := evident.PAE(payloadType, payload)
	d := sha256.Sum256(msg)
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		if ecdsa.VerifyASN1(k, d[:], sig) {
			return nil
		}
	case *rsa.PublicKey:
		if rsa.VerifyPKCS1v15(k, crypto.SHA256, d[:], sig) == nil ||
			rsa.VerifyPSS(k, crypto.SHA256, d[:], sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthAuto}) == nil {
			return nil
		}
	case ed25519.PublicKey:
		if ed25519.Verify(k, msg, sig) {
			return nil
		}
	default:
		return fmt.Errorf("%w: unsupported key type %T", ErrSignature, pub)
	}
	return ErrSignature
}
