package verify_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/evident-dev/evident"
	"github.com/evident-dev/evident/internal/pemfile"
	"github.com/evident-dev/evident/internal/pkitest"
	"github.com/evident-dev/evident/link"
	"github.com/evident-dev/evident/rfc3161"
	"github.com/evident-dev/evident/verify"
	"github.com/in-toto/in-toto-golang/in_toto"
)

// stamp is one token a stamps Stamper mints: by tsa, at genTime.
type stamp struct {
	tsa tsaFixture
	at  time.Time
}

// stamps mints one token per stamp, as TSAs that all answered would.
type stamps struct {
	t  testing.TB
	ss []stamp
}

func (s stamps) Tokens(_ context.Context, digest []byte) ([][]byte, error) {
	var out [][]byte
	for _, st := range s.ss {
		out = append(out, st.tsa.token(s.t, digest, st.at, nil))
	}
	return out, nil
}

// multiTSAChain is a chain fixture whose trust root lists three TSAs
// (tsa, b and c: the fixture's own and two more) with a TSA threshold.
func multiTSAChain(t *testing.T, threshold int, skew time.Duration) (f *chainFixture, b, c tsaFixture) {
	f = newChain(t)
	b, c = newTSA(t, pkitest.TSAOptions{}), newTSA(t, pkitest.TSAOptions{})
	for name, fx := range map[string]tsaFixture{"tsa-b": b, "tsa-c": c} {
		if err := f.trust.Add(evident.KindTSA, name, string(pemfile.EncodeCertificates([]*x509.Certificate{fx.root.Cert})), t0.AddDate(-1, 0, 0)); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.trust.SetTSAPolicy(threshold, skew); err != nil {
		t.Fatal(err)
	}
	return f, b, c
}

func (f *chainFixture) verifyWith(ss ...stamp) (*verify.Report, error) {
	f.stamp = stamps{f.t, ss}
	defer func() { f.stamp = nil }()
	tar := sha256.Sum256([]byte("tarball"))
	return verify.SupplyChain(verify.SupplyChainInput{TrustRoot: f.trust, Layout: f.layout(nil), Bundles: f.goodBundles(),
		At: t0.AddDate(0, 1, 0), Artifacts: map[string][]byte{"app.tar": tar[:]}})
}

// detail returns the detail of the first check whose name ends in suffix.
func detail(rep *verify.Report, suffix string) string {
	for _, c := range rep.Checks {
		if strings.HasSuffix(c.Check, suffix) {
			return c.Detail
		}
	}
	return ""
}

// TestTSAThresholdTwoOfThree: with a TSA threshold of 2, entries
// countersigned by two of the three TSAs (the third was down) verify, and
// the report names the TSAs that counted; one TSA alone is not enough.
func TestTSAThresholdTwoOfThree(t *testing.T) {
	f, _, c := multiTSAChain(t, 2, time.Minute)
	rep, err := f.verifyWith(stamp{f.tsa, f.genTime}, stamp{c, f.genTime.Add(2 * time.Second)})
	if err != nil {
		t.Fatalf("2 of 3 TSAs = %v\n%+v", err, rep)
	}
	if d := detail(rep, ": timestamp and signer"); !strings.Contains(d, "tsa at ") || !strings.Contains(d, "tsa-c at ") || !strings.Contains(d, "threshold 2") {
		t.Errorf("report = %q, want it to name tsa and tsa-c and the threshold", d)
	}
	_, err = f.verifyWith(stamp{c, f.genTime})
	if !errors.Is(err, verify.ErrTSAThreshold) || !strings.Contains(err.Error(), "1 of threshold 2 count (tsa-c at") {
		t.Errorf("1 of 3 TSAs = %v, want ErrTSAThreshold naming tsa-c", err)
	}
}

// TestUntrustedTSADoesNotCount: a token from a TSA outside the trust root
// does not count toward the threshold, and does not fail an entry whose
// other tokens meet it.
func TestUntrustedTSADoesNotCount(t *testing.T) {
	f, b, _ := multiTSAChain(t, 2, 0)
	attacker := newTSA(t, pkitest.TSAOptions{})
	_, err := f.verifyWith(stamp{f.tsa, f.genTime}, stamp{attacker, f.genTime})
	if !errors.Is(err, verify.ErrTSAThreshold) || !errors.Is(err, rfc3161.ErrTokenUntrusted) || !strings.Contains(err.Error(), "timestamps[1]") {
		t.Errorf("trusted + untrusted TSA = %v, want ErrTSAThreshold wrapping ErrTokenUntrusted for timestamps[1]", err)
	}
	rep, err := f.verifyWith(stamp{attacker, f.genTime.Add(-time.Hour)}, stamp{f.tsa, f.genTime}, stamp{b, f.genTime})
	if err != nil {
		t.Fatalf("two trusted TSAs beside an untrusted one = %v", err)
	}
	if d := detail(rep, ": timestamp and signer"); !strings.Contains(d, "not counted: timestamps[0]") {
		t.Errorf("report = %q, want the untrusted token reported as not counted", d)
	}
}

// TestSameTSACountsOnce: two tokens from one TSA root (even under two TSA
// certificates) count once.
func TestSameTSACountsOnce(t *testing.T) {
	f, _, _ := multiTSAChain(t, 2, 0)
	cert2, key2 := f.tsa.root.TSA(t, t0.AddDate(0, 0, -1), t0.AddDate(0, 0, 30), pkitest.TSAOptions{})
	sibling := tsaFixture{f.tsa.root, cert2, key2}
	for name, ss := range map[string][]stamp{
		"one TSA twice":                  {{f.tsa, f.genTime}, {f.tsa, f.genTime.Add(time.Second)}},
		"two TSA certificates, one root": {{f.tsa, f.genTime}, {sibling, f.genTime}},
	} {
		_, err := f.verifyWith(ss...)
		if !errors.Is(err, verify.ErrTSAThreshold) || !strings.Contains(err.Error(), "1 of threshold 2 count") {
			t.Errorf("%s = %v, want ErrTSAThreshold with 1 counted", name, err)
		}
	}
}

// TestTSASkew: tokens whose genTimes lie further apart than the trust root
// allows do not make up the threshold, and the error names the check.
func TestTSASkew(t *testing.T) {
	f, b, c := multiTSAChain(t, 2, time.Minute)
	_, err := f.verifyWith(stamp{f.tsa, f.genTime}, stamp{b, f.genTime.Add(10 * time.Minute)})
	if !errors.Is(err, verify.ErrTSASkew) || !strings.Contains(err.Error(), "span 10m0s, the trust root allows 1m0s") {
		t.Errorf("genTimes 10 minutes apart = %v, want ErrTSASkew with the spread and the bound", err)
	}
	// A third TSA close to one of them makes the threshold: the outlier is
	// reported, not fatal.
	rep, err := f.verifyWith(stamp{f.tsa, f.genTime}, stamp{b, f.genTime.Add(10 * time.Minute)}, stamp{c, f.genTime.Add(30 * time.Second)})
	if err != nil {
		t.Fatalf("two close genTimes and an outlier = %v", err)
	}
	if d := detail(rep, ": timestamp and signer"); !strings.Contains(d, "timestamps[1]: from tsa-b") || !strings.Contains(d, "more than 1m0s") {
		t.Errorf("report = %q, want the outlier named", d)
	}
}

// TestSignerValidAtEveryGenTime: the signer's certificate (a two-minute
// SVID) must be valid over every counted token's genTime ± accuracy.
func TestSignerValidAtEveryGenTime(t *testing.T) {
	f, b, _ := multiTSAChain(t, 2, 0)
	_, err := f.verifyWith(stamp{f.tsa, f.genTime}, stamp{b, f.genTime.Add(5 * time.Minute)})
	if !errors.Is(err, verify.ErrSignerUntrusted) {
		t.Errorf("second token after the SVID expired = %v, want ErrSignerUntrusted", err)
	}
}

// TestEntryVerifierPayload: with the payload, every signature kind is
// verified over the signed message — Ed25519 included — and a payload other
// than the entry's is refused.
func TestEntryVerifierPayload(t *testing.T) {
	f := newEntryFixture(t)
	v := f.verifier()
	payload := []byte(`{"_type":"link","name":"build"}`)
	d := sha256.Sum256(payload)
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	pss := rsaPSS{rsaKey}
	for _, c := range []struct {
		name string
		key  crypto.Signer
		pt   string
	}{
		{"Ed25519", edKey, evident.PayloadTypeLink},
		{"ECDSA", ecKey, evident.PayloadTypeLink},
		{"RSA PKCS #1 v1.5", rsaKey, evident.PayloadTypeLink},
		{"RSA-PSS", pss, evident.PayloadTypeLink},
		{"Ed25519 DSSE", edKey, evident.PayloadTypeDSSE},
		{"ECDSA DSSE", ecKey, evident.PayloadTypeDSSE},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := &evident.Entry{PayloadType: c.pt, PayloadSHA256: hex.EncodeToString(d[:]), KeyID: "k"}
			if c.pt == evident.PayloadTypeDSSE {
				e.Version = evident.Version2
			}
			msg, _ := e.SignedMessage(payload)
			e.Signature = signMessage(t, c.key, msg)
			e.PublicKey, _ = x509.MarshalPKIXPublicKey(c.key.Public())
			sd := sha256.Sum256(e.Signature)
			if tok := f.tsa.token(t, sd[:], t0, nil); e.Version == evident.Version2 {
				e.Timestamps = [][]byte{tok}
			} else {
				e.Timestamp = tok
			}
			if err := e.Check(); err != nil {
				t.Fatal(err)
			}
			if _, err := v.VerifyPayload(e, payload); err != nil {
				t.Errorf("VerifyPayload = %v", err)
			}
			if _, err := v.VerifyPayload(e, append(bytes.Clone(payload), ' ')); !errors.Is(err, verify.ErrEntrySignature) || !errors.Is(err, evident.ErrPayloadMismatch) {
				t.Errorf("VerifyPayload(another payload) = %v, want ErrEntrySignature wrapping ErrPayloadMismatch", err)
			}
			_, err := v.Verify(e) // without the payload
			switch _, ed := c.key.(ed25519.PrivateKey); {
			case ed || c.pt == evident.PayloadTypeDSSE:
				if !errors.Is(err, verify.ErrEntrySignature) {
					t.Errorf("Verify without the payload = %v, want ErrEntrySignature", err)
				}
			case err != nil:
				t.Errorf("Verify without the payload = %v, want the digest to do", err)
			}
		})
	}
	// A wrong Ed25519 signature (over another message) is refused.
	e := &evident.Entry{PayloadType: evident.PayloadTypeLink, PayloadSHA256: hex.EncodeToString(d[:]), KeyID: "k",
		Signature: ed25519.Sign(edKey, []byte("another message"))}
	e.PublicKey, _ = x509.MarshalPKIXPublicKey(edKey.Public())
	sd := sha256.Sum256(e.Signature)
	e.Timestamp = f.tsa.token(t, sd[:], t0, nil)
	if _, err := v.VerifyPayload(e, payload); !errors.Is(err, verify.ErrEntrySignature) || !strings.Contains(err.Error(), "Ed25519") {
		t.Errorf("wrong Ed25519 signature = %v, want ErrEntrySignature naming Ed25519", err)
	}
}

