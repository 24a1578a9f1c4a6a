package main

import (
	"context"
	"crypto"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/evident-dev/evident"
	"github.com/evident-dev/evident/dsse"
	"github.com/evident-dev/evident/internal/pemfile"
	"github.com/evident-dev/evident/link"
	"github.com/evident-dev/evident/verify"
)

const submitUsage = `
Usage: evident submit FILE… [--public-key PUB.pem | --cert CHAIN.pem] [--server URL]

Timestamps and appends links and attestations signed elsewhere, and writes
each FILE's bundle next to it. The signature is not re-made: the entry
records it as it is.

  an in-toto Metablock link   signed with a certificate (the signature's
                              "cert") or a plain key (--public-key);
  a DSSE envelope             of an in-toto Statement v1 (payload type
                              application/vnd.in-toto+json), signed by the
                              key of --cert (a PEM chain, leaf first) or
                              --public-key; its first signature is logged,
                              after it is checked over PAE(type, payload).
`

func runSubmit(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "submit", submitUsage)
	pubFile := fs.String("public-key", "", "the signer's public key (PEM) for links and envelopes signed with a plain key")
	certFile := fs.String("cert", "", "the signer's certificate chain (PEM, leaf first) for DSSE envelopes")
	lf := addLogFlags(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return usagef("submit takes one or more LINK or DSSE envelope files")
	}
	if *pubFile != "" && *certFile != "" {
		return usagef("give one of --public-key and --cert")
	}
	a, err := newAppender(ctx, e, lf)
	if err != nil {
		return err
	}
	var pub crypto.PublicKey
	if *pubFile != "" {
		if pub, err = readPublicKey(*pubFile); err != nil {
			return err
		}
	}
	var chain []*x509.Certificate
	if *certFile != "" {
		if chain, err = pemfile.LoadCertificates(*certFile); err != nil {
			return err
		}
	}
	for _, p := range fs.Args() {
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		a.out = filepath.Dir(p)
		var bundle string
		var idx uint64
		if isEnvelope(b) {
			bundle, idx, err = submitEnvelope(ctx, a, p, b, chain, pub)
		} else {
			bundle, idx, err = submitLink(ctx, a, p, b, pub)
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "%s: logged at index %d, wrote %s\n", p, idx, bundle)
	}
	return nil
}

// isEnvelope reports whether b looks like a DSSE envelope (it has a
// payloadType member) rather than a Metablock; either is then parsed
// strictly.
func isEnvelope(b []byte) bool {
	var probe struct {
		PayloadType *string `json:"payloadType"`
	}
	return json.Unmarshal(b, &probe) == nil && probe.PayloadType != nil
}

// submitEnvelope logs the first signature of a DSSE envelope of an in-toto
// Statement, signed by chain's leaf or pub, once it verifies.
func submitEnvelope(ctx context.Context, a *appender, p string, b []byte, chain []*x509.Certificate, pub crypto.PublicKey) (string, uint64, error) {
	env, err := dsse.ParseEnvelope(b)
	if err != nil {
		return "", 0, fmt.Errorf("%s: %w", p, err)
	}
	if env.PayloadType != evident.PayloadTypeDSSE {
		return "", 0, fmt.Errorf("%s: payload type %q; the log records in-toto Statements (%q)", p, env.PayloadType, evident.PayloadTypeDSSE)
	}
	if _, err := dsse.ParseStatement(env.Payload); err != nil {
		return "", 0, fmt.Errorf("%s: %w", p, err)
	}
	key := pub
	if len(chain) > 0 {
		key = chain[0].PublicKey
	}
	if key == nil {
		return "", 0, usagef("%s is a DSSE envelope: pass its signer's --cert CHAIN.pem or --public-key PUB.pem", p)
	}
	if err := dsse.Verify(key, env.PayloadType, env.Payload, env.Signatures[0].Sig); err != nil {
		return "", 0, fmt.Errorf("%s: its first signature is not by that key: %w", p, err)
	}
	s := env.Signatures[0]
	entry, err := link.CountersignSignature(ctx, a.tsa, evident.PayloadTypeDSSE, env.Payload, s.Sig, s.KeyID, chain, pub)
	if err != nil {
		return "", 0, fmt.Errorf("%s: %w", p, err)
	}
	name := strings.TrimSuffix(strings.TrimSuffix(filepath.Base(p), ".json"), ".dsse")
	bundle, idx, err := a.appendEnvelope(ctx, entry, env, name)
	if err != nil {
		return "", 0, fmt.Errorf("%s has no bundle: %w", p, err)
	}
	return bundle, idx, nil
}

// submitLink logs the first signature of a Metablock link.
func submitLink(ctx context.Context, a *appender, p string, lb []byte, pub crypto.PublicKey) (string, uint64, error) {
	// The payload is "signed" as the other tool wrote it, canonicalised.
	mb, payload, err := verify.ParseLink(lb)
	if err != nil {
		return "", 0, fmt.Errorf("%s: %w", p, err)
	}
	if len(mb.Signatures) == 0 {
		return "", 0, fmt.Errorf("%s is not signed", p)
	}
	sig, err := hex.DecodeString(mb.Signatures[0].Sig)
	if err != nil {
		return "", 0, fmt.Errorf("%s: the signature is not hex: %w", p, err)
	}
	var chain []*x509.Certificate
	if c := mb.Signatures[0].Certificate; c != "" {
		cert, err := pemfile.ParseCertificate([]byte(c))
		if errors.Is(err, pemfile.ErrNoPEM) {
			return "", 0, fmt.Errorf("%s: the signature's certificate is not PEM", p)
		}
		if err != nil {
			return "", 0, fmt.Errorf("%s: %w", p, err)
		}
		chain = []*x509.Certificate{cert}
	} else if pub == nil {
		return "", 0, usagef("%s is signed with a plain key: pass --public-key", p)
	}
	entry, err := link.CountersignSignature(ctx, a.tsa, evident.PayloadTypeLink, payload, sig, mb.Signatures[0].KeyID, chain, pub)
	if err != nil {
		return "", 0, fmt.Errorf("%s: %w", p, err)
	}
	bundle, idx, err := a.append(ctx, entry, payload, lb, filepath.Base(p))
	if err != nil {
		return "", 0, fmt.Errorf("%s has no bundle: %w", p, err)
	}
	return bundle, idx, nil
}
