package main

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"fmt"

	"github.com/evident-dev/evident/link"
)

// ingestAccepts refuses, before a step runs, a signing key whose entries
// the server's ingest refuses: it checks ECDSA and RSA signatures over the
// payload's digest; Ed25519 signs the payload itself, which an entry does
// not carry.
func ingestAccepts(s link.Signer) error {
	switch s.Key.Public().(type) {
	case *ecdsa.PublicKey, *rsa.PublicKey:
		return nil
	}
	kind := fmt.Sprintf("%T", s.Key.Public())
	if _, ok := s.Key.Public().(ed25519.PublicKey); ok {
		kind = "Ed25519"
	}
	return usagef("an %s signing key cannot be logged: evident serve checks an entry's signature over the payload's digest, which only ECDSA and RSA keys sign (Ed25519 signs the payload itself); use an ECDSA or RSA key", kind)
}
