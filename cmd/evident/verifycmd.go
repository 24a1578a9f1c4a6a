package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/evident-dev/evident"
	"github.com/evident-dev/evident/log/logclient"
	"github.com/evident-dev/evident/tufrepo"
	"github.com/evident-dev/evident/verify"
)

const verifyUsage = `
Usage: evident verify --tuf-root ROOT.json (--tuf URL | --tuf-mirror DIR) --layout PROJECT/NAME --bundles DIR
                      [--at TIME] [--tuf-at TIME] [--artifact FILE…] [--require-predicate URI[=WHO]…] [--json]

Verifies a supply chain with no network access (given a mirror): the trust
root and the layout through TUF; the layout's signature by a trusted layout
key and its expiry (at now, or at --at, which also picks the layout version
that was current then); every bundle's checkpoint, inclusion proof, link and
entry, with every certificate checked at its timestamp's genTime; then the
in-toto rules: thresholds of distinct functionaries (one SPIFFE ID counts
once however often its SVID rotated), certificate constraints bound to the
root each certificate really chains to, SPIFFE IDs inside their CA's trust
domains, artifact rules. --artifact FILE requires FILE to be a product of a
step of the chain, with its digest, at its path as given when that is
relative and inside the current directory (dist/app.tar), else at its base
name (/tmp/x/app.tar is app.tar); two files naming one product with
different contents are refused. A bundle that is no evidence (unauthorised,
for no step of the layout, failing its own checks, or a second link of one
functionary for a step) is reported (SKIP) and ignored: it cannot make a
chain fail, it only does not count.

Steps may be recorded as Metablock links or as DSSE links (in-toto
Statements of the link predicate v0.3), mixed in one chain. Other
attestations among the bundles (DSSE Statements of any predicate: SLSA
provenance, SBOMs…) are checked as every bundle is — signature,
timestamp, chain at genTime, log inclusion — and reported.
--require-predicate URI (repeatable) fails unless a verified attestation of
that predicate type has every --artifact among its subjects' digests;
URI=STEP requires it signed by a functionary of that layout step,
URI=spiffe://ID by that SPIFFE ID.

It prints one line per check; exit status 0 verified, 1 failed, 2 bad usage.

Example (air-gapped, with a mirror made by "evident tuf mirror"):
  evident verify --tuf-root root.json --tuf-mirror mirror/ --layout acme/release --bundles bundles/ --artifact app.tar
  evident verify … --artifact app.tar --require-predicate https://slsa.dev/provenance/v1=build
`

