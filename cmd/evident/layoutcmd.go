package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/evident-dev/evident"
	"github.com/evident-dev/evident/tufrepo"
	"github.com/evident-dev/evident/verify"
)

const layoutUsage = `
Usage: evident layout SUBCOMMAND [flags]

Works with in-toto layouts, the release manager's signed description of a
supply chain: write a starting one, sign it, check it.

  init --steps NAME,NAME… --spiffe-prefix spiffe://DOMAIN/PATH/ [--expires TIME] [--out FILE]
        write an unsigned starting layout: one step per NAME, in order, each
        to be signed by the job whose SVID carries the SPIFFE ID PREFIX+NAME
        (certificate constraints, any root of the trust root), each taking the
        products of the step before it as its materials. Its "readme" field
        says what to tighten before it is signed; it is a field of the in-toto
        layout format, so the layout stays readable by every in-toto tool

  sign LAYOUT --signing-key KEY.pem [--signing-key …] [--append] [--out FILE]
        sign the layout with each --signing-key (PEM: RSA, ECDSA or Ed25519;
        PKCS #8, PKCS #1 or SEC 1), over the canonical JSON of "signed" exactly
        as the file holds it: every field is kept, certificate constraints
        included. Key ids and signature schemes are in-toto's. Existing
        signatures are replaced, or kept with --append (several release
        managers). The layout is written back in place, or to --out

  check FILE [--trust-root FILE | --tuf-root ROOT.json (--tuf URL | --tuf-mirror DIR)] [--at TIME] [--json]
        explain everything wrong with a signed layout, as "evident verify" and
        "evident tuf publish-layout" judge it: its form (strict JSON, no
        duplicate keys, an in-toto layout), unique step and inspection names,
        artifact rule syntax, MATCH … FROM naming a step of the layout,
        thresholds, certificate-constraint roots, expiry at --at (default now),
        and, given a trust root, a signature by one of its layout keys

Exit status: 0 no problem, 1 problems found, 2 bad usage.

Then publish the public key as a layout key (once) and the layout:
  evident tuf trust add --kind layout-key --name alice --file alice.pub.pem
  evident tuf publish-layout --project acme --name release --file release.layout

Examples:
  evident layout init --steps checkout,build,package --spiffe-prefix spiffe://example.org/ci/ --out release.layout
  evident layout sign release.layout --signing-key alice.pem
  evident layout check release.layout --trust-root trusted_root.json
  evident layout check release.layout --tuf-root root.json --tuf http://127.0.0.1:8080/tuf --at 2026-12-01T00:00:00Z
`

// runLayout dispatches the layout subcommands.
func runLayout(ctx context.Context, e *env, args []string) error {
	if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
		fmt.Fprint(e.stdout, strings.TrimLeft(layoutUsage, "\n"))
		return nil
	}
	if len(args) == 0 {
		return &usageError{msg: "layout needs a subcommand", usage: shortUsage(layoutUsage), cmd: "layout"}
	}
	if args[0] == "check" {
		return runLayoutCheck(ctx, e, args[1:])
	}
	if run, ok := layoutAuthorCommand(args[0]); ok {
		return run(ctx, e, args[1:])
	}
	return usagef("unknown layout subcommand %q (run evident help layout)", args[0])
}

