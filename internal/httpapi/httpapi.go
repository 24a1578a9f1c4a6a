// Package httpapi holds what every evident HTTP endpoint and client share:
// the one JSON error dialect, response encoding, the server's limits and
// timeouts (THREATS S1, L7), and clients with timeouts.
//
// Every 4xx and 5xx an evident server writes has the body
//
//	{"error": "what is wrong", "code": "bad_request"}
//
// with Content-Type application/json: "error" is for people, "code" (the
// status text in snake case, e.g. "not_found", "service_unavailable") is
// for programs. The log, the link store, the TSA's HTTP errors (its RFC 3161
// refusals are TimeStampResp bodies), the development SVID endpoint, the
// witness endpoints, the admin endpoints and the connection limiter all
// write it through [WriteError]; clients read it with [ErrorMessage].
package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Error is the JSON body of every error answer.
type Error struct {
	Message string `json:"error"`
	Code    string `json:"code"`
}

// Code is the machine-readable code of an HTTP status: its status text in
// snake case, e.g. 404 → "not_found".
func Code(status int) string {
	t := http.StatusText(status)
	if t == "" {
		return "status_" + strconv.Itoa(status)
	}
	t = strings.ToLower(t)
	t = strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			return r
		}
		return '_'
	}, t)
	return t
}

// WriteError writes the error answer status with message msg. It takes its
// arguments in http.Error's order, which it replaces.
func WriteError(w http.ResponseWriter, msg string, status int) {
	WriteJSON(w, status, Error{Message: msg, Code: Code(status)})
}

// MuxErrors serves mux, except that the 404 and 405 mux itself gives (no
// pattern matches the path, or none the method) are answered in the JSON
// dialect, with the Allow header of a 405, for requests api reports true
// (all, if api is nil): http.ServeMux writes them as plain text. It costs
// those requests a second route lookup (a few hundred nanoseconds, no
// allocation; BenchmarkMuxErrors).
func MuxErrors(mux *http.ServeMux, api func(*http.Request) bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if api == nil || api(r) {
			// A pattern is named for every match and redirect; none, only
			// for the mux's own 404 and 405.
			if h, pattern := mux.Handler(r); pattern == "" {
				writeMuxError(w, r, h)
				return
			}
		}
		mux.ServeHTTP(w, r)
	})
}

// writeMuxError runs the mux's own error handler h into a recorder, and
// writes its status, and its Allow header, in the JSON dialect.
func writeMuxError(w http.ResponseWriter, r *http.Request, h http.Handler) {
	rec := &statusRecorder{header: http.Header{}, status: http.StatusNotFound}
	h.ServeHTTP(rec, r)
	switch rec.status {
	case http.StatusMethodNotAllowed:
		w.Header().Set("Allow", rec.header.Get("Allow"))
		WriteError(w, "method "+r.Method+" is not allowed here (allowed: "+rec.header.Get("Allow")+")", rec.status)
	case http.StatusNotFound:
		WriteError(w, "no such endpoint", rec.status)
	default:
		WriteError(w, http.StatusText(rec.status), rec.status)
	}
}

// statusRecorder keeps the status and headers a handler writes, and drops
// its body.
type statusRecorder struct {
	header http.Header
	status int
}

func (s *statusRecorder) Header() http.Header         { return s.header }
func (s *statusRecorder) Write(b []byte) (int, error) { return len(b), nil }
func (s *statusRecorder) WriteHeader(status int)      { s.status = status }

// Status is one line of a [Statuses] table: the HTTP status of the
// outcomes Errs (sentinels, matched with errors.Is).
type Status struct {
	Code int
	Errs []error
}

// Statuses is a handler's table from outcomes to HTTP statuses: the one
// place where its errors become statuses. The first line any of whose
// errors err wraps gives the status; none, 500.
type Statuses []Status

// Of is the status of err.
func (t Statuses) Of(err error) int {
	for _, s := range t {
		for _, e := range s.Errs {
			if errors.Is(err, e) {
				return s.Code
			}
		}
	}
	return http.StatusInternalServerError
}

// WriteJSON writes v as the JSON answer status, newline-terminated, with
// its Content-Length.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("httpapi: encoding a %T response: %v", v, err)) // only our own types reach here
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)+1))
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

// ErrorMessage is the message of an error answer's body: the "error" of
// the JSON dialect, or else the body itself trimmed (a proxy's page, an
// older server), so that a client always has something to show.
func ErrorMessage(body []byte) string {
	var e Error
	if json.Unmarshal(body, &e) == nil && e.Message != "" {
		return e.Message
	}
	return strings.TrimSpace(string(body))
}

// Limits of an evident HTTP server (THREATS S1, L7): the one definition,
// for evident serve and evident tsa serve alike.
const (
	ReadHeaderTimeout = 5 * time.Second
	ReadTimeout       = 30 * time.Second
	WriteTimeout      = 60 * time.Second
	IdleTimeout       = 120 * time.Second
	MaxHeaderBytes    = 16 << 10
)

// NewServer is an HTTP server for h with the limits above; readHeader, if
// positive, overrides ReadHeaderTimeout (tests use a short one). Its own
// errors (TLS handshakes, bad requests it answers itself) go to logger
// at level Warn.
func NewServer(h http.Handler, logger *slog.Logger, readHeader time.Duration) *http.Server {
	if readHeader <= 0 {
		readHeader = ReadHeaderTimeout
	}
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: readHeader,
		ReadTimeout:       ReadTimeout,
		WriteTimeout:      WriteTimeout,
		IdleTimeout:       IdleTimeout,
		MaxHeaderBytes:    MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
}

// ClientTimeout bounds a whole request of the default clients, body
// included: longer than the server's WriteTimeout, so the server gives up
// first and says why.
const ClientTimeout = WriteTimeout + 30*time.Second

// NewClient is an HTTP client whose requests time out after ClientTimeout.
// Callers that stream large bodies (backups) pass their own.
func NewClient() *http.Client {
	return &http.Client{Timeout: ClientTimeout}
}

// DefaultClient is the client of the evident clients that are given none.
// It is shared, like http.DefaultClient, so connections are reused.
func DefaultClient() *http.Client { return defaultClient }

// Client is hc, or DefaultClient if hc is nil: what a client type with an
// optional HTTP field uses.
func Client(hc *http.Client) *http.Client {
	if hc == nil {
		return defaultClient
	}
	return hc
}

var defaultClient = NewClient()
