package logclient

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/evident-dev/evident/atomicfile"
	"github.com/evident-dev/evident/log"
)

// Monitor keeps the last verified checkpoint of one log in a state file and
// checks that every newer checkpoint the log shows is consistent with it.
type Monitor struct {
	Client *Client
	// StatePath holds the last verified signed checkpoint, as served.
	StatePath string
}

// SplitViewError is a proof that the log misbehaved: two signed checkpoints
// that cannot both be honest, kept so they can be shown to others.
type SplitViewError struct {
	Old, New []byte // the signed notes
	Err      error  // wraps ErrInconsistent
}

func (e *SplitViewError) Error() string {
	return fmt.Sprintf("%v\n--- last verified checkpoint ---\n%s--- checkpoint now served ---\n%s", e.Err, e.Old, e.New)
}

func (e *SplitViewError) Unwrap() error { return e.Err }

// Check fetches the latest checkpoint and verifies it extends the one in the
// state file (if any), then records it. It returns the old and new
// checkpoints. A misbehaving log gives a *SplitViewError, and the state file
// is left as it was.
func (m *Monitor) Check(ctx context.Context) (old *log.Checkpoint, now log.Checkpoint, err error) {
	now, signed, err := m.Client.Checkpoint(ctx)
	if err != nil {
		return nil, log.Checkpoint{}, err
	}
	prevSigned, err := os.ReadFile(m.StatePath)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, now, fmt.Errorf("couldn't read state: %w", err)
	default:
		prev, err := log.OpenCheckpoint(prevSigned, m.Client.Origin, m.Client.Verifier)
		if err != nil {
			return nil, now, fmt.Errorf("state file %s: %w", m.StatePath, err)
		}
		old = &prev
		if err := m.Client.Consistent(ctx, prev, now); err != nil {
			if errors.Is(err, log.ErrInconsistent) {
				return old, now, &SplitViewError{Old: prevSigned, New: signed, Err: err}
			}
			return old, now, err
		}
		if prev.Size == now.Size {
			return old, now, nil
		}
	}
	return old, now, atomicfile.Write(m.StatePath, signed, 0o644)
}
