package main

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/evident-dev/evident/log"
	"github.com/evident-dev/evident/log/boltstore"
	"github.com/evident-dev/evident/log/logclient"
	"github.com/evident-dev/evident/pgstore"
	"github.com/evident-dev/evident/serve"
	"github.com/transparency-dev/formats/proof"
	"golang.org/x/mod/sumdb/note"
)

const logUsage = `
Usage: evident log SUBCOMMAND [flags]

Reads the transparency log and verifies everything it reads against the
log's note verifier key.

Subcommands:
  checkpoint          print the latest verified checkpoint
  get INDEX           print the entry at INDEX, after proving it is in the log
  proof INDEX         print a verified inclusion proof (C2SP tlog-proof)
  consistency --old CHECKPOINT
                      verify the latest checkpoint extends an older one
  watch --state FILE  keep checking that the log only grows; exit 1 on a
                      split view or rollback, printing both checkpoints; with
                      --tuf-root, also that the latest witnessed checkpoint
                      carries the trust root's threshold of valid cosignatures
                      and is consistent with the log's
  fsck --data DIR     check a stopped server's store offline
  fsck --store postgres://… --log-key KEY
                      check the log in PostgreSQL (online: one snapshot)

Client flags (every subcommand but fsck):
  --server URL   the server (default $EVIDENT_SERVER, else http://127.0.0.1:8080)
  --log-key KEY  the log's note verifier key, or a file holding it (default
                 $EVIDENT_LOG_KEY; else, with --tuf-root, the trust root's;
                 else ./evident-data/log.vkey if present)
  --tuf-root ROOT.json, --tuf URL
                 take the log key from the trust root published through TUF
                 (default $EVIDENT_TUF_ROOT; --tuf default SERVER/tuf)
  --json         machine-readable output

Examples:
  evident log checkpoint
  evident log proof 42 --log-key evident-data/log.vkey
  evident log watch --state checkpoint.state --interval 30s
`

// logSubcommands are the subcommands of evident log, each with its own
// flags (fsck reads a store, the others a server).
var logSubcommands = map[string]func(ctx context.Context, e *env, sub string, args []string) error{
	"checkpoint":  logCheckpoint,
	"get":         logGetOrProof,
	"proof":       logGetOrProof,
	"consistency": logConsistency,
	"watch":       logWatch,
	"fsck":        func(_ context.Context, e *env, _ string, args []string) error { return runFsck(e, args) },
}

func runLog(ctx context.Context, e *env, args []string) error {
	if len(args) == 0 {
		return &usageError{msg: "log needs a subcommand", usage: shortUsage(logUsage), cmd: "log"}
	}
	if args[0] == "-h" || args[0] == "--help" {
		fmt.Fprint(e.stdout, strings.TrimLeft(logUsage, "\n"))
		return nil
	}
	sub, args := args[0], args[1:]
	run, ok := logSubcommands[sub]
	if !ok {
		return usagef("unknown log subcommand %q (run evident log -h)", sub)
	}
	return run(ctx, e, sub, args)
}

// logClientFlags are the client flags every subcommand but fsck has.
type logClientFlags struct {
	fs              *flag.FlagSet
	server, key     *string
	tufRoot, tufURL *string
	asJSON          *bool
}

func newLogClientFlags(e *env, sub string) logClientFlags {
	fs := newFlags(e, "log "+sub, subUsage(logUsage, "log", sub))
	f := logClientFlags{fs: fs,
		server: fs.String("server", "", "server `URL`"),
		key:    fs.String("log-key", "", "the log's note verifier `key`, or a file holding it (default ./evident-data/log.vkey if present)"),
	}
	alias(fs, "key", "log-key")
	f.asJSON = fs.Bool("json", false, "machine-readable output")
	f.tufRoot, f.tufURL = addTrustFlags(fs)
	return f
}

// parse parses args and makes the client.
func (f logClientFlags) parse(ctx context.Context, e *env, args []string) (*logclient.Client, error) {
	if err := parse(f.fs, args); err != nil {
		return nil, err
	}
	return (&clientTrust{e: e, server: *f.server, logKey: *f.key, tufRoot: *f.tufRoot, tufURL: *f.tufURL}).logClient(ctx)
}

func logCheckpoint(ctx context.Context, e *env, sub string, args []string) error {
	f := newLogClientFlags(e, sub)
	c, err := f.parse(ctx, e, args)
	if err != nil {
		return err
	}
	if f.fs.NArg() != 0 {
		return usagef("log checkpoint takes no arguments")
	}
	cp, signed, err := c.Checkpoint(ctx)
	if err != nil {
		return err
	}
	if *f.asJSON {
		return printJSON(e, checkpointJSON(cp))
	}
	_, err = e.stdout.Write(signed)
	return err
}

