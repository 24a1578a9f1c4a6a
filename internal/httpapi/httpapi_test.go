package httpapi

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestErrorDialect: an error answer is {"error", "code"} JSON with the
// status, and ErrorMessage reads back the message.
func TestErrorDialect(t *testing.T) {
	rec := httptest.NewRecorder()
	WriteError(rec, "the log is overloaded", http.StatusServiceUnavailable)
	if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("WriteError = %d %q, want 503 application/json", rec.Code, rec.Header().Get("Content-Type"))
	}
	var e Error
	if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil {
		t.Fatal(err)
	}
	if e != (Error{Message: "the log is overloaded", Code: "service_unavailable"}) {
		t.Errorf("body = %+v, want the message and code service_unavailable", e)
	}
	if got := ErrorMessage(rec.Body.Bytes()); got != "the log is overloaded" {
		t.Errorf("ErrorMessage = %q, want the message", got)
	}
}

// TestErrorMessageOfAForeignBody: a body that is not the dialect (a
// proxy's page) is shown trimmed, not dropped.
func TestErrorMessageOfAForeignBody(t *testing.T) {
	for body, want := range map[string]string{
		"Bad Gateway\n":   "Bad Gateway",
		`{"error":""}`:    `{"error":""}`,
		`{"message":"x"}`: `{"message":"x"}`,
	} {
		if got := ErrorMessage([]byte(body)); got != want {
			t.Errorf("ErrorMessage(%q) = %q, want %q", body, got, want)
		}
	}
}

func TestCode(t *testing.T) {
	for status, want := range map[int]string{
		400: "bad_request", 404: "not_found", 413: "request_entity_too_large",
		507: "insufficient_storage", 500: "internal_server_error", 599: "status_599",
	} {
		if got := Code(status); got != want {
			t.Errorf("Code(%d) = %q, want %q", status, got, want)
		}
	}
}

// TestMuxErrors: the 404 and 405 a ServeMux gives by itself come in the
// JSON dialect (a 405 with its Allow header) for the requests chosen; the
// endpoints, a redirect, and the other requests are served as the mux
// serves them.
func TestMuxErrors(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/things", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusCreated) })
	mux.HandleFunc("GET /api/things/{id}", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(r.PathValue("id"))) })
	h := MuxErrors(mux, func(r *http.Request) bool { return r.URL.Path != "/page" })
	for _, c := range []struct {
		method, path string
		status       int
		body, allow  string
	}{
		{"POST", "/api/things", 201, "", ""},
		{"GET", "/api/things/7", 200, "7", ""},
		{"GET", "/api/things", 405, `{"error":"method GET is not allowed here (allowed: POST)","code":"method_not_allowed"}` + "\n", "POST"},
		{"DELETE", "/api/things/7", 405, `{"error":"method DELETE is not allowed here (allowed: GET, HEAD)","code":"method_not_allowed"}` + "\n", "GET, HEAD"},
		{"GET", "/api/nothing", 404, `{"error":"no such endpoint","code":"not_found"}` + "\n", ""},
		{"GET", "/page", 404, "404 page not found\n", ""},
		{"GET", "/api//things/7", 307, "", ""}, // the mux cleans the path
	} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(c.method, c.path, nil))
		if rec.Code != c.status || c.body != "" && rec.Body.String() != c.body || rec.Header().Get("Allow") != c.allow {
			t.Errorf("%s %s = %d %q (Allow %q), want %d %q (Allow %q)", c.method, c.path, rec.Code, rec.Body, rec.Header().Get("Allow"), c.status, c.body, c.allow)
		}
	}
}

// BenchmarkMuxErrors measures what MuxErrors adds to a request that an
// endpoint serves: one more route lookup.
func BenchmarkMuxErrors(b *testing.B) {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /log/v1/entries", func(http.ResponseWriter, *http.Request) {})
	mux.HandleFunc("GET /log/v1/entries/{index}", func(http.ResponseWriter, *http.Request) {})
	mux.HandleFunc("GET /log/tile/{path...}", func(http.ResponseWriter, *http.Request) {})
	req := httptest.NewRequest("POST", "/log/v1/entries", nil)
	w := httptest.NewRecorder()
	for _, c := range []struct {
		name string
		h    http.Handler
	}{{"mux", mux}, {"MuxErrors", MuxErrors(mux, nil)}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				c.h.ServeHTTP(w, req)
			}
		})
	}
}