func runVerify(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "verify", verifyUsage)
	rd := addReaderFlags(fs)
	layoutName := fs.String("layout", "", "layout PROJECT/NAME")
	bundles := fs.String("bundles", "", "`directory` of *.bundle.json")
	atFlag := fs.String("at", "", "verify as of this RFC 3339 time (layout version and expiry)")
	asJSON := fs.Bool("json", false, "machine-readable report")
	logURL := fs.String("server", "", "also check each bundle's checkpoint is consistent with the current one of this server's log (online; `URL`)")
	alias(fs, "log", "server")
	// Verifying is offline unless a flag on the command line says otherwise.
	noEnv(fs, "server")
	noEnv(fs, "tuf")
	var artifacts listFlag
	fs.Var(&artifacts, "artifact", "a `file` that must be a product of the chain (repeat)")
	var predicates listFlag
	fs.Var(&predicates, "require-predicate", "`URI[=STEP-or-SPIFFE-ID]`: a verified attestation of that predicate type must cover every --artifact (repeat)")
	if err := parse(fs, args); err != nil {
		return err
	}
	var reqs []verify.PredicateRequirement
	for _, p := range predicates {
		r, err := verify.ParsePredicateRequirement(p)
		if err != nil {
			return usagef("--require-predicate: %v", err)
		}
		reqs = append(reqs, r)
	}
	if len(reqs) > 0 && len(artifacts) == 0 {
		return usagef("--require-predicate needs the --artifact files the attestation must cover")
	}
	project, name, ok := strings.Cut(*layoutName, "/")
	if *rd.root == "" || (*rd.url == "") == (*rd.mirror == "") || !ok || *bundles == "" || fs.NArg() > 0 {
		return usagef("verify needs --tuf-root, one of --tuf and --tuf-mirror, --layout PROJECT/NAME and --bundles (see evident verify -h)")
	}
	named, err := readBundles(*bundles)
	if err != nil {
		return err
	}
	at, err := parseTime(*atFlag, time.Time{})
	if err != nil {
		return err
	}
	o, err := rd.options(e)
	if err != nil {
		return err
	}
	c, err := tufrepo.NewClient(o)
	if err != nil {
		return err
	}
	trust, err := c.TrustRoot()
	if err != nil {
		return err
	}
	layout, version, err := c.Layout(project, name, at)
	if err != nil {
		return err
	}
	in := verify.SupplyChainInput{TrustRoot: trust, Layout: layout, At: at, Artifacts: map[string][]byte{}, Bundles: named, RequirePredicates: reqs}
	if len(artifacts) > 0 {
		// Inspections run on copies of the artifacts, in a directory of their own.
		if in.InspectDir, err = os.MkdirTemp("", "evident-inspect-"); err != nil {
			return err
		}
		defer os.RemoveAll(in.InspectDir)
	}
	given := map[string]string{} // product path → --artifact
	for _, a := range artifacts {
		name := artifactPath(a)
		d, err := fileSHA256(a)
		if err != nil {
			return usagef("--artifact: %v", err)
		}
		if prev, ok := in.Artifacts[name]; ok {
			if !bytes.Equal(prev, d) {
				return usagef("--artifact %s and --artifact %s both name product %s, with different contents: give one", given[name], a, name)
			}
			continue
		}
		in.Artifacts[name], given[name] = d, a
		b, err := os.ReadFile(a)
		if err != nil {
			return err
		}
		dst := filepath.Join(in.InspectDir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(dst, b, 0o644); err != nil {
			return err
		}
	}
	rep, verr := verify.SupplyChain(in)
	if verr == nil && *logURL != "" {
		verr = checkFreshness(ctx, rep, trust, in.Bundles, *logURL)
	}
	if *asJSON {
		if err := printJSON(e, map[string]any{"layout": version, "bundles": len(in.Bundles), "report": rep}); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(e.stdout, "layout %s version %d (published %s), %d bundles\n", *layoutName, version.Version,
			version.Published.UTC().Format(time.RFC3339), len(in.Bundles))
		printChecks(e.stdout, rep)
	}
	if verr != nil {
		return fmt.Errorf("verification failed: %w", verr)
	}

	if !*asJSON {
		fmt.Fprintln(e.stdout, "verified")
	}
	return nil
}

// artifactPath is the product path an --artifact FILE must be found at: FILE
// as given when it is a relative path inside the current directory
// (dist/app.tar), its base name otherwise (/tmp/x/app.tar is app.tar).
func artifactPath(file string) string {
	if filepath.IsLocal(file) {
		return filepath.ToSlash(filepath.Clean(file))
	}
	return filepath.Base(file)
}

