package serve

import (
	"bytes"
	"context"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/evident-dev/evident/internal/pgtest"
)

// logRecorder keeps the messages a server logs.
type logRecorder struct {
	mu   sync.Mutex
	msgs []string
}

func (r *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *logRecorder) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	r.msgs = append(r.msgs, rec.Message)
	r.mu.Unlock()
	return nil
}
func (r *logRecorder) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *logRecorder) WithGroup(string) slog.Handler      { return r }

func (r *logRecorder) saw(msg string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, m := range r.msgs {
		if m == msg {
			return true
		}
	}
	return false
}

// U-lines with several frontends: one TUF repository. When the online
// roles near expiry, only the sequencer re-signs them; a follower with its
// own copy of the repository mirrors the sequencer's new versions and
// serves the same bytes — it never re-signs on its own, which would show
// clients versions that differ between frontends or go back.
func TestFrontendsServeTheSequencersTUF(t *testing.T) {
	pg := pgtest.Start(t)
	if err := pg.CreateDatabase("evident"); err != nil {
		t.Fatal(err)
	}
	var skew atomic.Int64
	now := func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }
	open := func(dir string, logs *logRecorder) *Server {
		s, err := Open(Config{DataDir: dir, Addr: "127.0.0.1:0", Store: pg.URL("evident"), Now: now,
			TUFRefresh: 20 * time.Millisecond, LeaseTTL: time.Second, Logger: slog.New(logs)})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close(context.Background()) })
		return s
	}
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		for deadline := time.Now().Add(20 * time.Second); !ok(); {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within 20s", what)
			}
			time.Sleep(20 * time.Millisecond) // polling the servers' loops
		}
	}
	seqLogs, folLogs := &logRecorder{}, &logRecorder{}
	seqDir, folDir := t.TempDir(), t.TempDir()
	seq := open(seqDir, seqLogs)
	waitFor("the first frontend leads", func() bool { ok, _ := seq.Sequencer(); return ok })
	copyFrontendDir(t, seqDir, folDir)
	fol := open(folDir, folLogs)
	timestamp := func(dir string) []byte {
		b, _ := os.ReadFile(filepath.Join(dir, "tuf", "metadata", "timestamp.json"))
		return b
	}
	before := timestamp(seqDir)
	if !bytes.Equal(timestamp(folDir), before) {
		t.Fatal("the copied repository differs from the sequencer's")
	}
	skew.Store(int64(13 * time.Hour)) // the online roles now expire within 12h
	waitFor("the sequencer re-signs", func() bool { return !bytes.Equal(timestamp(seqDir), before) })
	waitFor("the follower serves the sequencer's timestamp", func() bool {
		return bytes.Equal(timestamp(folDir), timestamp(seqDir)) && folLogs.saw("mirrored the sequencer's TUF repository")
	})
	if !seqLogs.saw("re-signed the TUF snapshot and timestamp") {
		t.Error("the sequencer did not log its re-signing")
	}
	if folLogs.saw("re-signed the TUF snapshot and timestamp") {
		t.Error("the follower re-signed the online roles itself")
	}
	if ok, _ := fol.Sequencer(); ok {
		t.Error("the follower leads")
	}
}

// copyFrontendDir copies a data directory for another frontend: keys and
// the TUF repository; not links.db (the links are in the database) nor the
// admin socket.
func copyFrontendDir(t *testing.T, from, to string) {
	t.Helper()
	err := filepath.WalkDir(from, func(p string, d fs.DirEntry, err error) error {
		rel, _ := filepath.Rel(from, p)
		switch {
		case err != nil:
			return err
		case d.IsDir():
			return os.MkdirAll(filepath.Join(to, rel), 0o700)
		case !d.Type().IsRegular() || rel == "links.db" || strings.HasPrefix(d.Name(), ".tmp-"):
			return nil
		}
		b, err := os.ReadFile(p)
		if err == nil {
			err = os.WriteFile(filepath.Join(to, rel), b, 0o600)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}
