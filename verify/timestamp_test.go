package verify_test

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/digitorus/timestamp"
	"github.com/evident-dev/evident"
	"github.com/evident-dev/evident/internal/pkitest"
	"github.com/evident-dev/evident/rfc3161"
	"github.com/evident-dev/evident/tsa"
	"github.com/evident-dev/evident/verify"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// tsaFixture is a TSA certificate and key under a root.
type tsaFixture struct {
	root *pkitest.CA
	cert *x509.Certificate
	key  crypto.Signer
}

func newTSA(t testing.TB, o pkitest.TSAOptions) tsaFixture {
	root := pkitest.NewCA(t, "TSA root", t0.AddDate(-1, 0, 0), t0.AddDate(10, 0, 0))
	cert, key := root.TSA(t, t0.AddDate(0, 0, -1), t0.AddDate(0, 0, 30), o)
	return tsaFixture{root, cert, key}
}

// token mints a token over digest at time at; mod may bend it.
func (f tsaFixture) token(t testing.TB, digest []byte, at time.Time, mod func(*timestamp.Timestamp)) []byte {
	t.Helper()
	ts := timestamp.Timestamp{HashAlgorithm: crypto.SHA256, HashedMessage: digest, Time: at, Accuracy: time.Second,
		Policy: tsa.DefaultPolicy(), AddTSACertificate: true}
	if mod != nil {
		mod(&ts)
	}
	resp, err := ts.CreateResponseWithOpts(f.cert, f.key, crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := tsa.ParseResponse(resp)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func digestOf(s string) []byte { d := sha256.Sum256([]byte(s)); return d[:] }

func TestTimestampAccepts(t *testing.T) {
	f := newTSA(t, pkitest.TSAOptions{})
	d := digestOf("sig")
	tok, err := rfc3161.Verify(f.token(t, d, t0, func(ts *timestamp.Timestamp) { ts.Nonce = big.NewInt(42) }),
		rfc3161.Options{Roots: f.root.Pool(), Hash: crypto.SHA256, Digest: d, Nonce: big.NewInt(42),
			Policies: []asn1.ObjectIdentifier{tsa.DefaultPolicy()}})
	if err != nil {
		t.Fatal(err)
	}
	if !tok.GenTime.Equal(t0) || tok.Accuracy != time.Second || len(tok.Chain) != 2 {
		t.Errorf("token = %+v", tok)
	}
	// V4: the TSA certificate has long expired now (t0+30 days is past),
	// but was valid at genTime: accepted.
	if time.Now().Before(f.cert.NotAfter) {
		t.Fatal("fixture: the TSA certificate should have expired by now")
	}
}

// TestTimestampRejects covers threat model V1, V2 and V3, each with its error.
func TestTimestampRejects(t *testing.T) {
	good := newTSA(t, pkitest.TSAOptions{})
	d := digestOf("sig")
	opts := func(mod func(*rfc3161.Options)) rfc3161.Options {
		o := rfc3161.Options{Roots: good.root.Pool(), Hash: crypto.SHA256, Digest: d}
		if mod != nil {
			mod(&o)
		}
		return o
	}
	// An attacker's TSA whose token carries the attacker's own root.
	attacker := newTSA(t, pkitest.TSAOptions{})
	injected := attacker.token(t, d, t0, func(ts *timestamp.Timestamp) { ts.Certificates = []*x509.Certificate{attacker.root.Cert} })
	// A certificate that claims the good TSA's issuer and serial, with the
	// same key but other content: the ESSCertIDv2 attribute tells them apart.
	twin := *good.cert
	twinTmpl := &x509.Certificate{SerialNumber: good.cert.SerialNumber, Subject: good.cert.Subject,
		NotBefore: good.cert.NotBefore.Add(time.Minute), NotAfter: good.cert.NotAfter,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtraExtensions: []pkix.Extension{tsa.TimeStampingEKU()}}
	twinDER, err := x509.CreateCertificate(rand.Reader, twinTmpl, good.root.Cert, good.key.Public(), good.root.Key)
	if err != nil {
		t.Fatal(err)
	}
	twinCert, _ := x509.ParseCertificate(twinDER)
	_ = twin
	certless := good.token(t, d, t0, func(ts *timestamp.Timestamp) { ts.AddTSACertificate = false })

	plain := good.token(t, d, t0, nil)
	badContentType := bytes.Replace(plain, []byte{0x06, 0x0b, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x10, 0x01, 0x04},
		[]byte{0x06, 0x0b, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x10, 0x01, 0x05}, 1)

	for _, c := range []struct {
		name  string
		token []byte
		opts  rfc3161.Options
		want  error
		msg   string
	}{
		// V1
		{"self-signed token with injected root", injected, opts(nil), rfc3161.ErrTokenUntrusted, "unknown authority"},
		{"no certificate in the token, none configured", certless, opts(nil), rfc3161.ErrTokenSignature, "no certificate for the signer"},
		{"no TSA root trusted", plain, opts(func(o *rfc3161.Options) { o.Roots = nil }), rfc3161.ErrNoTSARoots, ""},
		{"twin certificate", certless, opts(func(o *rfc3161.Options) { o.TSACertificates = []*x509.Certificate{twinCert} }), rfc3161.ErrTokenESSCertID, "certificate hash differs"},
		// V2
		{"EKU not critical", newTSA(t, pkitest.TSAOptions{NonCriticalEKU: true}).tokenUnder(t, d, good), opts(nil), rfc3161.ErrTokenSignerCert, "not critical"},
		{"extra EKU", newTSA(t, pkitest.TSAOptions{ExtraEKU: true}).tokenUnder(t, d, good), opts(nil), rfc3161.ErrTokenSignerCert, "timeStamping only"},
		{"CA TSA certificate", newTSA(t, pkitest.TSAOptions{IsCA: true}).tokenUnder(t, d, good), opts(nil), rfc3161.ErrTokenSignerCert, "CA certificate"},
		// V3
		{"nonce missing", plain, opts(func(o *rfc3161.Options) { o.Nonce = big.NewInt(7) }), rfc3161.ErrTokenNonce, ""},
		{"nonce different", good.token(t, d, t0, func(ts *timestamp.Timestamp) { ts.Nonce = big.NewInt(8) }),
			opts(func(o *rfc3161.Options) { o.Nonce = big.NewInt(7) }), rfc3161.ErrTokenNonce, ""},
		{"policy mismatch", plain, opts(func(o *rfc3161.Options) { o.Policies = []asn1.ObjectIdentifier{{1, 2, 3}} }), rfc3161.ErrTokenPolicy, ""},
		{"imprint over another signature", plain, opts(func(o *rfc3161.Options) { o.Digest = digestOf("other sig") }), rfc3161.ErrTokenImprint, ""},
		{"imprint algorithm", plain, opts(func(o *rfc3161.Options) { o.Hash = crypto.SHA512 }), rfc3161.ErrTokenImprint, ""},
		{"wrong eContentType", badContentType, opts(nil), rfc3161.ErrTokenMalformed, "eContentType"},
		{"trailing bytes", append(bytes.Clone(plain), 0), opts(nil), rfc3161.ErrTokenMalformed, "trailing"},
		{"truncated", plain[:len(plain)-10], opts(nil), rfc3161.ErrTokenMalformed, ""},
		{"huge", make([]byte, rfc3161.MaxTokenSize+1), opts(nil), rfc3161.ErrTokenMalformed, "over the limit"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := rfc3161.Verify(c.token, c.opts)
			if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.msg) {
				t.Errorf("Timestamp = %v, want %v containing %q", err, c.want, c.msg)
			}
		})
	}
	// The same certless token verifies when the real certificate is configured.
	if _, err := rfc3161.Verify(certless, opts(func(o *rfc3161.Options) { o.TSACertificates = []*x509.Certificate{good.cert} })); err != nil {
		t.Errorf("certless token with the TSA certificate configured = %v", err)
	}
	// A token that carries its root verifies only where that root is trusted.
	withRoot := good.token(t, d, t0, func(ts *timestamp.Timestamp) { ts.Certificates = []*x509.Certificate{good.root.Cert} })
	if _, err := rfc3161.Verify(withRoot, opts(nil)); err != nil {
		t.Errorf("token carrying its root = %v", err)
	}
	if _, err := rfc3161.Verify(withRoot, opts(func(o *rfc3161.Options) { o.Roots = attacker.root.Pool() })); !errors.Is(err, rfc3161.ErrTokenUntrusted) {
		t.Errorf("token carrying its root, under another root = %v, want ErrTokenUntrusted", err)
	}
}