// rsaPSS signs with RSA-PSS where an *rsa.PrivateKey signs PKCS #1 v1.5.
type rsaPSS struct{ *rsa.PrivateKey }

func (k rsaPSS) Sign(r io.Reader, digest []byte, _ crypto.SignerOpts) ([]byte, error) {
	return k.PrivateKey.Sign(r, digest, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: crypto.SHA256})
}

func signMessage(t testing.TB, key crypto.Signer, msg []byte) []byte {
	t.Helper()
	var sig []byte
	var err error
	if _, ok := key.(ed25519.PrivateKey); ok {
		sig, err = key.Sign(rand.Reader, msg, crypto.Hash(0))
	} else {
		d := sha256.Sum256(msg)
		sig, err = key.Sign(rand.Reader, d[:], crypto.SHA256)
	}
	if err != nil {
		t.Fatal(err)
	}
	return sig
}

// TestEd25519KeyFunctionary: a link signed with an Ed25519 key (as the
// reference in-toto implementation signs by default) verifies offline from
// its bundle, whose link carries the payload the signature covers.
func TestEd25519KeyFunctionary(t *testing.T) {
	f := newChain(t)
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	der, _ := x509.MarshalPKIXPublicKey(key.Public())
	var k in_toto.Key
	if err := k.LoadKeyReaderDefaults(bytes.NewReader(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))); err != nil {
		t.Fatal(err)
	}
	layout := f.layout(func(l *in_toto.Layout) {
		l.Keys = map[string]in_toto.Key{k.KeyID: k}
		l.Steps = l.Steps[:1]
		l.Steps[0].CertificateConstraints = nil
		l.Steps[0].PubKeys = []string{k.KeyID}
	})
	src := map[string]in_toto.HashObj{"src/main.go": hashObj("main")}
	b := f.bundleBy("checkout", link.Signer{Key: key}, nil, src)
	if rep, err := verify.SupplyChain(verify.SupplyChainInput{TrustRoot: f.trust, Layout: layout, Bundles: []verify.NamedBundle{b}, At: t0.AddDate(0, 1, 0)}); err != nil {
		t.Fatalf("Ed25519 key functionary = %v\n%+v", err, rep)
	}
}