// checkFreshness checks every bundle's checkpoint against the log's current
// one with a consistency proof (online; --server), adding a line per bundle.
func checkFreshness(ctx context.Context, rep *verify.Report, trust *evident.TrustRoot, bundles []verify.NamedBundle, url string) error {
	ignored := map[string]bool{}
	for _, ch := range rep.Checks {
		if ch.Ignored {
			ignored[strings.SplitN(ch.Check, ": ", 2)[0]] = true
		}
	}
	for _, nb := range bundles {
		if nb.Bundle == nil || ignored[nb.Name] { // no evidence: nothing to be fresh
			continue
		}
		check := nb.Name + ": fresh"
		err := fmt.Errorf("no log key of the trust root signed it")
		if old, v, oerr := trust.OpenCheckpoint([]byte(nb.Bundle.Checkpoint), time.Now()); oerr == nil {
			c := &logclient.Client{URL: url, Origin: v.Name(), Verifier: v}
			cur, _, cerr := c.Checkpoint(ctx)
			if cerr == nil {
				cerr = c.Consistent(ctx, old, cur)
			}
			if err = cerr; err == nil {
				rep.Checks = append(rep.Checks, verify.Check{Check: check, OK: true,
					Detail: fmt.Sprintf("checkpoint of size %d is consistent with the log's current size %d", old.Size, cur.Size)})
			}
		}
		if err != nil {
			rep.Checks = append(rep.Checks, verify.Check{Check: check, OK: false, Detail: err.Error()})
			rep.OK = false
			return err
		}
	}
	return nil
}

// readBundles reads every *.bundle.json in dir, in name order. A missing or
// unreadable directory, or one without bundles, is a usage error: a
// verification of nothing must not look like a verification.
func readBundles(dir string) ([]verify.NamedBundle, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, usagef("--bundles: %v (give the directory that evident bundle fetch --out or evident run --out-dir wrote)", err)
	}
	var out []verify.NamedBundle
	for _, de := range entries { // ReadDir sorts by name
		if de.IsDir() || !strings.HasSuffix(de.Name(), ".bundle.json") {
			continue
		}
		// A bundle that cannot be read or does not parse is no evidence:
		// reported and ignored.
		var bu *evident.Bundle
		b, err := readBundleFile(filepath.Join(dir, de.Name()))
		if err == nil {
			bu, err = evident.ParseBundle(b)
		}
		out = append(out, verify.NamedBundle{Name: de.Name(), Bundle: bu, Err: err})
	}
	if len(out) == 0 {
		return nil, usagef("--bundles %s holds no *.bundle.json: fetch them first (evident bundle fetch --chain --artifact sha256:HEX --out %s)", dir, dir)
	}
	return out, nil
}

// readBundleFile reads one bundle file of at most evident.MaxBundleSize
// bytes. What is not a regular file (a FIFO would block, a link to a device
// need never end) is refused before it is opened.
func readBundleFile(p string) ([]byte, error) {
	fi, err := os.Stat(p)
	if err != nil {
		return nil, fmt.Errorf("bundle: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("bundle: not a regular file (%s)", fi.Mode().Type())
	}
	if fi.Size() > evident.MaxBundleSize {
		return nil, fmt.Errorf("bundle: file is over the limit of %d bytes", evident.MaxBundleSize)
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, fmt.Errorf("bundle: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, evident.MaxBundleSize+1))
	if err == nil && len(b) > evident.MaxBundleSize {
		err = fmt.Errorf("file is over the limit of %d bytes", evident.MaxBundleSize)
	}
	if err != nil {
		return nil, fmt.Errorf("bundle: %w", err)
	}
	return b, nil
}

// printChecks writes one line per check. Names and details may come from
// the evidence (a bundle's file name, a link's text in an error): text
// that is not plain — control characters such as terminal escapes and
// newlines, bidirectional overrides — is shown quoted, so that it cannot
// rewrite the lines a person reads.
func printChecks(w io.Writer, rep *verify.Report) {
	for _, ch := range rep.Checks {
		mark := "PASS"
		switch {
		case ch.Ignored:
			mark = "SKIP"
		case !ch.OK:
			mark = "FAIL"
		}
		fmt.Fprintf(w, "%s  %-40s %s\n", mark, terminalSafe(ch.Check), terminalSafe(ch.Detail))
	}
}

// terminalSafe returns s if every character is graphic (spaces included),
// else s quoted with Go's escapes.
func terminalSafe(s string) string {
	for _, r := range s {
		if !unicode.IsGraphic(r) {
			return strconv.QuoteToGraphic(s)
		}
	}
	return s
}
