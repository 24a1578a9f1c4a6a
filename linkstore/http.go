package linkstore

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/evident-dev/evident"
	"github.com/evident-dev/evident/dsse"
	"github.com/evident-dev/evident/internal/httpapi"
	"github.com/evident-dev/evident/internal/strictjson"
	"github.com/evident-dev/evident/verify"
	"github.com/in-toto/in-toto-golang/in_toto"
)

// The routes of the link store's HTTP API, used by Handler and Client.
const (
	// PathLinks takes POST (an UploadRequest); PathLinks/{sha256} GETs the
	// link stored under a payload digest.
	PathLinks = "/links/v1"
	// PathArtifacts/{sha256} GETs an ArtifactsResponse.
	PathArtifacts = "/links/v1/artifacts/"
)

// Limits of the upload (L7).
const (
	// MaxUploadSize bounds an upload's body: the largest link a verifier
	// reads (verify.MaxLinkSize) and its envelope. It is read through a
	// limit, never buffered beyond it.
	MaxUploadSize = verify.MaxLinkSize + 4<<10
	// DefaultMaxConcurrent uploads are checked at once; beyond, 503 with
	// Retry-After. A link is decoded twice (generically, then as a link),
	// at roughly ten times its size in memory, so the bound keeps the
	// worst case near 4 × 32 MiB × 10 ≈ 1.3 GB, and a typical one (links of
	// a few hundred KiB) far below.
	DefaultMaxConcurrent = 4
	// MaxArtifactMatches bounds the log indices returned for one artifact.
	MaxArtifactMatches = 1000
)

// UploadRequest is the body of POST /links/v1: the link (an in-toto
// Metablock in the stored form, see [Canonical]) of the logged entry at
// Index; or, for an entry of payload type evident.PayloadTypeDSSE, its
// Statement: the DSSE payload bytes exactly as signed (base64 here, so no
// JSON re-encoding can change them).
type UploadRequest struct {
	Index     uint64          `json:"index"`
	Link      json.RawMessage `json:"link,omitempty"`
	Statement []byte          `json:"statement,omitempty"`
}

// ArtifactsResponse is the body of GET /links/v1/artifacts/{sha256}.
type ArtifactsResponse struct {
	Indices []uint64 `json:"indices"`
}

// LoggedEntry is what an upload is checked against: the payload digest of
// the logged entry.
type LoggedEntry struct {
	PayloadSHA256 [32]byte
	// PayloadType is the entry's payload type: a Metablock link, or a
	// DSSE Statement (evident.PayloadTypeDSSE).
	PayloadType string
}

// ErrNoEntry: the log holds no entry at that index.
var ErrNoEntry = errors.New("no logged entry at that index")

// Config configures a [Handler].
type Config struct {
	Store Store
	// Entry returns the logged entry at index, or an error wrapping
	// ErrNoEntry.
	Entry func(ctx context.Context, index uint64) (LoggedEntry, error)
	// MaxConcurrent uploads (default DefaultMaxConcurrent).
	MaxConcurrent int
	Logger        *slog.Logger
}

var (
	errBusy        = errors.New("too many link uploads at once")
	errTooLarge    = fmt.Errorf("a link upload is at most %d bytes", MaxUploadSize)
	errBadRequest  = errors.New("bad request")
	errUnsupported = errors.New("Content-Encoding is not accepted")
	// ErrMismatch: the link is not the payload of the entry it names.
	ErrMismatch = errors.New("the link is not the payload of that entry")
)

// Handler serves the link store. Uploads need no credential: the store
// accepts only the link whose canonical payload is a logged entry's payload
// (see the package doc for the order of the checks). Errors are the JSON of package internal/httpapi, {"error": "...", "code": "..."}: 400 malformed or
// mismatched, 404 no such entry or link, 409 another link already stored
// under that digest, 413 too large, 415 compressed, 503 busy (Retry-After).
func Handler(c Config) http.Handler {
	if c.MaxConcurrent <= 0 {
		c.MaxConcurrent = DefaultMaxConcurrent
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	h := &handler{Config: c, slots: make(chan struct{}, c.MaxConcurrent)}
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+PathLinks, h.put)
	mux.HandleFunc("GET "+PathArtifacts+"{digest}", h.artifacts)
	mux.HandleFunc("GET "+PathLinks+"/{digest}", h.get)
	return httpapi.MuxErrors(mux, nil)
}

