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
	"time"

	"github.com/evident-dev/evident"
	"github.com/evident-dev/evident/rfc3161"
)

// Errors from [EntryVerifier.Verify] besides the ErrToken… ones.
var (
	// ErrSignerUntrusted: the signer's chain does not reach a functionary
	// root, or not over the whole time the timestamps vouch for.
	ErrSignerUntrusted = errors.New("signer certificate is not trusted at the timestamp's time")
	// ErrSignerKey: the signer's certificate or public key cannot be used.
	ErrSignerKey = errors.New("signer key is unusable")
	// ErrEntrySignature: the signature does not verify over the signed
	// message (the payload, or its DSSE PAE).
	ErrEntrySignature = errors.New("signature does not verify over the payload")
	// ErrTSAThreshold: fewer tokens than the threshold verify from
	// distinct trusted TSAs.
	ErrTSAThreshold = errors.New("too few timestamps from distinct trusted TSAs")
	// ErrTSASkew: the tokens that verify disagree on the time by more than
	// the bound, so too few of them count.
	ErrTSASkew = errors.New("timestamps' genTimes are too far apart")
)

// EntryVerifier checks log entries (the shape of evident.Entry is checked
// by evident.ParseEntry first): the entry's RFC 3161 tokens are valid for
// the SHA-256 of the signature bytes under TSARoots, from at least
// TSAThreshold distinct TSAs whose genTimes lie within MaxTSASkew; the
// signer certificate chains to FunctionaryRoots over the whole genTime ±
// accuracy window of every token that counts; the signature verifies over
// the signed message with the signer's key. Entries signed by a plain
// public key (key-based functionaries) are checked for the signature only:
// which keys to trust is the layout's business.
//
// It is safe for concurrent use. Verified chains and parsed certificates
// are cached, so the same SVID or TSA certificate costs its signature
// checks once.
type EntryVerifier struct {
	TSARoots *x509.CertPool
	// TSACertificates are candidates for tokens that carry no certificate.
	TSACertificates  []*x509.Certificate
	FunctionaryRoots *x509.CertPool
	Cache            *rfc3161.ChainCache
	// TSAThreshold is how many tokens must verify, each from a distinct
	// TSA; 0 means 1.
	TSAThreshold int
	// MaxTSASkew bounds the spread of the counted tokens' genTimes; 0
	// leaves it unbounded.
	MaxTSASkew time.Duration
	// TSAName, when set, names the TSA that a verified token's root
	// belongs to at the token's genTime, or reports false if no trusted TSA
	// has that root then; tokens count once per name. When nil, each root
	// certificate is one TSA, trusted whenever TSARoots holds it.
	TSAName func(root *x509.Certificate, genTime time.Time) (string, bool)

	mu    sync.Mutex
	certs map[[32]byte]*x509.Certificate
}

