package verify

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os/exec"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/evident-dev/evident"
	"github.com/evident-dev/evident/artifact"
	"github.com/evident-dev/evident/tlog"
	"github.com/in-toto/in-toto-golang/in_toto"
	"golang.org/x/mod/sumdb/note"
)

// Errors of supply-chain verification, one per kind of check.
var (
	ErrLayout          = errors.New("layout is not acceptable")
	ErrLayoutSignature = errors.New("layout is not signed by a trusted layout key")
	ErrLayoutExpired   = errors.New("layout has expired")
	ErrLogProof        = errors.New("bundle's log proof does not verify")
	ErrLinkMismatch    = errors.New("link does not match its log entry")
	ErrStep            = errors.New("step is not satisfied")
	ErrArtifactRules   = errors.New("artifact rules are not met")
)

// Check is one line of a verification report.
type Check struct {
	Check  string `json:"check"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail,omitempty"`
}

// Report lists every check made, in order; the first failure ends it.
type Report struct {
	Checks []Check `json:"checks"`
	OK     bool    `json:"ok"`
}

func (r *Report) pass(check, format string, args ...any) {
	r.Checks = append(r.Checks, Check{Check: check, OK: true, Detail: fmt.Sprintf(format, args...)})
}

func (r *Report) fail(check string, err error) error {
	r.Checks = append(r.Checks, Check{Check: check, OK: false, Detail: err.Error()})
	return err
}

// NamedBundle is a bundle with the name it is reported under.
type NamedBundle struct {
	Name   string
	Bundle *evident.Bundle
}

// SupplyChainInput is what SupplyChain verifies.
type SupplyChainInput struct {
	TrustRoot *evident.TrustRoot
	// Layout is the signed in-toto layout (Metablock JSON).
	Layout  []byte
	Bundles []NamedBundle
	// At is when the layout's expiry and the layout keys are judged
	// (default now); certificates are always judged at each timestamp.
	At time.Time
	// Artifacts maps names to SHA-256 digests that must be products of the
	// chain (the files being released).
	Artifacts map[string][]byte
	// InspectDir is where the layout's inspections run, with the files they
	// inspect; the caller makes it (a temporary copy: inspections may change
	// it). A layout with inspections and no InspectDir fails.
	InspectDir string
}

// SupplyChain verifies a supply chain offline and fails closed, in the
// order of DESIGN.md: the layout (signed by a trust-root layout key valid at
// At; not expired at At; well formed), then every bundle (checkpoint signed
// by a trust-root log key; inclusion proof; link ↔ entry; timestamp, signer
// chain at genTime and signature, with the TSA and functionary roots of the
// trust root valid at genTime), then the in-toto rules: per step, links
// whose signed name is the step, from authorised functionaries (keys, or
// certificates meeting a constraint, bound to the root the certificate
// really chains to), counted once per SPIFFE ID or key; then the artifact
// rules, after running the layout's inspections in in.InspectDir. Sublayouts
// are not supported.
func SupplyChain(in SupplyChainInput) (*Report, error) {
	r := &Report{}
	if in.At.IsZero() {
		in.At = time.Now()
	}
	layout, err := checkLayout(r, in)
	if err != nil {
		return r, err
	}
	stepLinks := map[string]map[string]in_toto.Metadata{} // step → functionary → link
	tv := newTrustView(in.TrustRoot, layout)
	for _, nb := range in.Bundles {
		fn, l, err := checkBundle(r, in, layout, tv, nb)
		if err != nil {
			return r, err
		}
		if stepLinks[l.Name] == nil {
			stepLinks[l.Name] = map[string]in_toto.Metadata{}
		}
		if _, dup := stepLinks[l.Name][fn]; !dup {
			stepLinks[l.Name][fn] = &in_toto.Metablock{Signed: l}
		}
	}
	for _, step := range layout.Steps {
		n := len(stepLinks[step.Name])
		if n < step.Threshold {
			return r, r.fail("step "+step.Name, fmt.Errorf("%w: step %s has %d distinct authorised functionaries, threshold %d", ErrStep, step.Name, n, step.Threshold))
		}
		var who []string
		for fn := range stepLinks[step.Name] {
			who = append(who, fn)
		}
		sort.Strings(who)
		r.pass("step "+step.Name, "threshold %d met by %s", step.Threshold, strings.Join(who, ", "))
	}
	reduced, err := in_toto.ReduceStepsMetadata(layout, stepLinks)
	if err != nil {
		return r, r.fail("links agree", fmt.Errorf("%w: %v", ErrStep, err))
	}
	items := make([]interface{}, 0, len(layout.Steps)+len(layout.Inspect))
	for _, s := range layout.Steps {
		items = append(items, s)
	}
	for _, insp := range layout.Inspect {
		l, err := inspect(insp, in.InspectDir)
		if err != nil {
			return r, r.fail("inspection "+insp.Name, fmt.Errorf("%w: %v", ErrArtifactRules, err))
		}
		reduced[insp.Name] = &in_toto.Metablock{Signed: l}
		items = append(items, insp)
		r.pass("inspection "+insp.Name, "ran %q: %d materials, %d products", strings.Join(insp.Run, " "), len(l.Materials), len(l.Products))
	}
	if err := in_toto.VerifyArtifacts(items, reduced); err != nil {
		return r, r.fail("artifact rules", fmt.Errorf("%w: %v", ErrArtifactRules, err))
	}
	r.pass("artifact rules", "every step's expected materials and products hold")
	for name, digest := range in.Artifacts {
		if !isProduct(reduced, digest) {
			return r, r.fail("artifact "+name, fmt.Errorf("%w: sha256 %x is no product of the chain", ErrArtifactRules, digest))
		}
		r.pass("artifact "+name, "sha256 %x is a product of the chain", digest)
	}
	r.OK = true
	return r, nil
}