// logGetOrProof is log get and log proof: the entry at INDEX, or its
// inclusion proof, once proved.
func logGetOrProof(ctx context.Context, e *env, sub string, args []string) error {
	f := newLogClientFlags(e, sub)
	c, err := f.parse(ctx, e, args)
	if err != nil {
		return err
	}
	if f.fs.NArg() != 1 {
		return usagef("log %s takes one INDEX", sub)
	}
	idx, err := strconv.ParseUint(f.fs.Arg(0), 10, 64)
	if err != nil {
		return usagef("INDEX %q is not a non-negative number", f.fs.Arg(0))
	}
	cp, signed, err := c.Checkpoint(ctx)
	if err != nil {
		return err
	}
	entry, p, err := c.ProveEntry(ctx, idx, cp)
	if err != nil {
		return err
	}
	if sub == "get" {
		if *f.asJSON {
			return printJSON(e, map[string]any{"index": idx, "entry": json.RawMessage(entry),
				"leaf_hash": hex.EncodeToString(log.LeafHash(entry)), "checkpoint": checkpointJSON(cp)})
		}
		fmt.Fprintf(e.stdout, "%s\n", entry)
		return nil
	}
	tp := proof.TLogProof{Index: idx, Checkpoint: signed, Hashes: make([][sha256.Size]byte, len(p))}
	for i, h := range p {
		copy(tp.Hashes[i][:], h)
	}
	if *f.asJSON {
		return printJSON(e, map[string]any{"index": idx, "size": cp.Size, "leaf_hash": hex.EncodeToString(log.LeafHash(entry)),
			"hashes": p, "checkpoint": string(signed)})
	}
	_, err = e.stdout.Write(tp.Marshal())
	return err
}

func logConsistency(ctx context.Context, e *env, sub string, args []string) error {
	f := newLogClientFlags(e, sub)
	old := f.fs.String("old", "", "`file` holding an earlier signed checkpoint")
	c, err := f.parse(ctx, e, args)
	if err != nil {
		return err
	}
	if *old == "" || f.fs.NArg() != 0 {
		return usagef("log consistency needs --old CHECKPOINT and no arguments")
	}
	oldSigned, err := os.ReadFile(*old)
	if err != nil {
		return err
	}
	prev, err := log.OpenCheckpoint(oldSigned, c.Origin, c.Verifier)
	if err != nil {
		return fmt.Errorf("%s: %w", *old, err)
	}
	cp, signed, err := c.Checkpoint(ctx)
	if err != nil {
		return err
	}
	if err := c.Consistent(ctx, prev, cp); err != nil {
		if errors.Is(err, log.ErrInconsistent) {
			return &logclient.SplitViewError{Old: oldSigned, New: signed, Err: err}
		}
		return err
	}
	if *f.asJSON {
		return printJSON(e, map[string]any{"consistent": true, "old": checkpointJSON(prev), "new": checkpointJSON(cp)})
	}
	fmt.Fprintf(e.stdout, "ok: size %d extends size %d\n", cp.Size, prev.Size)
	return nil
}

func logWatch(ctx context.Context, e *env, sub string, args []string) error {
	f := newLogClientFlags(e, sub)
	state := f.fs.String("state", "", "state `file` keeping the last verified checkpoint")
	interval := f.fs.Duration("interval", time.Minute, "time between checks")
	once := f.fs.Bool("once", false, "check once and exit")
	tufRoot, tufURL := f.tufRoot, f.tufURL
	c, err := f.parse(ctx, e, args)
	if err != nil {
		return err
	}
	if *state == "" || f.fs.NArg() != 0 {
		return usagef("log watch needs --state FILE and no arguments")
	}
	if *interval <= 0 {
		return usagef("--interval must be positive")
	}
	if *tufURL == "" {
		*tufURL = strings.TrimSuffix(c.URL, "/") + "/tuf"
	}
	policy, err := loadWitnessPolicy(*tufRoot, *tufURL)
	if err != nil {
		return err
	}
	w := &watcher{e: e, c: c, m: &logclient.Monitor{Client: c, StatePath: *state}, policy: policy, asJSON: *f.asJSON}
	for {
		done, err := w.check(ctx, *once)
		if done || err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(*interval):
		}
	}
}

// watcher is one log watch: each check verifies the log grew from the
// last checkpoint seen and, with a witness policy, the witnessed head.
type watcher struct {
	e      *env
	c      *logclient.Client
	m      *logclient.Monitor
	policy *witnessPolicy
	asJSON bool
}

