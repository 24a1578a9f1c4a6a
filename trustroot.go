package evident

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/evident-dev/evident/internal/strictjson"
	"github.com/evident-dev/evident/tlog"
)

// TrustRootMediaType names the TrustRoot format and its version.
const TrustRootMediaType = "application/vnd.evident.trusted-root+json;version=1"

// TrustRootTarget is the TUF target name of the trust root.
const TrustRootTarget = "trusted_root.json"

// TrustRoot is what a verifier trusts, published through TUF as
// [TrustRootTarget], in the manner of Sigstore's trusted_root.json: every
// item has a validity window, so rotating one adds the new item and sets the
// end of the old — evidence made while the old one was valid still verifies.
type TrustRoot struct {
	MediaType string `json:"media_type"`
	// FunctionaryCAs are root certificates functionaries' certificates
	// (SVIDs) chain to, PEM.
	FunctionaryCAs []Trusted `json:"functionary_cas"`
	// TSAs are timestamp authority roots, PEM.
	TSAs []Trusted `json:"tsas"`
	// Logs are transparency log note verifier keys (name+hash+base64).
	Logs []Trusted `json:"logs"`
	// LayoutKeys are public keys (PEM) that sign in-toto layouts.
	LayoutKeys []Trusted `json:"layout_keys"`
	// Witnesses are witnesses' tlog-cosignature/v1 verifier keys
	// (name+hash+base64(0x04 ‖ Ed25519 key)).
	Witnesses []Trusted `json:"witnesses,omitempty"`
	// WitnessThreshold is how many distinct witnesses, each valid at the
	// time it cosigned, must have cosigned a bundle's checkpoint; 0 requires
	// none.
	WitnessThreshold int `json:"witness_threshold,omitempty"`
	// MaxLogDelaySeconds bounds the time between a signature's genTime and
	// the time the witnesses (the threshold-th earliest of them) first
	// cosigned a checkpoint that includes its entry: the log as a second
	// clock, so a token backdated with a stolen TSA key is refused. 0 does
	// not bound it. It applies only with a WitnessThreshold.
	MaxLogDelaySeconds int64 `json:"max_log_delay_seconds,omitempty"`
	// TSAThreshold is how many of an entry's RFC 3161 tokens must verify,
	// each from a distinct TSA of the trust root valid at its genTime (two
	// tokens from one TSA count once); 0 means 1. With 2 or more, one
	// stolen TSA key does not forge a time.
	TSAThreshold int `json:"tsa_threshold,omitempty"`
	// MaxTSASkewSeconds bounds the spread of the genTimes of the tokens
	// that count; 0 does not bound it.
	MaxTSASkewSeconds int64 `json:"max_tsa_skew_seconds,omitempty"`
}

// Trusted is one trusted item.
type Trusted struct {
	Name     string   `json:"name"`
	Value    string   `json:"value"`
	ValidFor ValidFor `json:"valid_for"`
	// TrustDomains, for a functionary CA only, are the SPIFFE trust domains
	// whose IDs (spiffe://DOMAIN/…) the CA may vouch for; it vouches for no
	// SPIFFE ID elsewhere, and for no other URI. A functionary CA that lists
	// none (as trust roots made before the field existed) may vouch for any
	// identity except a SPIFFE ID in a trust domain that another functionary
	// CA of the trust root lists: listing a domain claims it.
	TrustDomains []string `json:"trust_domains,omitempty"`
}

// ValidFor is a validity window; a zero End is open.
type ValidFor struct {
	Start time.Time  `json:"start"`
	End   *time.Time `json:"end,omitempty"`
}

// Contains reports whether t is inside the window.
func (v ValidFor) Contains(t time.Time) bool {
	return !t.Before(v.Start) && (v.End == nil || t.Before(*v.End))
}

// Kinds of trusted items, as the CLI names them.
const (
	KindFunctionaryCA = "functionary-ca"
	KindTSA           = "tsa"
	KindLog           = "log"
	KindLayoutKey     = "layout-key"
	KindWitness       = "witness"
)

// ErrTrustRoot wraps errors editing or parsing a TrustRoot.
var ErrTrustRoot = errors.New("trust root")

func (r *TrustRoot) list(kind string) (*[]Trusted, error) {
	switch kind {
	case KindFunctionaryCA:
		return &r.FunctionaryCAs, nil
	case KindTSA:
		return &r.TSAs, nil
	case KindLog:
		return &r.Logs, nil
	case KindLayoutKey:
		return &r.LayoutKeys, nil
	case KindWitness:
		return &r.Witnesses, nil
	}
	return nil, fmt.Errorf("%w: unknown kind %q (want %s, %s, %s, %s or %s)", ErrTrustRoot, kind,
		KindFunctionaryCA, KindTSA, KindLog, KindLayoutKey, KindWitness)
}

