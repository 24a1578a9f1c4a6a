package verify

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/evident-dev/evident"
	"github.com/evident-dev/evident/tlog"
)

// Errors of the witness checks.
var (
	// ErrWitness: the bundle's checkpoint is not cosigned by the trust
	// root's threshold of distinct witnesses, each valid when it cosigned.
	ErrWitness = errors.New("checkpoint is not cosigned by enough trusted witnesses")
	// ErrLogDelay: the entry was first witnessed too long after its
	// signature's genTime (a backdated timestamp).
	ErrLogDelay = errors.New("entry was logged too long after its timestamp")
	// ErrWitnessedBeforeTimestamp: witnesses cosigned a checkpoint holding
	// the entry before its genTime, further than the token's accuracy and
	// the cosignatures' one-second resolution explain. An entry holds its
	// token, so it cannot be logged before the token was made: the genTime
	// is in the future (a TSA clock far ahead, or a forged time).
	ErrWitnessedBeforeTimestamp = errors.New("entry was witnessed before its timestamp")
)

// checkWitnessed enforces the trust root's witness policy on one bundle
// whose entry (canonical, timestamped at genTime) was proved in the log:
// the witnessed checkpoint (b.Witnessed, else b.Checkpoint) must be signed
// by a log key of the trust root valid at genTime, include the entry, and
// carry valid cosignatures of at least WitnessThreshold distinct trusted
// witnesses, each valid at its cosignature's time. The threshold-th earliest
// of those times is when the witnesses (not the log, not the TSA) say they
// had seen the entry; the delay from genTime to it must not exceed
// MaxLogDelaySeconds, nor be negative beyond accuracy (the token's) and the
// one second a cosignature's whole-second time may lose. With no threshold
// it checks nothing.
func checkWitnessed(r *Report, tr *evident.TrustRoot, name string, b *evident.Bundle, canonical []byte, genTime time.Time, accuracy time.Duration) error {
	k := tr.WitnessThreshold
	if k <= 0 {
		return nil
	}
	check := name + ": witnesses"
	signed, proof := []byte(b.Checkpoint), b.InclusionProof
	if b.Witnessed != nil {
		signed, proof = []byte(b.Witnessed.Checkpoint), b.Witnessed.InclusionProof
	}
	cp, _, err := tr.OpenCheckpoint(signed, genTime)
	if err != nil {
		return &bundleError{check: check, err: fmt.Errorf("%w: the witnessed checkpoint is not signed by a log key of the trust root", ErrWitness)}
	}
	if err := tlog.VerifyInclusion(b.LogIndex, cp, tlog.LeafHash(canonical), proof); err != nil {
		return &bundleError{check: check, err: fmt.Errorf("%w: the witnessed checkpoint: %v", ErrLogProof, err)}
	}
	// Every witness ever trusted; each cosignature counts only if the
	// trusted item whose key made it was valid at the time it says it
	// signed, and once per witness: by name and by key, since one key
	// listed under two names would make one signature count twice.
	seenName, seenKey := map[string]bool{}, map[string]bool{}
	var counted []tlog.Cosignature
	var invalid, outside []string
	for _, t := range tr.Witnesses {
		v, err := tlog.NewCosignatureVerifier(t.Value)
		if err != nil {
			continue
		}
		valid, bad, err := tlog.VerifyCosignatures(signed, []*tlog.CosignatureVerifier{v})
		if err != nil {
			return &bundleError{check: check, err: fmt.Errorf("%w: %v", ErrWitness, err)}
		}
		invalid = append(invalid, bad...)
		for _, c := range valid {
			key := string(v.PublicKey())
			switch {
			case !t.ValidFor.Contains(c.Time):
				outside = append(outside, c.Name)
			case !seenName[c.Name] && !seenKey[key]:
				seenName[c.Name], seenKey[key] = true, true
				counted = append(counted, c)
			}
		}
	}
	if len(counted) < k {
		detail := fmt.Sprintf("%d valid cosignatures from distinct trusted witnesses on size %d, threshold %d", len(counted), cp.Size, k)
		if len(counted) > 0 {
			detail += " (" + cosignerList(counted) + ")"
		}
		if len(invalid) > 0 {
			detail += "; invalid cosignatures by " + strings.Join(invalid, ", ")
		}
		if len(outside) > 0 {
			detail += "; cosigned outside their validity by " + strings.Join(outside, ", ")
		}
		return &bundleError{check: check, err: fmt.Errorf("%w: %s", ErrWitness, detail)}
	}
	sort.Slice(counted, func(i, j int) bool { return counted[i].Time.Before(counted[j].Time) })
	seenAt := counted[k-1].Time
	delay := seenAt.Sub(genTime)
	r.pass(check, "checkpoint size %d cosigned by %s (threshold %d)", cp.Size, cosignerList(counted), k)
	if early := -delay; early > accuracy+time.Second {
		return &bundleError{check: name + ": log delay", err: fmt.Errorf("%w: first witnessed at %s, %v before genTime %s ± %v: the timestamp's time is later than the log's",
			ErrWitnessedBeforeTimestamp, seenAt.Format(time.RFC3339), early, genTime.UTC().Format(time.RFC3339), accuracy)}
	}
	maxDelay := time.Duration(tr.MaxLogDelaySeconds) * time.Second
	if maxDelay > 0 && delay > maxDelay {
		return &bundleError{check: name + ": log delay", err: fmt.Errorf("%w: first witnessed at %s, %v after genTime %s; the trust root allows %v",
			ErrLogDelay, seenAt.Format(time.RFC3339), delay, genTime.UTC().Format(time.RFC3339), maxDelay)}
	}
	bound := "unbounded"
	if maxDelay > 0 {
		bound = "at most " + maxDelay.String()
	}
	r.pass(name+": log delay", "first witnessed at %s, %v after genTime (%s)", seenAt.Format(time.RFC3339), delay, bound)
	return nil
}

func cosignerList(cs []tlog.Cosignature) string {
	var s []string
	for _, c := range cs {
		s = append(s, c.Name+" at "+c.Time.Format(time.RFC3339))
	}
	return strings.Join(s, ", ")
}
