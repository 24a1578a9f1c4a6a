package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/evident-dev/evident"
	"github.com/evident-dev/evident/dsse"
	"github.com/evident-dev/evident/identity"
	"github.com/evident-dev/evident/link"
	"github.com/evident-dev/evident/linkstore"
	"github.com/evident-dev/evident/log"
	"github.com/evident-dev/evident/log/logclient"
	"github.com/evident-dev/evident/tsa"
)

// The flags and the appender that run, attest and submit share: where the
// log is and which trust it is checked against, the functionary's
// identity, and the appending of countersigned entries with their payloads.

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

// writeSigned writes the signed link or envelope b as file in the output
// directory, before it is logged and bundled as BUNDLENAME.bundle.json.
//
// The names hold the step and the key's id, so a step run again with the
// same key names the files of its earlier run. Like in-toto-run, which
// replaces its link, the new run replaces both: verify counts one link
// per functionary and step, the earliest, so an earlier bundle left beside
// the new one would be the one that counted. The earlier entry stays in
// the log; the note on stderr names it, and bundle fetch writes its bundle
// again.
func (a *appender) writeSigned(file, bundleName string, b []byte) error {
	p := filepath.Join(a.out, file)
	bp := filepath.Join(a.out, bundleName+".bundle.json")
	_, errLink := os.Lstat(p)
	_, errBundle := os.Lstat(bp)
	switch {
	case errBundle == nil:
		earlier := ""
		if old, err := readBundleFile(bp); err == nil {
			if ob, err := evident.ParseBundle(old); err == nil {
				earlier = fmt.Sprintf(" (logged at index %d; evident bundle fetch --index %d writes its bundle again)", ob.LogIndex, ob.LogIndex)
			}
		}
		files := filepath.Base(bp)
		if errLink == nil {
			files = file + " and " + files
		}
		fmt.Fprintf(a.stderr, "evident: note: replacing %s of an earlier run with this key%s\n", files, earlier)
	case errLink == nil:
		fmt.Fprintf(a.stderr, "evident: note: replacing %s of an earlier run with this key (it has no bundle)\n", file)
	}
	return os.WriteFile(p, b, 0o644)
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
