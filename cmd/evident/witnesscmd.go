package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/evident-dev/evident"
	"github.com/evident-dev/evident/internal/httpapi"
	"github.com/evident-dev/evident/log"
	"github.com/evident-dev/evident/log/logclient"
	"github.com/evident-dev/evident/tlog"
	"github.com/evident-dev/evident/tufrepo"
)

// pathWitnessed is the server's cosigned-checkpoint endpoint (serve.PathWitnessed).
const pathWitnessed = "/log/v1/witnessed"

// witnessPolicy is the trust root's witnesses (valid now) and threshold.
type witnessPolicy struct {
	verifiers []*tlog.CosignatureVerifier
	threshold int
}

// loadWitnessPolicy reads the trust root through TUF (rootFile: a trusted
// root.json; repo: the repository URL) and returns its witness policy, or
// nil when rootFile is empty.
func loadWitnessPolicy(rootFile, repo string) (*witnessPolicy, error) {
	if rootFile == "" {
		return nil, nil
	}
	root, err := os.ReadFile(rootFile)
	if err != nil {
		return nil, usagef("--tuf-root: %v", err)
	}
	cache, err := os.MkdirTemp("", "evident-tuf-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(cache)
	c, err := tufrepo.NewClient(tufrepo.ClientOptions{Root: root, URL: repo, CacheDir: cache})
	if err != nil {
		return nil, err
	}
	tr, err := c.TrustRoot()
	if err != nil {
		return nil, err
	}
	return policyOf(tr, time.Now()), nil
}

func policyOf(tr *evident.TrustRoot, now time.Time) *witnessPolicy {
	p := &witnessPolicy{threshold: tr.WitnessThreshold}
	ws, _ := tr.At(evident.KindWitness, now)
	for _, w := range ws {
		if v, err := tlog.NewCosignatureVerifier(w.Value); err == nil {
			p.verifiers = append(p.verifiers, v)
		}
	}
	return p
}

// errNotWitnessed: no checkpoint covering the entry carries the threshold
// of valid cosignatures (yet).
var errNotWitnessed = errors.New("no checkpoint cosigned by the witness threshold covers the entry")

// fetchWitnessed asks the server for the first checkpoint that covers the
// entry at index and carries k cosignatures, waiting up to wait, and
// verifies it: the log's signature, k distinct valid cosignatures by the
// policy's witnesses (when p is set), the entry's inclusion. It returns the
// signed note, the inclusion proof and the cosignatures.
func fetchWitnessed(ctx context.Context, lc *logclient.Client, index uint64, entry []byte, p *witnessPolicy, k int, wait time.Duration) ([]byte, [][]byte, []tlog.Cosignature, error) {
	q := url.Values{"index": {strconv.FormatUint(index, 10)}, "cosignatures": {strconv.Itoa(k)}, "wait": {wait.String()}}
	ctx, cancel := context.WithTimeout(ctx, wait+10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(lc.URL, "/")+pathWitnessed+"?"+q.Encode(), nil)
	if err != nil {
		return nil, nil, nil, err
	}
	resp, err := httpapi.DefaultClient().Do(req)
	if err != nil {
		return nil, nil, nil, err
	}
	defer resp.Body.Close()
	signed, err := readLimited(resp.Body, tlog.MaxCheckpointSize)
	if err != nil {
		return nil, nil, nil, err
	}
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusNotFound:
		return nil, nil, nil, fmt.Errorf("%w after %v", errNotWitnessed, wait)
	default:
		return nil, nil, nil, fmt.Errorf("GET %s: %s: %s", pathWitnessed, resp.Status, httpapi.ErrorMessage(signed))
	}
	cp, err := log.OpenCheckpoint(signed, lc.Origin, lc.Verifier)
	if err != nil {
		return nil, nil, nil, err
	}
	var cosigs []tlog.Cosignature
	if p != nil {
		if cosigs, _, err = tlog.VerifyCosignatures(signed, p.verifiers); err != nil {
			return nil, nil, nil, err
		}
		if len(cosigs) < k {
			return nil, nil, nil, fmt.Errorf("%w: the server's checkpoint of size %d has %d valid cosignatures by trusted witnesses, want %d", errNotWitnessed, cp.Size, len(cosigs), k)
		}
	}
	proof, err := lc.InclusionProof(ctx, index, cp.Size)
	if err != nil {
		return nil, nil, nil, err
	}
	if err := log.VerifyInclusion(index, cp, log.LeafHash(entry), proof); err != nil {
		return nil, nil, nil, err
	}
	return signed, proof, cosigs, nil
}

func readLimited(r io.Reader, max int) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, int64(max)+1))
	if err == nil && len(b) > max {
		err = fmt.Errorf("answer over %d bytes", max)
	}
	return b, err
}

func cosignerNames(cs []tlog.Cosignature) string {
	var names []string
	for _, c := range cs {
		names = append(names, c.Name)
	}
	return strings.Join(names, ", ")
}

// errBadCosignature: a trusted witness's key signed something that does not
// verify — forged or corrupted cosignatures.
var errBadCosignature = errors.New("the log serves an invalid cosignature by a trusted witness")

// checkWitnessedHead checks the log's latest witnessed checkpoint for log
// watch: every cosignature by a trusted witness valid, at least the
// threshold of them, and the witnessed tree consistent with cur (the log's
// latest checkpoint). Too few cosignatures is a warning (a witness may be
// down); an invalid one or an inconsistent tree is an error.
func checkWitnessedHead(ctx context.Context, e *env, c *logclient.Client, p *witnessPolicy, cur log.Checkpoint) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(c.URL, "/")+pathWitnessed, nil)
	if err != nil {
		return err
	}
	resp, err := httpapi.DefaultClient().Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	signed, err := readLimited(resp.Body, tlog.MaxCheckpointSize)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintf(e.stderr, "evident: warning: the log shows no witnessed checkpoint (%s)\n", resp.Status)
		return nil
	}
	wcp, err := log.OpenCheckpoint(signed, c.Origin, c.Verifier)
	if err != nil {
		return err
	}
	cosigs, invalid, err := tlog.VerifyCosignatures(signed, p.verifiers)
	if err != nil {
		return err
	}
	if len(invalid) > 0 {
		return fmt.Errorf("%w: %s on size %d", errBadCosignature, strings.Join(invalid, ", "), wcp.Size)
	}
	if wcp.Size > cur.Size {
		return &logclient.SplitViewError{Old: signed, New: nil, Err: fmt.Errorf("%w: witnessed size %d is beyond the served size %d", log.ErrInconsistent, wcp.Size, cur.Size)}
	}
	if err := c.Consistent(ctx, wcp, cur); err != nil {
		if errors.Is(err, log.ErrInconsistent) {
			return &logclient.SplitViewError{Old: signed, Err: err}
		}
		return err
	}
	if len(cosigs) < p.threshold {
		fmt.Fprintf(e.stderr, "evident: warning: the latest witnessed checkpoint (size %d) has %d valid cosignatures, the trust root wants %d\n",
			wcp.Size, len(cosigs), p.threshold)
		return nil
	}
	fmt.Fprintf(e.stdout, "%s witnessed: size %d cosigned by %s\n", time.Now().UTC().Format(time.RFC3339), wcp.Size, cosignerNames(cosigs))
	return nil
}
