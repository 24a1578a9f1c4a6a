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
