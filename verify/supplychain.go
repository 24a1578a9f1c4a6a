package verify

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/url"
	"os/exec"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/evident-dev/evident"
	"github.com/evident-dev/evident/artifact"
	"github.com/evident-dev/evident/dsse"
	"github.com/evident-dev/evident/rfc3161"
	"github.com/evident-dev/evident/tlog"
	"github.com/in-toto/in-toto-golang/in_toto"
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
	// ErrTrustDomain: a SPIFFE ID outside the trust domains its CA is
	// trusted for (see evident.Trusted.TrustDomains).
	ErrTrustDomain = errors.New("SPIFFE ID is outside its CA's trust domains")
	// ErrAfterVerificationTime: a timestamp later than the time verified at.
	ErrAfterVerificationTime = errors.New("timestamp is after the verification time")
)

// Check is one line of a verification report.
type Check struct {
	Check  string `json:"check"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail,omitempty"`
	// Ignored marks a bundle set aside as no evidence (OK is false): it
	// could not fail the verification, only not count.
	Ignored bool `json:"ignored,omitempty"`
}

// Report lists every check made, in order; the first failure ends it.
// Bundles that are no evidence are reported as ignored and do not end it.
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

func (r *Report) ignore(check string, err error) {
	r.Checks = append(r.Checks, Check{Check: check, OK: false, Ignored: true, Detail: "ignored: " + err.Error()})
}

// NamedBundle is a bundle with the name it is reported under; or, with
// Err set, a bundle that could not be read or parsed, which is reported and
// ignored as any other bundle that is no evidence.
type NamedBundle struct {
	Name   string
	Bundle *evident.Bundle
	Err    error
}

// SupplyChainInput is what SupplyChain verifies.
type SupplyChainInput struct {
	TrustRoot *evident.TrustRoot
	// Layout is the signed in-toto layout (Metablock JSON).
	Layout  []byte
	Bundles []NamedBundle
	// At is when the layout's expiry and the layout keys are judged
	// (default now); certificates are always judged at each timestamp, and
	// no timestamp may be later than At.
	At time.Time
	// Artifacts maps artifact paths to SHA-256 digests: each must be a
	// product of a step of the chain, at that path with that digest (the
	// files being released). An inspection's own outputs do not count.
	Artifacts map[string][]byte
	// RequirePredicates each need a verified attestation of their
	// predicate type, by their signer, whose subjects cover every artifact
	// of Artifacts (see [PredicateRequirement]).
	RequirePredicates []PredicateRequirement
	// InspectDir is where the layout's inspections run, with the files they
	// inspect; the caller makes it (a temporary copy: inspections may change
	// it). A layout with inspections and no InspectDir fails.
	InspectDir string
}

