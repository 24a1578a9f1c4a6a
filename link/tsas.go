package link

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"
)

// Stamper gets the RFC 3161 tokens of a signature, each over the SHA-256
// of the signature bytes: one from one TSA (*tsa.Client, or [One]), or one
// from each of several that answer ([TSAs]).
type Stamper interface {
	Tokens(ctx context.Context, sigDigest []byte) ([][]byte, error)
}

// One is a Stamper of one TSA.
func One(ts Timestamper) Stamper { return one{ts} }

type one struct{ Timestamper }

func (o one) Tokens(ctx context.Context, sigDigest []byte) ([][]byte, error) {
	_, token, err := o.Timestamp(ctx, crypto.SHA256, sigDigest)
	if err != nil {
		return nil, err
	}
	return [][]byte{token}, nil
}

// TSA is one timestamp authority of [TSAs], named (by its URL) in reports.
type TSA struct {
	Name   string
	Client Timestamper
}

// DefaultTSATimeout bounds each TSA's answer when TSAs.Timeout is 0.
const DefaultTSATimeout = 10 * time.Second

// TSAs asks several timestamp authorities at once, so that one stolen TSA
// key alone cannot forge the time a verifier requiring a threshold of
// distinct TSAs accepts. It is a [Stamper].
type TSAs struct {
	TSAs []TSA
	// Threshold is how many must answer with a verified token (0: 1).
	Threshold int
	// Timeout bounds each TSA's answer (0: DefaultTSATimeout).
	Timeout time.Duration
	// Skipped, when set, is told of each TSA that did not answer when
	// enough others did.
	Skipped func(name string, err error)
}

// TSAError says that fewer TSAs than the threshold answered, and why each
// of the others did not.
type TSAError struct {
	Threshold, Answered int
	// Failed maps a TSA's name to its error.
	Failed map[string]error
}

func (e *TSAError) Error() string {
	var why []string
	for _, name := range sortedKeys(e.Failed) {
		why = append(why, fmt.Sprintf("%s: %v", name, e.Failed[name]))
	}
	return fmt.Sprintf("%d of %d TSAs answered, the threshold is %d; failed: %s",
		e.Answered, e.Answered+len(e.Failed), e.Threshold, strings.Join(why, "; "))
}

// Unwrap returns the TSAs' errors.
func (e *TSAError) Unwrap() []error {
	var errs []error
	for _, name := range sortedKeys(e.Failed) {
		errs = append(errs, e.Failed[name])
	}
	return errs
}

func sortedKeys(m map[string]error) []string { return slices.Sorted(maps.Keys(m)) }

// Tokens asks every TSA at once for a token over sigDigest, each within
// Timeout, and returns the verified tokens of those that answered, in the
// order of TSAs. Fewer than Threshold is a *TSAError naming the TSAs that
// failed; otherwise each failed TSA is reported to Skipped.
func (t *TSAs) Tokens(ctx context.Context, sigDigest []byte) ([][]byte, error) {
	if len(t.TSAs) == 0 {
		return nil, errors.New("no TSA to ask")
	}
	timeout := t.Timeout
	if timeout <= 0 {
		timeout = DefaultTSATimeout
	}
	tokens := make([][]byte, len(t.TSAs))
	errs := make([]error, len(t.TSAs))
	var wg sync.WaitGroup
	for i, ts := range t.TSAs {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			_, tokens[i], errs[i] = ts.Client.Timestamp(ctx, crypto.SHA256, sigDigest)
		})
	}
	wg.Wait()
	var out [][]byte
	failed := map[string]error{}
	for i, ts := range t.TSAs {
		if errs[i] != nil {
			failed[ts.Name] = errs[i]
		} else {
			out = append(out, tokens[i])
		}
	}
	if len(out) < max(t.Threshold, 1) {
		return nil, &TSAError{Threshold: max(t.Threshold, 1), Answered: len(out), Failed: failed}
	}
	if t.Skipped != nil {
		for _, name := range sortedKeys(failed) {
			t.Skipped(name, failed[name])
		}
	}
	return out, nil
}
