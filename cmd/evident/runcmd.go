package main

import (
	"context"
	"crypto"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/evident-dev/evident/artifact"
	"github.com/evident-dev/evident/dsse"
	"github.com/evident-dev/evident/link"
	"github.com/in-toto/in-toto-golang/in_toto"
	"golang.org/x/term"
)

const runUsage = `
Usage: evident run --step NAME [-m PATH…] [-p PATH…] [--exclude GLOB…] [identity] [--server URL] -- COMMAND…

Runs COMMAND and records it as an in-toto link: the SHA-256 of every
material (before) and product (after) — directories are walked on all cores,
symbolic links that leave the working directory are refused — the command,
its exit code and, with --record-streams, its stdout and stderr. The link is
signed, written as NAME.<keyid prefix>.link (in-toto Metablock format), its
signature timestamped by the TSA and appended to the log; the returned
inclusion proof and checkpoint are verified against the log's key and saved
with the link as NAME.<keyid prefix>.bundle.json, everything a verifier needs
offline. evident run exits with the command's exit code.

--format dsse records the step as an in-toto Statement v1 with the link
predicate v0.3 (the products are its subjects; the materials, command and
byproducts its predicate) in a DSSE envelope, written as the .link file
and logged as a version 2 entry; evident verify reads both formats. The
default, metablock, is what every in-toto verifier reads today (see the
README).

Identity, first that applies:
  --signing-key KEY.pem [--cert CHAIN.pem]
                                     a key file, with its certificate chain for X.509 functionaries
  --spiffe-socket PATH               the SPIFFE Workload API (default $SPIFFE_ENDPOINT_SOCKET)
  otherwise                          a short-lived SVID from the server's development SPIFFE CA
                                     (--spiffe-id, default spiffe://evident.dev/ci/NAME): development only

Examples:
  evident run --step build -m src -p bin/app -- go build -o bin/app ./src
  evident run --format dsse --step build -m src -p bin/app -- go build -o bin/app ./src
  SPIFFE_ENDPOINT_SOCKET=/run/spire/agent.sock evident run --step test --server https://evident.example -- make test
`

func runRun(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "run", runUsage)
	step := fs.String("step", "", "step `name`, as in the layout")
	var materials, products, exclude listFlag
	fs.Var(&materials, "m", "material `path` (repeat)")
	fs.Var(&products, "p", "product `path` (repeat)")
	fs.Var(&exclude, "exclude", "`glob` of paths to leave out (repeat)")
	idf := addIdentityFlags(fs)
	streams := fs.Bool("record-streams", false, "record the command's stdout and stderr in the link")
	format := fs.String("format", "metablock", "link `format`: metablock (in-toto Metablock) or dsse (in-toto Statement, link predicate v0.3, in a DSSE envelope)")
	lf := addLogFlags(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	if *step == "" {
		return usagef("--step is required")
	}
	if err := checkName("step", *step); err != nil {
		return err
	}
	if *format != "metablock" && *format != "dsse" {
		return usagef("--format %q: want metablock or dsse", *format)
	}
	cmd := fs.Args()
	// Refuse now what could not be logged after the step has run.
	if len(cmd) == 0 {
		return usagef("no command: give the step's command after --, e.g. evident run --step %s -- make", *step)
	}
	loaded, err := idf.load()
	if err != nil {
		return err
	}
	a, err := newAppender(ctx, e, lf)
	if err != nil {
		return err
	}
	progress := progressPrinter(e)
	mats, err := artifact.Record(ctx, materials, artifact.Options{Exclude: exclude, Progress: progress})
	if err != nil {
		return fmt.Errorf("materials: %w", err)
	}
	res, err := link.RunCommand(ctx, cmd, link.Streams{Stdin: e.stdin, Stdout: e.stdout, Stderr: e.stderr}, *streams)
	if err != nil {
		return err
	}
	prods, err := artifact.Record(ctx, products, artifact.Options{Exclude: exclude, Progress: progress})
	if err != nil {
		return fmt.Errorf("products: %w", err)
	}
	signer, err := idf.signer(ctx, e, a, loaded, *step)
	if err != nil {
		return err
	}
	l := link.NewLink(*step, cmd, mats, prods, res)
	var name, bundle string
	var idx uint64
	if *format == "dsse" {
		name, bundle, idx, err = recordDSSE(ctx, a, l, signer)
	} else {
		name, bundle, idx, err = recordMetablock(ctx, a, l, signer)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stderr, "evident: %s: %d materials, %d products, exit %d; logged at index %d; wrote %s and %s\n",
		*step, len(mats), len(prods), res.ExitCode, idx, name, filepath.Base(bundle))
	if res.ExitCode != 0 {
		return &exitError{code: res.ExitCode}
	}
	return nil
}

