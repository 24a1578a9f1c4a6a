package evident

import (
	"errors"
	"fmt"
	"time"

	"github.com/evident-dev/evident/tlog"
	"golang.org/x/mod/sumdb/note"
)

// ErrNoLogKey: no log key of the trust root valid at the time asked signed
// the checkpoint.
var ErrNoLogKey = errors.New("not signed by a log key of the trust root")

// LogVerifiers returns the note verifiers of the log keys valid at t, in the
// trust root's order. A key that is not a note verifier key is an error
// naming it.
func (tr *TrustRoot) LogVerifiers(t time.Time) ([]note.Verifier, error) {
	logs, _ := tr.At(KindLog, t)
	var out []note.Verifier
	for _, it := range logs {
		v, err := note.NewVerifier(it.Value)
		if err != nil {
			return nil, fmt.Errorf("the trust root's log key %q: %w", it.Name, err)
		}
		out = append(out, v)
	}
	return out, nil
}

// OpenCheckpoint opens a signed checkpoint with the first log key valid at
// t that signed it, and returns the checkpoint and that key. Keys that are
// not note verifier keys are passed over; no key that opens it is
// ErrNoLogKey.
func (tr *TrustRoot) OpenCheckpoint(signed []byte, t time.Time) (tlog.Checkpoint, note.Verifier, error) {
	logs, _ := tr.At(KindLog, t)
	for _, it := range logs {
		v, err := note.NewVerifier(it.Value)
		if err != nil {
			continue
		}
		if cp, err := tlog.OpenCheckpoint(signed, v.Name(), v); err == nil {
			return cp, v, nil
		}
	}
	return tlog.Checkpoint{}, nil, ErrNoLogKey
}