func isProduct(reduced map[string]in_toto.Metadata, digest []byte) bool {
	want := hex.EncodeToString(digest)
	for _, m := range reduced {
		l := m.(*in_toto.Metablock).Signed.(in_toto.Link)
		for _, h := range l.Products {
			if h["sha256"] == want {
				return true
			}
		}
	}
	return false
}

// checkLayout parses the layout and checks its signature, expiry and form.
func checkLayout(r *Report, in SupplyChainInput) (in_toto.Layout, error) {
	var raw struct {
		Signed     json.RawMessage     `json:"signed"`
		Signatures []in_toto.Signature `json:"signatures"`
	}
	var l in_toto.Layout
	err := json.Unmarshal(in.Layout, &raw)
	if err == nil {
		// Strictly: what the rules use must be all that was signed.
		dec := json.NewDecoder(bytes.NewReader(raw.Signed))
		dec.DisallowUnknownFields()
		err = dec.Decode(&l)
	}
	if err != nil {
		return in_toto.Layout{}, r.fail("layout", fmt.Errorf("%w: %v", ErrLayout, err))
	}
	keys, err := in.TrustRoot.At(evident.KindLayoutKey, in.At)
	if err != nil {
		return l, r.fail("layout signature", err)
	}
	var signedBy string
	// Each signature is tried with each trusted key: key ids are computed
	// from key encodings that differ between in-toto implementations, so the
	// signature check, not the id, decides.
	for _, t := range keys {
		var k in_toto.Key
		if err := k.LoadKeyReaderDefaults(strings.NewReader(t.Value)); err != nil {
			continue
		}
		for _, sig := range raw.Signatures {
			k.KeyID = sig.KeyID
			// Over "signed" as received (canonicalised), not its Go decoding.
			one := &in_toto.Metablock{Signed: raw.Signed, Signatures: []in_toto.Signature{sig}}
			if one.VerifySignature(k) == nil {
				signedBy = t.Name
			}
		}
		if signedBy != "" {
			break
		}
	}
	if signedBy == "" {
		return l, r.fail("layout signature", fmt.Errorf("%w (%d layout keys valid at %s)", ErrLayoutSignature, len(keys), in.At.UTC().Format(time.RFC3339)))
	}
	r.pass("layout signature", "signed by layout key %q", signedBy)
	exp, err := time.Parse(time.RFC3339, l.Expires)
	if err != nil {
		return l, r.fail("layout expiry", fmt.Errorf("%w: expires %q: %v", ErrLayout, l.Expires, err))
	}
	if !in.At.Before(exp) {
		return l, r.fail("layout expiry", fmt.Errorf("%w at %s (judged at %s)", ErrLayoutExpired, exp.UTC().Format(time.RFC3339), in.At.UTC().Format(time.RFC3339)))
	}
	r.pass("layout expiry", "valid until %s (judged at %s)", exp.UTC().Format(time.RFC3339), in.At.UTC().Format(time.RFC3339))
	switch {
	case l.Type != "layout":
		err = fmt.Errorf("%w: _type %q", ErrLayout, l.Type)
	case len(l.Steps) == 0:
		err = fmt.Errorf("%w: no steps", ErrLayout)
	case len(l.Inspect) > 0 && in.InspectDir == "":
		err = fmt.Errorf("%w: it has inspections, which need the artifacts they inspect (--artifact)", ErrLayout)
	}
	for _, s := range l.Steps {
		switch {
		case err != nil:
		case s.Threshold < 1:
			err = fmt.Errorf("%w: step %s has threshold %d", ErrLayout, s.Name, s.Threshold)
		case len(s.PubKeys) == 0 && len(s.CertificateConstraints) == 0:
			err = fmt.Errorf("%w: step %s authorises no functionary", ErrLayout, s.Name)
		case len(s.ExpectedMaterials) == 0 && len(s.ExpectedProducts) == 0:
			err = fmt.Errorf("%w: step %s requires nothing of its artifacts", ErrLayout, s.Name)
		}
	}
	if err != nil {
		return l, r.fail("layout form", err)
	}
	r.pass("layout form", "%d steps", len(l.Steps))
	return l, nil
}

