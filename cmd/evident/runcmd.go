package main

import (
	"context"
	"crypto"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/evident-dev/evident"
	"github.com/evident-dev/evident/artifact"
	"github.com/evident-dev/evident/internal/pemfile"
	"github.com/evident-dev/evident/link"
	"github.com/evident-dev/evident/linkstore"
	"github.com/evident-dev/evident/log/logclient"
	"github.com/evident-dev/evident/tsa"
	"github.com/evident-dev/evident/verify"
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

Identity, first that applies:
  --signing-key KEY.pem [--cert CHAIN.pem]
                                     a key file, with its certificate chain for X.509 functionaries
  --spiffe-socket PATH               the SPIFFE Workload API (default $SPIFFE_ENDPOINT_SOCKET)
  otherwise                          a short-lived SVID from the server's development SPIFFE CA
                                     (--spiffe-id, default spiffe://evident.dev/ci/NAME): development only

Examples:
  evident run --step build -m src -p bin/app -- go build -o bin/app ./src
  SPIFFE_ENDPOINT_SOCKET=/run/spire/agent.sock evident run --step test --server https://evident.example -- make test
`

// logFlags are the flags every command that appends to the log shares.
type logFlags struct {
	server, key, tsaURL, tsaRoots, outDir, tufRoot, tufURL *string
	witnessWait                                            *time.Duration
}

func addLogFlags(fs interface {
	String(string, string, string) *string
	Duration(string, time.Duration, string) *time.Duration
}) logFlags {
	f := logFlags{
		server:   fs.String("server", "", "evident server `URL` (default http://127.0.0.1:8080)"),
		key:      fs.String("log-key", "", "the log's note verifier key or file (default: from --tuf-root's trust root, else ./evident-data/log.vkey)"),
		tsaURL:   fs.String("tsa", "", "TSA `URL` (default SERVER/tsa)"),
		tsaRoots: fs.String("tsa-roots", "", "trusted TSA roots (PEM; default: from --tuf-root's trust root, else the root of ./evident-data/tsa-chain.pem)"),
		outDir:   fs.String("out-dir", ".", "where to write links and bundles"),
		witnessWait: fs.Duration("witness-wait", 3*time.Second,
			"longest wait for a checkpoint cosigned by the witness threshold (about 2 witness periods and some slack)"),
	}
	f.tufRoot, f.tufURL = addTrustFlags(fs)
	return f
}

func (f logFlags) trust(e *env) *clientTrust {
	return &clientTrust{e: e, server: *f.server, logKey: *f.key, tsaRoots: *f.tsaRoots, tufRoot: *f.tufRoot, tufURL: *f.tufURL}
}

// appender timestamps signatures and appends entries, verifying what the
// log answers.
type appender struct {
	log *logclient.Client
	tsa *tsa.Client
	out string
	// witnesses, when set with a threshold, is waited for (up to wait).
	witnesses *witnessPolicy
	wait      time.Duration
	stderr    io.Writer
}

func newAppender(ctx context.Context, e *env, f logFlags) (*appender, error) {
	t := f.trust(e)
	lc, err := t.logClient(ctx)
	if err != nil {
		return nil, err
	}
	roots, err := t.roots()
	if err != nil {
		return nil, err
	}
	tsaURL := *f.tsaURL
	if tsaURL == "" {
		tsaURL = strings.TrimSuffix(lc.URL, "/") + "/tsa"
	}
	a := &appender{log: lc, tsa: &tsa.Client{URL: tsaURL, Roots: roots}, out: *f.outDir, wait: *f.witnessWait, stderr: e.stderr}
	tufRoot, tufURL := *f.tufRoot, *f.tufURL
	if tufRoot == "" {
		tufRoot = e.getenv("EVIDENT_TUF_ROOT")
	}
	if tufURL == "" {
		tufURL = strings.TrimSuffix(lc.URL, "/") + "/tuf"
	}
	if a.witnesses, err = loadWitnessPolicy(tufRoot, tufURL); err != nil {
		return nil, fmt.Errorf("couldn't read the witness policy from the trust root: %w", err)
	}
	return a, nil
}

// append logs entry, the countersigned signature of the link lb, and writes
// the bundle; it returns the bundle's path and log index.
func (a *appender) append(ctx context.Context, entry *evident.Entry, lb []byte, linkName string) (string, uint64, error) {
	canonical, err := entry.Marshal()
	if err != nil {
		return "", 0, err
	}
	res, err := a.log.Add(ctx, canonical) // verifies the proof and checkpoint
	var unverified *logclient.UnverifiedAddError
	if errors.As(err, &unverified) {
		return "", 0, fmt.Errorf("%w; no bundle was written: do not trust this log until that is explained (evident log proof %d checks it again)", err, unverified.Index)
	}
	if err != nil {
		return "", 0, fmt.Errorf("couldn't append to the log: %w", err)
	}
	if p := a.witnesses; p != nil && p.threshold > 0 {
		signed, proof, cosigs, err := fetchWitnessed(ctx, a.log, res.Index, canonical, p, p.threshold, a.wait)
		if err != nil && p.threshold > 1 {
			// Short of the threshold: keep what the witnesses that are up
			// cosigned, which still bounds when the entry was logged.
			if s, pr, cs, err1 := fetchWitnessed(ctx, a.log, res.Index, canonical, p, 1, 0); err1 == nil {
				res.Checkpoint, res.Proof = s, pr
				err = fmt.Errorf("%w (only %s cosigned)", err, cosignerNames(cs))
			}
		}
		if err != nil {
			fmt.Fprintf(a.stderr, "evident: warning: entry %d: %v: the bundle proves the entry is logged but not when; "+
				"\"evident bundle fetch --index %d\" adds the witnessed checkpoint once there is one\n", res.Index, err, res.Index)
		} else {
			res.Checkpoint, res.Proof = signed, proof
			fmt.Fprintf(a.stderr, "evident: entry %d witnessed by %s\n", res.Index, cosignerNames(cosigs))
		}
	}
	// Keep the link beside the log, so that "bundle fetch" finds it by
	// artifact; the bundle holds the link as bundle fetch will write it.
	if err := (&linkstore.Client{URL: a.log.URL}).Upload(ctx, res.Index, lb); err != nil {
		fmt.Fprintf(a.stderr, "evident: warning: the link was logged at index %d but not stored on the server, so bundle fetch cannot find it; keep this bundle: %v\n", res.Index, err)
	}
	if b, err := linkstore.Bundled(lb, entry); err == nil {
		lb = b
	}
	b, err := (&evident.Bundle{Link: lb, Entry: entry, LogIndex: res.Index, InclusionProof: res.Proof,
		Checkpoint: string(res.Checkpoint)}).Marshal()
	if err != nil {
		return "", 0, err
	}
	p := filepath.Join(a.out, strings.TrimSuffix(linkName, ".link")+".bundle.json")
	return p, res.Index, os.WriteFile(p, b, 0o644)
}

func runRun(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "run", runUsage)
	step := fs.String("step", "", "step `name`, as in the layout")
	var materials, products, exclude listFlag
	fs.Var(&materials, "m", "material `path` (repeat)")
	fs.Var(&products, "p", "product `path` (repeat)")
	fs.Var(&exclude, "exclude", "`glob` of paths to leave out (repeat)")
	keyFile := fs.String("signing-key", "", "signing key `file` (PEM: ECDSA or RSA)")
	alias(fs, "key", "signing-key")
	certFile := fs.String("cert", "", "certificate chain `file` for --signing-key (PEM, leaf first)")
	socket := fs.String("spiffe-socket", "", "SPIFFE Workload API socket (default $SPIFFE_ENDPOINT_SOCKET)")
	spiffeID := fs.String("spiffe-id", "", "development SPIFFE ID to ask the server for")
	streams := fs.Bool("record-streams", false, "record the command's stdout and stderr in the link")
	lf := addLogFlags(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	if *step == "" {
		return usagef("--step is required")
	}
	if !filepath.IsLocal(*step) || strings.ContainsAny(*step, `/\`) || strings.HasPrefix(*step, ".") {
		return usagef("--step %q: a step name names the link and bundle files, so it has no '/', '\\' or leading '.'", *step)
	}
	cmd := fs.Args()
	// Refuse now what could not be logged after the step has run.
	if len(cmd) == 0 {
		return usagef("no command: give the step's command after --, e.g. evident run --step %s -- make", *step)
	}
	if *certFile != "" && *keyFile == "" {
		return usagef("--cert needs --signing-key, the private key of the chain's first certificate")
	}
	var signer link.Signer
	if *keyFile != "" {
		var err error
		if signer, err = link.FromFiles(*keyFile, *certFile); err != nil {
			return err
		}
		if err := ingestAccepts(signer); err != nil {
			return err
		}
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
	// The identity is captured now, at signing time (SVIDs rotate).
	if *socket == "" {
		*socket = e.getenv("SPIFFE_ENDPOINT_SOCKET")
	}
	switch {
	case *keyFile != "":
	case *socket != "":
		signer, _, err = link.FromWorkloadAPI(ctx, *socket)
	default:
		id := *spiffeID
		if id == "" {
			id = "spiffe://evident.dev/ci/" + *step
		}
		fmt.Fprintf(e.stderr, "evident: using a development SVID for %s from %s (development only)\n", id, a.log.URL)
		signer, err = link.FromDevServer(ctx, a.log.URL, id)
	}
	if err != nil {
		return err
	}
	mb, name, err := link.Sign(link.NewLink(*step, cmd, mats, prods, res), signer)
	if err != nil {
		return err
	}
	lb, err := link.MarshalMetablock(mb)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(a.out, name), lb, 0o644); err != nil {
		return err
	}
	var pub crypto.PublicKey
	if len(signer.Chain) == 0 {
		pub = signer.Key.Public()
	}
	entry, err := link.Entry(ctx, a.tsa, mb, signer.Chain, pub)
	if err != nil {
		return fmt.Errorf("wrote %s, but it has no bundle: %w", name, err)
	}
	bundle, idx, err := a.append(ctx, entry, lb, name)
	if err != nil {
		return fmt.Errorf("wrote %s, but it has no bundle: %w", name, err)
	}
	fmt.Fprintf(e.stderr, "evident: %s: %d materials, %d products, exit %d; logged at index %d; wrote %s and %s\n",
		*step, len(mats), len(prods), res.ExitCode, idx, name, filepath.Base(bundle))
	if res.ExitCode != 0 {
		return &exitError{code: res.ExitCode}
	}
	return nil
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

const submitUsage = `
Usage: evident submit LINK… [--public-key PUB.pem] [--server URL]

Timestamps and appends links signed elsewhere — by another in-toto
implementation, with a certificate (the signature's "cert") or a plain key
(--public-key) — and writes LINK's bundle next to it. The signature is not
re-made: the entry records it as it is.
`

func runSubmit(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "submit", submitUsage)
	pubFile := fs.String("public-key", "", "the signer's public key (PEM) for links signed with a plain key")
	lf := addLogFlags(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return usagef("submit takes one or more LINK files")
	}
	a, err := newAppender(ctx, e, lf)
	if err != nil {
		return err
	}
	var pub crypto.PublicKey
	if *pubFile != "" {
		if pub, err = readPublicKey(*pubFile); err != nil {
			return err
		}
	}
	for _, p := range fs.Args() {
		lb, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		// The payload is "signed" as the other tool wrote it, canonicalised.
		mb, payload, err := verify.ParseLink(lb)
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		if len(mb.Signatures) == 0 {
			return fmt.Errorf("%s is not signed", p)
		}
		sig, err := hex.DecodeString(mb.Signatures[0].Sig)
		if err != nil {
			return fmt.Errorf("%s: the signature is not hex: %w", p, err)
		}
		var chain []*x509.Certificate
		if c := mb.Signatures[0].Certificate; c != "" {
			cert, err := pemfile.ParseCertificate([]byte(c))
			if errors.Is(err, pemfile.ErrNoPEM) {
				return fmt.Errorf("%s: the signature's certificate is not PEM", p)
			}
			if err != nil {
				return fmt.Errorf("%s: %w", p, err)
			}
			chain = []*x509.Certificate{cert}
		} else if pub == nil {
			return usagef("%s is signed with a plain key: pass --public-key", p)
		}
		entry, err := link.CountersignSignature(ctx, a.tsa, evident.PayloadTypeLink, payload, sig, mb.Signatures[0].KeyID, chain, pub)
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		a.out = filepath.Dir(p)
		bundle, idx, err := a.append(ctx, entry, lb, filepath.Base(p))
		if err != nil {
			return fmt.Errorf("%s has no bundle: %w", p, err)
		}
		fmt.Fprintf(e.stdout, "%s: logged at index %d, wrote %s\n", p, idx, bundle)
	}
	return nil
}
