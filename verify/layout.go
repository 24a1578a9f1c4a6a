package verify

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"strings"
	"time"

	"github.com/evident-dev/evident"
	"github.com/in-toto/in-toto-golang/in_toto"
)

// Checks of a layout, as [LayoutReport] and [Report] name them.
const (
	CheckLayoutParse     = "layout"
	CheckLayoutSignature = "layout signature"
	CheckLayoutExpiry    = "layout expiry"
	CheckLayoutForm      = "layout form"
)

// LayoutProblem is one thing wrong with a layout. Err wraps ErrLayout,
// ErrLayoutSignature or ErrLayoutExpired.
type LayoutProblem struct {
	Check string // one of the CheckLayout… names
	Err   error
}

// LayoutReport is what [CheckLayout] found.
type LayoutReport struct {
	Layout in_toto.Layout
	// Payload is the canonical JSON of "signed", which signatures are over.
	Payload []byte
	// SignedBy names the trust-root layout key whose signature verified;
	// empty when none did or no trust root was given.
	SignedBy string
	// KeysAt is how many layout keys the trust root holds at the time judged.
	KeysAt int
	// Expires is the layout's expiry (zero if it does not parse).
	Expires time.Time
	// Problems lists everything wrong, in the order of the checks:
	// parse (then nothing else is checked), signature, expiry, form.
	Problems []LayoutProblem
}

// OK reports whether the layout has no problem.
func (r *LayoutReport) OK() bool { return len(r.Problems) == 0 }

func (r *LayoutReport) add(check string, err error) {
	r.Problems = append(r.Problems, LayoutProblem{Check: check, Err: err})
}

// problem returns the first problem of a check, or nil.
func (r *LayoutReport) problem(check string) error {
	for _, p := range r.Problems {
		if p.Check == check {
			return p.Err
		}
	}
	return nil
}

// CheckLayout explains everything wrong with the signed layout b, as
// supply-chain verification judges it: its form (strict, faithful JSON; an
// in-toto layout), a signature by a layout key of trust valid at at, its
// expiry at at (expired exactly at expiry too), and its content: unique
// step and inspection names, artifact rules that unpack (in-toto's rule
// syntax) and whose MATCH … FROM names a step or inspection of the layout,
// thresholds of at least one (and no more than a key-only step's keys),
// steps that authorise someone and require something, keys that are
// listed, root CAs that parse, and certificate-constraint roots that name a
// root CA of the layout or a functionary CA of the trust root. A nil trust
// skips the signature check and the trust-root names; a zero at means now.
func CheckLayout(b []byte, trust *evident.TrustRoot, at time.Time) *LayoutReport {
	if at.IsZero() {
		at = time.Now()
	}
	r := &LayoutReport{}
	l, sigs, payload, signed, err := parseLayout(b)
	if err != nil {
		r.add(CheckLayoutParse, fmt.Errorf("%w: %w", ErrLayout, err))
		return r
	}
	r.Layout, r.Payload = l, payload
	if trust != nil {
		keys, _ := trust.At(evident.KindLayoutKey, at)
		r.KeysAt = len(keys)
		// Each signature is tried with each trusted key: key ids are
		// computed from key encodings that differ between in-toto
		// implementations, so the signature check, not the id, decides.
		for _, t := range keys {
			var k in_toto.Key
			if err := k.LoadKeyReaderDefaults(strings.NewReader(t.Value)); err != nil {
				continue
			}
			for _, sig := range sigs {
				k.KeyID = sig.KeyID
				// Over "signed" as received (canonicalised), not its Go decoding.
				one := &in_toto.Metablock{Signed: signed, Signatures: []in_toto.Signature{sig}}
				if one.VerifySignature(k) == nil {
					r.SignedBy = t.Name
				}
			}
			if r.SignedBy != "" {
				break
			}
		}
		if r.SignedBy == "" {
			r.add(CheckLayoutSignature, fmt.Errorf("%w (%d signatures; %d layout keys valid at %s)", ErrLayoutSignature,
				len(sigs), len(keys), at.UTC().Format(time.RFC3339)))
		}
	}
	if exp, err := time.Parse(time.RFC3339, l.Expires); err != nil {
		r.add(CheckLayoutExpiry, fmt.Errorf("%w: expires %q is not an RFC 3339 time", ErrLayout, l.Expires))
	} else {
		r.Expires = exp
		if !at.Before(exp) {
			r.add(CheckLayoutExpiry, fmt.Errorf("%w at %s (judged at %s)", ErrLayoutExpired, exp.UTC().Format(time.RFC3339), at.UTC().Format(time.RFC3339)))
		}
	}
	for _, err := range layoutForm(l, trust) {
		r.add(CheckLayoutForm, fmt.Errorf("%w: %s", ErrLayout, err))
	}
	return r
}