// checkBundle verifies one bundle and says which functionary signed it,
// for which step.
func checkBundle(r *Report, in SupplyChainInput, layout in_toto.Layout, tv *trustView, nb NamedBundle) (string, in_toto.Link, error) {
	b, name := nb.Bundle, nb.Name
	canonical, err := b.Entry.Marshal()
	if err != nil {
		return "", in_toto.Link{}, r.fail(name+": entry", err)
	}
	// Timestamp first: its genTime decides which trusted items count.
	ev, roots := tv.ev, tv.roots
	ve, err := ev.Verify(b.Entry)
	if err != nil {
		return "", in_toto.Link{}, r.fail(name+": entry", err)
	}
	gt := ve.Timestamp.GenTime
	for _, chain := range [][]*x509.Certificate{ve.Timestamp.Chain, ve.SignerChain} {
		if len(chain) == 0 {
			continue
		}
		root := chain[len(chain)-1]
		if t := roots[string(root.Raw)]; !t.ValidFor.Contains(gt) {
			return "", in_toto.Link{}, r.fail(name+": entry", fmt.Errorf("%w: root %q is not in the trust root at genTime %s",
				ErrSignerUntrusted, root.Subject, gt.UTC().Format(time.RFC3339)))
		}
	}
	r.pass(name+": timestamp and signer", "genTime %s ± %v; signer valid then", gt.UTC().Format(time.RFC3339), ve.Timestamp.Accuracy)
	// The log proof, with a log key valid at genTime.
	logs, _ := in.TrustRoot.At(evident.KindLog, gt)
	var cp tlog.Checkpoint
	for _, t := range logs {
		v, err := note.NewVerifier(t.Value)
		if err != nil {
			continue
		}
		if c, err := tlog.OpenCheckpoint([]byte(b.Checkpoint), v.Name(), v); err == nil {
			cp, err = c, nil
			break
		}
	}
	if cp.Origin == "" {
		return "", in_toto.Link{}, r.fail(name+": checkpoint", fmt.Errorf("%w: not signed by a log key of the trust root", ErrLogProof))
	}
	if err := tlog.VerifyInclusion(b.LogIndex, cp, tlog.LeafHash(canonical), b.InclusionProof); err != nil {
		return "", in_toto.Link{}, r.fail(name+": inclusion", fmt.Errorf("%w: %v", ErrLogProof, err))
	}
	r.pass(name+": log", "entry %d included in %s at size %d", b.LogIndex, cp.Origin, cp.Size)
	if err := checkWitnessed(r, in.TrustRoot, name, b, canonical, gt); err != nil {
		return "", in_toto.Link{}, err
	}
	// The link is the entry's payload, and carries the entry's signature.
	mb, payload, err := ParseLink(b.Link)
	if err != nil {
		return "", in_toto.Link{}, r.fail(name+": link", fmt.Errorf("%w: %v", ErrLinkMismatch, err))
	}
	if d := sha256.Sum256(payload); hex.EncodeToString(d[:]) != b.Entry.PayloadSHA256 {
		return "", in_toto.Link{}, r.fail(name+": link", fmt.Errorf("%w: its digest is not the entry's payload_sha256", ErrLinkMismatch))
	}
	sigMatch := false
	for _, s := range mb.Signatures {
		if sb, err := hex.DecodeString(s.Sig); err == nil && s.KeyID == b.Entry.KeyID && bytes.Equal(sb, b.Entry.Signature) {
			sigMatch = true
		}
	}
	if !sigMatch {
		return "", in_toto.Link{}, r.fail(name+": link", fmt.Errorf("%w: the link carries no signature equal to the entry's", ErrLinkMismatch))
	}
	l := mb.Signed.(in_toto.Link)
	if err := cleanArtifactPaths(l); err != nil {
		return "", l, r.fail(name+": link", err)
	}
	// Which step, and is the signer authorised for it?
	var step *in_toto.Step
	for i := range layout.Steps {
		if layout.Steps[i].Name == l.Name {
			step = &layout.Steps[i]
		}
	}
	if step == nil {
		return "", l, r.fail(name+": step", fmt.Errorf("%w: the link's signed name %q is no step of the layout", ErrStep, l.Name))
	}
	fn, err := functionary(step, layout, ve, b.Entry)
	if err != nil {
		return "", l, r.fail(name+": functionary", err)
	}
	r.pass(name+": functionary", "%s may sign step %s", fn, l.Name)
	return fn, l, nil
}

