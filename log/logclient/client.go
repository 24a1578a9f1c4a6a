// Package logclient is the HTTP client of a log's API (package log's
// Handler): it appends entries and reads checkpoints, entries and proofs,
// verifying every checkpoint against the log's note verifier key and every
// proof against a verified checkpoint; [Monitor] keeps watch on one log for
// split views. It imports no storage code: package log's server side stays
// out of a client's build but for the shared formats. It is named
// logclient, not client, so that call sites read logclient.Client and keep
// "client" for their variables.
package logclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/evident-dev/evident/internal/httpapi"
	"github.com/evident-dev/evident/log"
	"golang.org/x/mod/sumdb/note"
)

// Client talks to a log's HTTP API and verifies everything it gets: every
// checkpoint against the log's note verifier key, every proof against a
// verified checkpoint.
type Client struct {
	// URL is the server root, e.g. http://127.0.0.1:8080.
	URL string
	// Origin is the log's checkpoint origin; Verifier its note key.
	Origin   string
	Verifier note.Verifier
	// HTTP is the client to use (default: one whose requests time out after
	// httpapi.ClientTimeout).
	HTTP *http.Client
	// AddRetries is how often Add retries an append answered 503 — no
	// sequencer at the moment, as during a failover, or overloaded —
	// after the answer's Retry-After (at most 10s; default 1s). Zero means
	// 5; negative, never. Retrying is safe: an entry already in the log
	// gets its first index back.
	AddRetries int
}

// maxResponse bounds every response body the client reads.
const maxResponse = 1 << 20

// doRetryAfter posts an entry and returns, besides do's results, how long
// the answer's Retry-After asks to wait (1s if absent, at most 10s).
func (c *Client) doRetryAfter(ctx context.Context, entry []byte) ([]byte, time.Duration, error) {
	var retryAfter string
	b, err := c.doHeader(ctx, http.MethodPost, log.PathEntries, entry, func(h http.Header) { retryAfter = h.Get("Retry-After") })
	wait := time.Second
	if n, perr := strconv.Atoi(retryAfter); perr == nil && n >= 0 {
		wait = min(time.Duration(n)*time.Second, 10*time.Second)
	}
	return b, wait, err
}

func (c *Client) do(ctx context.Context, method, path string, body []byte) ([]byte, error) {
	return c.doHeader(ctx, method, path, body, nil)
}

func (c *Client) doHeader(ctx context.Context, method, path string, body []byte, header func(http.Header)) ([]byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimSuffix(c.URL, "/")+path, rd)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := httpapi.Client(c.HTTP).Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if header != nil {
		header(resp.Header)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse+1))
	if err != nil {
		return nil, fmt.Errorf("%s %s: reading response: %w", method, path, err)
	}
	if len(b) > maxResponse {
		return nil, fmt.Errorf("%s %s: response over %d bytes", method, path, maxResponse)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, &HTTPError{Status: resp.StatusCode, Message: httpapi.ErrorMessage(b)}
	}
	return b, nil
}

// HTTPError is a non-200 answer from the server.
type HTTPError struct {
	Status  int
	Message string
}

func (e *HTTPError) Error() string {
	return fmt.Sprintf("server answered %d %s: %s", e.Status, http.StatusText(e.Status), e.Message)
}

// Checkpoint fetches and verifies the latest checkpoint. It returns the
// parsed body and the signed note.
func (c *Client) Checkpoint(ctx context.Context) (log.Checkpoint, []byte, error) {
	b, err := c.do(ctx, http.MethodGet, log.PathCheckpoint, nil)
	if err != nil {
		return log.Checkpoint{}, nil, err
	}
	cp, err := log.OpenCheckpoint(b, c.Origin, c.Verifier)
	return cp, b, err
}

// Entry fetches the entry at index. The caller verifies it with
// [Client.ProveEntry] or by its own means.
func (c *Client) Entry(ctx context.Context, index uint64) ([]byte, error) {
	return c.do(ctx, http.MethodGet, log.PathEntries+"/"+strconv.FormatUint(index, 10), nil)
}

// ProveEntry fetches the entry at index and its inclusion proof in cp, and
// verifies the proof. It returns the entry and the proof.
func (c *Client) ProveEntry(ctx context.Context, index uint64, cp log.Checkpoint) ([]byte, [][]byte, error) {
	e, err := c.Entry(ctx, index)
	if err != nil {
		return nil, nil, err
	}
	p, err := c.InclusionProof(ctx, index, cp.Size)
	if err != nil {
		return nil, nil, err
	}
	if err := log.VerifyInclusion(index, cp, log.LeafHash(e), p); err != nil {
		return nil, nil, err
	}
	return e, p, nil
}