type handler struct {
	Config
	slots chan struct{}
}

func (h *handler) put(w http.ResponseWriter, r *http.Request) {
	select {
	case h.slots <- struct{}{}:
		defer func() { <-h.slots }()
	default:
		h.fail(w, r, errBusy)
		return
	}
	if ce := r.Header.Get("Content-Encoding"); ce != "" && ce != "identity" {
		h.fail(w, r, errUnsupported)
		return
	}
	if r.ContentLength > MaxUploadSize {
		h.fail(w, r, errTooLarge)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxUploadSize))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			err = errTooLarge
		}
		h.fail(w, r, err)
		return
	}
	up, err := parseUpload(body)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	status, err := h.store(r.Context(), up)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	w.WriteHeader(status)
}

// uploadLimits bound the envelope of an upload: a link of up to
// verify.MaxLinkSize, nested one level deeper than a link may be.
var uploadLimits = strictjson.Limits{MaxSize: MaxUploadSize, MaxDepth: 33}

// parseUpload decodes an upload's envelope strictly (P1): no key twice, no
// unknown member, no key in another case ("Link" beside "link"), so the
// index and link (or statement) acted on are the only ones sent.
func parseUpload(body []byte) (UploadRequest, error) {
	var up UploadRequest
	doc, err := strictjson.Unmarshal(body, &up, uploadLimits)
	if err == nil {
		err = strictjson.Faithful(doc, up, "$", true)
	}
	if err != nil {
		return UploadRequest{}, fmt.Errorf("%w: upload: %v", errBadRequest, err)
	}
	if (len(up.Link) == 0) == (len(up.Statement) == 0) {
		return UploadRequest{}, fmt.Errorf("%w: want {\"index\": N, \"link\": {…}} or {\"index\": N, \"statement\": \"base64\"}", errBadRequest)
	}
	return up, nil
}

// store checks an upload and stores its link, in the order of the package
// doc; it returns 204 for a link stored now or before.
func (h *handler) store(ctx context.Context, up UploadRequest) (int, error) {
	e, err := h.Entry(ctx, up.Index)
	if err != nil {
		return 0, fmt.Errorf("entry %d: %w", up.Index, err)
	}
	if e.PayloadType == evident.PayloadTypeDSSE {
		return h.storeStatement(ctx, up, e)
	}
	if len(up.Link) == 0 {
		return 0, fmt.Errorf("%w: entry %d is a link's: upload the link", errBadRequest, up.Index)
	}
	// Write-once: what is stored is final; the comparison needs no parse.
	if old, err := h.Store.Get(ctx, e.PayloadSHA256); err == nil {
		if !bytes.Equal(old, up.Link) {
			return 0, fmt.Errorf("%w (send the stored link's exact canonical bytes, or nothing)", ErrConflict)
		}
		arts, err := checkLink(old, e)
		if err != nil {
			return 0, err
		}
		return http.StatusNoContent, h.Store.Put(ctx, e.PayloadSHA256, up.Index, old, arts)
	} else if !errors.Is(err, ErrNotFound) {
		return 0, err
	}
	doc, payload, err := Canonical(up.Link)
	if err != nil {
		return 0, err
	}
	if sha256.Sum256(payload) != e.PayloadSHA256 {
		return 0, fmt.Errorf("%w: its canonical payload's SHA-256 is not the entry's payload_sha256", ErrMismatch)
	}
	arts, err := checkLink(doc, e)
	if err != nil {
		return 0, err
	}
	if err := h.Store.Put(ctx, e.PayloadSHA256, up.Index, doc, arts); err != nil {
		return 0, err // ErrConflict: another upload won the race
	}
	return http.StatusNoContent, nil
}

// storeStatement stores the Statement of a DSSE entry: the payload bytes
// as signed, which are their own canonical form (their SHA-256 is the
// entry's, so no other bytes can be stored under it), parsed strictly
// before they are indexed by their subjects' digests (and, for a link
// predicate, its materials').
func (h *handler) storeStatement(ctx context.Context, up UploadRequest, e LoggedEntry) (int, error) {
	if len(up.Statement) == 0 {
		return 0, fmt.Errorf("%w: entry %d is a DSSE attestation's: upload its statement", errBadRequest, up.Index)
	}
	if sha256.Sum256(up.Statement) != e.PayloadSHA256 {
		return 0, fmt.Errorf("%w: the statement's SHA-256 is not the entry's payload_sha256", ErrMismatch)
	}
	arts, err := statementArtifacts(up.Statement)
	if err != nil {
		return 0, err
	}
	if err := h.Store.Put(ctx, e.PayloadSHA256, up.Index, up.Statement, arts); err != nil {
		return 0, err
	}
	return http.StatusNoContent, nil
}

