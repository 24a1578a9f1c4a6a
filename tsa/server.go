// Package tsa is evident's RFC 3161 time-stamp authority: a server that
// issues tokens (with the RFC 5816 ESSCertIDv2 signing-certificate
// attribute) over HTTP as RFC 3161 §3.4 describes, and a client that
// requests tokens and verifies them fully with package rfc3161.
//
// The server answers POST /tsa (application/timestamp-query in,
// application/timestamp-reply out) and GET /tsa/certchain (PEM). It accepts
// SHA-256, SHA-384 and SHA-512 imprints only, echoes nonces, issues tokens
// under a policy from an allow-list, states its accuracy, and gives each
// token a 160-bit random serial number, unique across restarts and crashes
// without any state. A request it cannot grant gets a TimeStampResp with
// PKIStatus rejection and the matching PKIFailureInfo (badAlg,
// badDataFormat, unacceptedPolicy, unacceptedExtension), with HTTP 400.
package tsa

import (
	"crypto"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/digitorus/timestamp"
	"github.com/evident-dev/evident/internal/httpapi"
	"github.com/evident-dev/evident/internal/pemfile"
	"github.com/evident-dev/evident/rfc3161"
)

// DefaultPolicy is the policy of tokens when none is configured: the
// example policy of OpenSSL's TSA configuration. Production deployments set
// their own.
func DefaultPolicy() asn1.ObjectIdentifier { return asn1.ObjectIdentifier{1, 2, 3, 4, 1} }

// Limits on requests (threat model T1).
const (
	// MaxRequestSize bounds a TimeStampReq; real ones are about 100 bytes.
	MaxRequestSize = 4096
	// MaxNonceBits bounds a request nonce.
	MaxNonceBits = 256
)

// Media types of RFC 3161 §3.4.
const (
	QueryType = "application/timestamp-query"
	ReplyType = "application/timestamp-reply"
)

// Config configures a [Server]. Signer and Chain are required.
type Config struct {
	// Signer is the TSA's key; Chain its certificate first, the root last.
	Signer crypto.Signer
	Chain  []*x509.Certificate
	// Policy is the policy of tokens for requests that name none (default
	// DefaultPolicy); Policies are the ones a request may ask for (default:
	// Policy alone).
	Policy   asn1.ObjectIdentifier
	Policies []asn1.ObjectIdentifier
	// Accuracy is stated in every token (default 1s: genTime has
	// one-second resolution).
	Accuracy time.Duration
	Now      func() time.Time
	Logger   *slog.Logger
}

// Server issues RFC 3161 timestamp tokens. It is safe for concurrent use.
type Server struct {
	cfg    Config
	leaf   *x509.Certificate
	extra  []*x509.Certificate // intermediates, sent when certReq is set
	issued atomic.Int64
}

