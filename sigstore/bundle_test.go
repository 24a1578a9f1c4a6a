package sigstore_test

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"errors"
	"math/big"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/digitorus/timestamp"
	"github.com/evident-dev/evident"
	"github.com/evident-dev/evident/internal/pkitest"
	"github.com/evident-dev/evident/link"
	"github.com/evident-dev/evident/sigstore"
	"github.com/evident-dev/evident/tsa"
	"github.com/in-toto/in-toto-golang/in_toto"
	protobundle "github.com/sigstore/protobuf-specs/gen/pb-go/bundle/v1"
	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	"google.golang.org/protobuf/encoding/protojson"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

const spiffeID = "spiffe://example.org/ci/build"

// fixture is a functionary PKI (root, intermediate, code-signing leaf) and
// a TSA, from which evident bundles are made.
type fixture struct {
	root, inter *pkitest.CA
	tsaRoot     *pkitest.CA
	tsaCert     *x509.Certificate
	tsaKey      crypto.Signer
}

func newFixture(t testing.TB) *fixture {
	f := &fixture{root: pkitest.NewCA(t, "functionary root", t0.AddDate(-1, 0, 0), t0.AddDate(5, 0, 0))}
	f.inter = f.root.Intermediate(t, "functionary intermediate", t0.AddDate(-1, 0, 0), t0.AddDate(5, 0, 0))
	f.tsaRoot = pkitest.NewCA(t, "TSA root", t0.AddDate(-1, 0, 0), t0.AddDate(10, 0, 0))
	f.tsaCert, f.tsaKey = f.tsaRoot.TSA(t, t0.AddDate(0, 0, -1), t0.AddDate(1, 0, 0), pkitest.TSAOptions{})
	return f
}

// leaf makes a certificate for spiffeID issued by the intermediate, with
// key (a new P-256 key if nil) and the given extended key usages.
func (f *fixture) leaf(t testing.TB, key crypto.Signer, eku ...x509.ExtKeyUsage) (*x509.Certificate, crypto.Signer) {
	t.Helper()
	if key == nil {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		key = k
	}
	u, _ := url.Parse(spiffeID)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "build"},
		NotBefore: t0.Add(-time.Hour), NotAfter: t0.Add(time.Hour), BasicConstraintsValid: true,
		URIs: []*url.URL{u}, KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: eku}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, f.inter.Cert, key.Public(), f.inter.Key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c, key
}