// check checks once; done says to stop (a split view, or once).
func (w *watcher) check(ctx context.Context, once bool) (done bool, err error) {
	prev, cp, err := w.m.Check(ctx)
	if err == nil && w.policy != nil && w.policy.threshold > 0 {
		err = checkWitnessedHead(ctx, w.e, w.c, w.policy, cp)
	}
	var split *logclient.SplitViewError
	switch {
	case errors.As(err, &split):
		fmt.Fprintf(w.e.stderr, "evident: ALERT: the log at %s is inconsistent\n", w.c.URL)
		return true, err
	case err != nil && once:
		return true, err
	case err != nil:
		fmt.Fprintf(w.e.stderr, "evident: warning: %v\n", err)
	case w.asJSON:
		printJSON(w.e, map[string]any{"time": time.Now().UTC(), "checkpoint": checkpointJSON(cp), "consistent_with_previous": prev != nil})
	case prev == nil:
		fmt.Fprintf(w.e.stdout, "%s first checkpoint: size %d\n", time.Now().UTC().Format(time.RFC3339), cp.Size)
	default:
		fmt.Fprintf(w.e.stdout, "%s ok: size %d extends size %d\n", time.Now().UTC().Format(time.RFC3339), cp.Size, prev.Size)
	}
	return once, nil
}

func checkpointJSON(cp log.Checkpoint) map[string]any {
	return map[string]any{"origin": cp.Origin, "size": cp.Size, "root_hash": base64.StdEncoding.EncodeToString(cp.Hash[:])}
}

func printJSON(e *env, v any) error {
	enc := json.NewEncoder(e.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// newLogClient builds a client from --server and --key, with their defaults.
func newLogClient(e *env, server, key string) (*logclient.Client, error) {
	server = serverURL(e, server)
	if key == "" {
		key = e.getenv("EVIDENT_LOG_KEY")
	}
	if key == "" {
		if p := serve.DefaultDataDir.LogVerifierKey(); statOK(p) {
			key = p
		}
	}
	if key == "" {
		return nil, usagef("--log-key is required: the log's note verifier key as evident serve prints it, or a file holding it (or --tuf-root, to take it from the trust root)")
	}
	v, err := parseVerifierKey(key)
	if err != nil {
		return nil, err
	}
	return &logclient.Client{URL: server, Origin: v.Name(), Verifier: v}, nil
}

// parseVerifierKey accepts a note verifier key or the path of a file holding one.
func parseVerifierKey(s string) (note.Verifier, error) {
	if v, err := note.NewVerifier(strings.TrimSpace(s)); err == nil {
		return v, nil
	}
	b, err := os.ReadFile(s)
	if err != nil {
		return nil, usagef("--log-key %q is neither a note verifier key nor a readable file", s)
	}
	v, err := note.NewVerifier(strings.TrimSpace(string(b)))
	if err != nil {
		return nil, fmt.Errorf("%s: not a note verifier key: %w", s, err)
	}
	return v, nil
}

func runFsck(e *env, args []string) error {
	fs := newFlags(e, "log fsck", subUsage(logUsage, "log", "fsck"))
	data := fs.String("data", string(serve.DefaultDataDir), "data `directory` of a stopped server")
	store := fs.String("store", os.Getenv("EVIDENT_STORE"), "PostgreSQL `URL` of the log (default $EVIDENT_STORE)")
	key := fs.String("log-key", "", "the log's note verifier `key` or file (default DIR/log.vkey)")
	alias(fs, "key", "log-key")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *key == "" {
		*key = serve.DataDir(*data).LogVerifierKey()
	}
	vk, err := parseVerifierKey(*key)
	if err != nil {
		return err
	}
	var s log.Store
	if *store != "" {
		if !serve.IsPostgresURL(*store) {
			return usagef("--store must be a postgres:// URL")
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		// Read-only: fsck never creates or migrates the schema it checks.
		pg, err := pgstore.OpenLogReadOnly(ctx, *store)
		if err != nil {
			return err
		}
		defer pg.Close()
		snap, err := pg.Snapshot(context.Background())
		if err != nil {
			return err
		}
		defer snap.Close()
		s = snap
	} else {
		bolt, err := boltstore.Open(serve.DataDir(*data).LogDB())
		if errors.Is(err, boltstore.ErrDamaged) {
			return err
		}
		if err != nil {
			return fmt.Errorf("%w (is a server running on %s?)", err, *data)
		}
		defer bolt.Close()
		s = bolt
	}
	h, err := checkStore(s, vk)
	if err != nil {
		return err
	}
	if snap, ok := s.(*pgstore.Snapshot); ok {
		if err := snap.CheckTiles(); err != nil {
			return err
		}
	}
	fmt.Fprintf(e.stdout, "ok: %d entries; every node, the leaf index and the signed checkpoint check\n", h.Size)
	return nil
}

// checkStore runs log.Check, turning a panic inside the store (bbolt panics
// on a page it cannot decode) into an error: damage is reported, not crashed on.
func checkStore(s log.Store, vk note.Verifier) (h log.Head, err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("the store is %w: %v", boltstore.ErrDamaged, v)
		}
	}()
	return log.Check(s, vk.Name(), vk)
}

// statOK reports whether path exists.
func statOK(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
