// Package witness submits a log's checkpoints to witnesses with the C2SP
// tlog-witness protocol (https://c2sp.org/tlog-witness) and collects their
// tlog-cosignature/v1 cosignatures (https://c2sp.org/tlog-cosignature), which
// package tlog verifies.
//
// A witness keeps, per log origin, the latest checkpoint it cosigned and
// cosigns a newer one only with a consistency proof from it: so two
// verifiers who each require a witness's cosignature cannot be shown two
// different trees (a split view) by a log whose key was stolen. And the
// cosignature carries the witness's time, so it bounds when an entry was
// logged.
//
// [Client] speaks add-checkpoint to one witness; [Submitter] keeps track of
// the witness's tree size and retries the way the protocol asks (a 409
// answer carries the witness's size; the proof is rebuilt from it).
package witness

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/evident-dev/evident/internal/httpapi"
	"github.com/evident-dev/evident/tlog"
)

// Outcomes of add-checkpoint that callers branch on.
var (
	// ErrUnknownLog: the witness does not know the log or its key (403).
	ErrUnknownLog = errors.New("witness does not know the log or its key")
	// ErrInconsistent: the witness refused the consistency proof (422): the
	// checkpoint does not extend the one it cosigned last — a split view, or
	// a rollback of the log.
	ErrInconsistent = errors.New("witness refused the checkpoint as inconsistent with the tree it has seen")
	// ErrBadRequest: the witness found the request malformed (400).
	ErrBadRequest = errors.New("witness refused the request as malformed")
	// ErrBadCosignature: the witness answered 200 without a valid cosignature
	// of the submitted checkpoint by its key.
	ErrBadCosignature = errors.New("witness answered without a valid cosignature")
)

// ConflictError is a 409 answer: the witness's tree size is not the old size
// the request assumed.
type ConflictError struct {
	// Size is the tree size the witness has cosigned for the log.
	Size uint64
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("witness is at tree size %d, not the assumed old size", e.Size)
}

// StatusError is any other non-200 answer.
type StatusError struct {
	Status  int
	Message string
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("witness answered %d %s: %s", e.Status, http.StatusText(e.Status), e.Message)
}

// Limits of the client.
const (
	// MaxResponse bounds an add-checkpoint answer: a few signature lines.
	MaxResponse = 16 << 10
	// MaxRequest is what litewitness accepts; a proof has at most 64 hashes.
	MaxRequest = 10 << 10
	// DefaultTimeout bounds one add-checkpoint round trip.
	DefaultTimeout = 10 * time.Second
)

// Client sends add-checkpoint requests to one witness.
type Client struct {
	// URL is the witness's submission prefix: requests go to URL/add-checkpoint.
	URL string
	// HTTP is the client to use (default: one with no global timeout; each
	// request is bounded by Timeout).
	HTTP *http.Client
	// Timeout bounds one request (default DefaultTimeout).
	Timeout time.Duration
}

// AddCheckpointBody encodes an add-checkpoint request: "old N", one line per
// consistency proof hash (base64), an empty line, the signed checkpoint.
func AddCheckpointBody(oldSize uint64, proof [][]byte, signed []byte) []byte {
	var b bytes.Buffer
	b.WriteString("old ")
	b.WriteString(strconv.FormatUint(oldSize, 10))
	b.WriteByte('\n')
	for _, h := range proof {
		b.WriteString(base64.StdEncoding.EncodeToString(h))
		b.WriteByte('\n')
	}
	b.WriteByte('\n')
	b.Write(signed)
	return b.Bytes()
}

