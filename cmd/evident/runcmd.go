package main

import (
	"bytes"
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"github.com/evident-dev/evident/artifact"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/evident-dev/evident"
	"github.com/evident-dev/evident/link"
	"github.com/evident-dev/evident/log"
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

Identity, first that applies:
  --key KEY.pem [--cert CHAIN.pem]   a key file, with its certificate chain for X.509 functionaries
  --spiffe-socket PATH               the SPIFFE Workload API (default $SPIFFE_ENDPOINT_SOCKET)
  otherwise                          a short-lived SVID from the server's development SPIFFE CA
                                     (--spiffe-id, default spiffe://evident.dev/ci/NAME): development only

Examples:
  evident run --step build -m src -p bin/app -- go build -o bin/app ./src
  SPIFFE_ENDPOINT_SOCKET=/run/spire/agent.sock evident run --step test --server https://evident.example -- make test
`

// logFlags are the flags every command that appends to the log shares.
type logFlags struct {
	server, key, tsaURL, tsaRoots, outDir *string
}

func addLogFlags(fs interface {
	String(string, string, string) *string
}) logFlags {
	return logFlags{
		server:   fs.String("server", "", "evident server `URL` (default $EVIDENT_SERVER, else http://127.0.0.1:8080)"),
		key:      fs.String("log-key", "", "the log's note verifier key or file (default $EVIDENT_LOG_KEY, else ./evident-data/log.vkey)"),
		tsaURL:   fs.String("tsa", "", "TSA `URL` (default SERVER/tsa)"),
		tsaRoots: fs.String("tsa-roots", "", "trusted TSA roots (PEM; default the root of ./evident-data/tsa-chain.pem)"),
		outDir:   fs.String("out-dir", ".", "where to write links and bundles"),
	}
}

// appender timestamps signatures and appends entries, verifying what the
// log answers.
type appender struct {
	log *log.Client
	tsa *tsa.Client
	out string
}

func newAppender(e *env, f logFlags) (*appender, error) {
	lc, err := newLogClient(e, *f.server, *f.key)
	if err != nil {
		return nil, err
	}
	roots, err := loadRoots(*f.tsaRoots)
	if err != nil {
		return nil, err
	}
	tsaURL := *f.tsaURL
	if tsaURL == "" {
		tsaURL = strings.TrimSuffix(lc.URL, "/") + "/tsa"
	}
	return &appender{log: lc, tsa: &tsa.Client{URL: tsaURL, Roots: roots}, out: *f.outDir}, nil
}

// append logs entry, the countersigned signature of the link lb, and writes
// the bundle; it returns the bundle's path and log index.
func (a *appender) append(ctx context.Context, entry *evident.Entry, lb []byte, linkName string) (string, uint64, error) {
	canonical, err := entry.Marshal()
	if err != nil {
		return "", 0, err
	}
	res, err := a.log.Add(ctx, canonical) // verifies the proof and checkpoint
	if err != nil {
		return "", 0, fmt.Errorf("couldn't append to the log: %w", err)
	}
	// Keep the link beside the log, so that "bundle fetch" finds it by artifact.
	if err := uploadLink(ctx, a.log.URL, res.Index, lb); err != nil {
		fmt.Fprintf(os.Stderr, "evident: warning: the link was logged but not stored on the server: %v\n", err)
	}
	b, err := (&evident.Bundle{Link: lb, Entry: entry, LogIndex: res.Index, InclusionProof: res.Proof,
		Checkpoint: string(res.Checkpoint)}).Marshal()
	if err != nil {
		return "", 0, err
	}
	p := filepath.Join(a.out, strings.TrimSuffix(linkName, ".link")+".bundle.json")
	return p, res.Index, os.WriteFile(p, b, 0o644)
}

type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

func runRun(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "run", runUsage)
	step := fs.String("step", "", "step `name`, as in the layout")
	var materials, products, exclude listFlag
	fs.Var(&materials, "m", "material `path` (repeat)")
	fs.Var(&products, "p", "product `path` (repeat)")
	fs.Var(&exclude, "exclude", "`glob` of paths to leave out (repeat)")
	keyFile := fs.String("key", "", "signing key `file` (PEM)")
	certFile := fs.String("cert", "", "certificate chain `file` for --key (PEM, leaf first)")
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
	cmd := fs.Args()
	a, err := newAppender(e, lf)
	if err != nil {
		return err
	}
	progress := progressPrinter(e)
	mats, err := artifact.Record(ctx, materials, artifact.Options{Exclude: exclude, Progress: progress})
	if err != nil {
		return fmt.Errorf("materials: %w", err)
	}
	res, err := link.RunCommand(ctx, cmd, *streams)
	if err != nil {
		return err
	}
	prods, err := artifact.Record(ctx, products, artifact.Options{Exclude: exclude, Progress: progress})
	if err != nil {
		return fmt.Errorf("products: %w", err)
	}
	// The identity is captured now, at signing time (SVIDs rotate).
	var signer link.Signer
	if *socket == "" {
		*socket = e.getenv("SPIFFE_ENDPOINT_SOCKET")
	}
	switch {
	case *keyFile != "":
		signer, err = link.FromFiles(*keyFile, *certFile)
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
		return err
	}
	bundle, idx, err := a.append(ctx, entry, lb, name)
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
	a, err := newAppender(e, lf)
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
			blk, _ := pem.Decode([]byte(c))
			if blk == nil {
				return fmt.Errorf("%s: the signature's certificate is not PEM", p)
			}
			cert, err := x509.ParseCertificate(blk.Bytes)
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
			return fmt.Errorf("%s: %w", p, err)
		}
		fmt.Fprintf(e.stdout, "%s: logged at index %d, wrote %s\n", p, idx, bundle)
	}
	return nil
}

func uploadLink(ctx context.Context, server string, index uint64, lb []byte) error {
	body, err := json.Marshal(map[string]any{"index": index, "link": json.RawMessage(lb)})
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(server, "/")+"/links/v1", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		return fmt.Errorf("%s: %s", resp.Status, bytes.TrimSpace(msg))
	}
	return nil
}

const bundleUsage = `
Usage: evident bundle fetch (--artifact sha256:HEX | --index N) [--out DIR] [--server URL]
       evident bundle export --format sigstore BUNDLE [--out FILE]   (see bundle export -h)

Finds every logged link whose materials or products include the artifact
digest (or the entry at one log index) and writes its bundle — link, entry,
a fresh inclusion proof and the checkpoint it proves against, verified
against the log's key — into --out, for verifying offline later.

Examples:
  evident bundle fetch --artifact sha256:$(sha256sum app | cut -d' ' -f1) --out bundles/
  evident bundle fetch --index 42 --out bundles/
`

func runBundle(ctx context.Context, e *env, args []string) error {
	if len(args) > 0 && args[0] == "export" {
		return runBundleExport(e, args[1:])
	}
	if len(args) == 0 || args[0] != "fetch" {
		fmt.Fprint(e.stdout, strings.TrimLeft(bundleUsage, "\n"))
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
			return nil
		}
		return usagef("bundle needs the subcommand fetch or export")
	}
	fs := newFlags(e, "bundle fetch", bundleUsage)
	artifact := fs.String("artifact", "", "artifact digest, sha256:HEX")
	index := fs.Int64("index", -1, "log index")
	out := fs.String("out", ".", "output `directory`")
	server := fs.String("server", "", "evident server `URL` (default $EVIDENT_SERVER, else http://127.0.0.1:8080)")
	key := fs.String("log-key", "", "the log's note verifier key or file")
	if err := parse(fs, args[1:]); err != nil {
		return err
	}
	if (*artifact == "") == (*index < 0) {
		return usagef("give one of --artifact sha256:HEX and --index N")
	}
	lc, err := newLogClient(e, *server, *key)
	if err != nil {
		return err
	}
	var indices []uint64
	if *index >= 0 {
		indices = []uint64{uint64(*index)}
	} else {
		hexd, ok := strings.CutPrefix(*artifact, "sha256:")
		if !ok || len(hexd) != 64 {
			return usagef("--artifact must be sha256:<64 hex digits>")
		}
		var resp struct{ Indices []uint64 }
		if err := getJSON(ctx, lc.URL+"/links/v1/artifacts/"+strings.ToLower(hexd), &resp); err != nil {
			return err
		}
		indices = resp.Indices
	}
	cp, signed, err := lc.Checkpoint(ctx)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return err
	}
	for _, idx := range indices {
		raw, proof, err := lc.ProveEntry(ctx, idx, cp)
		if err != nil {
			return fmt.Errorf("entry %d: %w", idx, err)
		}
		entry, _, err := evident.ParseEntry(raw)
		if err != nil {
			return fmt.Errorf("entry %d: %w", idx, err)
		}
		lb, err := getBytes(ctx, lc.URL+"/links/v1/"+entry.PayloadSHA256)
		if err != nil {
			return fmt.Errorf("link of entry %d: %w", idx, err)
		}
		mb, payload, err := verify.ParseLink(lb)
		if err != nil {
			return fmt.Errorf("link of entry %d: %w", idx, err)
		}
		if d := sha256.Sum256(payload); hex.EncodeToString(d[:]) != entry.PayloadSHA256 {
			return fmt.Errorf("link of entry %d: the server's link is not the entry's payload", idx)
		}
		b, err := (&evident.Bundle{Link: lb, Entry: entry, LogIndex: idx, InclusionProof: proof, Checkpoint: string(signed)}).Marshal()
		if err != nil {
			return err
		}
		keyID := entry.KeyID
		if len(keyID) > 8 {
			keyID = keyID[:8]
		}
		p := filepath.Join(*out, fmt.Sprintf("%s.%s.bundle.json", mb.Signed.(in_toto.Link).Name, keyID))
		if err := os.WriteFile(p, b, 0o644); err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "wrote %s (log index %d, proved at size %d)\n", p, idx, cp.Size)
	}
	if len(indices) == 0 {
		return fmt.Errorf("no logged link names %s", *artifact)
	}
	return nil
}

func getBytes(ctx context.Context, url string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, verify.MaxLinkSize+1))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return b, nil
}

func getJSON(ctx context.Context, url string, v any) error {
	b, err := getBytes(ctx, url)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}
