package log

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"unicode/utf8"

	"github.com/evident-dev/evident/internal/httpapi"
)

// API paths, relative to the server root. The tlog-tiles read API lives
// under TilesPrefix: TilesPrefix+"checkpoint" and TilesPrefix+"tile/…".
const (
	TilesPrefix         = "/log/"
	PathCheckpoint      = "/log/checkpoint"
	PathEntries         = "/log/v1/entries"
	PathInclusionProof  = "/log/v1/proof/inclusion"
	PathConsistencyProf = "/log/v1/proof/consistency"
)

// AddResponse is the JSON body answering POST /log/v1/entries.
type AddResponse struct {
	Index     uint64 `json:"index"`
	Duplicate bool   `json:"duplicate,omitempty"`
	// Checkpoint is the signed checkpoint note the proof is against.
	Checkpoint string `json:"checkpoint"`
	// InclusionProof is the list of RFC 6962 audit path hashes.
	InclusionProof [][]byte `json:"inclusion_proof"`
}

// ProofResponse is the JSON body of the proof endpoints.
type ProofResponse struct {
	Index  uint64   `json:"index,omitempty"`
	Size   uint64   `json:"size,omitempty"`
	From   uint64   `json:"from,omitempty"`
	To     uint64   `json:"to,omitempty"`
	Hashes [][]byte `json:"hashes"`
}

// errBadRequest marks malformed query parameters.
var errBadRequest = errors.New("bad request")

// Handler serves the log's HTTP API:
//
//	POST /log/v1/entries                        add an entry (JSON body) → AddResponse
//	GET  /log/checkpoint                        latest signed checkpoint (C2SP note)
//	GET  /log/v1/entries/{index}                the canonical entry bytes
//	GET  /log/v1/proof/inclusion?index=I&size=N  (or hash=<hex|base64 leaf hash>&size=N)
//	GET  /log/v1/proof/consistency?from=A&to=B
//	GET  /log/tile/<L>/<N>[.p/<W>]              tlog-tiles hash tiles
//	GET  /log/tile/entries/<N>[.p/<W>]          tlog-tiles entry bundles
//
// Errors are the JSON of package internal/httpapi, {"error": "...", "code": "..."}: 400 for malformed input or out-of-range
// numbers, 404 for what does not exist (an unknown path too), 405 with Allow
// for a method an endpoint does not take, 413 for a body over
// Config.MaxBodySize, 415 for a compressed body, 503 with Retry-After when
// overloaded.
func Handler(l *Log, logger *slog.Logger) http.Handler {
	if logger == nil {
		logger = slog.Default()
	}
	h := &handler{log: l, logger: logger, large: make(chan struct{}, l.cfg.MaxLargeBodies)}
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+PathEntries, h.add)
	mux.HandleFunc("GET "+PathCheckpoint, h.checkpoint)
	mux.HandleFunc("GET "+PathEntries+"/{index}", h.entry)
	mux.HandleFunc("GET "+PathInclusionProof, h.inclusion)
	mux.HandleFunc("GET "+PathConsistencyProf, h.consistency)
	mux.HandleFunc("GET "+TilesPrefix+"tile/{path...}", h.tile)
	return httpapi.MuxErrors(mux, nil)
}

type handler struct {
	log    *Log
	logger *slog.Logger
	errLog rateLog
	// large holds a slot per body over MaxEntrySize being read.
	large chan struct{}
}

var bodyPool = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

func (h *handler) add(w http.ResponseWriter, r *http.Request) {
	if ce := r.Header.Get("Content-Encoding"); ce != "" && ce != "identity" {
		h.fail(w, r, fmt.Errorf("%w: Content-Encoding %q is not accepted", errUnsupportedMedia, ce))
		return
	}
	limit := h.log.cfg.MaxBodySize
	if r.ContentLength > int64(limit) {
		h.fail(w, r, fmt.Errorf("%w: over %d bytes", errTooLarge, limit))
		return
	}
	bp := bodyPool.Get().(*[]byte)
	defer bodyPool.Put(bp)
	body, err := readBody(r.Body, (*bp)[:0], MaxEntrySize)
	*bp = body[:0]
	if errors.Is(err, errTooLarge) && limit > MaxEntrySize && h.log.cfg.LargeBody(body[:MaxEntrySize]) {
		// An entry with its payload: a few at a time, in a buffer that
		// goes back to no pool.
		select {
		case h.large <- struct{}{}:
			defer func() { <-h.large }()
		default:
			h.fail(w, r, fmt.Errorf("%w: too many large submissions at once", ErrOverloaded))
			return
		}
		body, err = readBody(r.Body, append(make([]byte, 0, 2*len(body)), body...), limit)
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	res, err := h.log.Add(r.Context(), body)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	// Hand-encoded: this is the hot path; TestAddResponseEncoding checks it
	// against encoding/json.
	out := appendAddResponse((*bp)[:0], res)
	*bp = out[:0]
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(out)))
	w.Write(out)
}

// appendAddResponse appends the JSON encoding of res as an AddResponse,
// exactly as encoding/json writes it, and a newline.
func appendAddResponse(b []byte, res *AddResult) []byte {
	b = append(b, `{"index":`...)
	b = strconv.AppendUint(b, res.Index, 10)
	if res.Duplicate {
		b = append(b, `,"duplicate":true`...)
	}
	b = append(b, `,"checkpoint":`...)
	if utf8.Valid(res.Checkpoint) && !bytes.ContainsRune(res.Checkpoint, '\u2028') && !bytes.ContainsRune(res.Checkpoint, '\u2029') {
		b = appendJSONString(b, res.Checkpoint)
	} else {
		s, _ := json.Marshal(string(res.Checkpoint))
		b = append(b, s...)
	}
	b = append(b, `,"inclusion_proof":`...)
	if res.Proof == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i, h := range res.Proof {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, '"')
			b = base64.StdEncoding.AppendEncode(b, h)
			b = append(b, '"')
		}
		b = append(b, ']')
	}
	return append(b, "}\n"...)
}

