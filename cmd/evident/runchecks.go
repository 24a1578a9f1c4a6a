package main

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"

	"github.com/evident-dev/evident/link"
)

// loggable refuses, before a step runs, a signing key whose signatures
// neither in-toto nor the server's ingest checks: ingest verifies ECDSA,
// RSA (PKCS #1 v1.5 and PSS) and Ed25519 signatures over the payload
// posted with the entry.
func loggable(s link.Signer) error {
	switch s.Key.Public().(type) {
	case *ecdsa.PublicKey, *rsa.PublicKey, ed25519.PublicKey:
		return nil
	}
	return usagef("a %T signing key cannot be logged: use an ECDSA, RSA or Ed25519 key", s.Key.Public())
}
