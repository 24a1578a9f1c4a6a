package link

import (
	"context"
	"crypto"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/evident-dev/evident"
	"github.com/evident-dev/evident/dsse"
	"github.com/in-toto/in-toto-golang/in_toto"
)

// KeyID returns the in-toto key id of s's key, the key id its Metablock
// links and DSSE envelopes carry.
func (s Signer) KeyID() (string, error) {
	k, err := s.inTotoKey()
	if err != nil {
		return "", err
	}
	return k.KeyID, nil
}

// SignStatement signs a Statement as a DSSE envelope (payload type
// evident.PayloadTypeDSSE) under s's in-toto key id. The payload is the
// Statement's compact JSON, which is what the entry's digest and every
// parser later read.
func SignStatement(st *dsse.Statement, s Signer) (*dsse.Envelope, error) {
	payload, err := json.Marshal(st)
	if err != nil {
		return nil, fmt.Errorf("couldn't encode the statement: %w", err)
	}
	// What is signed must parse back strictly to what was meant.
	if _, err := dsse.ParseStatement(payload); err != nil {
		return nil, err
	}
	keyID, err := s.KeyID()
	if err != nil {
		return nil, err
	}
	return dsse.NewEnvelope(s.Key, keyID, evident.PayloadTypeDSSE, payload)
}

// SignLinkDSSE records a step as an in-toto Statement with the link
// predicate v0.3 (products as subjects) and signs it as a DSSE envelope;
// it returns the envelope with the link's file name, <step>.<keyid
// prefix>.link, as in-toto names DSSE links too.
func SignLinkDSSE(l in_toto.Link, s Signer) (*dsse.Envelope, string, error) {
	st, err := dsse.NewLinkStatement(l)
	if err != nil {
		return nil, "", err
	}
	env, err := SignStatement(st, s)
	if err != nil {
		return nil, "", err
	}
	return env, fmt.Sprintf(in_toto.LinkNameFormat, l.Name, env.Signatures[0].KeyID), nil
}

// EntryDSSE countersigns an envelope's first signature and returns the
// version 2 log entry: payload type evident.PayloadTypeDSSE, the SHA-256
// of the payload (the Statement bytes). chain (leaf first) or pub identify
// the signer.
func EntryDSSE(ctx context.Context, ts Stamper, env *dsse.Envelope, chain []*x509.Certificate, pub crypto.PublicKey) (*evident.Entry, error) {
	if len(env.Signatures) == 0 {
		return nil, errors.New("the envelope is not signed")
	}
	if env.PayloadType != evident.PayloadTypeDSSE {
		return nil, fmt.Errorf("the envelope's payload type is %q; the log records %q", env.PayloadType, evident.PayloadTypeDSSE)
	}
	s := env.Signatures[0]
	return CountersignSignature(ctx, ts, evident.PayloadTypeDSSE, env.Payload, s.Sig, s.KeyID, chain, pub)
}
