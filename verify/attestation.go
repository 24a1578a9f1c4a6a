package verify

import (
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strings"

	"github.com/in-toto/in-toto-golang/in_toto"
)

// ErrPredicate: no verified attestation meets a predicate requirement.
var ErrPredicate = errors.New("no verified attestation meets the requirement")

// PredicateRequirement asks for an attestation (a DSSE-signed in-toto
// Statement) of predicate type Type whose subjects cover every artifact
// being verified, by digest. By says who must have signed it: the
// functionaries of the layout step of that name, or the SPIFFE ID By (a
// "spiffe://" URI); "" accepts any signer whose certificate chains to a
// functionary CA of the trust root (or a root CA of the layout) at genTime,
// or whose key is a key of the layout.
type PredicateRequirement struct {
	Type string
	By   string
}

func (p PredicateRequirement) String() string {
	if p.By == "" {
		return p.Type
	}
	return p.Type + " by " + p.By
}

// ParsePredicateRequirement reads "URI" or "URI=STEP-or-SPIFFE-ID".
func ParsePredicateRequirement(s string) (PredicateRequirement, error) {
	typ, by, _ := strings.Cut(s, "=")
	if u, err := url.Parse(typ); err != nil || !u.IsAbs() {
		return PredicateRequirement{}, fmt.Errorf("predicate type %q is not an absolute URI", typ)
	}
	if strings.Contains(s, "=") && by == "" {
		return PredicateRequirement{}, fmt.Errorf("%q names no step or SPIFFE ID after '='", s)
	}
	return PredicateRequirement{Type: typ, By: by}, nil
}

// requirePredicate finds a verified attestation that meets req: its
// predicate type, its signer, and subjects whose SHA-256 digests include
// every artifact's. It reports the one that counts, or fails saying why
// each candidate did not.
func requirePredicate(r *Report, req PredicateRequirement, atts []evidence, layout in_toto.Layout, tv *trustView, artifacts map[string][]byte) error {
	if len(artifacts) == 0 {
		return fmt.Errorf("%w: a predicate requirement covers the artifacts being verified, and none was given", ErrPredicate)
	}
	var why []string
	for _, a := range atts {
		if a.statement.PredicateType != req.Type {
			continue
		}
		fn, err := attestationSigner(req, a, layout, tv)
		if err == nil {
			err = coversArtifacts(a, artifacts)
		}
		if err != nil {
			why = append(why, fmt.Sprintf("%s: %v", a.name, err))
			continue
		}
		r.pass("predicate "+req.String(), "%s signed by %s covers %s", a.name, fn, artifactList(artifacts))
		return nil
	}
	if len(why) == 0 {
		return fmt.Errorf("%w: no verified attestation of predicate type %s among the bundles", ErrPredicate, req.Type)
	}
	return fmt.Errorf("%w: %s", ErrPredicate, strings.Join(why, "; "))
}

// attestationSigner names the attestation's signer if req accepts it.
func attestationSigner(req PredicateRequirement, a evidence, layout in_toto.Layout, tv *trustView) (string, error) {
	switch {
	case strings.HasPrefix(req.By, "spiffe://"):
		if len(a.ve.SignerChain) == 0 || len(a.ve.SignerChain[0].URIs) != 1 {
			return "", fmt.Errorf("signed by a key or a certificate without exactly one URI SAN, not by %s", req.By)
		}
		leaf, root := a.ve.SignerChain[0], a.ve.SignerChain[len(a.ve.SignerChain)-1]
		item, inTrust := tv.fnCAs[string(root.Raw)]
		if err := tv.inTrustDomain(leaf.URIs[0], item, inTrust); err != nil {
			return "", err
		}
		if id := leaf.URIs[0].String(); id != req.By {
			return "", fmt.Errorf("signed by %s, not %s", id, req.By)
		}
		return req.By, nil
	case req.By != "":
		for i := range layout.Steps {
			if layout.Steps[i].Name == req.By {
				return functionary(&layout.Steps[i], layout, tv, a.ve, a.entry)
			}
		}
		return "", fmt.Errorf("%q is neither a step of the layout nor a SPIFFE ID", req.By)
	case len(a.ve.SignerChain) > 0: // chained to a trusted root by the entry's checks
		leaf := a.ve.SignerChain[0]
		if len(leaf.URIs) == 1 {
			item, inTrust := tv.fnCAs[string(a.ve.SignerChain[len(a.ve.SignerChain)-1].Raw)]
			if err := tv.inTrustDomain(leaf.URIs[0], item, inTrust); err != nil {
				return "", err
			}
			return leaf.URIs[0].String(), nil
		}
		return leaf.Subject.String(), nil
	}
	for id, k := range layout.Keys {
		if id == a.entry.KeyID && keyMatches(k, a.ve) {
			return "key " + id, nil
		}
	}
	return "", fmt.Errorf("signed by key %s, which is no key of the layout", a.entry.KeyID)
}

// coversArtifacts checks that every artifact's SHA-256 is a subject's digest.
func coversArtifacts(a evidence, artifacts map[string][]byte) error {
	for _, name := range sortedNames(artifacts) {
		if !a.statement.SubjectSHA256("", hex.EncodeToString(artifacts[name])) {
			return fmt.Errorf("no subject has the digest of %s (sha256 %x)", name, artifacts[name])
		}
	}
	return nil
}

func sortedNames(m map[string][]byte) []string {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func artifactList(m map[string][]byte) string { return strings.Join(sortedNames(m), ", ") }
