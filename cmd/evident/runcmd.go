package main

import (
	"context"
	"crypto"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/evident-dev/evident"
	"github.com/evident-dev/evident/artifact"
	"github.com/evident-dev/evident/dsse"
	"github.com/evident-dev/evident/identity"
	"github.com/evident-dev/evident/internal/pemfile"
	"github.com/evident-dev/evident/link"
	"github.com/evident-dev/evident/linkstore"
	"github.com/evident-dev/evident/log"
	"github.com/evident-dev/evident/log/logclient"
	"github.com/evident-dev/evident/tsa"
	"github.com/evident-dev/evident/verify"
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

// logFlags are the flags every command that appends to the log shares.
type logFlags struct {
	server, key, tsaRoots, outDir, tufRoot, tufURL *string
	tsaURLs                                        *urlList
	witnessWait, tsaTimeout                        *time.Duration
}

func addLogFlags(fs interface {
	String(string, string, string) *string
	Duration(string, time.Duration, string) *time.Duration
	Var(flag.Value, string, string)
}) logFlags {
	f := logFlags{
		server:   fs.String("server", "", "evident server `URL` (default http://127.0.0.1:8080)"),
		key:      fs.String("log-key", "", "the log's note verifier key or file (default: from --tuf-root's trust root, else ./evident-data/log.vkey)"),
		tsaURLs:  &urlList{},
		tsaRoots: fs.String("tsa-roots", "", "trusted TSA roots (PEM; default: from --tuf-root's trust root, else the root of ./evident-data/tsa-chain.pem)"),
		outDir:   fs.String("out-dir", ".", "where to write links and bundles"),
		witnessWait: fs.Duration("witness-wait", 3*time.Second,
			"longest wait for a checkpoint cosigned by the witness threshold (about 2 witness periods and some slack)"),
		tsaTimeout: fs.Duration("tsa-timeout", link.DefaultTSATimeout, "longest wait for each TSA's answer"),
	}
	fs.Var(f.tsaURLs, "tsa", "TSA `URL` (repeat, or separate with commas, for tokens from several TSAs, asked at once; default SERVER/tsa)")
	f.tufRoot, f.tufURL = addTrustFlags(fs)
	return f
}

// urlList is a repeatable flag whose values may also be comma-separated,
// so that one environment variable can name several URLs.
type urlList []string

func (l *urlList) String() string { return strings.Join(*l, ",") }

func (l *urlList) Set(v string) error {
	for _, u := range strings.Split(v, ",") {
		if u = strings.TrimSpace(u); u == "" {
			return errors.New("an empty URL")
		}
		*l = append(*l, u)
	}
	return nil
}

func (f logFlags) trust(e *env) *clientTrust {
	return &clientTrust{e: e, server: *f.server, logKey: *f.key, tsaRoots: *f.tsaRoots, tufRoot: *f.tufRoot, tufURL: *f.tufURL}
}

// appender timestamps signatures and appends entries, verifying what the
// log answers.
type appender struct {
	log *logclient.Client
	tsa *link.TSAs
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
	ts, err := newTSAs(t, f, lc.URL, e.stderr)
	if err != nil {
		return nil, err
	}
	a := &appender{log: lc, tsa: ts, out: *f.outDir, wait: *f.witnessWait, stderr: e.stderr}
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

// newTSAs asks the TSAs of --tsa (default SERVER/tsa) at once, for as
// many tokens as the trust root's TSA threshold (with --tuf-root; else 1),
// reporting on stderr those that do not answer.
func newTSAs(t *clientTrust, f logFlags, server string, stderr io.Writer) (*link.TSAs, error) {
	roots, err := t.roots()
	if err != nil {
		return nil, err
	}
	urls := *f.tsaURLs
	if len(urls) == 0 {
		urls = urlList{strings.TrimSuffix(server, "/") + "/tsa"}
	}
	ts := &link.TSAs{Threshold: 1, Timeout: *f.tsaTimeout, Skipped: func(name string, err error) {
		fmt.Fprintf(stderr, "evident: warning: TSA %s did not answer, skipped: %v\n", name, err)
	}}
	if t.tufRoot != "" {
		tr, err := t.trustRoot()
		if err != nil {
			return nil, err
		}
		ts.Threshold, _ = tr.TSAPolicy()
	}
	if len(urls) < ts.Threshold {
		return nil, usagef("the trust root requires tokens from %d distinct TSAs: give --tsa %d times (%d given)", ts.Threshold, ts.Threshold, len(urls))
	}
	seen := map[string]bool{}
	for _, u := range urls {
		if seen[u] {
			return nil, usagef("--tsa %s is given twice: two tokens from one TSA count once", u)
		}
		seen[u] = true
		ts.TSAs = append(ts.TSAs, link.TSA{Name: u, Client: &tsa.Client{URL: u, Roots: roots}})
	}
	return ts, nil
}

// append logs entry, the countersigned signature of the link lb, posting
// the payload it signs beside it so that the server checks the signature
// over it, and writes the bundle; it returns the bundle's path and log
// index.
func (a *appender) append(ctx context.Context, entry *evident.Entry, payload, lb []byte, linkName string) (string, uint64, error) {
	res, err := a.add(ctx, entry, payload)
	if err != nil {
		return "", 0, err
	}
	// Keep the link beside the log, so that "bundle fetch" finds it by
	// artifact; the bundle holds the link as bundle fetch will write it.
	if err := (&linkstore.Client{URL: a.log.URL}).Upload(ctx, res.Index, lb); err != nil {
		a.notStored(res.Index, "link", err)
	}
	if b, err := linkstore.Bundled(lb, entry); err == nil {
		lb = b
	}
	return a.writeBundle(&evident.Bundle{Link: lb, Entry: entry, LogIndex: res.Index, InclusionProof: res.Proof,
		Checkpoint: string(res.Checkpoint)}, strings.TrimSuffix(linkName, ".link"))
}

// appendEnvelope logs entry, the countersigned signature of a DSSE
// envelope, stores its Statement beside the log and writes the version 3
// bundle as NAME.bundle.json; it returns the bundle's path and log index.
func (a *appender) appendEnvelope(ctx context.Context, entry *evident.Entry, env *dsse.Envelope, name string) (string, uint64, error) {
	res, err := a.add(ctx, entry, env.Payload)
	if err != nil {
		return "", 0, err
	}
	if err := (&linkstore.Client{URL: a.log.URL}).UploadStatement(ctx, res.Index, env.Payload); err != nil {
		a.notStored(res.Index, "statement", err)
	}
	// The bundle carries the envelope as bundle fetch rebuilds it: the
	// payload with the entry's signature.
	eb, err := (&dsse.Envelope{PayloadType: env.PayloadType, Payload: env.Payload,
		Signatures: []dsse.Signature{{KeyID: entry.KeyID, Sig: entry.Signature}}}).Marshal()
	if err != nil {
		return "", 0, err
	}
	return a.writeBundle(&evident.Bundle{DSSEEnvelope: eb, Entry: entry, LogIndex: res.Index, InclusionProof: res.Proof,
		Checkpoint: string(res.Checkpoint)}, name)
}

func (a *appender) notStored(index uint64, what string, err error) {
	fmt.Fprintf(a.stderr, "evident: warning: the %s was logged at index %d but not stored on the server, so bundle fetch cannot find it; keep this bundle: %v\n", what, index, err)
}

func (a *appender) writeBundle(bundle *evident.Bundle, name string) (string, uint64, error) {
	b, err := bundle.Marshal()
	if err != nil {
		return "", 0, err
	}
	p := filepath.Join(a.out, name+".bundle.json")
	return p, bundle.LogIndex, os.WriteFile(p, b, 0o644)
}

// add appends entry — with its payload, when not nil, so that the log
// checks the signature over it — verifying the log's answer, and waits for
// the witnesses when the trust root asks for them.
func (a *appender) add(ctx context.Context, entry *evident.Entry, payload []byte) (*log.AddResult, error) {
	canonical, err := entry.Marshal()
	if err != nil {
		return nil, err
	}
	body := canonical
	if payload != nil {
		sub, err := evident.NewSubmission(entry, payload)
		if err != nil {
			return nil, err
		}
		if body, err = sub.Marshal(); err != nil {
			return nil, err
		}
	}
	res, err := a.log.Submit(ctx, body, canonical) // verifies the proof and checkpoint
	var unverified *logclient.UnverifiedAddError
	if errors.As(err, &unverified) {
		return nil, fmt.Errorf("%w; no bundle was written: do not trust this log until that is explained (evident log proof %d checks it again)", err, unverified.Index)
	}
	if err != nil {
		return nil, fmt.Errorf("couldn't append to the log: %w", err)
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
	return res, nil
}

// identityFlags are the signing identity flags run and attest share.
type identityFlags struct {
	keyFile, certFile, socket, spiffeID *string
}

func addIdentityFlags(fs *flag.FlagSet) identityFlags {
	f := identityFlags{
		keyFile:  fs.String("signing-key", "", "signing key `file` (PEM: ECDSA or RSA)"),
		certFile: fs.String("cert", "", "certificate chain `file` for --signing-key (PEM, leaf first)"),
		socket:   fs.String("spiffe-socket", "", "SPIFFE Workload API socket (default $SPIFFE_ENDPOINT_SOCKET)"),
		spiffeID: fs.String("spiffe-id", "", "development SPIFFE ID to ask the server for"),
	}
	alias(fs, "key", "signing-key")
	return f
}

// load checks and loads a key file identity now, before any work is done;
// the other identities are fetched at signing time by signer.
func (f identityFlags) load() (link.Signer, error) {
	if *f.certFile != "" && *f.keyFile == "" {
		return link.Signer{}, usagef("--cert needs --signing-key, the private key of the chain's first certificate")
	}
	if *f.keyFile == "" {
		return link.Signer{}, nil
	}
	s, err := identity.FromFiles(*f.keyFile, *f.certFile)
	if err != nil {
		return link.Signer{}, err
	}
	return s, loggable(s)
}

// signer captures the identity at signing time (SVIDs rotate): the key
// file loaded before, else the Workload API, else a development SVID for
// spiffe://evident.dev/ci/NAME (or --spiffe-id).
func (f identityFlags) signer(ctx context.Context, e *env, a *appender, loaded link.Signer, name string) (link.Signer, error) {
	socket := *f.socket
	if socket == "" {
		socket = e.getenv("SPIFFE_ENDPOINT_SOCKET")
	}
	switch {
	case *f.keyFile != "":
		return loaded, nil
	case socket != "":
		s, _, err := identity.FromWorkloadAPI(ctx, socket)
		return s, err
	}
	id := *f.spiffeID
	if id == "" {
		id = "spiffe://evident.dev/ci/" + name
	}
	fmt.Fprintf(e.stderr, "evident: using a development SVID for %s from %s (development only)\n", id, a.log.URL)
	return identity.FromDevServer(ctx, a.log.URL, id)
}

// checkName refuses a step or attestation name that could not name a file.
func checkName(flagName, v string) error {
	if !filepath.IsLocal(v) || strings.ContainsAny(v, `/\`) || strings.HasPrefix(v, ".") {
		return usagef("--%s %q: a %s names the output files, so it has no '/', '\\' or leading '.'", flagName, v, flagName)
	}
	return nil
}

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
	if err := os.WriteFile(filepath.Join(a.out, name), lb, 0o644); err != nil {
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
	if err := os.WriteFile(filepath.Join(a.out, file), append(eb, '\n'), 0o644); err != nil {
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

const submitUsage = `
Usage: evident submit FILE… [--public-key PUB.pem | --cert CHAIN.pem] [--server URL]

Timestamps and appends links and attestations signed elsewhere, and writes
each FILE's bundle next to it. The signature is not re-made: the entry
records it as it is.

  an in-toto Metablock link   signed with a certificate (the signature's
                              "cert") or a plain key (--public-key);
  a DSSE envelope             of an in-toto Statement v1 (payload type
                              application/vnd.in-toto+json), signed by the
                              key of --cert (a PEM chain, leaf first) or
                              --public-key; its first signature is logged,
                              after it is checked over PAE(type, payload).
`

func runSubmit(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "submit", submitUsage)
	pubFile := fs.String("public-key", "", "the signer's public key (PEM) for links and envelopes signed with a plain key")
	certFile := fs.String("cert", "", "the signer's certificate chain (PEM, leaf first) for DSSE envelopes")
	lf := addLogFlags(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return usagef("submit takes one or more LINK or DSSE envelope files")
	}
	if *pubFile != "" && *certFile != "" {
		return usagef("give one of --public-key and --cert")
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
	var chain []*x509.Certificate
	if *certFile != "" {
		if chain, err = pemfile.LoadCertificates(*certFile); err != nil {
			return err
		}
	}
	for _, p := range fs.Args() {
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		a.out = filepath.Dir(p)
		var bundle string
		var idx uint64
		if isEnvelope(b) {
			bundle, idx, err = submitEnvelope(ctx, a, p, b, chain, pub)
		} else {
			bundle, idx, err = submitLink(ctx, a, p, b, pub)
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "%s: logged at index %d, wrote %s\n", p, idx, bundle)
	}
	return nil
}

// isEnvelope reports whether b looks like a DSSE envelope (it has a
// payloadType member) rather than a Metablock; either is then parsed
// strictly.
func isEnvelope(b []byte) bool {
	var probe struct {
		PayloadType *string `json:"payloadType"`
	}
	return json.Unmarshal(b, &probe) == nil && probe.PayloadType != nil
}

// submitEnvelope logs the first signature of a DSSE envelope of an in-toto
// Statement, signed by chain's leaf or pub, once it verifies.
func submitEnvelope(ctx context.Context, a *appender, p string, b []byte, chain []*x509.Certificate, pub crypto.PublicKey) (string, uint64, error) {
	env, err := dsse.ParseEnvelope(b)
	if err != nil {
		return "", 0, fmt.Errorf("%s: %w", p, err)
	}
	if env.PayloadType != evident.PayloadTypeDSSE {
		return "", 0, fmt.Errorf("%s: payload type %q; the log records in-toto Statements (%q)", p, env.PayloadType, evident.PayloadTypeDSSE)
	}
	if _, err := dsse.ParseStatement(env.Payload); err != nil {
		return "", 0, fmt.Errorf("%s: %w", p, err)
	}
	key := pub
	if len(chain) > 0 {
		key = chain[0].PublicKey
	}
	if key == nil {
		return "", 0, usagef("%s is a DSSE envelope: pass its signer's --cert CHAIN.pem or --public-key PUB.pem", p)
	}
	if err := dsse.Verify(key, env.PayloadType, env.Payload, env.Signatures[0].Sig); err != nil {
		return "", 0, fmt.Errorf("%s: its first signature is not by that key: %w", p, err)
	}
	s := env.Signatures[0]
	entry, err := link.CountersignSignature(ctx, a.tsa, evident.PayloadTypeDSSE, env.Payload, s.Sig, s.KeyID, chain, pub)
	if err != nil {
		return "", 0, fmt.Errorf("%s: %w", p, err)
	}
	name := strings.TrimSuffix(strings.TrimSuffix(filepath.Base(p), ".json"), ".dsse")
	bundle, idx, err := a.appendEnvelope(ctx, entry, env, name)
	if err != nil {
		return "", 0, fmt.Errorf("%s has no bundle: %w", p, err)
	}
	return bundle, idx, nil
}

// submitLink logs the first signature of a Metablock link.
func submitLink(ctx context.Context, a *appender, p string, lb []byte, pub crypto.PublicKey) (string, uint64, error) {
	// The payload is "signed" as the other tool wrote it, canonicalised.
	mb, payload, err := verify.ParseLink(lb)
	if err != nil {
		return "", 0, fmt.Errorf("%s: %w", p, err)
	}
	if len(mb.Signatures) == 0 {
		return "", 0, fmt.Errorf("%s is not signed", p)
	}
	sig, err := hex.DecodeString(mb.Signatures[0].Sig)
	if err != nil {
		return "", 0, fmt.Errorf("%s: the signature is not hex: %w", p, err)
	}
	var chain []*x509.Certificate
	if c := mb.Signatures[0].Certificate; c != "" {
		cert, err := pemfile.ParseCertificate([]byte(c))
		if errors.Is(err, pemfile.ErrNoPEM) {
			return "", 0, fmt.Errorf("%s: the signature's certificate is not PEM", p)
		}
		if err != nil {
			return "", 0, fmt.Errorf("%s: %w", p, err)
		}
		chain = []*x509.Certificate{cert}
	} else if pub == nil {
		return "", 0, usagef("%s is signed with a plain key: pass --public-key", p)
	}
	entry, err := link.CountersignSignature(ctx, a.tsa, evident.PayloadTypeLink, payload, sig, mb.Signatures[0].KeyID, chain, pub)
	if err != nil {
		return "", 0, fmt.Errorf("%s: %w", p, err)
	}
	bundle, idx, err := a.append(ctx, entry, payload, lb, filepath.Base(p))
	if err != nil {
		return "", 0, fmt.Errorf("%s has no bundle: %w", p, err)
	}
	return bundle, idx, nil
}