// statementArtifacts parses a Statement strictly and returns the SHA-256
// digests of its subjects and, for the link predicate, its materials.
func statementArtifacts(b []byte) ([][32]byte, error) {
	st, err := dsse.ParseStatement(b)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errBadRequest, err)
	}
	var out [][32]byte
	add := func(rds []dsse.ResourceDescriptor) {
		for _, rd := range rds {
			if d, err := parseDigest(rd.Digest["sha256"]); err == nil {
				out = append(out, d)
			}
		}
	}
	add(st.Subject)
	if st.PredicateType == dsse.PredicateTypeLink {
		l, err := st.Link()
		if err != nil {
			return nil, fmt.Errorf("%w: %v", errBadRequest, err)
		}
		out = append(out, linkArtifacts(in_toto.Link{Materials: l.Materials})...)
	}
	return out, nil
}

// checkLink decodes a stored-form link — the one typed decode, of the bytes
// stored, so that what is indexed is what is stored — checks it is e's
// payload and returns its artifact digests.
func checkLink(doc []byte, e LoggedEntry) ([][32]byte, error) {
	mb, payload, err := verify.ParseLink(doc)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errBadRequest, err)
	}
	if sha256.Sum256(payload) != e.PayloadSHA256 {
		return nil, fmt.Errorf("%w: the link decodes to another payload than it canonicalises to", ErrMismatch)
	}
	return linkArtifacts(mb.Signed.(in_toto.Link)), nil
}

// linkArtifacts returns the SHA-256 of every material and product.
func linkArtifacts(l in_toto.Link) [][32]byte {
	var out [][32]byte
	for _, set := range []map[string]in_toto.HashObj{l.Materials, l.Products} {
		for _, h := range set {
			if d, err := parseDigest(h["sha256"]); err == nil { // any string may be signed: check its length first
				out = append(out, d)
			}
		}
	}
	return out
}

func parseDigest(s string) ([32]byte, error) {
	var d [32]byte
	if len(s) != 2*len(d) {
		return d, fmt.Errorf("%w: want a SHA-256 in hex", errBadRequest)
	}
	if _, err := hex.Decode(d[:], []byte(s)); err != nil {
		return d, fmt.Errorf("%w: want a SHA-256 in hex", errBadRequest)
	}
	return d, nil
}

func (h *handler) get(w http.ResponseWriter, r *http.Request) {
	d, err := parseDigest(r.PathValue("digest"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	b, err := h.Store.Get(r.Context(), d)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.Write(b)
}

func (h *handler) artifacts(w http.ResponseWriter, r *http.Request) {
	d, err := parseDigest(r.PathValue("digest"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	ix, err := h.Store.ArtifactIndices(r.Context(), d, MaxArtifactMatches)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, ArtifactsResponse{Indices: ix})
}

// statuses maps the link store's outcomes to HTTP statuses.
var statuses = httpapi.Statuses{
	{Code: http.StatusRequestEntityTooLarge, Errs: []error{errTooLarge}},
	{Code: http.StatusUnsupportedMediaType, Errs: []error{errUnsupported}},
	{Code: http.StatusBadRequest, Errs: []error{errBadRequest, ErrNotCanonicalizable, ErrMismatch}},
	{Code: http.StatusNotFound, Errs: []error{ErrNotFound, ErrNoEntry}},
	{Code: http.StatusConflict, Errs: []error{ErrConflict}},
	{Code: http.StatusServiceUnavailable, Errs: []error{errBusy, context.Canceled, context.DeadlineExceeded}},
}

func (h *handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	code := statuses.Of(err)
	msg := err.Error()
	if code == http.StatusInternalServerError {
		h.Logger.Error("link store request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		msg = "internal error: the link store failed"
	}
	if code == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	httpapi.WriteError(w, msg, code)
}
