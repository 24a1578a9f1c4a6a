package verify_test

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/evident-dev/evident"
	"github.com/evident-dev/evident/dsse"
	"github.com/evident-dev/evident/link"
	"github.com/evident-dev/evident/verify"
	"github.com/in-toto/in-toto-golang/in_toto"
)

// logEnvelope countersigns env's signature at genTime, logs it and
// returns its version 3 bundle.
func (f *chainFixture) logEnvelope(name string, env *dsse.Envelope, chain []*x509.Certificate) verify.NamedBundle {
	f.t.Helper()
	e, err := link.EntryDSSE(context.Background(), f.stamper(), env, chain, nil)
	if err != nil {
		f.t.Fatal(err)
	}
	canonical, _ := e.Marshal()
	res, err := f.log.Add(context.Background(), canonical)
	if err != nil {
		f.t.Fatal(err)
	}
	eb, _ := env.Marshal()
	return verify.NamedBundle{Name: name, Bundle: &evident.Bundle{DSSEEnvelope: eb, Entry: e, LogIndex: res.Index,
		InclusionProof: res.Proof, Checkpoint: string(res.Checkpoint)}}
}

// dsseBundle is bundle with the step recorded as a DSSE link: a Statement
// of the link predicate v0.3.
func (f *chainFixture) dsseBundle(name, spiffeID string, materials, products map[string]in_toto.HashObj) verify.NamedBundle {
	f.t.Helper()
	cert, key := f.spiffe.SVID(f.t, spiffeID, f.genTime.Add(-time.Minute), f.genTime.Add(time.Minute))
	l := link.NewLink(name, []string{"make", name}, materials, products, &link.Result{})
	env, fname, err := link.SignLinkDSSE(l, link.Signer{Key: key, Chain: []*x509.Certificate{cert}})
	if err != nil {
		f.t.Fatal(err)
	}
	return f.logEnvelope(fname, env, []*x509.Certificate{cert})
}

// attestation signs statement bytes (not re-encoded) as spiffeID.
func (f *chainFixture) attestation(spiffeID string, payload []byte) verify.NamedBundle {
	f.t.Helper()
	cert, key := f.spiffe.SVID(f.t, spiffeID, f.genTime.Add(-time.Minute), f.genTime.Add(time.Minute))
	env, err := dsse.NewEnvelope(key, "svid", evident.PayloadTypeDSSE, payload)
	if err != nil {
		f.t.Fatal(err)
	}
	return f.logEnvelope("provenance.bundle.json", env, []*x509.Certificate{cert})
}

const slsa = "https://slsa.dev/provenance/v1"

