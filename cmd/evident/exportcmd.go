package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/evident-dev/evident"
	"github.com/evident-dev/evident/sigstore"
	"github.com/evident-dev/evident/tufrepo"
)

const bundleExportUsage = `
Usage: evident bundle export --format sigstore BUNDLE [--out FILE]

Writes BUNDLE's logged signature as a Sigstore bundle (v0.3: a Metablock
link's payload digest and signature, or a DSSE entry's envelope; the signing
certificate; every RFC 3161 token of the entry), which Sigstore verifiers
(sigstore-go, cosign verify-blob) check against the trust root exported by
  evident tuf get --format sigstore-trusted-root --intermediates-from BUNDLE …
A Sigstore verifier checks the signature, the certificate's chain and
code-signing usage at the timestamp's time, the timestamp and the signer's
identity; only evident verify checks the log inclusion, layouts and rules.

Refused: key-only functionaries (a TrustedRoot cannot list plain keys),
certificates without the codeSigning usage (SPIRE X509-SVIDs), RSA-PSS
signatures (in-toto-golang's RSA scheme).

Example:
  evident bundle export --format sigstore build.1a2b3c4d.bundle.json --out build.sigstore.json
`

// runBundleExport is "evident bundle export".
func runBundleExport(e *env, args []string) error {
	fs := newFlags(e, "bundle export", bundleExportUsage)
	format := fs.String("format", "", "output format: sigstore")
	out := fs.String("out", "", "output `file` (default: standard output)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *format != "sigstore" {
		return usagef("bundle export needs --format sigstore")
	}
	if fs.NArg() != 1 {
		return usagef("bundle export takes one BUNDLE")
	}
	raw, err := os.ReadFile(fs.Arg(0))
	if err != nil {
		return err
	}
	b, err := evident.ParseBundle(raw)
	if err != nil {
		return fmt.Errorf("%s: %w", fs.Arg(0), err)
	}
	exported, err := sigstore.ExportBundle(b)
	if err != nil {
		return fmt.Errorf("%s: %w", fs.Arg(0), err)
	}
	if *out == "" {
		_, err = e.stdout.Write(exported)
		return err
	}
	return os.WriteFile(*out, exported, 0o644)
}

// checkGetFormat checks the usage of "tuf get --format" before anything is
// read: the one format, the one target it converts, and
// --intermediates-from only with it.
func checkGetFormat(sub, format string, intermediates, args []string) error {
	switch {
	case sub != "get" || format == "" && len(intermediates) == 0:
		return nil
	case format == "":
		return usagef("--intermediates-from needs --format sigstore-trusted-root")
	case format != "sigstore-trusted-root":
		return usagef("unknown --format %q (want sigstore-trusted-root)", format)
	case len(args) > 1 || len(args) == 1 && args[0] != evident.TrustRootTarget:
		return usagef("--format sigstore-trusted-root converts %s, not %s", evident.TrustRootTarget, strings.Join(args, " "))
	}
	return nil
}

// tufGetSigstoreTrustedRoot is "evident tuf get --format
// sigstore-trusted-root": the verified trust root target as a Sigstore
// TrustedRoot, with the intermediates of the given bundles' signers.
func tufGetSigstoreTrustedRoot(e *env, o tufrepo.ClientOptions, target string, bundles []string) error {
	var entries []*evident.Entry
	for _, p := range bundles {
		raw, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		b, err := evident.ParseBundle(raw)
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		entries = append(entries, b.Entry)
	}
	c, err := tufrepo.NewClient(o)
	if err != nil {
		return err
	}
	raw, err := c.Target(target)
	if err != nil {
		return err
	}
	tr, err := evident.ParseTrustRoot(raw)
	if err != nil {
		return err
	}
	out, err := sigstore.ExportTrustedRoot(tr, entries)
	if err != nil {
		return err
	}
	_, err = e.stdout.Write(out)
	return err
}
