package verify

import (
	"crypto"
	"crypto/sha256"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/evident-dev/evident"
	"github.com/evident-dev/evident/rfc3161"
)

// countedToken is a token that verified, and the TSA it is from.
type countedToken struct {
	where string // "timestamp" or "timestamps[i]"
	tsa   string
	tok   *rfc3161.Token
}

// timestamps verifies e's tokens and picks those that count: each valid
// for the signature under TSARoots and from a trusted TSA at its genTime,
// one per TSA, all within MaxTSASkew of each other — the largest such set,
// the earliest of equals. Fewer than the threshold is an error that says
// why each token did not count; with one token and a threshold of 1 it is
// that token's error, as for every version 1 entry.
func (v *EntryVerifier) timestamps(e *evident.Entry) (*VerifiedEntry, error) {
	tokens := e.Tokens()
	k := max(v.TSAThreshold, 1)
	sigDigest := sha256.Sum256(e.Signature)
	var good []countedToken
	var bad []error
	var out VerifiedEntry
	for i, der := range tokens {
		where := "timestamp"
		if e.Version != evident.Version1 {
			where = fmt.Sprintf("timestamps[%d]", i)
		}
		tok, err := rfc3161.Verify(der, rfc3161.Options{Roots: v.TSARoots, TSACertificates: v.TSACertificates,
			Hash: crypto.SHA256, Digest: sigDigest[:], Cache: v.Cache})
		var name string
		if err == nil {
			var ok bool
			if name, ok = v.tsaName(tok); !ok {
				root := tok.Chain[len(tok.Chain)-1]
				err = fmt.Errorf("%w: root %q is not a TSA of the trust root at genTime %s", rfc3161.ErrTokenUntrusted,
					root.Subject, tok.GenTime.UTC().Format(time.RFC3339))
			}
		}
		if err != nil {
			bad = append(bad, fmt.Errorf("%s: %w", where, err))
			out.Ignored = append(out.Ignored, bad[len(bad)-1].Error())
			continue
		}
		good = append(good, countedToken{where: where, tsa: name, tok: tok})
	}
	chosen, dropped := pickTokens(good, v.MaxTSASkew)
	out.Ignored = append(out.Ignored, dropped...)
	if len(chosen) < k {
		if len(tokens) == 1 && len(bad) == 1 {
			return nil, fmt.Errorf("timestamp: %w", bad[0])
		}
		return nil, v.thresholdError(k, good, chosen, bad)
	}
	for _, c := range chosen {
		out.Timestamps = append(out.Timestamps, c.tok)
		out.TSAs = append(out.TSAs, c.tsa)
	}
	out.Timestamp = out.Timestamps[0]
	return &out, nil
}

// tsaName names the TSA of a verified token; see EntryVerifier.TSAName.
func (v *EntryVerifier) tsaName(tok *rfc3161.Token) (string, bool) {
	root := tok.Chain[len(tok.Chain)-1]
	if v.TSAName != nil {
		return v.TSAName(root, tok.GenTime)
	}
	h := sha256.Sum256(root.Raw)
	return fmt.Sprintf("%s (root %x)", root.Subject.CommonName, h[:4]), true
}

// pickTokens returns the largest set of tokens from distinct TSAs whose
// genTimes lie within skew of each other (0: any), earliest first, and
// why each other token does not count. Its cost is quadratic in the
// number of tokens, at most evident.MaxTimestamps.
func pickTokens(good []countedToken, skew time.Duration) (chosen []countedToken, dropped []string) {
	sorted := append([]countedToken(nil), good...)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].tok.GenTime.Before(sorted[j].tok.GenTime) })
	for i := range sorted {
		var set []countedToken
		seen := map[string]bool{}
		for _, c := range sorted[i:] {
			if skew > 0 && c.tok.GenTime.Sub(sorted[i].tok.GenTime) > skew {
				break
			}
			if !seen[c.tsa] {
				seen[c.tsa] = true
				set = append(set, c)
			}
		}
		if len(set) > len(chosen) {
			chosen = set
		}
	}
	in := map[*rfc3161.Token]bool{}
	byTSA := map[string]countedToken{}
	for _, c := range chosen {
		in[c.tok], byTSA[c.tsa] = true, c
	}
	for _, c := range good {
		switch first, ok := byTSA[c.tsa]; {
		case in[c.tok]:
		case ok:
			dropped = append(dropped, fmt.Sprintf("%s: from %s, as %s: counted once", c.where, c.tsa, first.where))
		default:
			dropped = append(dropped, fmt.Sprintf("%s: from %s at %s, more than %v from the others that count",
				c.where, c.tsa, c.tok.GenTime.UTC().Format(time.RFC3339), skew))
		}
	}
	return chosen, dropped
}

// thresholdError says why fewer than k tokens count: the skew bound, when
// the valid tokens came from enough TSAs but disagree on the time; too few
// TSAs otherwise. It wraps every token's own error.
func (v *EntryVerifier) thresholdError(k int, good, chosen []countedToken, bad []error) error {
	distinct := map[string]countedToken{}
	for _, c := range good {
		if old, ok := distinct[c.tsa]; !ok || c.tok.GenTime.Before(old.tok.GenTime) {
			distinct[c.tsa] = c
		}
	}
	names := func(cs []countedToken) string {
		var s []string
		for _, c := range cs {
			s = append(s, c.tsa+" at "+c.tok.GenTime.UTC().Format(time.RFC3339))
		}
		if len(s) == 0 {
			return "none"
		}
		return strings.Join(s, ", ")
	}
	format, args := "timestamps: %w: %d of threshold %d count (%s)", []any{ErrTSAThreshold, len(chosen), k, names(chosen)}
	if len(distinct) >= k {
		var all []countedToken
		for _, c := range distinct {
			all = append(all, c)
		}
		sort.Slice(all, func(i, j int) bool { return all[i].tok.GenTime.Before(all[j].tok.GenTime) })
		spread := all[len(all)-1].tok.GenTime.Sub(all[0].tok.GenTime)
		format, args = "timestamps: %w: %s span %v, the trust root allows %v, so %d of threshold %d count",
			[]any{ErrTSASkew, names(all), spread, v.MaxTSASkew, len(chosen), k}
	}
	for _, err := range bad {
		format += "; %w"
		args = append(args, err)
	}
	return fmt.Errorf(format, args...)
}