// Add adds a trusted item valid from start; a name already in use for
// that kind is an error.
func (r *TrustRoot) Add(kind, name, value string, start time.Time) error {
	l, err := r.list(kind)
	if err != nil {
		return err
	}
	if name == "" || value == "" {
		return fmt.Errorf("%w: a %s needs a name and a value", ErrTrustRoot, kind)
	}
	if kind == KindWitness {
		v, err := tlog.NewCosignatureVerifier(value)
		if err != nil {
			return fmt.Errorf("%w: witness %q: %v", ErrTrustRoot, name, err)
		}
		if v.Name() != name {
			return fmt.Errorf("%w: a witness is named by its key: %q, not %q", ErrTrustRoot, v.Name(), name)
		}
	}
	for _, t := range *l {
		if t.Name == name {
			return fmt.Errorf("%w: %s %q exists already", ErrTrustRoot, kind, name)
		}
	}
	// Whole seconds: timestamps (genTime) have one-second resolution.
	*l = append(*l, Trusted{Name: name, Value: value, ValidFor: ValidFor{Start: start.UTC().Truncate(time.Second)}})
	return nil
}

// Retire ends the validity of a trusted item at end.
func (r *TrustRoot) Retire(kind, name string, end time.Time) error {
	l, err := r.list(kind)
	if err != nil {
		return err
	}
	for i := range *l {
		t := &(*l)[i]
		if t.Name == name {
			if t.ValidFor.End != nil {
				return fmt.Errorf("%w: %s %q was retired already at %v", ErrTrustRoot, kind, name, *t.ValidFor.End)
			}
			if end.Before(t.ValidFor.Start) {
				return fmt.Errorf("%w: %s %q would end before it starts", ErrTrustRoot, kind, name)
			}
			e := end.UTC()
			t.ValidFor.End = &e
			return nil
		}
	}
	return fmt.Errorf("%w: no %s named %q", ErrTrustRoot, kind, name)
}

// SetTrustDomains sets the SPIFFE trust domains of the functionary CA
// named name (see [Trusted.TrustDomains]).
func (r *TrustRoot) SetTrustDomains(name string, domains []string) error {
	for _, d := range domains {
		if err := checkTrustDomain(d); err != nil {
			return err
		}
	}
	for i := range r.FunctionaryCAs {
		if r.FunctionaryCAs[i].Name == name {
			r.FunctionaryCAs[i].TrustDomains = domains
			return nil
		}
	}
	return fmt.Errorf("%w: no %s named %q", ErrTrustRoot, KindFunctionaryCA, name)
}

// ValidTrustDomain reports whether d is a SPIFFE trust domain name: 1 to
// 255 lowercase letters, digits, '.', '-' and '_' (SPIFFE-ID §2.1).
func ValidTrustDomain(d string) bool {
	ok := d != "" && len(d) <= 255
	for i := 0; ok && i < len(d); i++ {
		c := d[i]
		ok = 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '.' || c == '-' || c == '_'
	}
	return ok
}

func checkTrustDomain(d string) error {
	if !ValidTrustDomain(d) {
		return fmt.Errorf("%w: trust domain %q: want lowercase letters, digits, '.', '-' and '_' (e.g. example.org)", ErrTrustRoot, d)
	}
	return nil
}

// At returns the items of kind valid at t.
func (r *TrustRoot) At(kind string, t time.Time) ([]Trusted, error) {
	l, err := r.list(kind)
	if err != nil {
		return nil, err
	}
	var out []Trusted
	for _, it := range *l {
		if it.ValidFor.Contains(t) {
			out = append(out, it)
		}
	}
	return out, nil
}

// MaxTrustRootSize bounds a trust root.
const MaxTrustRootSize = 4 << 20