// AddCheckpoint asks the witness to cosign signed, which extends the tree of
// oldSize that it has cosigned before by the consistency proof. It returns
// the witness's signature lines (unverified: see [Submitter]). Errors:
// *ConflictError (409), ErrUnknownLog (403), ErrInconsistent (422),
// ErrBadRequest (400), *StatusError, or a transport error.
func (c *Client) AddCheckpoint(ctx context.Context, oldSize uint64, proof [][]byte, signed []byte) ([]byte, error) {
	body := AddCheckpointBody(oldSize, proof, signed)
	if len(body) > MaxRequest {
		return nil, fmt.Errorf("add-checkpoint request is %d bytes, over the witness limit of %d", len(body), MaxRequest)
	}
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(c.URL, "/")+"/add-checkpoint", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "text/plain; charset=utf-8")
	resp, err := httpapi.Client(c.HTTP).Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, MaxResponse+1))
	if err != nil {
		return nil, fmt.Errorf("reading the witness's answer: %w", err)
	}
	if len(b) > MaxResponse {
		return nil, fmt.Errorf("witness answer is over %d bytes", MaxResponse)
	}
	msg := strings.TrimSpace(string(b))
	switch resp.StatusCode {
	case http.StatusOK:
		return b, nil
	case http.StatusConflict:
		n, err := strconv.ParseUint(msg, 10, 64)
		if err != nil {
			return nil, &StatusError{Status: resp.StatusCode, Message: "409 without a tree size: " + firstLine(msg)}
		}
		return nil, &ConflictError{Size: n}
	case http.StatusForbidden:
		return nil, fmt.Errorf("%w: %s", ErrUnknownLog, firstLine(msg))
	case http.StatusUnprocessableEntity:
		return nil, fmt.Errorf("%w: %s", ErrInconsistent, firstLine(msg))
	case http.StatusBadRequest:
		return nil, fmt.Errorf("%w: %s", ErrBadRequest, firstLine(msg))
	}
	return nil, &StatusError{Status: resp.StatusCode, Message: firstLine(msg)}
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	if len(s) > 200 {
		s = s[:200]
	}
	return s
}

// ProofFunc returns the consistency proof between the log's trees of sizes
// from and to (0 < from < to).
type ProofFunc func(ctx context.Context, from, to uint64) ([][]byte, error)

// Submitter submits one log's checkpoints to one witness, remembering the
// witness's tree size between calls. It is not safe for concurrent use.
type Submitter struct {
	Client   *Client
	Verifier *tlog.CosignatureVerifier
	Proof    ProofFunc

	size  uint64 // the witness's tree size as last learnt
	known bool
}

// Size returns the witness's tree size as the submitter last learnt it.
func (s *Submitter) Size() (uint64, bool) { return s.size, s.known }

// Submit asks the witness to cosign the checkpoint cp (signed is its signed
// note) and returns the verified cosignature. A 409 teaches the witness's
// size and the request is retried once with a proof from it. A witness
// that has seen a larger tree than cp, or refuses the proof, gives an error
// wrapping ErrInconsistent: the log showed it another tree.
func (s *Submitter) Submit(ctx context.Context, cp tlog.Checkpoint, signed []byte) (tlog.Cosignature, error) {
	for try := 0; try < 3; try++ {
		old := s.size
		if old > cp.Size {
			return tlog.Cosignature{}, fmt.Errorf("%w: it has cosigned size %d, larger than this checkpoint's %d", ErrInconsistent, old, cp.Size)
		}
		var proof [][]byte
		if old > 0 && old < cp.Size {
			var err error
			if proof, err = s.Proof(ctx, old, cp.Size); err != nil {
				return tlog.Cosignature{}, fmt.Errorf("couldn't build the consistency proof from %d to %d: %w", old, cp.Size, err)
			}
		}
		lines, err := s.Client.AddCheckpoint(ctx, old, proof, signed)
		var conflict *ConflictError
		if errors.As(err, &conflict) {
			s.size, s.known = conflict.Size, true
			continue
		}
		if err != nil {
			return tlog.Cosignature{}, err
		}
		full := tlog.AddSignatureLines(signed, splitLines(lines)...)
		valid, _, err := tlog.VerifyCosignatures(full, []*tlog.CosignatureVerifier{s.Verifier})
		if err != nil || len(valid) == 0 {
			return tlog.Cosignature{}, fmt.Errorf("%w by %s for size %d", ErrBadCosignature, s.Verifier.Name(), cp.Size)
		}
		s.size, s.known = cp.Size, true
		return valid[0], nil
	}
	return tlog.Cosignature{}, fmt.Errorf("witness kept answering 409 (last size %d)", s.size)
}

// splitLines splits a witness answer into signature lines, each keeping its
// newline.
func splitLines(b []byte) []string {
	var out []string
	for _, l := range strings.SplitAfter(string(b), "\n") {
		if strings.HasPrefix(l, "— ") && strings.HasSuffix(l, "\n") {
			out = append(out, l)
		}
	}
	return out
}