// inspect runs an inspection's command in dir and records what it read and
// made there, as an unsigned link for the artifact rules.
func inspect(insp in_toto.Inspection, dir string) (in_toto.Link, error) {
	if len(insp.Run) == 0 {
		return in_toto.Link{}, errors.New("no command")
	}
	ctx := context.Background()
	mats, err := artifact.Record(ctx, []string{"."}, artifact.Options{Root: dir})
	if err != nil {
		return in_toto.Link{}, err
	}
	cmd := exec.Command(insp.Run[0], insp.Run[1:]...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		return in_toto.Link{}, fmt.Errorf("%q failed: %v: %s", strings.Join(insp.Run, " "), err, bytes.TrimSpace(out))
	}
	prods, err := artifact.Record(ctx, []string{"."}, artifact.Options{Root: dir})
	if err != nil {
		return in_toto.Link{}, err
	}
	return in_toto.Link{Type: "link", Name: insp.Name, Materials: mats, Products: prods, Command: insp.Run,
		ByProducts: map[string]interface{}{"return-value": 0}, Environment: map[string]interface{}{}}, nil
}

// cleanArtifactPaths refuses artifact paths that are not clean, relative,
// forward-slash paths ("./foo", "a/../foo", "/etc/passwd", "..\\x"): two
// spellings of one file must not slip past the artifact rules, which match
// names as written (in-toto-golang GHSA-vrxp-mg9f-hwf3).
func cleanArtifactPaths(l in_toto.Link) error {
	for kind, set := range map[string]map[string]in_toto.HashObj{"material": l.Materials, "product": l.Products} {
		for p := range set {
			if p == "" || path.Clean(p) != p || path.IsAbs(p) || p == ".." || strings.HasPrefix(p, "../") || strings.Contains(p, "\\") {
				return fmt.Errorf("%w: %s path %q is not a clean relative path", ErrLinkMismatch, kind, p)
			}
		}
	}
	return nil
}

// trustView is the trust root and the layout's root CAs as pools for the
// entry verifier (with one chain cache for every bundle), and each root's
// trust-root item, whose validity window is checked at genTime.
type trustView struct {
	ev    *EntryVerifier
	roots map[string]evident.Trusted
}

func newTrustView(tr *evident.TrustRoot, layout in_toto.Layout) *trustView {
	tv := &trustView{ev: &EntryVerifier{TSARoots: x509.NewCertPool(), FunctionaryRoots: x509.NewCertPool(), Cache: NewChainCache(1024)},
		roots: map[string]evident.Trusted{}}
	for _, list := range []struct {
		items []evident.Trusted
		pool  *x509.CertPool
	}{{tr.TSAs, tv.ev.TSARoots}, {tr.FunctionaryCAs, tv.ev.FunctionaryRoots}} {
		for _, t := range list.items {
			for _, c := range pemCerts(t.Value) {
				list.pool.AddCert(c)
				tv.roots[string(c.Raw)] = t
			}
		}
	}
	for _, k := range layout.RootCas { // trusted as part of a layout signed by a trusted key
		for _, c := range pemCerts(k.KeyVal.Certificate) {
			tv.ev.FunctionaryRoots.AddCert(c)
			if _, ok := tv.roots[string(c.Raw)]; !ok {
				tv.roots[string(c.Raw)] = evident.Trusted{Name: "layout root " + k.KeyID}
			}
		}
	}
	return tv
}

