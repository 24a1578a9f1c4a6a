package serve

import (
	"net/http/httptest"
	"testing"
)

// H1: a follower catches up before answering a read that names a size
// beyond its head; sizeNeeded says which size, and never overflows.
func TestSizeNeeded(t *testing.T) {
	for _, c := range []struct {
		method, target string
		want           uint64
	}{
		{"GET", "/log/v1/proof/inclusion?index=3&size=10", 10},
		{"GET", "/log/v1/proof/consistency?from=3&to=12", 12},
		{"GET", "/log/v1/entries/41", 42},
		{"GET", "/log/v1/entries/18446744073709551615", 0},
		{"GET", "/log/tile/0/000", 256},
		{"GET", "/log/tile/0/001.p/7", 263},
		{"GET", "/log/tile/1/000.p/2", 2 << 8},
		{"GET", "/log/tile/entries/x001/000", 1000*256 + 256},
		{"GET", "/log/tile/7/x999/999", 0},
		{"GET", "/log/tile/nope", 0},
		{"GET", "/log/checkpoint", 0},
		{"GET", "/log/v1/proof/inclusion?index=3&size=-1", 0},
		{"POST", "/log/v1/entries/41", 0},
	} {
		if got := sizeNeeded(httptest.NewRequest(c.method, c.target, nil)); got != c.want {
			t.Errorf("sizeNeeded(%s %s) = %d, want %d", c.method, c.target, got, c.want)
		}
	}
}