// signerPublicKey is the public key an entry carries for a key-only signer.
func signerPublicKey(s link.Signer) crypto.PublicKey {
	if len(s.Chain) == 0 {
		return s.Key.Public()
	}
	return nil
}

// recordMetablock signs l as an in-toto Metablock, writes it, and logs and
// bundles it.
func recordMetablock(ctx context.Context, a *appender, l in_toto.Link, signer link.Signer) (string, string, uint64, error) {
	mb, name, err := link.Sign(l, signer)
	if err != nil {
		return "", "", 0, err
	}
	lb, err := link.MarshalMetablock(mb)
	if err != nil {
		return "", "", 0, err
	}
	if err := a.writeSigned(name, strings.TrimSuffix(name, ".link"), lb); err != nil {
		return "", "", 0, err
	}
	entry, err := link.Entry(ctx, a.tsa, mb, signer.Chain, signerPublicKey(signer))
	if err != nil {
		return "", "", 0, fmt.Errorf("wrote %s, but it has no bundle: %w", name, err)
	}
	payload, err := mb.GetSignableRepresentation()
	if err != nil {
		return "", "", 0, err
	}
	bundle, idx, err := a.append(ctx, entry, payload, lb, name)
	if err != nil {
		return "", "", 0, fmt.Errorf("wrote %s, but it has no bundle: %w", name, err)
	}
	return name, bundle, idx, nil
}

// recordDSSE signs l as an in-toto Statement of the link predicate in a
// DSSE envelope, writes the envelope as the .link file, and logs and
// bundles it.
func recordDSSE(ctx context.Context, a *appender, l in_toto.Link, signer link.Signer) (string, string, uint64, error) {
	env, name, err := link.SignLinkDSSE(l, signer)
	if err != nil {
		return "", "", 0, err
	}
	return logEnvelope(ctx, a, env, signer, name, strings.TrimSuffix(name, ".link"))
}

// logEnvelope writes env as FILE in the output directory, countersigns
// and logs it, and writes BUNDLENAME.bundle.json.
func logEnvelope(ctx context.Context, a *appender, env *dsse.Envelope, signer link.Signer, file, bundleName string) (string, string, uint64, error) {
	eb, err := env.Marshal()
	if err != nil {
		return "", "", 0, err
	}
	if err := a.writeSigned(file, bundleName, append(eb, '\n')); err != nil {
		return "", "", 0, err
	}
	entry, err := link.EntryDSSE(ctx, a.tsa, env, signer.Chain, signerPublicKey(signer))
	if err != nil {
		return "", "", 0, fmt.Errorf("wrote %s, but it has no bundle: %w", file, err)
	}
	bundle, idx, err := a.appendEnvelope(ctx, entry, env, bundleName)
	if err != nil {
		return "", "", 0, fmt.Errorf("wrote %s, but it has no bundle: %w", file, err)
	}
	return file, bundle, idx, nil
}

// exitError carries a command's exit code out of evident run.
type exitError struct{ code int }

func (e *exitError) Error() string { return fmt.Sprintf("the command exited with status %d", e.code) }

// progressPrinter shows hashing progress on a terminal, and nothing otherwise.
func progressPrinter(e *env) artifact.Progress {
	f, ok := e.stderr.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return nil
	}
	var last time.Time
	return func(df, tf int, db, tb int64) {
		if time.Since(last) < 200*time.Millisecond && df != tf {
			return
		}
		last = time.Now()
		fmt.Fprintf(f, "\rhashing: %d/%d files, %d/%d MB", df, tf, db>>20, tb>>20)
		if df == tf {
			fmt.Fprintln(f)
		}
	}
}