// VerifiedEntry is what an entry proves once verified.
type VerifiedEntry struct {
	// Timestamp is the counted token with the earliest genTime.
	Timestamp *rfc3161.Token
	// Timestamps are the tokens that counted, earliest first, one per TSA,
	// and TSAs the names of their TSAs, in the same order.
	Timestamps []*rfc3161.Token
	TSAs       []string
	// Ignored says, for each token that did not count, why
	// ("timestamps[2]: …").
	Ignored []string
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

// Verify checks e without its payload: enough for an ECDSA or RSA
// signature over a link, which signs the payload's SHA-256 (the entry's
// payload_sha256); an Ed25519 signature or a DSSE payload type needs
// [EntryVerifier.VerifyPayload]. The error names the check that failed.
func (v *EntryVerifier) Verify(e *evident.Entry) (*VerifiedEntry, error) {
	return v.VerifyPayload(e, nil)
}

// VerifyPayload checks e and, if payload is not nil, that payload is the
// entry's (its SHA-256 is payload_sha256) and that the signature verifies
// over the message it makes ([evident.Entry.SignedMessage]): ECDSA, RSA
// PKCS #1 v1.5 or PSS over its SHA-256, or Ed25519 over the message
// itself. See [EntryVerifier]; the error names the check that failed.
func (v *EntryVerifier) VerifyPayload(e *evident.Entry, payload []byte) (*VerifiedEntry, error) {
	out, err := v.timestamps(e)
	if err != nil {
		return nil, err
	}
	first, last := out.Timestamps[0].Earliest(), out.Timestamps[0].Latest()
	for _, t := range out.Timestamps[1:] {
		first, last = minTime(first, t.Earliest()), maxTime(last, t.Latest())
	}
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
		// The validity window is an interval: it holds every counted
		// token's window if and only if it holds their hull.
		path, err := v.Cache.Verify(chain[0], chain[1:], v.FunctionaryRoots, x509.ExtKeyUsageAny, first, last)
		if err != nil {
			return nil, fmt.Errorf("%w: %v%s", ErrSignerUntrusted, err, straddleHint(chain, first, last))
		}
		out.SignerChain, out.PublicKey = path, chain[0].PublicKey
	} else {
		if out.PublicKey, err = x509.ParsePKIXPublicKey(e.PublicKey); err != nil {
			return nil, fmt.Errorf("%w: public_key: %v", ErrSignerKey, err)
		}
	}
	if payload == nil {
		err = checkWithoutPayload(out.PublicKey, e)
	} else {
		err = checkEntrySignature(out.PublicKey, e, payload)
	}
	if err != nil {
		return nil, err
	}
	return out, nil
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// checkEntrySignature verifies e's signature over the message payload makes.
func checkEntrySignature(pub crypto.PublicKey, e *evident.Entry, payload []byte) error {
	msg, err := e.SignedMessage(payload)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrEntrySignature, err)
	}
	if k, ok := pub.(ed25519.PublicKey); ok {
		if !ed25519.Verify(k, msg, e.Signature) {
			return fmt.Errorf("%w: Ed25519", ErrEntrySignature)
		}
		return nil
	}
	digest := sha256.Sum256(msg)
	return checkDigestSignature(pub, digest[:], e.Signature)
}

// checkWithoutPayload verifies what can be verified of e's signature from
// its payload digest alone: an ECDSA or RSA signature over a link.
func checkWithoutPayload(pub crypto.PublicKey, e *evident.Entry) error {
	if _, ok := pub.(ed25519.PublicKey); ok {
		return fmt.Errorf("%w: Ed25519 signs the payload itself, so its signature is checked over the payload, which is missing or not the entry's", ErrEntrySignature)
	}
	if e.PayloadType != evident.PayloadTypeLink {
		return fmt.Errorf("%w: a %s signature covers the DSSE PAE of the payload, which is missing or not the entry's", ErrEntrySignature, e.PayloadType)
	}
	digest, err := e.PayloadDigest()
	if err != nil {
		return fmt.Errorf("%w: payload_sha256: %v", ErrEntrySignature, err)
	}
	if err := checkDigestSignature(pub, digest, e.Signature); err != ErrEntrySignature {
		return err
	}
	return fmt.Errorf("%w: checked over its digest, payload_sha256 (the payload was not given)", ErrEntrySignature)
}

// checkDigestSignature verifies a signature over a SHA-256 digest: ECDSA
// (ASN.1), RSA PKCS #1 v1.5 or PSS.
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
	default:
		return fmt.Errorf("%w: %T", ErrSignerKey, pub)
	}
	return ErrEntrySignature
}

// straddleHint explains the commonest cause of a signer chain that is
// valid at genTime yet refused: a certificate issued within the tokens'
// accuracy of the signature (openssl x509 -req cannot backdate notBefore).
func straddleHint(chain []*x509.Certificate, first, last time.Time) string {
	for _, c := range chain {
		if c.NotBefore.After(first) && !c.NotBefore.After(last) {
			return fmt.Sprintf(" (certificate %q becomes valid at %s, inside the timestamps' window %s to %s: "+
				"a signer's chain must be valid over the whole window; issue certificates with notBefore a little in the past)",
				c.Subject.String(), c.NotBefore.UTC().Format(time.RFC3339), first.UTC().Format(time.RFC3339), last.UTC().Format(time.RFC3339))
		}
	}
	return ""
}
