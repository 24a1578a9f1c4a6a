package sigstore_test

import (
	"bytes"
	"crypto/x509"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/evident-dev/evident"
	"github.com/evident-dev/evident/internal/pemfile"
	"github.com/evident-dev/evident/internal/pkitest"
	"github.com/evident-dev/evident/sigstore"
	prototrustroot "github.com/sigstore/protobuf-specs/gen/pb-go/trustroot/v1"
	"google.golang.org/protobuf/encoding/protojson"
)

func pemOf(certs ...*x509.Certificate) string { return string(pemfile.EncodeCertificates(certs)) }

func (f *fixture) trustRoot(t testing.TB) *evident.TrustRoot {
	t.Helper()
	tr := &evident.TrustRoot{}
	retired := pkitest.NewCA(t, "retired root", t0.AddDate(-2, 0, 0), t0.AddDate(5, 0, 0))
	for _, err := range []error{
		tr.Add(evident.KindFunctionaryCA, "retired", pemOf(retired.Cert), t0.AddDate(-2, 0, 0)),
		tr.Retire(evident.KindFunctionaryCA, "retired", t0.AddDate(0, -1, 0)),
		tr.Add(evident.KindFunctionaryCA, "enterprise", pemOf(f.root.Cert), t0.AddDate(0, -1, 0)),
		tr.Add(evident.KindTSA, "tsa", pemOf(f.tsaRoot.Cert), t0.AddDate(-1, 0, 0)),
		tr.Add(evident.KindLog, "log", "log+1234+AAAA", t0),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	return tr
}

func parseTrustedRoot(t testing.TB, b []byte) *prototrustroot.TrustedRoot {
	t.Helper()
	var pb prototrustroot.TrustedRoot
	if err := protojson.Unmarshal(b, &pb); err != nil {
		t.Fatalf("the export is not a protobuf-specs TrustedRoot: %v\n%s", err, b)
	}
	return &pb
}

func chainOf(ca *prototrustroot.CertificateAuthority) [][]byte {
	var out [][]byte
	for _, c := range ca.GetCertChain().GetCertificates() {
		out = append(out, c.RawBytes)
	}
	return out
}

// TestExportTrustedRoot: every anchor of the trust root, with its window
// (V4: an end one nanosecond early, as Sigstore's windows include their
// end), every TSA root, and the signers' intermediates as chains to their
// anchor, each once per item holding the anchor; nothing of the log.
func TestExportTrustedRoot(t *testing.T) {
	f := newFixture(t)
	tr := f.trustRoot(t)
	leaf, key := f.leaf(t, nil, x509.ExtKeyUsageCodeSigning)
	b := f.bundle(t, leaf, key, nil)
	direct, _ := f.root.SVID(t, spiffeID, t0, t0.Add(time.Hour)) // issued by the anchor itself
	entries := []*evident.Entry{b.Entry, b.Entry, {CertChain: [][]byte{direct.Raw}}, {CertChain: [][]byte{leaf.Raw, f.inter.Cert.Raw, f.root.Cert.Raw}}}
	out, err := sigstore.ExportTrustedRoot(tr, entries)
	if err != nil {
		t.Fatal(err)
	}
	pb := parseTrustedRoot(t, out)
	if pb.MediaType != sigstore.TrustedRootMediaType {
		t.Errorf("media type = %q", pb.MediaType)
	}
	if len(pb.Tlogs) != 0 || len(pb.Ctlogs) != 0 {
		t.Errorf("tlogs, ctlogs = %d, %d, want none", len(pb.Tlogs), len(pb.Ctlogs))
	}
	cas := pb.CertificateAuthorities
	if len(cas) != 3 {
		t.Fatalf("%d certificate authorities, want 3 (two anchors, one intermediate chain)", len(cas))
	}
	retired := cas[0]
	if end := retired.ValidFor.GetEnd().AsTime(); !end.Equal(t0.AddDate(0, -1, 0).Add(-time.Nanosecond)) {
		t.Errorf("retired anchor ends %v, want one nanosecond before %v", end, t0.AddDate(0, -1, 0))
	}
	if got := chainOf(cas[1]); len(got) != 1 || !bytes.Equal(got[0], f.root.Cert.Raw) || cas[1].ValidFor.End != nil ||
		!cas[1].ValidFor.Start.AsTime().Equal(t0.AddDate(0, -1, 0)) || cas[1].Subject.CommonName != "functionary root" {
		t.Errorf("anchor = %v", cas[1])
	}
	if got := chainOf(cas[2]); len(got) != 2 || !bytes.Equal(got[0], f.inter.Cert.Raw) || !bytes.Equal(got[1], f.root.Cert.Raw) ||
		!cas[2].ValidFor.Start.AsTime().Equal(t0.AddDate(0, -1, 0)) {
		t.Errorf("intermediate chain = %v, want [intermediate, root] in the root's window", cas[2])
	}
	// A root kept across a rotation is in two items: the intermediates
	// chain to it within each window.
	if err := tr.Add(evident.KindFunctionaryCA, "enterprise-2027", pemOf(f.root.Cert), t0.AddDate(1, 0, 0)); err != nil {
		t.Fatal(err)
	}
	out, err = sigstore.ExportTrustedRoot(tr, entries)
	if err != nil {
		t.Fatal(err)
	}
	if cas := parseTrustedRoot(t, out).CertificateAuthorities; len(cas) != 5 || len(chainOf(cas[4])) != 2 ||
		!cas[4].ValidFor.Start.AsTime().Equal(t0.AddDate(1, 0, 0)) {
		t.Errorf("with the root in two items: %d certificate authorities, want 5, the last the intermediate chain from %v", len(cas), t0.AddDate(1, 0, 0))
	}
	if len(pb.TimestampAuthorities) != 1 || !bytes.Equal(chainOf(pb.TimestampAuthorities[0])[0], f.tsaRoot.Cert.Raw) {
		t.Errorf("timestamp authorities = %v", pb.TimestampAuthorities)
	}
}

// TestExportTrustedRootTSAURIsNameTrustRootItems: K4: sigstore-go counts a
// timestamp threshold once per authority URI, so each TSA item of the trust
// root gets its own URI and the certificates of one item share theirs —
// several tokens under one TSA's roots count once, as in evident verify.
func TestExportTrustedRootTSAURIsNameTrustRootItems(t *testing.T) {
	f := newFixture(t)
	tr := f.trustRoot(t)
	b := pkitest.NewCA(t, "tsa b root", t0.AddDate(-1, 0, 0), t0.AddDate(5, 0, 0))
	c := pkitest.NewCA(t, "tsa b next root", t0.AddDate(-1, 0, 0), t0.AddDate(5, 0, 0))
	if err := tr.Add(evident.KindTSA, "tsa b/1", pemOf(b.Cert, c.Cert), t0.AddDate(-1, 0, 0)); err != nil {
		t.Fatal(err)
	}
	out, err := sigstore.ExportTrustedRoot(tr, nil)
	if err != nil {
		t.Fatal(err)
	}
	var uris []string
	for _, ta := range parseTrustedRoot(t, out).TimestampAuthorities {
		uris = append(uris, ta.Uri)
	}
	want := []string{"evident-trust-root:tsa/tsa", "evident-trust-root:tsa/tsa%20b%2F1", "evident-trust-root:tsa/tsa%20b%2F1"}
	if strings.Join(uris, " ") != strings.Join(want, " ") {
		t.Errorf("timestamp authority URIs = %q, want %q", uris, want)
	}
}

// TestExportTrustedRootRefuses: intermediates that reach no anchor, a TSA
// item that is not a CA, an item that is not PEM.
func TestExportTrustedRootRefuses(t *testing.T) {
	f := newFixture(t)
	stranger := pkitest.NewCA(t, "stranger", t0.AddDate(-1, 0, 0), t0.AddDate(1, 0, 0))
	strangerInter := stranger.Intermediate(t, "stranger intermediate", t0.AddDate(-1, 0, 0), t0.AddDate(1, 0, 0))
	leaf, _ := strangerInter.SVID(t, spiffeID, t0, t0.Add(time.Hour))
	unrelated := pkitest.NewCA(t, "unrelated", t0, t0.Add(time.Hour))
	for name, tc := range map[string]struct {
		edit    func(*evident.TrustRoot)
		entries []*evident.Entry
		wantErr error
		want    string
	}{
		// I1: trust never comes from the certificates an entry carries.
		"intermediates of another PKI": {nil, []*evident.Entry{{KeyID: "k1", CertChain: [][]byte{leaf.Raw, strangerInter.Cert.Raw}}},
			sigstore.ErrNotExportable, `signer k1 (the last issued by "CN=stranger") chain to no functionary CA`},
		// The chain must link by signature, not just by name.
		"intermediates not linked": {nil, []*evident.Entry{{KeyID: "k2", CertChain: [][]byte{leaf.Raw, strangerInter.Cert.Raw, unrelated.Cert.Raw}}},
			sigstore.ErrNotExportable, "chain to no functionary CA"},
		"intermediate not DER": {nil, []*evident.Entry{{KeyID: "k3", CertChain: [][]byte{leaf.Raw, []byte("x")}}},
			sigstore.ErrInconsistent, "signer k3: cert_chain[1]"},
		// K3: trust material is parsed for its kind.
		"TSA leaf": {func(tr *evident.TrustRoot) { tr.TSAs[0].Value = pemOf(f.tsaCert) }, nil,
			sigstore.ErrNotExportable, `tsa "tsa": certificate "CN=test TSA" is not a CA`},
		"not PEM": {func(tr *evident.TrustRoot) { tr.FunctionaryCAs[1].Value = "root" }, nil,
			sigstore.ErrInconsistent, `functionary-ca "enterprise": no certificates`},
	} {
		t.Run(name, func(t *testing.T) {
			tr := f.trustRoot(t)
			if tc.edit != nil {
				tc.edit(tr)
			}
			_, err := sigstore.ExportTrustedRoot(tr, tc.entries)
			if !errors.Is(err, tc.wantErr) || !strings.Contains(errString(err), tc.want) {
				t.Errorf("ExportTrustedRoot = %v, want %v with %q", err, tc.wantErr, tc.want)
			}
		})
	}
}

// FuzzExportTrustedRoot: any trust root evident parses exports, with
// every anchor and TSA listed, or is refused with a classified error.
func FuzzExportTrustedRoot(f *testing.F) {
	fx := newFixture(f)
	seed, err := fx.trustRoot(f).Marshal()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed)
	f.Fuzz(func(t *testing.T, data []byte) {
		tr, err := evident.ParseTrustRoot(data)
		if err != nil {
			return
		}
		out, err := sigstore.ExportTrustedRoot(tr, nil)
		if err != nil {
			if !errors.Is(err, sigstore.ErrNotExportable) && !errors.Is(err, sigstore.ErrInconsistent) {
				t.Fatalf("unclassified error: %v", err)
			}
			return
		}
		pb := parseTrustedRoot(t, out)
		if len(pb.CertificateAuthorities) < len(tr.FunctionaryCAs) || len(pb.TimestampAuthorities) < len(tr.TSAs) {
			t.Fatalf("%d CAs and %d TSAs exported from %d and %d items", len(pb.CertificateAuthorities),
				len(pb.TimestampAuthorities), len(tr.FunctionaryCAs), len(tr.TSAs))
		}
	})
}
