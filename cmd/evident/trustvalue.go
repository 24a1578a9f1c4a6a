package main

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"github.com/evident-dev/evident/tlog"
	"strings"

	"github.com/evident-dev/evident"
	"golang.org/x/mod/sumdb/note"
)

// ErrTrustValue reports a file that is not what its trust root kind needs.
var ErrTrustValue = errors.New("not a trust root item of this kind")

// trustValue parses b as an item of kind for the trust root and returns
// its normalised value: root certificates (functionary-ca, tsa), a note
// verifier key (log) or a public key (layout-key). Whatever is not of the
// kind is refused, a private key above all: published, it would be every
// verifier's trust and anyone's to sign with.
func trustValue(kind string, b []byte) (string, error) {
	s := strings.TrimSpace(string(b))
	if kind == evident.KindLog {
		if strings.HasPrefix(s, "PRIVATE+KEY+") {
			return "", fmt.Errorf("%w: this is the log's private note signing key (log.key): pass its verifier key (log.vkey), and keep log.key secret", ErrTrustValue)
		}
		if _, err := note.NewVerifier(s); err != nil {
			return "", fmt.Errorf("%w: a log needs its note verifier key (name+hash+base64, as evident serve prints it and log.vkey holds): %v", ErrTrustValue, err)
		}
		return s, nil
	}
	if kind == evident.KindWitness {
		if strings.HasPrefix(s, "PRIVATE+KEY+") {
			return "", fmt.Errorf("%w: this is a private key: a witness is its cosignature verifier key (name+hash+base64, as litewitness prints it)", ErrTrustValue)
		}
		if _, err := tlog.NewCosignatureVerifier(s); err != nil {
			return "", fmt.Errorf("%w: a witness needs its cosignature verifier key (name+hash+base64, as litewitness prints it): %v", ErrTrustValue, err)
		}
		return s, nil
	}
	var blocks []*pem.Block
	for rest := []byte(s); ; {
		var blk *pem.Block
		blk, rest = pem.Decode(rest)
		if blk == nil {
			if len(strings.TrimSpace(string(rest))) > 0 && len(blocks) > 0 {
				return "", fmt.Errorf("%w: data after the last PEM block", ErrTrustValue)
			}
			break
		}
		if strings.Contains(blk.Type, "PRIVATE KEY") {
			if kind == evident.KindLayoutKey {
				return "", fmt.Errorf("%w: this is a private key: pass the release manager's PUBLIC key (openssl pkey -in KEY.pem -pubout -out KEY.pub.pem), and keep the private key off the repository", ErrTrustValue)
			}
			return "", fmt.Errorf("%w: this is a private key: a %s needs certificates", ErrTrustValue, kind)
		}
		blocks = append(blocks, blk)
	}
	if len(blocks) == 0 {
		return "", fmt.Errorf("%w: no PEM block; a %s is %s", ErrTrustValue, kind, kindWants(kind))
	}
	switch kind {
	case evident.KindLayoutKey:
		if len(blocks) != 1 || blocks[0].Type != "PUBLIC KEY" {
			return "", fmt.Errorf("%w: a layout key is one PEM PUBLIC KEY block, not %s", ErrTrustValue, blocks[0].Type)
		}
		pub, err := x509.ParsePKIXPublicKey(blocks[0].Bytes)
		if err != nil {
			return "", fmt.Errorf("%w: %v", ErrTrustValue, err)
		}
		switch pub.(type) {
		case *rsa.PublicKey, *ecdsa.PublicKey, ed25519.PublicKey:
		default:
			return "", fmt.Errorf("%w: a %T layout key; want RSA, ECDSA or Ed25519", ErrTrustValue, pub)
		}
		return strings.TrimSpace(string(pem.EncodeToMemory(blocks[0]))), nil
	case evident.KindFunctionaryCA, evident.KindTSA:
		var out strings.Builder
		for _, blk := range blocks {
			if blk.Type != "CERTIFICATE" {
				return "", fmt.Errorf("%w: a %s is %s, not a %s", ErrTrustValue, kind, kindWants(kind), blk.Type)
			}
			c, err := x509.ParseCertificate(blk.Bytes)
			if err != nil {
				return "", fmt.Errorf("%w: %v", ErrTrustValue, err)
			}
			if !c.BasicConstraintsValid || !c.IsCA {
				return "", fmt.Errorf("%w: %q is not a CA certificate; a %s is %s", ErrTrustValue, c.Subject, kind, kindWants(kind))
			}
			out.Write(pem.EncodeToMemory(blk))
		}
		return strings.TrimSpace(out.String()), nil
	}
	return "", fmt.Errorf("%w: unknown kind %q (want functionary-ca, tsa, log or layout-key)", ErrTrustValue, kind)
}

func kindWants(kind string) string {
	switch kind {
	case evident.KindFunctionaryCA:
		return "the root CA certificate(s) functionaries' certificates chain to (PEM), e.g. SPIRE's upstream root"
	case evident.KindTSA:
		return "the TSA's root CA certificate (PEM), the last of its chain"
	case evident.KindLayoutKey:
		return "a release manager's public key (PEM)"
	}
	return "a note verifier key"
}