// tokenUnder re-issues f's TSA certificate under other's root (keeping f's
// misconfiguration) and mints a token with it.
func (f tsaFixture) tokenUnder(t testing.TB, digest []byte, other tsaFixture) []byte {
	t.Helper()
	tmpl := *f.cert
	tmpl.ExtKeyUsage, tmpl.UnknownExtKeyUsage = nil, nil
	for _, e := range f.cert.Extensions {
		if e.Id.Equal(asn1.ObjectIdentifier{2, 5, 29, 37}) {
			tmpl.ExtraExtensions = []pkix.Extension{e} // keep its criticality
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, &tmpl, other.root.Cert, f.key.Public(), other.root.Key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return tsaFixture{other.root, cert, f.key}.token(t, digest, t0, nil)
}

// svidEntry makes an entry signed with an SVID valid over [from, to] and
// countersigned at genTime.
type entryFixture struct {
	tsa    tsaFixture
	spiffe *pkitest.CA
}

func newEntryFixture(t testing.TB) entryFixture {
	return entryFixture{newTSA(t, pkitest.TSAOptions{}),
		pkitest.NewCA(t, "SPIFFE upstream root", t0.AddDate(-1, 0, 0), t0.AddDate(5, 0, 0))}
}

func (f entryFixture) verifier() *verify.EntryVerifier {
	return &verify.EntryVerifier{TSARoots: f.tsa.root.Pool(), FunctionaryRoots: f.spiffe.Pool(), Cache: rfc3161.NewChainCache(100)}
}

func (f entryFixture) entry(t testing.TB, from, to, genTime time.Time, payload string) *evident.Entry {
	t.Helper()
	cert, key := f.spiffe.SVID(t, "spiffe://example.org/ci/build", from, to)
	digest := sha256.Sum256([]byte(payload))
	sig, err := key.Sign(rand.Reader, digest[:], crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	sigDigest := sha256.Sum256(sig)
	return &evident.Entry{PayloadType: evident.PayloadTypeLink, PayloadSHA256: hex.EncodeToString(digest[:]),
		Signature: sig, KeyID: "k", CertChain: [][]byte{cert.Raw}, Timestamp: f.tsa.token(t, sigDigest[:], genTime, nil)}
}

// TestEntryTimes covers threat model V4: certificates are checked at genTime,
// with the whole genTime ± accuracy window inside the SVID's validity.
func TestEntryTimes(t *testing.T) {
	f := newEntryFixture(t)
	v := f.verifier()
	from, to := t0, t0.Add(2*time.Minute) // a two-minute SVID, long expired now
	for _, c := range []struct {
		name    string
		genTime time.Time
		want    error
		msg     string
	}{
		{"inside the SVID's validity", t0.Add(time.Minute), nil, ""},
		{"after expiry", to.Add(time.Minute), verify.ErrSignerUntrusted, ""},
		{"before issuance", from.Add(-time.Minute), verify.ErrSignerUntrusted, ""},
		{"straddling the expiry", to, verify.ErrSignerUntrusted, ""}, // [to-1s, to+1s]
		// A certificate issued within a second of its first signature, as
		// openssl x509 -req makes them: the error says what to change.
		{"straddling the issuance", from, verify.ErrSignerUntrusted, "issue certificates with notBefore a little in the past"},
		{"one accuracy inside the expiry", to.Add(-time.Second), nil, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := v.Verify(f.entry(t, from, to, c.genTime, "link"))
			if !errors.Is(err, c.want) && !(c.want == nil && err == nil) {
				t.Errorf("Verify = %v, want %v", err, c.want)
			}
			if c.msg != "" && (err == nil || !strings.Contains(err.Error(), c.msg)) {
				t.Errorf("Verify = %v, want it to say %q", err, c.msg)
			}
		})
	}
}

func TestEntryRejects(t *testing.T) {
	f := newEntryFixture(t)
	v := f.verifier()
	mk := func() *evident.Entry { return f.entry(t, t0, t0.Add(time.Hour), t0.Add(time.Minute), "link") }
	if _, err := v.Verify(mk()); err != nil {
		t.Fatalf("valid entry: %v", err)
	}
	otherSPIFFE := pkitest.NewCA(t, "another trust domain", t0.AddDate(-1, 0, 0), t0.AddDate(1, 0, 0))
	foreignCert, _ := otherSPIFFE.SVID(t, "spiffe://other.org/ci", t0, t0.Add(time.Hour))
	edPub, edKey, _ := ed25519.GenerateKey(rand.Reader)
	edDER, _ := x509.MarshalPKIXPublicKey(edPub)
	ecKey, _ := ecdsa.GenerateKey(foreignCert.PublicKey.(*ecdsa.PublicKey).Curve, rand.Reader)
	ecDER, _ := x509.MarshalPKIXPublicKey(ecKey.Public())
	for _, c := range []struct {
		name string
		mod  func(e *evident.Entry)
		want error
	}{
		{"payload digest changed", func(e *evident.Entry) { e.PayloadSHA256 = hex.EncodeToString(digestOf("other")) }, verify.ErrEntrySignature},
		{"token over another signature", func(e *evident.Entry) { e.Signature = append(e.Signature[:len(e.Signature):len(e.Signature)], 0) }, rfc3161.ErrTokenImprint},
		{"CA from another trust domain", func(e *evident.Entry) { e.CertChain = [][]byte{foreignCert.Raw} }, verify.ErrSignerUntrusted},
		{"CA-flagged signer", func(e *evident.Entry) { e.CertChain = [][]byte{f.spiffe.Cert.Raw} }, verify.ErrSignerKey},
		{"garbage certificate", func(e *evident.Entry) { e.CertChain = [][]byte{{1, 2, 3}} }, verify.ErrSignerKey},
		{"Ed25519 key-only", func(e *evident.Entry) {
			e.CertChain, e.PublicKey = nil, edDER
			e.Signature = ed25519.Sign(edKey, []byte("link"))
		}, rfc3161.ErrTokenImprint},
		{"ECDSA key-only with a signature by another key", func(e *evident.Entry) { e.CertChain, e.PublicKey = nil, ecDER }, verify.ErrEntrySignature},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := mk()
			c.mod(e)
			if _, err := v.Verify(e); !errors.Is(err, c.want) {
				t.Errorf("Verify = %v, want %v", err, c.want)
			}
		})
	}
	// A key-only ECDSA entry signed by its key verifies (key-based functionaries).
	e := mk()
	digest, _ := e.PayloadDigest()
	e.Signature, _ = ecKey.Sign(rand.Reader, digest, crypto.SHA256)
	sd := sha256.Sum256(e.Signature)
	e.CertChain, e.PublicKey, e.Timestamp = nil, ecDER, f.tsa.token(t, sd[:], t0, nil)
	if _, err := v.Verify(e); err != nil {
		t.Errorf("key-only ECDSA entry = %v", err)
	}
	// Ed25519 needs the payload, which an entry does not carry: named.
	e = mk()
	e.CertChain, e.PublicKey, e.Signature = nil, edDER, ed25519.Sign(edKey, []byte("link"))
	sd = sha256.Sum256(e.Signature)
	e.Timestamp = f.tsa.token(t, sd[:], t0, nil)
	if _, err := v.Verify(e); !errors.Is(err, verify.ErrEntrySignature) || !strings.Contains(err.Error(), "Ed25519") {
		t.Errorf("Ed25519 entry = %v, want ErrEntrySignature naming Ed25519", err)
	}
}

// FuzzTimestamp: arbitrary token bytes give an error, never a panic.
func FuzzTimestamp(f *testing.F) {
	fx := newTSA(f, pkitest.TSAOptions{})
	d := digestOf("sig")
	f.Add(fx.token(f, d, t0, nil))
	f.Add(fx.token(f, d, t0, func(ts *timestamp.Timestamp) { ts.AddTSACertificate = false; ts.Nonce = big.NewInt(1) }))
	roots := fx.root.Pool()
	f.Fuzz(func(t *testing.T, b []byte) {
		tok, err := rfc3161.Verify(b, rfc3161.Options{Roots: roots, Hash: crypto.SHA256, Digest: d})
		if err == nil && (tok == nil || len(tok.Chain) == 0) {
			t.Fatal("accepted without a chain")
		}
	})
}