// InclusionProof fetches (without verifying) the inclusion proof of index in
// the tree of the given size.
func (c *Client) InclusionProof(ctx context.Context, index, size uint64) ([][]byte, error) {
	q := url.Values{"index": {strconv.FormatUint(index, 10)}, "size": {strconv.FormatUint(size, 10)}}
	return c.proof(ctx, log.PathInclusionProof+"?"+q.Encode())
}

// ConsistencyProof fetches (without verifying) the consistency proof between
// the trees of sizes from and to.
func (c *Client) ConsistencyProof(ctx context.Context, from, to uint64) ([][]byte, error) {
	q := url.Values{"from": {strconv.FormatUint(from, 10)}, "to": {strconv.FormatUint(to, 10)}}
	return c.proof(ctx, log.PathConsistencyProf+"?"+q.Encode())
}

func (c *Client) proof(ctx context.Context, path string) ([][]byte, error) {
	b, err := c.do(ctx, http.MethodGet, path, nil)
	if err != nil {
		return nil, err
	}
	var pr log.ProofResponse
	if err := json.Unmarshal(b, &pr); err != nil {
		return nil, fmt.Errorf("couldn't decode proof: %w", err)
	}
	if len(pr.Hashes) > 2*64 {
		return nil, fmt.Errorf("%w: %d hashes is more than any tree needs", log.ErrBadProof, len(pr.Hashes))
	}
	return pr.Hashes, nil
}

// Add submits entry, which must be in canonical form, and verifies that the
// answer proves its inclusion under a checkpoint signed by the log.
func (c *Client) Add(ctx context.Context, entry []byte) (*log.AddResult, error) {
	return c.Submit(ctx, entry, entry)
}

// Submit posts body, which carries entry (the entry itself, or the entry
// beside more that the server's validator reads, such as its payload), and
// checks, as Add does, that the answer proves entry, canonical, in the log.
func (c *Client) Submit(ctx context.Context, body, entry []byte) (*log.AddResult, error) {
	retries := c.AddRetries
	if retries == 0 {
		retries = 5
	}
	var b []byte
	var err error
	for try := 0; ; try++ {
		var wait time.Duration
		b, wait, err = c.doRetryAfter(ctx, body)
		var he *HTTPError
		if err == nil || try >= retries || !errors.As(err, &he) || he.Status != http.StatusServiceUnavailable {
			break
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, err
		case <-t.C:
		}
	}
	if err != nil {
		return nil, err
	}
	var ar log.AddResponse
	if err := json.Unmarshal(b, &ar); err != nil {
		return nil, fmt.Errorf("couldn't decode add response: %w", err)
	}
	cp, err := log.OpenCheckpoint([]byte(ar.Checkpoint), c.Origin, c.Verifier)
	if err != nil {
		return nil, &UnverifiedAddError{Index: ar.Index, What: "checkpoint", Err: err}
	}
	if err := log.VerifyInclusion(ar.Index, cp, log.LeafHash(entry), ar.InclusionProof); err != nil {
		return nil, &UnverifiedAddError{Index: ar.Index, What: "inclusion proof", Err: err}
	}
	return &log.AddResult{Index: ar.Index, Duplicate: ar.Duplicate, Checkpoint: []byte(ar.Checkpoint),
		Size: cp.Size, Proof: ar.InclusionProof}, nil
}

// UnverifiedAddError reports an append the log answered, at Index, with a
// checkpoint or inclusion proof that does not verify: the entry may be in
// the log, but nothing proves it is in the log others see.
type UnverifiedAddError struct {
	Index uint64
	What  string // "checkpoint" or "inclusion proof"
	Err   error
}

func (e *UnverifiedAddError) Error() string {
	return fmt.Sprintf("the log says it appended the entry at index %d, but its %s does not verify: %v", e.Index, e.What, e.Err)
}

func (e *UnverifiedAddError) Unwrap() error { return e.Err }

// Consistent fetches the proof that new extends old and verifies it.
func (c *Client) Consistent(ctx context.Context, old, new log.Checkpoint) error {
	var p [][]byte
	if old.Size > 0 && new.Size > old.Size {
		var err error
		if p, err = c.ConsistencyProof(ctx, old.Size, new.Size); err != nil {
			return err
		}
	}
	return log.VerifyConsistency(old, new, p)
}