// token is an RFC 3161 token over digest at t0.
func (f *fixture) token(t testing.TB, digest []byte) []byte {
	t.Helper()
	ts := timestamp.Timestamp{HashAlgorithm: crypto.SHA256, HashedMessage: digest, Time: t0, Accuracy: time.Second,
		Policy: tsa.DefaultPolicy(), AddTSACertificate: true}
	resp, err := ts.CreateResponseWithOpts(f.tsaCert, f.tsaKey, crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := tsa.ParseResponse(resp)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// bundle signs a link with key (and leaf, if not nil) as evident run does,
// and returns its evident bundle; sign, if not nil, replaces the signature.
func (f *fixture) bundle(t testing.TB, leaf *x509.Certificate, key crypto.Signer, sign func(digest []byte) []byte) *evident.Bundle {
	t.Helper()
	l := link.NewLink("build", []string{"make"}, map[string]in_toto.HashObj{},
		map[string]in_toto.HashObj{"app": {"sha256": strings.Repeat("ab", 32)}}, &link.Result{})
	s := link.Signer{Key: key}
	if leaf != nil {
		s.Chain = []*x509.Certificate{leaf, f.inter.Cert}
	}
	mb, _, err := link.Sign(l, s)
	if err != nil {
		t.Fatal(err)
	}
	lb, err := link.MarshalMetablock(mb)
	if err != nil {
		t.Fatal(err)
	}
	payload, err := mb.GetSignableRepresentation()
	if err != nil {
		t.Fatal(err)
	}
	digest := sha256.Sum256(payload)
	sig, _ := hex.DecodeString(mb.Signatures[0].Sig)
	if sign != nil {
		sig = sign(digest[:])
	}
	sigDigest := sha256.Sum256(sig)
	e := &evident.Entry{PayloadType: evident.PayloadTypeLink, PayloadSHA256: hex.EncodeToString(digest[:]),
		Signature: sig, KeyID: mb.Signatures[0].KeyID, Timestamp: f.token(t, sigDigest[:])}
	if leaf != nil {
		e.CertChain = [][]byte{leaf.Raw, f.inter.Cert.Raw}
	} else {
		e.PublicKey, _ = x509.MarshalPKIXPublicKey(key.Public())
	}
	if err := e.Check(); err != nil {
		t.Fatal(err)
	}
	return &evident.Bundle{MediaType: evident.BundleMediaType, Link: lb, Entry: e, Checkpoint: "unused\n"}
}

func parseExport(t testing.TB, b []byte) *protobundle.Bundle {
	t.Helper()
	var pb protobundle.Bundle
	if err := protojson.Unmarshal(b, &pb); err != nil {
		t.Fatalf("the export is not a protobuf-specs Bundle: %v\n%s", err, b)
	}
	return &pb
}

// TestExportBundle: the export carries the entry's evidence unchanged — the
// payload digest, the signature, the leaf alone, the token wrapped in a
// granted TimeStampResp — and nothing of the log.
func TestExportBundle(t *testing.T) {
	f := newFixture(t)
	leaf, key := f.leaf(t, nil, x509.ExtKeyUsageCodeSigning)
	b := f.bundle(t, leaf, key, nil)
	out, err := sigstore.ExportBundle(b)
	if err != nil {
		t.Fatal(err)
	}
	pb := parseExport(t, out)
	if pb.MediaType != sigstore.BundleMediaType {
		t.Errorf("media type = %q, want %q", pb.MediaType, sigstore.BundleMediaType)
	}
	ms := pb.GetMessageSignature()
	digest, _ := b.Entry.PayloadDigest()
	if ms == nil || ms.MessageDigest.Algorithm != protocommon.HashAlgorithm_SHA2_256 || !bytes.Equal(ms.MessageDigest.Digest, digest) {
		t.Errorf("message digest = %v, want SHA2_256 %x", ms.GetMessageDigest(), digest)
	}
	if !bytes.Equal(ms.GetSignature(), b.Entry.Signature) {
		t.Errorf("signature = %x, want the entry's %x", ms.GetSignature(), b.Entry.Signature)
	}
	if got := pb.VerificationMaterial.GetCertificate().GetRawBytes(); !bytes.Equal(got, leaf.Raw) {
		t.Errorf("certificate is not the leaf alone")
	}
	if len(pb.VerificationMaterial.TlogEntries) != 0 {
		t.Errorf("tlog entries = %d, want none", len(pb.VerificationMaterial.TlogEntries))
	}
	tss := pb.VerificationMaterial.GetTimestampVerificationData().GetRfc3161Timestamps()
	if len(tss) != 1 {
		t.Fatalf("%d RFC 3161 timestamps, want 1", len(tss))
	}
	// V3: the wrapped token is the entry's, over the SHA-256 of the signature.
	ts, err := timestamp.ParseResponse(tss[0].SignedTimestamp)
	if err != nil {
		t.Fatalf("the signed timestamp is not a TimeStampResp: %v", err)
	}
	sigDigest := sha256.Sum256(b.Entry.Signature)
	if !bytes.Equal(ts.HashedMessage, sigDigest[:]) || !bytes.Equal(ts.RawToken, b.Entry.Timestamp) || !ts.Time.Equal(t0) {
		t.Errorf("timestamp imprint %x at %v, want the entry's token over %x", ts.HashedMessage, ts.Time, sigDigest)
	}
	// The output is stable: exporting twice gives the same bytes.
	if again, _ := sigstore.ExportBundle(b); !bytes.Equal(again, out) {
		t.Errorf("two exports differ")
	}
}

// TestExportBundleAccepts: signatures a Sigstore verifier checks from a
// certificate — ECDSA over SHA-256 on any curve, RSA PKCS #1 v1.5 — and
// certificates with no extended key usage, or any.
func TestExportBundleAccepts(t *testing.T) {
	f := newFixture(t)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	for name, tc := range map[string]struct {
		key  crypto.Signer
		eku  []x509.ExtKeyUsage
		sign func(crypto.Signer) func([]byte) []byte
	}{
		"P-384 over SHA-256": {key: p384, eku: []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning}, sign: ecdsaSHA256},
		"no EKU":             {},
		"any EKU":            {eku: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}},
		"RSA PKCS1 v1.5":     {key: rsaKey, eku: []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning}, sign: pkcs1v15},
	} {
		t.Run(name, func(t *testing.T) {
			leaf, key := f.leaf(t, tc.key, tc.eku...)
			var sign func([]byte) []byte
			if tc.sign != nil {
				sign = tc.sign(key)
			}
			if _, err := sigstore.ExportBundle(f.bundle(t, leaf, key, sign)); err != nil {
				t.Errorf("ExportBundle = %v, want success", err)
			}
		})
	}
}

