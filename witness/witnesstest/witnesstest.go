// Package witnesstest is an in-process C2SP tlog-witness for tests: it
// serves add-checkpoint as litewitness does (403 unknown log, 409 with its
// size for a stale old size, 422 for a proof that does not verify, 200 with a
// tlog-cosignature/v1 line), keeps one tree per origin, and has a clock and
// an off switch that tests control.
package witnesstest

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/evident-dev/evident/tlog"
	"golang.org/x/mod/sumdb/note"
)

// Witness is a test witness. Its zero value is not usable: see [New].
type Witness struct {
	name string
	priv ed25519.PrivateKey
	v    *tlog.CosignatureVerifier

	mu    sync.Mutex
	logs  map[string]*logState
	now   func() time.Time
	down  bool
	calls int
	// Refused counts 422 answers (split views and bad proofs).
	refused int
}

type logState struct {
	verifier note.Verifier
	size     uint64
	hash     [tlog.HashSize]byte
}

// New returns a witness named name with a fresh key and the real clock.
func New(name string) *Witness {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		panic(err)
	}
	v, err := tlog.NewCosignatureVerifierFromKey(name, priv.Public().(ed25519.PublicKey))
	if err != nil {
		panic(err)
	}
	return &Witness{name: name, priv: priv, v: v, logs: map[string]*logState{}, now: time.Now}
}

// VerifierKey is the witness's cosignature verifier key.
func (w *Witness) VerifierKey() string { return w.v.String() }

// Verifier is the witness's cosignature verifier.
func (w *Witness) Verifier() *tlog.CosignatureVerifier { return w.v }

// AddLog registers a log by its note verifier key; its tree starts empty.
// Registering a known log again keeps the tree the witness has seen.
func (w *Witness) AddLog(vkey string) error {
	v, err := note.NewVerifier(vkey)
	if err != nil {
		return err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if l := w.logs[v.Name()]; l != nil {
		l.verifier = v
		return nil
	}
	w.logs[v.Name()] = &logState{verifier: v}
	return nil
}

// SetClock sets the witness's clock.
func (w *Witness) SetClock(now func() time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.now = now
}

// SetDown makes the witness answer 503 to everything (true) or work again.
func (w *Witness) SetDown(down bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.down = down
}

// Size returns the tree size the witness has cosigned for origin.
func (w *Witness) Size(origin string) uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	if l := w.logs[origin]; l != nil {
		return l.size
	}
	return 0
}

// Calls returns how many add-checkpoint requests the witness has had,
// whatever it answered (also while down).
func (w *Witness) Calls() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.calls
}

// Refused returns how many checkpoints the witness refused as inconsistent.
func (w *Witness) Refused() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.refused
}

// Cosign returns a cosignature line of the checkpoint body made at time t,
// whatever the witness has seen: for tests that forge evidence.
func (w *Witness) Cosign(body []byte, t time.Time) string {
	sig := binary.BigEndian.AppendUint64(nil, uint64(t.Unix()))
	sig = append(sig, ed25519.Sign(w.priv, tlog.CosignedMessage(uint64(t.Unix()), body))...)
	raw := binary.BigEndian.AppendUint32(nil, w.v.KeyHash())
	return "— " + w.name + " " + base64.StdEncoding.EncodeToString(append(raw, sig...)) + "\n"
}

// ServeHTTP serves POST /add-checkpoint.
func (w *Witness) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/add-checkpoint" {
		http.NotFound(rw, r)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 10<<10+1))
	if err != nil || len(body) > 10<<10 {
		http.Error(rw, "body too large", http.StatusRequestEntityTooLarge)
		return
	}
	code, msg := w.add(body)
	if code != http.StatusOK {
		http.Error(rw, msg, code)
		return
	}
	rw.Write([]byte(msg))
}

func (w *Witness) add(body []byte) (int, string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.calls++
	if w.down {
		return http.StatusServiceUnavailable, "down"
	}
	head, signed, ok := bytes.Cut(body, []byte("\n\n"))
	if !ok {
		return http.StatusBadRequest, "no blank line"
	}
	lines := strings.Split(string(head), "\n")
	oldStr, ok := strings.CutPrefix(lines[0], "old ")
	old, err := strconv.ParseUint(oldStr, 10, 64)
	if !ok || err != nil {
		return http.StatusBadRequest, "bad old line"
	}
	var proof [][]byte
	for _, l := range lines[1:] {
		h, err := base64.StdEncoding.DecodeString(l)
		if err != nil || len(h) != tlog.HashSize {
			return http.StatusBadRequest, "bad proof line"
		}
		proof = append(proof, h)
	}
	origin, _, _ := strings.Cut(string(signed), "\n")
	l := w.logs[origin]
	if l == nil {
		return http.StatusForbidden, "unknown log"
	}
	cp, err := tlog.OpenCheckpoint(signed, origin, l.verifier)
	if err != nil {
		return http.StatusForbidden, "invalid signature"
	}
	if old > cp.Size {
		return http.StatusBadRequest, "old size beyond the checkpoint"
	}
	if old != l.size {
		return http.StatusConflict, strconv.FormatUint(l.size, 10) + "\n"
	}
	if old > 0 {
		prev := tlog.Checkpoint{Origin: origin, Size: l.size, Hash: l.hash}
		if err := tlog.VerifyConsistency(prev, cp, proof); err != nil {
			w.refused++
			return http.StatusUnprocessableEntity, fmt.Sprintf("bad consistency proof: %v", err)
		}
	}
	l.size, l.hash = cp.Size, cp.Hash
	return http.StatusOK, w.Cosign(cp.Marshal(), w.now())
}
