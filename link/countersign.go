// Package link records a CI step as a signed in-toto link (in-toto
// specification v0.9, link metadata) and turns it into a log entry: it runs
// the step's command with the streams it is given ([RunCommand]), builds the
// link ([NewLink]), signs it with the functionary's key ([Sign]),
// countersigns the signature with RFC 3161 timestamps from one or several
// TSAs ([Countersign]) and assembles the entry the log records ([Entry], see
// evident.Entry).
//
// A functionary's [Signer] comes from package identity (key files, the
// SPIFFE Workload API, a development server). Package link has no network
// code.
package link

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"fmt"

	"github.com/evident-dev/evident"
	"github.com/evident-dev/evident/rfc3161"
)

// Timestamper gets an RFC 3161 token over a digest from one TSA and
// verifies it; *tsa.Client is one.
type Timestamper interface {
	Timestamp(ctx context.Context, h crypto.Hash, digest []byte) (*rfc3161.Token, []byte, error)
}

// Countersign signs the SHA-256 of payload with key (ECDSA or RSA), has the
// signature timestamped (each token's imprint is the SHA-256 of the
// signature bytes) and returns the entry (see [CountersignSignature] for its
// version). With a chain (leaf first, the leaf being
// key's certificate) the entry carries it; without, the entry carries key's
// public key.
func Countersign(ctx context.Context, ts Stamper, payloadType string, payload []byte, keyID string,
	key crypto.Signer, chain []*x509.Certificate) (*evident.Entry, error) {
	digest := sha256.Sum256(payload)
	sig, err := key.Sign(rand.Reader, digest[:], crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("couldn't sign: %w", err)
	}
	var pub crypto.PublicKey
	if len(chain) == 0 {
		pub = key.Public()
	}
	return CountersignSignature(ctx, ts, payloadType, payload, sig, keyID, chain, pub)
}

// CountersignSignature has an existing signature over payload (the
// message of the payload type: the payload itself, or its DSSE PAE)
// timestamped and returns its entry: with the signer's chain (leaf first)
// or, for a key-only signer, its public key. One token for a link makes a
// version 1 entry, byte for byte what verifiers that predate version 2
// read; several tokens, or a DSSE payload, make a version 2 entry.
func CountersignSignature(ctx context.Context, ts Stamper, payloadType string, payload, sig []byte, keyID string,
	chain []*x509.Certificate, pub crypto.PublicKey) (*evident.Entry, error) {
	digest := sha256.Sum256(payload)
	sigDigest := sha256.Sum256(sig)
	tokens, err := ts.Tokens(ctx, sigDigest[:])
	if err != nil {
		return nil, fmt.Errorf("couldn't timestamp the signature: %w", err)
	}
	e := &evident.Entry{PayloadType: payloadType, PayloadSHA256: hex.EncodeToString(digest[:]),
		Signature: sig, KeyID: keyID}
	if len(tokens) == 1 && payloadType == evident.PayloadTypeLink {
		e.Timestamp = tokens[0]
	} else {
		e.Version, e.Timestamps = evident.Version2, tokens
	}
	if len(chain) > 0 {
		for _, c := range chain {
			e.CertChain = append(e.CertChain, c.Raw)
		}
	} else if e.PublicKey, err = x509.MarshalPKIXPublicKey(pub); err != nil {
		return nil, err
	}
	return e, e.Check()
}
