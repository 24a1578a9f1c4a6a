package main

import (
	"context"
	"fmt"

	"github.com/evident-dev/evident/log"
	"golang.org/x/mod/sumdb/note"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/evident-dev/evident"
	"github.com/evident-dev/evident/tufrepo"
	"github.com/evident-dev/evident/verify"
)

const verifyUsage = `
Usage: evident verify --tuf-root ROOT.json (--tuf URL | --tuf-mirror DIR) --layout PROJECT/NAME --bundles DIR
                      [--at TIME] [--tuf-at TIME] [--artifact FILE…] [--json]

Verifies a supply chain with no network access (given a mirror): the trust
root and the layout through TUF; the layout's signature by a trusted layout
key and its expiry (at now, or at --at, which also picks the layout version
that was current then); every bundle's checkpoint, inclusion proof, link and
entry, with every certificate checked at its timestamp's genTime; then the
in-toto rules: thresholds of distinct functionaries (one SPIFFE ID counts
once however often its SVID rotated), certificate constraints bound to the
root each certificate really chains to, artifact rules. --artifact FILE
requires FILE to be a product of the chain.

It prints one line per check; exit status 0 verified, 1 failed, 2 bad usage.

Example (air-gapped, with a mirror made by "evident tuf mirror"):
  evident verify --tuf-root root.json --tuf-mirror mirror/ --layout acme/release --bundles bundles/ --artifact app.tar
`

func runVerify(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "verify", verifyUsage)
	root := fs.String("tuf-root", "", "trusted TUF root.json `file`, obtained out of band")
	url := fs.String("tuf", "", "TUF repository `URL`")
	mirror := fs.String("tuf-mirror", "", "TUF mirror `directory`")
	layoutName := fs.String("layout", "", "layout PROJECT/NAME")
	bundles := fs.String("bundles", "", "`directory` of *.bundle.json")
	atFlag := fs.String("at", "", "verify as of this RFC 3339 time (layout version and expiry)")
	tufAt := fs.String("tuf-at", "", "judge TUF metadata expiry at this RFC 3339 time (for an expired mirror)")
	asJSON := fs.Bool("json", false, "machine-readable report")
	logURL := fs.String("server", "", "also check each bundle's checkpoint is consistent with the current one of this server's log (online; `URL`)")
	alias(fs, "log", "server")
	// Verifying is offline unless a flag on the command line says otherwise.
	noEnv(fs, "server")
	noEnv(fs, "tuf")
	var artifacts listFlag
	fs.Var(&artifacts, "artifact", "a `file` that must be a product of the chain (repeat)")
	if err := parse(fs, args); err != nil {
		return err
	}
	project, name, ok := strings.Cut(*layoutName, "/")
	if *root == "" || (*url == "") == (*mirror == "") || !ok || *bundles == "" || fs.NArg() > 0 {
		return usagef("verify needs --tuf-root, one of --tuf and --tuf-mirror, --layout PROJECT/NAME and --bundles (see evident verify -h)")
	}
	at, err := parseOptionalTime(*atFlag)
	if err != nil {
		return err
	}
	rootJSON, err := os.ReadFile(*root)
	if err != nil {
		return err
	}
	o := tufrepo.ClientOptions{Root: rootJSON, URL: *url, MirrorDir: *mirror}
	if *tufAt != "" {
		if o.At, err = parseOptionalTime(*tufAt); err != nil {
			return err
		}
		fmt.Fprintf(e.stderr, "evident: note: TUF metadata expiry judged at %s, not now (--tuf-at)\n", o.At.UTC().Format(time.RFC3339))
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
	in := verify.SupplyChainInput{TrustRoot: trust, Layout: layout, At: at, Artifacts: map[string][]byte{}}
	paths, _ := filepath.Glob(filepath.Join(*bundles, "*.bundle.json"))
	sort.Strings(paths)
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		bu, err := evident.ParseBundle(b)
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		in.Bundles = append(in.Bundles, verify.NamedBundle{Name: filepath.Base(p), Bundle: bu})
	}
	if len(artifacts) > 0 {
		// Inspections run on copies of the artifacts, in a directory of their own.
		if in.InspectDir, err = os.MkdirTemp("", "evident-inspect-"); err != nil {
			return err
		}
		defer os.RemoveAll(in.InspectDir)
	}
	for _, a := range artifacts {
		d, err := fileSHA256(a)
		if err != nil {
			return usagef("--artifact: %v", err)
		}
		in.Artifacts[filepath.Base(a)] = d
		b, err := os.ReadFile(a)
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(in.InspectDir, filepath.Base(a)), b, 0o644); err != nil {
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
		for _, ch := range rep.Checks {
			mark := "PASS"
			if !ch.OK {
				mark = "FAIL"
			}
			fmt.Fprintf(e.stdout, "%s  %-40s %s\n", mark, ch.Check, ch.Detail)
		}
	}
	if verr != nil {
		return fmt.Errorf("verification failed: %w", verr)
	}

	if !*asJSON {
		fmt.Fprintln(e.stdout, "verified")
	}
	return nil
}

// checkFreshness checks every bundle's checkpoint against the log's current
// one with a consistency proof (online; --server), adding a line per bundle.
func checkFreshness(ctx context.Context, rep *verify.Report, trust *evident.TrustRoot, bundles []verify.NamedBundle, url string) error {
	logs, _ := trust.At(evident.KindLog, time.Now())
	for _, nb := range bundles {
		check := nb.Name + ": fresh"
		var err error = fmt.Errorf("no log key of the trust root signed it")
		for _, t := range logs {
			v, verr := note.NewVerifier(t.Value)
			if verr != nil {
				continue
			}
			old, oerr := log.OpenCheckpoint([]byte(nb.Bundle.Checkpoint), v.Name(), v)
			if oerr != nil {
				continue
			}
			c := &log.Client{URL: url, Origin: v.Name(), Verifier: v}
			cur, _, cerr := c.Checkpoint(ctx)
			if cerr == nil {
				cerr = c.Consistent(ctx, old, cur)
			}
			if err = cerr; err == nil {
				rep.Checks = append(rep.Checks, verify.Check{Check: check, OK: true,
					Detail: fmt.Sprintf("checkpoint of size %d is consistent with the log's current size %d", old.Size, cur.Size)})
			}
			break
		}
		if err != nil {
			rep.Checks = append(rep.Checks, verify.Check{Check: check, OK: false, Detail: err.Error()})
			rep.OK = false
			return err
		}
	}
	return nil
}