// appendJSONString appends s, valid UTF-8 without U+2028 or U+2029, as a
// JSON string the way encoding/json does.
func appendJSONString(b []byte, s []byte) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for _, c := range s {
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c == '\n':
			b = append(b, '\\', 'n')
		case c == '\r':
			b = append(b, '\\', 'r')
		case c == '\t':
			b = append(b, '\\', 't')
		case c < 0x20 || c == '<' || c == '>' || c == '&':
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}

var (
	errTooLarge         = errors.New("request body too large")
	errUnsupportedMedia = errors.New("unsupported media type")
)

// readBody reads at most max bytes into buf; a longer body is errTooLarge.
func readBody(r io.Reader, buf []byte, max int) ([]byte, error) {
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if len(buf) > max {
			return buf, fmt.Errorf("%w: over %d bytes", errTooLarge, max)
		}
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, fmt.Errorf("%w: reading body: %v", errBadRequest, err)
		}
	}
}

func (h *handler) checkpoint(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Write(h.log.Head().Checkpoint)
}

func (h *handler) entry(w http.ResponseWriter, r *http.Request) {
	idx, err := parseUint(r.PathValue("index"), "index")
	if err != nil {
		h.fail(w, r, err)
		return
	}
	e, err := h.log.Entry(idx)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
	w.Write(e)
}

func (h *handler) inclusion(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	size, err := parseUint(q.Get("size"), "size")
	if err != nil {
		h.fail(w, r, err)
		return
	}
	var idx uint64
	var p [][]byte
	if hs := q.Get("hash"); hs != "" {
		leaf, err := parseHash(hs)
		if err != nil {
			h.fail(w, r, err)
			return
		}
		idx, p, err = h.log.InclusionProofByHash(leaf, size)
		if err != nil {
			h.fail(w, r, err)
			return
		}
	} else {
		if idx, err = parseUint(q.Get("index"), "index"); err != nil {
			h.fail(w, r, err)
			return
		}
		if p, err = h.log.InclusionProof(idx, size); err != nil {
			h.fail(w, r, err)
			return
		}
	}
	httpapi.WriteJSON(w, http.StatusOK, &ProofResponse{Index: idx, Size: size, Hashes: nonNil(p)})
}

func (h *handler) consistency(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	from, err := parseUint(q.Get("from"), "from")
	if err != nil {
		h.fail(w, r, err)
		return
	}
	to, err := parseUint(q.Get("to"), "to")
	if err != nil {
		h.fail(w, r, err)
		return
	}
	p, err := h.log.ConsistencyProof(from, to)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, &ProofResponse{From: from, To: to, Hashes: nonNil(p)})
}

func (h *handler) tile(w http.ResponseWriter, r *http.Request) {
	t, err := ParseTilePath(r.PathValue("path"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	b, err := h.log.ReadTile(t)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
	w.Write(b)
}

func nonNil(p [][]byte) [][]byte {
	if p == nil {
		return [][]byte{}
	}
	return p
}

// parseUint parses a query or path number: decimal digits only, no sign.
func parseUint(s, name string) (uint64, error) {
	if s == "" {
		return 0, fmt.Errorf("%w: %s is required", errBadRequest, name)
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, fmt.Errorf("%w: %s %q is not a non-negative decimal number", errBadRequest, name, s)
		}
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: %s %q does not fit in 64 bits", errBadRequest, name, s)
	}
	return n, nil
}

// parseHash accepts a 32-byte hash in hex or in standard or URL-safe base64.
func parseHash(s string) ([]byte, error) {
	if len(s) == 2*HashSize {
		if b, err := hex.DecodeString(s); err == nil {
			return b, nil
		}
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil && len(b) == HashSize {
			return b, nil
		}
	}
	return nil, fmt.Errorf("%w: hash must be %d bytes in hex or base64", errBadRequest, HashSize)
}

// statuses maps the log's outcomes to HTTP statuses: the one place where
// outcomes become statuses.
var statuses = httpapi.Statuses{
	{Code: http.StatusRequestEntityTooLarge, Errs: []error{errTooLarge}},
	{Code: http.StatusUnsupportedMediaType, Errs: []error{errUnsupportedMedia}},
	{Code: http.StatusBadRequest, Errs: []error{ErrInvalidEntry, errBadRequest, ErrOutOfRange, ErrBadTilePath}},
	{Code: http.StatusNotFound, Errs: []error{ErrNotFound}},
	{Code: http.StatusInsufficientStorage, Errs: []error{ErrStorageFull}},
	{Code: http.StatusServiceUnavailable, Errs: []error{ErrOverloaded, ErrClosed, ErrClockBackwards, ErrUnavailable,
		context.Canceled, context.DeadlineExceeded}},
}

func (h *handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	code := statuses.Of(err)
	msg := err.Error()
	switch code {
	case http.StatusInternalServerError:
		// Storage errors name files: the details go to the log (at a
		// bounded rate), not to the client.
		h.errLog.log(h.logger, "request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		msg = "internal error"
	case http.StatusInsufficientStorage:
		msg = ErrStorageFull.Error() + "; retry later" // the log said why, once
		w.Header().Set("Retry-After", "30")
	case http.StatusServiceUnavailable:
		w.Header().Set("Retry-After", "1")
	}
	httpapi.WriteError(w, msg, code)
}