func provenance(t *testing.T, subject string, digest []byte) []byte {
	st := dsse.Statement{Type: dsse.StatementType, PredicateType: slsa,
		Subject:   []dsse.ResourceDescriptor{{Name: subject, Digest: map[string]string{"sha256": hex.EncodeToString(digest)}}},
		Predicate: json.RawMessage(`{"buildDefinition":{"buildType":"https://example.org/make/v1","externalParameters":{}},"runDetails":{"builder":{"id":"https://example.org/ci"}}}`)}
	b, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (f *chainFixture) mixedBundles() []verify.NamedBundle {
	src := map[string]in_toto.HashObj{"src/main.go": hashObj("main"), "src/go.mod": hashObj("mod")}
	app := map[string]in_toto.HashObj{"app": hashObj("binary")}
	return []verify.NamedBundle{
		f.dsseBundle("checkout", "spiffe://example.org/ci/checkout", nil, src),
		f.bundle("build", "spiffe://example.org/ci/build", src, app),
		f.dsseBundle("package", "spiffe://example.org/ci/package", app, map[string]in_toto.HashObj{"app.tar": hashObj("tarball")}),
	}
}

// A chain of DSSE links (in-toto Statements of the link predicate) and
// Metablock links verifies as one: thresholds, functionaries and artifact
// rules apply to the predicate's materials and the subjects as products.
func TestMixedDSSEAndMetablockChain(t *testing.T) {
	f := newChain(t)
	tar := sha256.Sum256([]byte("tarball"))
	rep, err := verify.SupplyChain(verify.SupplyChainInput{TrustRoot: f.trust, Layout: f.layout(nil), Bundles: f.mixedBundles(),
		At: t0.AddDate(0, 1, 0), Artifacts: map[string][]byte{"app.tar": tar[:]}})
	if err != nil || !rep.OK {
		t.Fatalf("SupplyChain = %v\n%+v", err, rep)
	}
	// The DSSE product is checked like a Metablock's: another tarball fails.
	other := sha256.Sum256([]byte("other tarball"))
	_, err = verify.SupplyChain(verify.SupplyChainInput{TrustRoot: f.trust, Layout: f.layout(nil), Bundles: f.mixedBundles(),
		At: t0.AddDate(0, 1, 0), Artifacts: map[string][]byte{"app.tar": other[:]}})
	if !errors.Is(err, verify.ErrArtifactRules) {
		t.Errorf("another app.tar = %v, want ErrArtifactRules", err)
	}
	// A DSSE link's materials meet the artifact rules: a build from other sources fails.
	bad := f.mixedBundles()
	bad[2] = f.dsseBundle("package", "spiffe://example.org/ci/package", map[string]in_toto.HashObj{"app": hashObj("other binary")},
		map[string]in_toto.HashObj{"app.tar": hashObj("tarball")})
	if _, err := verify.SupplyChain(verify.SupplyChainInput{TrustRoot: f.trust, Layout: f.layout(nil), Bundles: bad, At: t0.AddDate(0, 1, 0)}); !errors.Is(err, verify.ErrArtifactRules) {
		t.Errorf("DSSE link with another material = %v, want ErrArtifactRules", err)
	}
}

// P1, A1: a DSSE bundle whose envelope is not the entry's, whose signature
// does not verify over PAE, or whose signed Statement holds a key twice is
// no evidence: it is ignored, and its step is then missing.
func TestDSSEBundleRejects(t *testing.T) {
	f := newChain(t)
	good := f.mixedBundles()
	cert, key := f.spiffe.SVID(t, "spiffe://example.org/ci/package", f.genTime.Add(-time.Minute), f.genTime.Add(time.Minute))
	st, _ := dsse.NewLinkStatement(link.NewLink("package", nil, map[string]in_toto.HashObj{"app": hashObj("binary")},
		map[string]in_toto.HashObj{"app.tar": hashObj("tarball")}, &link.Result{}))
	payload, _ := json.Marshal(st)
	dup := []byte(strings.Replace(string(payload), `"predicateType":`, `"predicateType":"https://example.org/x","predicateType":`, 1))
	env, _ := dsse.NewEnvelope(key, "k", evident.PayloadTypeDSSE, dup)
	dupBundle := f.logEnvelope("dup", env, []*x509.Certificate{cert})

	tampered := *good[2].Bundle
	e, _ := dsse.ParseEnvelope(tampered.DSSEEnvelope)
	e.Payload = []byte(strings.Replace(string(e.Payload), `"app.tar"`, `"app.ta2"`, 1))
	tampered.DSSEEnvelope, _ = e.Marshal()

	// Signed over PAE with another payload type, then logged as DSSE: the
	// log's own checks pass, the signature over PAE(DSSE type) does not.
	otherType, _ := dsse.NewEnvelope(key, "k", "application/other", payload)
	otherType.PayloadType = evident.PayloadTypeDSSE
	wrongSig := f.logEnvelope("wrongsig", otherType, []*x509.Certificate{cert})

	for name, c := range map[string]struct {
		b    *evident.Bundle
		want error
	}{
		"duplicate key in the signed Statement": {dupBundle.Bundle, dsse.ErrInvalidStatement},
		"payload not the entry's":               {&tampered, evident.ErrPayloadMismatch},
		"signature over another PAE":            {wrongSig.Bundle, verify.ErrEntrySignature},
	} {
		bundles := []verify.NamedBundle{good[0], good[1], {Name: "package.bundle.json", Bundle: c.b}}
		rep, err := verify.SupplyChain(verify.SupplyChainInput{TrustRoot: f.trust, Layout: f.layout(nil), Bundles: bundles, At: t0.AddDate(0, 1, 0)})
		if !errors.Is(err, verify.ErrStep) || !errors.Is(err, c.want) {
			t.Errorf("%s: SupplyChain = %v, want ErrStep wrapping %v", name, err, c.want)
		}
		if rep.OK {
			t.Errorf("%s: report OK", name)
		}
	}
}

// An SLSA provenance attestation counts for --require-predicate only when
// it verifies, is of that predicate type, is signed by whom the
// requirement names, and its subject is the artifact (by digest).
func TestRequirePredicate(t *testing.T) {
	f := newChain(t)
	tar := sha256.Sum256([]byte("tarball"))
	other := sha256.Sum256([]byte("other"))
	arts := map[string][]byte{"app.tar": tar[:]}
	prov := f.attestation("spiffe://example.org/ci/build", provenance(t, "app.tar", tar[:]))
	wrongSubject := f.attestation("spiffe://example.org/ci/build", provenance(t, "app.tar", other[:]))
	run := func(bundles []verify.NamedBundle, reqs ...string) (*verify.Report, error) {
		var rs []verify.PredicateRequirement
		for _, s := range reqs {
			r, err := verify.ParsePredicateRequirement(s)
			if err != nil {
				t.Fatal(err)
			}
			rs = append(rs, r)
		}
		return verify.SupplyChain(verify.SupplyChainInput{TrustRoot: f.trust, Layout: f.layout(nil), Bundles: bundles,
			At: t0.AddDate(0, 1, 0), Artifacts: arts, RequirePredicates: rs})
	}
	with := append(f.mixedBundles(), prov)
	for _, req := range []string{slsa, slsa + "=build", slsa + "=spiffe://example.org/ci/build"} {
		if rep, err := run(with, req); err != nil || !rep.OK {
			t.Errorf("require %s = %v\n%+v", req, err, rep)
		}
	}
	for name, c := range map[string]struct {
		bundles []verify.NamedBundle
		req     string
		msg     string
	}{
		"no attestation":            {f.mixedBundles(), slsa, "no verified attestation of predicate type"},
		"another predicate type":    {with, "https://spdx.dev/Document", "no verified attestation of predicate type"},
		"signed by another step":    {with, slsa + "=package", "meets no certificate constraint of step package"},
		"signed by another ID":      {with, slsa + "=spiffe://example.org/ci/package", "not spiffe://example.org/ci/package"},
		"subject is another digest": {append(f.mixedBundles(), wrongSubject), slsa, "no subject has the digest of app.tar"},
		"unknown step":              {with, slsa + "=deploy", "neither a step"},
	} {
		rep, err := run(c.bundles, c.req)
		if !errors.Is(err, verify.ErrPredicate) || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%s: SupplyChain = %v, want ErrPredicate containing %q", name, err, c.msg)
		}
		if rep.OK {
			t.Errorf("%s: report OK", name)
		}
	}
	if _, err := verify.ParsePredicateRequirement("provenance=build"); err == nil {
		t.Error("a relative predicate type was accepted")
	}
}