// ParseTrustRoot decodes a TrustRoot strictly: no duplicate or unknown
// fields at any depth, no key in another case, no trailing data; trust
// domains only on functionary CAs, well formed, each listed once per CA.
func ParseTrustRoot(b []byte) (*TrustRoot, error) {
	var r TrustRoot
	doc, err := strictjson.Unmarshal(b, &r, strictjson.Limits{MaxSize: MaxTrustRootSize, MaxDepth: 8})
	if err == nil {
		err = strictjson.Faithful(doc, r, "$", true)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrTrustRoot, err)
	}
	if r.MediaType != TrustRootMediaType {
		return nil, fmt.Errorf("%w: media type %q, want %q", ErrTrustRoot, r.MediaType, TrustRootMediaType)
	}
	for _, kind := range []string{KindTSA, KindLog, KindLayoutKey, KindWitness} {
		l, _ := r.list(kind)
		for _, t := range *l {
			if len(t.TrustDomains) > 0 {
				return nil, fmt.Errorf("%w: %s %q lists trust domains, which only a functionary CA may", ErrTrustRoot, kind, t.Name)
			}
		}
	}
	for _, t := range r.FunctionaryCAs {
		seen := map[string]bool{}
		for _, d := range t.TrustDomains {
			if err := checkTrustDomain(d); err != nil {
				return nil, err
			}
			if seen[d] {
				return nil, fmt.Errorf("%w: %s %q lists trust domain %q twice", ErrTrustRoot, KindFunctionaryCA, t.Name, d)
			}
			seen[d] = true
		}
	}
	if r.WitnessThreshold < 0 || r.MaxLogDelaySeconds < 0 {
		return nil, fmt.Errorf("%w: witness_threshold and max_log_delay_seconds must not be negative", ErrTrustRoot)
	}
	if r.TSAThreshold < 0 || r.TSAThreshold > MaxTimestamps || r.MaxTSASkewSeconds < 0 {
		return nil, fmt.Errorf("%w: tsa_threshold must be 0 to %d (an entry carries at most %d tokens) and max_tsa_skew_seconds must not be negative",
			ErrTrustRoot, MaxTimestamps, MaxTimestamps)
	}
	return &r, nil
}

// SetWitnessPolicy sets how many distinct witnesses must cosign each
// bundle's checkpoint and the longest delay allowed between a signature's
// genTime and its entry's first witnessed checkpoint (0: unbounded). The
// threshold may not exceed the witnesses listed.
func (r *TrustRoot) SetWitnessPolicy(threshold int, maxDelay time.Duration) error {
	if threshold < 0 || maxDelay < 0 {
		return fmt.Errorf("%w: the witness threshold and the maximum log delay must not be negative", ErrTrustRoot)
	}
	// Kept in whole seconds, 0 meaning unbounded: 500ms would be kept as
	// no bound at all, and 1.5s as 1s.
	if maxDelay%time.Second != 0 {
		return fmt.Errorf("%w: the maximum log delay %v is not a whole number of seconds (0: unbounded)", ErrTrustRoot, maxDelay)
	}
	if threshold > len(r.Witnesses) {
		return fmt.Errorf("%w: witness threshold %d, but the trust root lists %d witnesses", ErrTrustRoot, threshold, len(r.Witnesses))
	}
	r.WitnessThreshold, r.MaxLogDelaySeconds = threshold, int64(maxDelay/time.Second)
	return nil
}

// SetTSAPolicy sets how many of an entry's tokens must verify from
// distinct TSAs (0 or 1: one) and the largest spread allowed between their
// genTimes (0: unbounded). The threshold may not exceed the TSAs listed,
// nor the tokens an entry may carry.
func (r *TrustRoot) SetTSAPolicy(threshold int, maxSkew time.Duration) error {
	if threshold < 0 || maxSkew < 0 {
		return fmt.Errorf("%w: the TSA threshold and the maximum TSA skew must not be negative", ErrTrustRoot)
	}
	if threshold > len(r.TSAs) || threshold > MaxTimestamps {
		return fmt.Errorf("%w: TSA threshold %d, but the trust root lists %d TSAs (and an entry carries at most %d tokens)",
			ErrTrustRoot, threshold, len(r.TSAs), MaxTimestamps)
	}
	if maxSkew > 0 && maxSkew < time.Second {
		return fmt.Errorf("%w: the maximum TSA skew is in whole seconds (genTimes have one-second resolution)", ErrTrustRoot)
	}
	r.TSAThreshold, r.MaxTSASkewSeconds = threshold, int64(maxSkew/time.Second)
	return nil
}

// TSAPolicy returns the TSA threshold (at least 1) and the maximum skew
// between counted genTimes (0: unbounded).
func (r *TrustRoot) TSAPolicy() (threshold int, maxSkew time.Duration) {
	return max(r.TSAThreshold, 1), time.Duration(r.MaxTSASkewSeconds) * time.Second
}

// Marshal encodes r, indented for review.
func (r *TrustRoot) Marshal() ([]byte, error) {
	r.MediaType = TrustRootMediaType
	b, err := json.MarshalIndent(r, "", "  ")
	return append(b, '\n'), err
}
