package tsa

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"strings"

	"github.com/digitorus/timestamp"
	"github.com/evident-dev/evident/internal/httpapi"
	"github.com/evident-dev/evident/rfc3161"
)

// Client requests timestamps from an RFC 3161 TSA over HTTP and verifies
// every token it gets with [rfc3161.Timestamp] against Roots, which the
// caller supplies: trust never comes from the token or the server.
type Client struct {
	// URL is the TSA endpoint, e.g. http://127.0.0.1:8080/tsa.
	URL string
	// Roots are the trusted TSA roots. Required.
	Roots *x509.CertPool
	// Policies, when set, are the accepted token policies.
	Policies []asn1.ObjectIdentifier
	HTTP     *http.Client
	// Cache remembers verified TSA chains between calls.
	Cache *rfc3161.ChainCache
}

// ErrStatus reports a TimeStampResp whose status is not granted.
var ErrStatus = errors.New("the TSA did not grant the timestamp")

// maxReply bounds a TimeStampResp the client reads.
const maxReply = 64 << 10

type timeStampResp struct {
	Status struct {
		Status       int
		StatusString []string       `asn1:"optional,utf8"`
		FailInfo     asn1.BitString `asn1:"optional"`
	}
	Token asn1.RawValue `asn1:"optional"`
}

// Timestamp asks for a token over digest (a hash of kind h) with a random
// 64-bit nonce and certReq set, and verifies the answer. It returns the
// verified token and its DER.
func (c *Client) Timestamp(ctx context.Context, h crypto.Hash, digest []byte) (*rfc3161.Token, []byte, error) {
	nonce, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 64))
	if err != nil {
		return nil, nil, err
	}
	reqDER, err := (&timestamp.Request{HashAlgorithm: h, HashedMessage: digest, Certificates: true, Nonce: nonce}).Marshal()
	if err != nil {
		return nil, nil, fmt.Errorf("couldn't build the request: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.URL, bytes.NewReader(reqDER))
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Content-Type", QueryType)
	resp, err := httpapi.Client(c.HTTP).Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxReply+1))
	if err != nil {
		return nil, nil, err
	}
	if resp.Header.Get("Content-Type") != ReplyType || len(body) > maxReply {
		return nil, nil, fmt.Errorf("TSA answered %s (%s): %s", resp.Status, resp.Header.Get("Content-Type"), firstLine(body))
	}
	token, err := ParseResponse(body)
	if err != nil {
		return nil, nil, err
	}
	tok, err := rfc3161.Verify(token, rfc3161.Options{Roots: c.Roots, Hash: h, Digest: digest,
		Nonce: nonce, Policies: c.Policies, Cache: c.Cache})
	if err != nil {
		return nil, nil, err
	}
	return tok, token, nil
}

// StatusError is a TimeStampResp that grants nothing. It wraps ErrStatus.
type StatusError struct {
	Status   int
	Failures []timestamp.FailureInfo
	Text     string
}

func (e *StatusError) Error() string {
	var fs []string
	for _, f := range e.Failures {
		fs = append(fs, f.String())
	}
	return fmt.Sprintf("%v: status %d, failure info %s %s", ErrStatus, e.Status, strings.Join(fs, ","), e.Text)
}

func (e *StatusError) Unwrap() error { return ErrStatus }

// ParseResponse returns the token of a granted DER TimeStampResp, or a
// *StatusError that names the PKIFailureInfo.
func ParseResponse(der []byte) ([]byte, error) {
	var r timeStampResp
	rest, err := asn1.Unmarshal(der, &r)
	if err != nil || len(rest) > 0 {
		return nil, fmt.Errorf("%w: malformed TimeStampResp", rfc3161.ErrTokenMalformed)
	}
	if r.Status.Status != 0 && r.Status.Status != 1 { // granted, grantedWithMods
		e := &StatusError{Status: r.Status.Status, Text: strings.Join(r.Status.StatusString, " ")}
		for i := 0; i < r.Status.FailInfo.BitLength; i++ {
			if r.Status.FailInfo.At(i) == 1 {
				e.Failures = append(e.Failures, timestamp.FailureInfo(i))
			}
		}
		return nil, e
	}
	if len(r.Token.FullBytes) == 0 {
		return nil, fmt.Errorf("%w: granted without a token", rfc3161.ErrTokenMalformed)
	}
	return r.Token.FullBytes, nil
}

func firstLine(b []byte) string {
	s := string(b)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if len(s) > 200 {
		s = s[:200]
	}
	return s
}

// Tokens gets one token over the SHA-256 digest of a signature: a client
// is a link.Stamper of one TSA.
func (c *Client) Tokens(ctx context.Context, sigDigest []byte) ([][]byte, error) {
	_, token, err := c.Timestamp(ctx, crypto.SHA256, sigDigest)
	if err != nil {
		return nil, err
	}
	return [][]byte{token}, nil
}
