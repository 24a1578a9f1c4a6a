package link_test

import (
	"context"
	"crypto"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/evident-dev/evident/link"
	"github.com/evident-dev/evident/rfc3161"
)

// fakeTSA answers with its token, fails with err, or (hang) never answers.
type fakeTSA struct {
	token []byte
	err   error
	hang  bool
}

func (f fakeTSA) Timestamp(ctx context.Context, _ crypto.Hash, _ []byte) (*rfc3161.Token, []byte, error) {
	if f.hang {
		<-ctx.Done()
		return nil, nil, ctx.Err()
	}
	return nil, f.token, f.err
}

// TestTSAsTimeoutAndThreshold: TSAs are asked at once; one that hangs is
// given up after the timeout and one that fails is reported and skipped
// when enough others answer; short of the threshold, the error names every
// TSA that did not answer.
func TestTSAsTimeoutAndThreshold(t *testing.T) {
	var mu sync.Mutex
	skipped := map[string]string{}
	ts := &link.TSAs{Timeout: 100 * time.Millisecond, Threshold: 2, TSAs: []link.TSA{
		{Name: "a", Client: fakeTSA{token: []byte("A")}},
		{Name: "hangs", Client: fakeTSA{hang: true}},
		{Name: "b", Client: fakeTSA{token: []byte("B")}},
		{Name: "refuses", Client: fakeTSA{err: errors.New("503 Service Unavailable")}},
	}, Skipped: func(name string, err error) {
		mu.Lock()
		defer mu.Unlock()
		skipped[name] = err.Error()
	}}
	start := time.Now()
	tokens, err := ts.Tokens(context.Background(), []byte("digest"))
	if err != nil || len(tokens) != 2 || string(tokens[0]) != "A" || string(tokens[1]) != "B" {
		t.Fatalf("Tokens = %q, %v; want A and B", tokens, err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Tokens took %v with a 100ms timeout", d)
	}
	if !strings.Contains(skipped["hangs"], "deadline exceeded") || !strings.Contains(skipped["refuses"], "503") || len(skipped) != 2 {
		t.Errorf("skipped = %v, want hangs (deadline) and refuses (503)", skipped)
	}
	ts.Threshold = 3
	_, err = ts.Tokens(context.Background(), []byte("digest"))
	var te *link.TSAError
	if !errors.As(err, &te) || !errors.Is(err, context.DeadlineExceeded) ||
		!strings.Contains(err.Error(), "2 of 4 TSAs answered, the threshold is 3; failed: hangs: context deadline exceeded; refuses: 503") {
		t.Errorf("Tokens with threshold 3 = %v, want a TSAError naming hangs and refuses", err)
	}
}