// functionary names the signer if the step authorises it: a key listed in
// pubkeys, or a certificate meeting one of the constraints. A SPIFFE ID
// names a certificate signer, so rotated SVIDs of one workload count once.
func functionary(step *in_toto.Step, layout in_toto.Layout, ve *VerifiedEntry, e *evident.Entry) (string, error) {
	if len(ve.SignerChain) == 0 {
		for _, id := range step.PubKeys {
			if k, ok := layout.Keys[id]; ok && id == e.KeyID && keyMatches(k, ve) {
				return "key " + id, nil
			}
		}
		return "", fmt.Errorf("%w: key %s is not a functionary of step %s", ErrStep, e.KeyID, step.Name)
	}
	leaf, root := ve.SignerChain[0], ve.SignerChain[len(ve.SignerChain)-1]
	if len(leaf.URIs) != 1 {
		return "", fmt.Errorf("%w: the signer certificate has %d URI SANs, want exactly one SPIFFE ID", ErrStep, len(leaf.URIs))
	}
	id := leaf.URIs[0].String()
	rootID := ""
	for kid, k := range layout.RootCas {
		for _, c := range pemCerts(k.KeyVal.Certificate) {
			if c.Equal(root) {
				rootID = kid
			}
		}
	}
	for _, c := range step.CertificateConstraints {
		if constraintMatches(c, leaf, rootID) {
			return id, nil
		}
	}
	return "", fmt.Errorf("%w: %s (chaining to %q) meets no certificate constraint of step %s", ErrStep, id, root.Subject, step.Name)
}

// keyMatches reports whether the layout's key k is the entry's public key,
// comparing key material (PEM formatting differs between in-toto tools, and
// so would key ids recomputed from it).
func keyMatches(k in_toto.Key, ve *VerifiedEntry) bool {
	pub, ok := ve.PublicKey.(interface{ Equal(crypto.PublicKey) bool })
	if !ok {
		return false
	}
	if blk, _ := pem.Decode([]byte(k.KeyVal.Public)); blk != nil {
		lk, err := x509.ParsePKIXPublicKey(blk.Bytes)
		return err == nil && pub.Equal(lk)
	}
	if raw, err := hex.DecodeString(k.KeyVal.Public); err == nil && len(raw) == ed25519.PublicKeySize {
		return pub.Equal(ed25519.PublicKey(raw))
	}
	return false
}

// constraintMatches applies an in-toto certificate constraint: "*" accepts
// anything, otherwise the certificate's values must equal the list; Roots
// must name the root the certificate actually chains to.
func constraintMatches(c in_toto.CertificateConstraint, cert *x509.Certificate, rootID string) bool {
	set := func(want []string, got []string) bool {
		if len(want) == 1 && want[0] == "*" {
			return true
		}
		if len(want) == 1 && want[0] == "" {
			want = nil
		}
		if len(want) != len(got) {
			return false
		}
		g := map[string]bool{}
		for _, v := range got {
			g[v] = true
		}
		for _, v := range want {
			if !g[v] {
				return false
			}
		}
		return true
	}
	var uris []string
	for _, u := range cert.URIs {
		uris = append(uris, u.String())
	}
	cn := []string{}
	if cert.Subject.CommonName != "" {
		cn = []string{cert.Subject.CommonName}
	}
	rootOK := false
	for _, r := range c.Roots {
		if r == "*" || (rootID != "" && r == rootID) {
			rootOK = true
		}
	}
	return rootOK && set([]string{c.CommonName}, cn) && set(c.DNSNames, cert.DNSNames) && set(c.Emails, cert.EmailAddresses) &&
		set(c.Organizations, cert.Subject.Organization) && set(c.URIs, uris)
}

// pemCerts parses every certificate in a PEM string.
func pemCerts(s string) []*x509.Certificate {
	var out []*x509.Certificate
	rest := []byte(s)
	for {
		var blk *pem.Block
		blk, rest = pem.Decode(rest)
		if blk == nil {
			return out
		}
		if c, err := x509.ParseCertificate(blk.Bytes); err == nil && blk.Type == "CERTIFICATE" {
			out = append(out, c)
		}
	}
}