func ecdsaSHA256(key crypto.Signer) func([]byte) []byte {
	return func(digest []byte) []byte {
		sig, _ := ecdsa.SignASN1(rand.Reader, key.(*ecdsa.PrivateKey), digest)
		return sig
	}
}

func pkcs1v15(key crypto.Signer) func([]byte) []byte {
	return func(digest []byte) []byte {
		sig, _ := rsa.SignPKCS1v15(rand.Reader, key.(*rsa.PrivateKey), crypto.SHA256, digest)
		return sig
	}
}

// TestExportBundleRefuses: what a Sigstore bundle cannot carry or a Sigstore
// verifier cannot check is refused with its reason, and so is a bundle that
// contradicts itself.
func TestExportBundleRefuses(t *testing.T) {
	f := newFixture(t)
	leaf, key := f.leaf(t, nil, x509.ExtKeyUsageCodeSigning)
	good := func() *evident.Bundle { return f.bundle(t, leaf, key, nil) }
	svid, svidKey := f.leaf(t, nil, x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth)
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	rsaLeaf, _ := f.leaf(t, rsaKey, x509.ExtKeyUsageCodeSigning)
	caLeaf := f.inter.Cert
	other, _ := f.leaf(t, nil, x509.ExtKeyUsageCodeSigning)
	for name, tc := range map[string]struct {
		bundle  func() *evident.Bundle
		wantErr error
		want    string
	}{
		"key-only functionary": {func() *evident.Bundle { return f.bundle(t, nil, key, nil) }, sigstore.ErrNotExportable, "plain public key"},
		"SPIRE SVID":           {func() *evident.Bundle { return f.bundle(t, svid, svidKey, nil) }, sigstore.ErrNotExportable, "codeSigning"},
		// in-toto-golang signs RSA keys with PSS.
		"RSA-PSS": {func() *evident.Bundle { return f.bundle(t, rsaLeaf, rsaKey, nil) }, sigstore.ErrNotExportable, "RSA-PSS"},
		// I1: a CA-flagged leaf.
		"CA as leaf": {func() *evident.Bundle { b := good(); b.Entry.CertChain[0] = caLeaf.Raw; return b }, sigstore.ErrInconsistent, "is a CA"},
		"payload type": {func() *evident.Bundle { b := good(); b.Entry.PayloadType = "application/vnd.other"; return b },
			sigstore.ErrNotExportable, "has no Sigstore content"},
		// V5, P1: the exported digest is that of the link the bundle carries.
		"link is not the payload": {func() *evident.Bundle {
			b := good()
			b.Link = bytes.Replace(b.Link, []byte(`"make"`), []byte(`"mak3"`), 1)
			return b
		}, sigstore.ErrInconsistent, "not the entry's payload"},
		// P1: a link with fields its signature's decoding would not see.
		"link with an unknown field": {func() *evident.Bundle {
			b := good()
			b.Link = bytes.Replace(b.Link, []byte(`"signed": {`), []byte(`"signed": {"extra": 1,`), 1)
			return b
		}, sigstore.ErrInconsistent, "the link"},
		"signature": {func() *evident.Bundle { b := good(); b.Entry.Signature[len(b.Entry.Signature)-2] ^= 1; return b },
			sigstore.ErrInconsistent, "does not verify"},
		"another signer": {func() *evident.Bundle { b := good(); b.Entry.CertChain[0] = other.Raw; return b },
			sigstore.ErrInconsistent, "does not verify"},
		// V3: trailing bytes after the token.
		"token trailing data": {func() *evident.Bundle { b := good(); b.Entry.Timestamp = append(b.Entry.Timestamp, 0); return b },
			sigstore.ErrInconsistent, "not one DER TimeStampToken"},
		"token not DER": {func() *evident.Bundle { b := good(); b.Entry.Timestamp = []byte("token"); return b },
			sigstore.ErrInconsistent, "not one DER TimeStampToken"},
		"no entry": {func() *evident.Bundle { b := good(); b.Entry = nil; return b }, sigstore.ErrInconsistent, "no entry"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := sigstore.ExportBundle(tc.bundle())
			if !errors.Is(err, tc.wantErr) || !strings.Contains(errString(err), tc.want) {
				t.Errorf("ExportBundle = %v, want %v with %q", err, tc.wantErr, tc.want)
			}
		})
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// FuzzExportBundle: any bundle evident parses either exports to a Sigstore
// bundle that carries the entry's signature, leaf and token, or is refused
// with a classified error; never a panic.
func FuzzExportBundle(f *testing.F) {
	fx := newFixture(f)
	leaf, key := fx.leaf(f, nil, x509.ExtKeyUsageCodeSigning)
	good, err := fx.bundle(f, leaf, key, nil).Marshal()
	if err != nil {
		f.Fatal(err)
	}
	keyOnly, _ := fx.bundle(f, nil, key, nil).Marshal()
	f.Add(good)
	f.Add(keyOnly)
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := evident.ParseBundle(data)
		if err != nil {
			return
		}
		out, err := sigstore.ExportBundle(b)
		if err != nil {
			if !errors.Is(err, sigstore.ErrNotExportable) && !errors.Is(err, sigstore.ErrInconsistent) {
				t.Fatalf("unclassified error: %v", err)
			}
			return
		}
		pb := parseExport(t, out)
		if !bytes.Equal(pb.GetMessageSignature().GetSignature(), b.Entry.Signature) ||
			!bytes.Equal(pb.VerificationMaterial.GetCertificate().GetRawBytes(), b.Entry.CertChain[0]) {
			t.Fatalf("the export does not carry the entry's signature and leaf")
		}
		ts, err := timestamp.ParseResponse(pb.VerificationMaterial.TimestampVerificationData.Rfc3161Timestamps[0].SignedTimestamp)
		if err == nil && !bytes.Equal(ts.RawToken, b.Entry.Timestamp) {
			t.Fatalf("the export's token is not the entry's")
		}
	})
}

// BenchmarkExportBundle: one export — link parse, payload digest, one
// ECDSA P-256 verification, encoding.
func BenchmarkExportBundle(b *testing.B) {
	f := newFixture(b)
	leaf, key := f.leaf(b, nil, x509.ExtKeyUsageCodeSigning)
	bu := f.bundle(b, leaf, key, nil)
	for b.Loop() {
		if _, err := sigstore.ExportBundle(bu); err != nil {
			b.Fatal(err)
		}
	}
}