func runLayoutCheck(_ context.Context, e *env, args []string) error {
	fs := newFlags(e, "layout check", layoutUsage)
	trustFile := fs.String("trust-root", "", "a trust root `file` (trusted_root.json) to check the signature against")
	root := fs.String("tuf-root", "", "trusted TUF root.json `file`: take the trust root from TUF")
	url := fs.String("tuf", "", "TUF repository `URL`")
	mirror := fs.String("tuf-mirror", "", "TUF mirror `directory`")
	atFlag := fs.String("at", "", "judge expiry and layout keys at this RFC 3339 time (default now)")
	asJSON := fs.Bool("json", false, "machine-readable report")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usagef("layout check takes one layout FILE (see evident layout -h)")
	}
	if *trustFile != "" && *root != "" || *root != "" && (*url == "") == (*mirror == "") || *root == "" && (*url != "" || *mirror != "") {
		return usagef("give --trust-root FILE, or --tuf-root with one of --tuf and --tuf-mirror, or neither")
	}
	at, err := parseTime(*atFlag, time.Time{})
	if err != nil {
		return err
	}
	if at.IsZero() {
		at = time.Now()
	}
	b, err := os.ReadFile(fs.Arg(0))
	if err != nil {
		return err
	}
	var trust *evident.TrustRoot
	switch {
	case *trustFile != "":
		tb, err := os.ReadFile(*trustFile)
		if err != nil {
			return err
		}
		if trust, err = evident.ParseTrustRoot(tb); err != nil {
			return fmt.Errorf("%s: %w", *trustFile, err)
		}
	case *root != "":
		rootJSON, err := os.ReadFile(*root)
		if err != nil {
			return err
		}
		c, err := tufrepo.NewClient(tufrepo.ClientOptions{Root: rootJSON, URL: *url, MirrorDir: *mirror})
		if err != nil {
			return err
		}
		if trust, err = c.TrustRoot(); err != nil {
			return err
		}
	}
	lr := verify.CheckLayout(b, trust, at)
	if *asJSON {
		problems := []map[string]string{}
		for _, p := range lr.Problems {
			problems = append(problems, map[string]string{"check": p.Check, "problem": p.Err.Error()})
		}
		if err := printJSON(e, map[string]any{"ok": lr.OK(), "signed_by": lr.SignedBy, "signature_checked": trust != nil,
			"judged_at": at.UTC(), "problems": problems}); err != nil {
			return err
		}
	} else {
		explainLayout(e.stdout, lr, trust != nil, at)
	}
	if !lr.OK() {
		return fmt.Errorf("%s: %s", fs.Arg(0), problemCount(lr))
	}
	return nil
}

// explainLayout prints one line per layout check, and one per problem.
func explainLayout(w io.Writer, lr *verify.LayoutReport, trusted bool, at time.Time) {
	line := func(ok bool, check, detail string) {
		mark := "PASS"
		if !ok {
			mark = "FAIL"
		}
		fmt.Fprintf(w, "%s  %-18s %s\n", mark, check, detail)
	}
	failed := map[string]bool{}
	for _, p := range lr.Problems {
		failed[p.Check] = true
	}
	for _, check := range []string{verify.CheckLayoutParse, verify.CheckLayoutSignature, verify.CheckLayoutExpiry, verify.CheckLayoutForm} {
		if failed[check] {
			for _, p := range lr.Problems {
				if p.Check == check {
					line(false, check, p.Err.Error())
				}
			}
			if check == verify.CheckLayoutParse {
				return
			}
			continue
		}
		switch check {
		case verify.CheckLayoutSignature:
			if trusted {
				line(true, check, fmt.Sprintf("signed by layout key %q of the trust root", lr.SignedBy))
			} else {
				fmt.Fprintf(w, "%s  %-18s %s\n", "SKIP", check, "not checked: no trust root given (--trust-root, or --tuf-root with --tuf)")
			}
		case verify.CheckLayoutExpiry:
			line(true, check, fmt.Sprintf("valid until %s (judged at %s)", lr.Expires.UTC().Format(time.RFC3339), at.UTC().Format(time.RFC3339)))
		case verify.CheckLayoutForm:
			line(true, check, fmt.Sprintf("%d steps, %d inspections", len(lr.Layout.Steps), len(lr.Layout.Inspect)))
		}
	}
}

func problemCount(lr *verify.LayoutReport) string {
	if len(lr.Problems) == 1 {
		return "the layout has 1 problem"
	}
	return fmt.Sprintf("the layout has %d problems", len(lr.Problems))
}

// errLayoutRefused: tuf publish-layout refused a layout that fails its checks.
var errLayoutRefused = errors.New("layout not published")

// gateLayout checks a layout before it is published against the trust
// root it will be published beside, at now: every problem goes to stderr;
// without force any problem refuses publication, with force it is printed
// that the checks were overridden.
func gateLayout(e *env, layout []byte, trust *evident.TrustRoot, now time.Time, force bool) error {
	lr := verify.CheckLayout(layout, trust, now)
	if lr.OK() {
		return nil
	}
	for _, p := range lr.Problems {
		fmt.Fprintf(e.stderr, "evident: %s: %v\n", p.Check, p.Err)
	}
	if !force {
		return fmt.Errorf("%w: %s (see evident layout check; --force publishes anyway)", errLayoutRefused, problemCount(lr))
	}
	fmt.Fprintf(e.stderr, "evident: warning: publishing anyway (--force), although %s\n", problemCount(lr))
	return nil
}