// NewServer checks cfg (CheckChain, threat model T4) and returns a server; it
// refuses a misconfigured chain and says why.
func NewServer(cfg Config) (*Server, error) {
	if cfg.Signer == nil {
		return nil, fmt.Errorf("%w: no signing key", ErrBadChain)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Policy == nil {
		cfg.Policy = DefaultPolicy()
	}
	if len(cfg.Policies) == 0 {
		cfg.Policies = []asn1.ObjectIdentifier{cfg.Policy}
	}
	if cfg.Accuracy <= 0 {
		cfg.Accuracy = time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if err := CheckChain(cfg.Signer, cfg.Chain, cfg.Now()); err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, leaf: cfg.Chain[0]}
	if len(cfg.Chain) > 2 {
		s.extra = cfg.Chain[1 : len(cfg.Chain)-1]
	}
	return s, nil
}

// Chain returns the signing chain, TSA certificate first.
func (s *Server) Chain() []*x509.Certificate { return s.cfg.Chain }

// Issued returns how many tokens the server has issued.
func (s *Server) Issued() int64 { return s.issued.Load() }

// timeStampReq is RFC 3161 §2.4.1's TimeStampReq.
type timeStampReq struct {
	Version        int
	MessageImprint struct {
		HashAlgorithm pkix.AlgorithmIdentifier
		HashedMessage []byte
	}
	ReqPolicy  asn1.ObjectIdentifier `asn1:"optional"`
	Nonce      *big.Int              `asn1:"optional"`
	CertReq    bool                  `asn1:"optional,default:false"`
	Extensions []pkix.Extension      `asn1:"optional,tag:0"`
}

// RejectedError is a request the server refused, with the PKIFailureInfo
// it answers with.
type RejectedError struct {
	FailureInfo timestamp.FailureInfo
	Reason      string
}

func (e *RejectedError) Error() string {
	return fmt.Sprintf("timestamp request rejected (%v): %s", e.FailureInfo, e.Reason)
}

func reject(fi timestamp.FailureInfo, format string, args ...any) error {
	return &RejectedError{FailureInfo: fi, Reason: fmt.Sprintf(format, args...)}
}

// parseRequest decodes and checks a DER TimeStampReq.
func (s *Server) parseRequest(der []byte) (*timeStampReq, crypto.Hash, error) {
	var req timeStampReq
	rest, err := asn1.Unmarshal(der, &req)
	if err != nil {
		return nil, 0, reject(timestamp.BadDataFormat, "not a DER TimeStampReq: %v", err)
	}
	if len(rest) > 0 {
		return nil, 0, reject(timestamp.BadDataFormat, "trailing data after the request")
	}
	if req.Version != 1 {
		return nil, 0, reject(timestamp.BadDataFormat, "version %d, want 1", req.Version)
	}
	h := rfc3161.HashFromOID(req.MessageImprint.HashAlgorithm.Algorithm)
	if h == 0 {
		return nil, 0, reject(timestamp.BadAlgorithm, "imprint algorithm %v is not SHA-256, SHA-384 or SHA-512", req.MessageImprint.HashAlgorithm.Algorithm)
	}
	if len(req.MessageImprint.HashedMessage) != h.Size() {
		return nil, 0, reject(timestamp.BadDataFormat, "%v imprint of %d bytes, want %d", h, len(req.MessageImprint.HashedMessage), h.Size())
	}
	if req.Nonce != nil && (req.Nonce.Sign() < 0 || req.Nonce.BitLen() > MaxNonceBits) {
		return nil, 0, reject(timestamp.BadDataFormat, "nonce must be a non-negative integer of at most %d bits", MaxNonceBits)
	}
	if len(req.Extensions) > 0 {
		return nil, 0, reject(timestamp.UnacceptedExtension, "extension %v is not supported", req.Extensions[0].Id)
	}
	if req.ReqPolicy != nil && !slices.ContainsFunc(s.cfg.Policies, req.ReqPolicy.Equal) {
		return nil, 0, reject(timestamp.UnacceptedPolicy, "policy %v is not offered", req.ReqPolicy)
	}
	return &req, h, nil
}

// Respond answers one DER TimeStampReq with a DER TimeStampResp. A
// *RejectedError means the response carries that rejection; any other error
// is a server fault and the response is nil.
func (s *Server) Respond(der []byte) ([]byte, error) {
	req, h, err := s.parseRequest(der)
	if err != nil {
		var rej *RejectedError
		if errors.As(err, &rej) {
			resp, cerr := timestamp.CreateErrorResponse(timestamp.Rejection, rej.FailureInfo)
			if cerr != nil {
				return nil, cerr
			}
			return resp, err
		}
		return nil, err
	}
	policy := s.cfg.Policy
	if req.ReqPolicy != nil {
		policy = req.ReqPolicy
	}
	ts := timestamp.Timestamp{
		HashAlgorithm:     h,
		HashedMessage:     req.MessageImprint.HashedMessage,
		Time:              s.cfg.Now().UTC(),
		Accuracy:          s.cfg.Accuracy,
		Policy:            policy,
		Nonce:             req.Nonce,
		AddTSACertificate: req.CertReq,
	}
	if req.CertReq {
		ts.Certificates = s.extra
	}
	resp, err := ts.CreateResponseWithOpts(s.leaf, s.cfg.Signer, crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("couldn't create the token: %w", err)
	}
	s.issued.Add(1)
	return resp, nil
}

// Handler serves POST /tsa and GET /tsa/certchain. Transport errors are 4xx
// (415 unless exactly one Content-Type application/timestamp-query, 413 over
// MaxRequestSize); rejected requests are 400 with a TimeStampResp body.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /tsa", s.serveQuery)
	mux.HandleFunc("GET /tsa/certchain", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/pem-certificate-chain")
		w.Write(pemfile.EncodeCertificates(s.cfg.Chain))
	})
	return mux
}

func (s *Server) serveQuery(w http.ResponseWriter, r *http.Request) {
	if ct := r.Header.Values("Content-Type"); len(ct) != 1 || ct[0] != QueryType {
		httpapi.WriteError(w, "Content-Type must be exactly "+QueryType, http.StatusUnsupportedMediaType)
		return
	}
	if ce := r.Header.Get("Content-Encoding"); ce != "" && ce != "identity" {
		httpapi.WriteError(w, "Content-Encoding is not accepted", http.StatusUnsupportedMediaType)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxRequestSize+1))
	if err != nil {
		httpapi.WriteError(w, "couldn't read the request", http.StatusBadRequest)
		return
	}
	if len(body) > MaxRequestSize {
		httpapi.WriteError(w, "request over "+strconv.Itoa(MaxRequestSize)+" bytes", http.StatusRequestEntityTooLarge)
		return
	}
	resp, err := s.Respond(body)
	code := http.StatusOK
	var rej *RejectedError
	switch {
	case errors.As(err, &rej):
		code = http.StatusBadRequest
	case err != nil:
		s.cfg.Logger.Error("timestamp failed", "err", err)
		resp, _ = timestamp.CreateErrorResponse(timestamp.Rejection, timestamp.SystemFailure)
		code = http.StatusInternalServerError
	}
	w.Header().Set("Content-Type", ReplyType)
	w.Header().Set("Content-Length", strconv.Itoa(len(resp)))
	w.WriteHeader(code)
	w.Write(resp)
}