// SupplyChain verifies a supply chain offline. It fails closed on the
// layout ([CheckLayout] at At: signed by a trust-root layout key valid at
// At, not expired, well formed). Each bundle is then checked (checkpoint
// signed by a trust-root log key; inclusion proof; link ↔ entry, the link
// decoded faithfully; timestamp no later than At, signer chain at genTime
// and signature, with the TSA and functionary roots of the trust root valid
// at genTime; a step of the layout; a functionary of that step: a key, or a
// certificate meeting a constraint, bound to the root it really chains to,
// with a SPIFFE ID inside that root's trust domains). A bundle failing any
// of these is no evidence: it is reported and ignored, as in-toto ignores
// unauthorised links, so that a bundle anyone can log cannot make a valid
// chain fail; what it could have proved is then missing. Of several links
// of one functionary for a step, the one with the earliest genTime (then
// the lowest log index, then bundle name) counts, and the others are
// reported. Then the in-toto rules: per step, the threshold of distinct
// functionaries (one per SPIFFE ID or key); the artifact rules, after
// running the layout's inspections in in.InspectDir; and in.Artifacts
// among the steps' products. Sublayouts are not supported.
func SupplyChain(in SupplyChainInput) (*Report, error) {
	r := &Report{}
	if in.At.IsZero() {
		in.At = time.Now()
	}
	layout, err := checkLayout(r, in)
	if err != nil {
		return r, err
	}
	tv := newTrustView(in.TrustRoot, layout)
	cands := map[string][]evidence{} // step → links that count
	var ignored []ignoredBundle
	var attestations []evidence
	for _, nb := range in.Bundles {
		if nb.Err != nil || nb.Bundle == nil {
			err := nb.Err
			if err == nil {
				err = errors.New("no bundle")
			}
			r.ignore(nb.Name, err)
			ignored = append(ignored, ignoredBundle{name: nb.Name, err: err})
			continue
		}
		ev, err := checkBundle(r, in, layout, tv, nb)
		if err != nil {
			var be *bundleError
			check := nb.Name
			if errors.As(err, &be) {
				check = be.check
			}
			r.ignore(check, err)
			ignored = append(ignored, ignoredBundle{name: nb.Name, step: claimedStep(nb.Bundle), err: err})
			continue
		}
		if ev.statement != nil {
			attestations = append(attestations, ev)
			continue
		}
		cands[ev.link.Name] = append(cands[ev.link.Name], ev)
	}
	stepLinks := map[string]map[string]in_toto.Metadata{} // step → functionary → link
	for _, step := range layout.Steps {
		cs := cands[step.Name]
		sort.SliceStable(cs, func(i, j int) bool {
			a, b := cs[i], cs[j]
			if !a.genTime.Equal(b.genTime) {
				return a.genTime.Before(b.genTime)
			}
			if a.logIndex != b.logIndex {
				return a.logIndex < b.logIndex
			}
			return a.name < b.name
		})
		chosen := map[string]in_toto.Metadata{}
		chosenName := map[string]string{}
		for _, c := range cs {
			if first, dup := chosenName[c.fn]; dup {
				r.ignore(c.name+": functionary", fmt.Errorf("%s already counts for step %s with %s (earliest genTime, then lowest log index)", c.fn, step.Name, first))
				continue
			}
			chosen[c.fn], chosenName[c.fn] = &in_toto.Metablock{Signed: c.link}, c.name
		}
		stepLinks[step.Name] = chosen
		n := len(chosen)
		if n < step.Threshold {
			return r, r.fail("step "+step.Name, thresholdError(step, n, ignored))
		}
		var who []string
		for fn := range chosen {
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
	names := make([]string, 0, len(in.Artifacts))
	for name := range in.Artifacts {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		step, err := productOf(layout, reduced, name, in.Artifacts[name])
		if err != nil {
			return r, r.fail("artifact "+name, err)
		}
		r.pass("artifact "+name, "sha256 %x is product %s of step %s", in.Artifacts[name], name, step)
	}
	for _, req := range in.RequirePredicates {
		if err := requirePredicate(r, req, attestations, layout, tv, in.Artifacts); err != nil {
			return r, r.fail("predicate "+req.String(), err)
		}
	}
	r.OK = true
	return r, nil
}

// evidence is a bundle that verified: a link of an authorised functionary,
// or an attestation (a Statement of another predicate), whose signer is
// judged by the requirement it may meet.
type evidence struct {
	name     string
	fn       string
	link     in_toto.Link
	genTime  time.Time
	logIndex uint64
	// statement, ve and entry are set for an attestation.
	statement *dsse.Statement
	ve        *VerifiedEntry
	entry     *evident.Entry
}

// bundleError is why a bundle is no evidence, and which check said so.
type bundleError struct {
	check string
	err   error
}

func (e *bundleError) Error() string { return e.err.Error() }
func (e *bundleError) Unwrap() error { return e.err }

type ignoredBundle struct {
	name, step string
	err        error
}

// claimedStep is the step a bundle's link names, unverified, to say which
// step an ignored bundle would have counted for; "" if it does not parse.
func claimedStep(b *evident.Bundle) string {
	var m struct {
		Signed struct {
			Name string `json:"name"`
		} `json:"signed"`
	}
	if json.Unmarshal(b.Link, &m) != nil {
		return ""
	}
	return m.Signed.Name
}

// thresholdError says a step's threshold is not met, and wraps the errors
// of the ignored bundles: first those whose link claims the step, then the
// others (a link that fails its checks may claim any name), at most
// maxIgnoredInError of them.
func thresholdError(step in_toto.Step, n int, ignored []ignoredBundle) error {
	format := "%w: step %s has %d distinct authorised functionaries, threshold %d"
	args := []any{ErrStep, step.Name, n, step.Threshold}
	listed := 0
	for _, mine := range []bool{true, false} {
		for _, ib := range ignored {
			if (ib.step == step.Name) != mine {
				continue
			}
			if listed == maxIgnoredInError {
				return fmt.Errorf(format+"; and %d more ignored bundles (see the report)", append(args, len(ignored)-listed)...)
			}
			format += "; ignored %s: %w"
			args = append(args, ib.name, ib.err)
			listed++
		}
	}
	return fmt.Errorf(format, args...)
}

// maxIgnoredInError bounds the ignored bundles a step's error names.
const maxIgnoredInError = 10

// productOf says which step made the artifact at path with digest; an
// inspection's outputs do not count, nor a product at another path.
func productOf(layout in_toto.Layout, reduced map[string]in_toto.Metadata, path string, digest []byte) (string, error) {
	want := hex.EncodeToString(digest)
	var elsewhere []string
	for _, s := range layout.Steps {
		l := reduced[s.Name].(*in_toto.Metablock).Signed.(in_toto.Link)
		if h, ok := l.Products[path]; ok {
			if h["sha256"] == want {
				return s.Name, nil
			}
			elsewhere = append(elsewhere, fmt.Sprintf("step %s made it with sha256 %s", s.Name, h["sha256"]))
		}
	}
	if len(elsewhere) > 0 {
		return "", fmt.Errorf("%w: %s has sha256 %x, but %s", ErrArtifactRules, path, digest, strings.Join(elsewhere, "; "))
	}
	return "", fmt.Errorf("%w: no step of the chain made %s (sha256 %x)", ErrArtifactRules, path, digest)
}

// checkLayout checks the layout with CheckLayout, reporting each check, and
// returns it; supply-chain verification needs it faultless.
func checkLayout(r *Report, in SupplyChainInput) (in_toto.Layout, error) {
	lr := CheckLayout(in.Layout, in.TrustRoot, in.At)
	if err := lr.problem(CheckLayoutParse); err != nil {
		return in_toto.Layout{}, r.fail(CheckLayoutParse, err)
	}
	if err := lr.problem(CheckLayoutSignature); err != nil {
		return lr.Layout, r.fail(CheckLayoutSignature, err)
	}
	r.pass(CheckLayoutSignature, "signed by layout key %q", lr.SignedBy)
	if err := lr.problem(CheckLayoutExpiry); err != nil {
		return lr.Layout, r.fail(CheckLayoutExpiry, err)
	}
	r.pass(CheckLayoutExpiry, "valid until %s (judged at %s)", lr.Expires.UTC().Format(time.RFC3339), in.At.UTC().Format(time.RFC3339))
	err := lr.problem(CheckLayoutForm)
	if err == nil && len(lr.Layout.Inspect) > 0 && in.InspectDir == "" {
		err = fmt.Errorf("%w: it has inspections, which need the artifacts they inspect (--artifact)", ErrLayout)
	}
	if err != nil {
		return lr.Layout, r.fail(CheckLayoutForm, err)
	}
	r.pass(CheckLayoutForm, "%d steps", len(lr.Layout.Steps))
	return lr.Layout, nil
}

// checkBundle verifies one bundle and says which functionary signed it,
// for which step. Its errors are *bundleError.
func checkBundle(r *Report, in SupplyChainInput, layout in_toto.Layout, tv *trustView, nb NamedBundle) (evidence, error) {
	b, name := nb.Bundle, nb.Name
	fail := func(check string, err error) (evidence, error) {
		return evidence{}, &bundleError{check: name + ": " + check, err: err}
	}
	canonical, err := b.Entry.Marshal()
	if err != nil {
		return fail("entry", err)
	}
	// The link (or DSSE envelope) is read first for its payload, which the
	// signature is checked over; whether it is the right one is judged
	// below. A DSSE signature cannot be checked at all without it.
	bp := readBundlePayload(b)
	payload := bp.payload
	if bp.err != nil {
		if b.Entry.PayloadType == evident.PayloadTypeDSSE {
			return fail("link", bp.err)
		}
		payload = nil
	}
	// Timestamps next: their genTimes decide which trusted items count.
	ev, roots := tv.ev, tv.roots
	ve, err := ev.VerifyPayload(b.Entry, payload)
	if err != nil {
		return fail("entry", err)
	}
	gt := ve.Timestamp.GenTime // the earliest that counts
	for _, t := range ve.Timestamps {
		if t.GenTime.After(in.At) {
			return fail("entry", fmt.Errorf("%w: genTime %s, verifying at %s", ErrAfterVerificationTime,
				t.GenTime.UTC().Format(time.RFC3339), in.At.UTC().Format(time.RFC3339)))
		}
		if len(ve.SignerChain) == 0 {
			continue
		}
		root := ve.SignerChain[len(ve.SignerChain)-1]
		if it := roots[string(root.Raw)]; !it.ValidFor.Contains(t.GenTime) {
			return fail("entry", fmt.Errorf("%w: root %q is not in the trust root at genTime %s",
				ErrSignerUntrusted, root.Subject, t.GenTime.UTC().Format(time.RFC3339)))
		}
	}
	r.pass(name+": timestamp and signer", "%s; signer valid then", tokenReport(ve, tv.ev.TSAThreshold))
	// The log proof, with a log key valid at genTime.
	cp, _, err := in.TrustRoot.OpenCheckpoint([]byte(b.Checkpoint), gt)
	if err != nil {
		return fail("checkpoint", fmt.Errorf("%w: not signed by a log key of the trust root", ErrLogProof))
	}
	if err := tlog.VerifyInclusion(b.LogIndex, cp, tlog.LeafHash(canonical), b.InclusionProof); err != nil {
		return fail("inclusion", fmt.Errorf("%w: %v", ErrLogProof, err))
	}
	r.pass(name+": log", "entry %d included in %s at size %d", b.LogIndex, cp.Origin, cp.Size)
	if err := checkWitnessed(r, in.TrustRoot, name, b, canonical, gt, ve.Timestamp.Accuracy); err != nil {
		return evidence{}, err
	}
	// The link (or DSSE envelope) is the entry's payload, and carries the
	// entry's signature.
	l, st, err := bundleLink(b, bp)
	if err != nil {
		return fail("link", err)
	}
	if st != nil && st.PredicateType != dsse.PredicateTypeLink {
		r.pass(name+": attestation", "predicate %s, %d subjects", st.PredicateType, len(st.Subject))
		return evidence{name: name, genTime: gt, logIndex: b.LogIndex, statement: st, ve: ve, entry: b.Entry}, nil
	}
	if err := cleanArtifactPaths(l); err != nil {
		return fail("link", err)
	}
	// Which step, and is the signer authorised for it?
	var step *in_toto.Step
	for i := range layout.Steps {
		if layout.Steps[i].Name == l.Name {
			step = &layout.Steps[i]
		}
	}
	if step == nil {
		return fail("step", fmt.Errorf("%w: the link's signed name %q is no step of the layout", ErrStep, l.Name))
	}
	fn, err := functionary(step, layout, tv, ve, b.Entry)
	if err != nil {
		return fail("functionary", err)
	}
	r.pass(name+": functionary", "%s may sign step %s", fn, l.Name)
	return evidence{name: name, fn: fn, link: l, genTime: gt, logIndex: b.LogIndex}, nil
}

// bundlePayload is a bundle's payload as read, before any check: a
// Metablock link, or a DSSE envelope.
type bundlePayload struct {
	payload []byte
	mb      *in_toto.Metablock
	env     *dsse.Envelope
	err     error // wraps ErrLinkMismatch
}

// readBundlePayload reads the payload a bundle carries — a Metablock link,
// or a DSSE envelope (version 3 bundles) — strictly, and checks that it is
// the entry's payload (its SHA-256 is payload_sha256).
func readBundlePayload(b *evident.Bundle) bundlePayload {
	var bp bundlePayload
	var err error
	if b.Entry.PayloadType == evident.PayloadTypeDSSE {
		if bp.env, err = dsse.ParseEnvelope(b.DSSEEnvelope); err == nil {
			bp.payload = bp.env.Payload
			if bp.env.PayloadType != b.Entry.PayloadType {
				err = fmt.Errorf("the envelope's payload type %q is not the entry's", bp.env.PayloadType)
			}
		}
	} else {
		bp.mb, bp.payload, err = ParseLink(b.Link)
	}
	if err == nil && !b.Entry.IsPayload(bp.payload) {
		err = fmt.Errorf("%w: its payload's digest is not the entry's payload_sha256", evident.ErrPayloadMismatch)
	}
	if err != nil {
		bp.err = fmt.Errorf("%w: %w", ErrLinkMismatch, err)
	}
	return bp
}

// bundleLink checks that the payload read carries the entry's signature
// (which the entry's check verified over it) and returns its link: the
// Metablock's, or for a DSSE envelope its Statement, and the link a
// Statement of the link predicate records.
func bundleLink(b *evident.Bundle, bp bundlePayload) (in_toto.Link, *dsse.Statement, error) {
	if bp.err != nil {
		return in_toto.Link{}, nil, bp.err
	}
	if bp.mb != nil {
		for _, s := range bp.mb.Signatures {
			if sb, err := hex.DecodeString(s.Sig); err == nil && s.KeyID == b.Entry.KeyID && bytes.Equal(sb, b.Entry.Signature) {
				return bp.mb.Signed.(in_toto.Link), nil, nil
			}
		}
		return in_toto.Link{}, nil, fmt.Errorf("%w: the link carries no signature equal to the entry's", ErrLinkMismatch)
	}
	if !bp.env.HasSignature(b.Entry.KeyID, b.Entry.Signature) {
		return in_toto.Link{}, nil, fmt.Errorf("%w: the envelope carries no signature equal to the entry's", ErrLinkMismatch)
	}
	st, err := dsse.ParseStatement(bp.payload)
	if err != nil {
		return in_toto.Link{}, nil, fmt.Errorf("%w: %w", ErrLinkMismatch, err)
	}
	if st.PredicateType != dsse.PredicateTypeLink {
		return in_toto.Link{}, st, nil
	}
	l, err := st.Link()
	if err != nil {
		return in_toto.Link{}, nil, fmt.Errorf("%w: %w", ErrLinkMismatch, err)
	}
	return l, st, nil
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
// entry verifier (with one chain cache for every bundle), each root's
// trust-root item, whose validity window is checked at genTime, and the
// SPIFFE trust domains functionary CAs are trusted for.
type trustView struct {
	ev    *EntryVerifier
	roots map[string]evident.Trusted
	// tsas maps a TSA root certificate to the trust-root items holding it.
	tsas map[string][]evident.Trusted
	// fnCAs maps a trust-root functionary CA certificate to its item.
	fnCAs map[string]evident.Trusted
	// claimed maps a trust domain to the functionary CA that lists it.
	claimed map[string]string
	// layoutRoots maps a layout root CA certificate to its key id.
	layoutRoots map[string]string
}

func newTrustView(tr *evident.TrustRoot, layout in_toto.Layout) *trustView {
	tv := &trustView{ev: &EntryVerifier{TSARoots: x509.NewCertPool(), FunctionaryRoots: x509.NewCertPool(), Cache: rfc3161.NewChainCache(1024)},
		roots: map[string]evident.Trusted{}, tsas: map[string][]evident.Trusted{}, fnCAs: map[string]evident.Trusted{},
		claimed: map[string]string{}, layoutRoots: map[string]string{}}
	tv.ev.TSAThreshold, tv.ev.MaxTSASkew = tr.TSAPolicy()
	tv.ev.TSAName = tv.tsaAt
	for _, t := range tr.TSAs {
		for _, c := range pemCerts(t.Value) {
			tv.tsas[string(c.Raw)] = append(tv.tsas[string(c.Raw)], t)
		}
	}
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
	for _, t := range tr.FunctionaryCAs {
		for _, c := range pemCerts(t.Value) {
			tv.fnCAs[string(c.Raw)] = t
		}
		for _, d := range t.TrustDomains {
			tv.claimed[d] = t.Name
		}
	}
	for id, k := range layout.RootCas { // trusted as part of a layout signed by a trusted key
		for _, c := range pemCerts(k.KeyVal.Certificate) {
			tv.ev.FunctionaryRoots.AddCert(c)
			tv.layoutRoots[string(c.Raw)] = id
			if _, ok := tv.roots[string(c.Raw)]; !ok {
				tv.roots[string(c.Raw)] = evident.Trusted{Name: "layout root " + id}
			}
		}
	}
	return tv
}

// tsaAt names the TSA of the trust root that has root and is valid at
// genTime: tokens count once per TSA, however many roots it lists.
func (tv *trustView) tsaAt(root *x509.Certificate, genTime time.Time) (string, bool) {
	for _, t := range tv.tsas[string(root.Raw)] {
		if t.ValidFor.Contains(genTime) {
			return t.Name, true
		}
	}
	return "", false
}

// tokenReport says which tokens counted, from which TSAs, and why others
// did not.
func tokenReport(ve *VerifiedEntry, threshold int) string {
	var counted []string
	for i, t := range ve.Timestamps {
		counted = append(counted, fmt.Sprintf("%s at %s ± %v", ve.TSAs[i], t.GenTime.UTC().Format(time.RFC3339), t.Accuracy))
	}
	s := fmt.Sprintf("timestamps from %s (TSA threshold %d)", strings.Join(counted, ", "), max(threshold, 1))
	if len(ve.Ignored) > 0 {
		s += "; not counted: " + strings.Join(ve.Ignored, "; ")
	}
	return s
}

// functionary names the signer if the step authorises it: a key listed in
// pubkeys, or a certificate meeting one of the constraints. A SPIFFE ID
// names a certificate signer, so rotated SVIDs of one workload count once.
func functionary(step *in_toto.Step, layout in_toto.Layout, tv *trustView, ve *VerifiedEntry, e *evident.Entry) (string, error) {
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
	item, inTrust := tv.fnCAs[string(root.Raw)]
	if err := tv.inTrustDomain(leaf.URIs[0], item, inTrust); err != nil {
		return "", err
	}
	rootID := tv.layoutRoots[string(root.Raw)]
	itemName := ""
	if _, shadowed := layout.RootCas[item.Name]; inTrust && !shadowed {
		itemName = item.Name
	}
	for _, c := range step.CertificateConstraints {
		if constraintMatches(c, leaf, rootID, itemName) {
			return id, nil
		}
	}
	return "", fmt.Errorf("%w: %s (chaining to %q) meets no certificate constraint of step %s", ErrStep, id, root.Subject, step.Name)
}

// inTrustDomain checks that the CA item (of the trust root if inTrust; a
// layout root CA otherwise, which lists no trust domains) may vouch for
// the identity u; see evident.Trusted.TrustDomains.
func (tv *trustView) inTrustDomain(u *url.URL, item evident.Trusted, inTrust bool) error {
	ca := "a root CA of the layout"
	if inTrust {
		ca = fmt.Sprintf("functionary CA %q", item.Name)
	}
	if u.Scheme != "spiffe" {
		if len(item.TrustDomains) > 0 {
			return fmt.Errorf("%w: %s vouches only for SPIFFE IDs in %s, not for %s", ErrTrustDomain, ca, strings.Join(item.TrustDomains, ", "), u)
		}
		return nil
	}
	td := u.Host
	if u.User != nil || u.Opaque != "" || !evident.ValidTrustDomain(td) {
		return fmt.Errorf("%w: %s is not a valid SPIFFE ID", ErrTrustDomain, u)
	}
	if len(item.TrustDomains) > 0 {
		for _, d := range item.TrustDomains {
			if d == td {
				return nil
			}
		}
		return fmt.Errorf("%w: %s is in trust domain %s; %s is trusted for %s only", ErrTrustDomain, u, td, ca, strings.Join(item.TrustDomains, ", "))
	}
	if owner, ok := tv.claimed[td]; ok {
		return fmt.Errorf("%w: %s is in trust domain %s, which belongs to functionary CA %q, not to %s", ErrTrustDomain, u, td, owner, ca)
	}
	return nil
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
// must name the root the certificate actually chains to: by the key id of
// a root CA of the layout (rootID), or by the name of a functionary CA of
// the trust root (itemName; a layout root CA's key id takes precedence).
func constraintMatches(c in_toto.CertificateConstraint, cert *x509.Certificate, rootID, itemName string) bool {
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
		if r == "*" || (rootID != "" && r == rootID) || (itemName != "" && r == itemName) {
			rootOK = true
		}
	}
	return rootOK && set([]string{c.CommonName}, cn) && set(c.DNSNames, cert.DNSNames) && set(c.Emails, cert.EmailAddresses) &&
		set(c.Organizations, cert.Subject.Organization) && set(c.URIs, uris)
}