// layoutForm lists what is wrong with the layout's content.
func layoutForm(l in_toto.Layout, trust *evident.TrustRoot) []string {
	var bad []string
	badf := func(format string, args ...any) { bad = append(bad, fmt.Sprintf(format, args...)) }
	if l.Type != "layout" {
		badf("_type %q", l.Type)
	}
	if len(l.Steps) == 0 {
		badf("no steps")
	}
	names := map[string]string{} // name → "step" or "inspection"
	for _, s := range l.Steps {
		if names[s.Name] != "" {
			badf("two steps or inspections are named %q", s.Name)
		}
		names[s.Name] = "step"
	}
	for _, insp := range l.Inspect {
		if names[insp.Name] != "" {
			badf("two steps or inspections are named %q", insp.Name)
		}
		names[insp.Name] = "inspection"
	}
	for id, k := range l.Keys {
		if k.KeyID != id {
			badf("key %s is listed under key id %s", k.KeyID, id)
		}
	}
	for id, k := range l.RootCas {
		if len(pemCerts(k.KeyVal.Certificate)) == 0 {
			badf("root CA %s holds no PEM certificate", id)
		}
	}
	fnCAs := map[string]bool{}
	if trust != nil {
		for _, t := range trust.FunctionaryCAs {
			fnCAs[t.Name] = true
		}
	}
	rules := func(what, name string, rules [][]string) {
		for _, rule := range rules {
			if len(rule) == 0 {
				badf("%s %s: an empty artifact rule", what, name)
				continue
			}
			u, err := in_toto.UnpackRule(rule)
			if err != nil {
				badf("%s %s: rule %q: %v", what, name, strings.Join(rule, " "), err)
				continue
			}
			if u["type"] == "match" && names[u["dstName"]] == "" {
				badf("%s %s: rule %q matches against %q, which is no step or inspection of the layout", what, name, strings.Join(rule, " "), u["dstName"])
			}
		}
	}
	for _, s := range l.Steps {
		if s.Name == "" {
			badf("a step has no name")
		}
		if s.Type != "step" {
			badf("step %s: _type %q", s.Name, s.Type)
		}
		switch {
		case s.Threshold < 1:
			badf("step %s has threshold %d", s.Name, s.Threshold)
		case len(s.PubKeys) == 0 && len(s.CertificateConstraints) == 0:
			badf("step %s authorises no functionary", s.Name)
		case len(s.CertificateConstraints) == 0 && s.Threshold > len(s.PubKeys):
			badf("step %s has threshold %d but only %d keys", s.Name, s.Threshold, len(s.PubKeys))
		}
		if len(s.ExpectedMaterials) == 0 && len(s.ExpectedProducts) == 0 {
			badf("step %s requires nothing of its artifacts", s.Name)
		}
		for _, id := range s.PubKeys {
			if _, ok := l.Keys[id]; !ok {
				badf("step %s: key %s is not in the layout's keys", s.Name, id)
			}
		}
		for i, c := range s.CertificateConstraints {
			if len(c.Roots) == 0 {
				badf("step %s: certificate constraint %d names no root", s.Name, i)
			}
			for _, root := range c.Roots {
				// Without a trust root, a name may be one of its CAs.
				if _, ok := l.RootCas[root]; !ok && root != "*" && trust != nil && !fnCAs[root] {
					badf("step %s: certificate constraint %d names root %q, which is neither a root CA of the layout nor a functionary CA of the trust root", s.Name, i, root)
				}
			}
		}
		rules("step", s.Name, s.ExpectedMaterials)
		rules("step", s.Name, s.ExpectedProducts)
	}
	for _, insp := range l.Inspect {
		if insp.Name == "" {
			badf("an inspection has no name")
		}
		if insp.Type != "inspection" {
			badf("inspection %s: _type %q", insp.Name, insp.Type)
		}
		if len(insp.Run) == 0 {
			badf("inspection %s runs no command", insp.Name)
		}
		rules("inspection", insp.Name, insp.ExpectedMaterials)
		rules("inspection", insp.Name, insp.ExpectedProducts)
	}
	return bad
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
