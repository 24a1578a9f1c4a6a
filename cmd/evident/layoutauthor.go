package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/in-toto/in-toto-golang/in_toto"
)

// layoutAuthorCommand returns the layout subcommands that author layouts.
func layoutAuthorCommand(sub string) (func(context.Context, *env, []string) error, bool) {
	switch sub {
	case "init":
		return runLayoutInit, true
	case "sign":
		return runLayoutSign, true
	}
	return nil, false
}

// layoutReadme is the starting layout's "readme": what to do before
// signing it.
const layoutReadme = `Starting layout written by evident layout init. Before signing it:
(1) steps: one per CI job, in order; "threshold" is how many distinct functionaries must sign each step.
(2) cert_constraints: each step's "uris" is the SPIFFE ID of the job allowed to sign it; "roots": ["*"] accepts any functionary CA of the trust root (name one to pin it).
(3) artifact rules: "MATCH * WITH PRODUCTS FROM <step>" takes the previous step's products; replace "CREATE *" with the files each step makes, and the first step's "ALLOW *" with its inputs, then end every list with ["DISALLOW", "*"].
(4) expires: verification fails after it; publish a new version before then.
(5) expected_command is informational in in-toto; inspections run on the verifier's machine.
Then: evident layout sign FILE --signing-key KEY.pem, and evident tuf publish-layout.`

func runLayoutInit(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "layout init", layoutUsage)
	steps := fs.String("steps", "", "comma-separated step `names`, in order")
	prefix := fs.String("spiffe-prefix", "", "SPIFFE ID `prefix` of the CI jobs: step NAME is signed by PREFIX+NAME")
	expires := fs.String("expires", "", "expiry (RFC 3339; default 3 months from now)")
	out := fs.String("out", "", "write to this `file` (default stdout)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("layout init takes no arguments")
	}
	names := strings.Split(*steps, ",")
	if *steps == "" {
		return usagef("--steps is required, e.g. --steps checkout,build,package")
	}
	if !strings.HasPrefix(*prefix, "spiffe://") {
		return usagef("--spiffe-prefix must be a SPIFFE ID prefix, e.g. spiffe://example.org/ci/")
	}
	exp := time.Now().AddDate(0, 3, 0).UTC().Truncate(time.Second)
	if *expires != "" {
		t, err := time.Parse(time.RFC3339, *expires)
		if err != nil {
			return usagef("bad --expires %q: want RFC 3339, e.g. 2027-01-31T00:00:00Z", *expires)
		}
		exp = t.UTC()
	}
	l, err := startingLayout(names, *prefix, exp)
	if err != nil {
		return err
	}
	b, err := json.MarshalIndent(in_toto.Metablock{Signed: l, Signatures: []in_toto.Signature{}}, "", "  ")
	if err != nil {
		return err
	}
	b = append(b, '\n')
	if *out == "" {
		_, err = e.stdout.Write(b)
		return err
	}
	if err := os.WriteFile(*out, b, 0o644); err != nil {
		return err
	}
	fmt.Fprintf(e.stderr, "evident: wrote %s: %d steps, signed by %s<step>, expires %s; read its \"readme\", tighten the rules, then: evident layout sign %s --signing-key KEY.pem\n",
		*out, len(names), *prefix, exp.Format(time.RFC3339), shellQuote(*out))
	return nil
}

// startingLayout is a layout of one step per name, each signed by the
// SPIFFE ID prefix+name and taking the previous step's products.
func startingLayout(names []string, prefix string, expires time.Time) (in_toto.Layout, error) {
	l := in_toto.Layout{Type: "layout", Expires: expires.Format(in_toto.ISO8601DateSchema), Keys: map[string]in_toto.Key{},
		Inspect: []in_toto.Inspection{}, Readme: layoutReadme}
	seen := map[string]bool{}
	for i, name := range names {
		if name == "" || strings.ContainsAny(name, "/ \t\n") || seen[name] {
			return l, usagef("bad or repeated step name %q in --steps", name)
		}
		seen[name] = true
		mats := [][]string{{"ALLOW", "*"}}
		if i > 0 {
			mats = [][]string{{"MATCH", "*", "WITH", "PRODUCTS", "FROM", names[i-1]}, {"DISALLOW", "*"}}
		}
		l.Steps = append(l.Steps, in_toto.Step{Type: "step", Threshold: 1, PubKeys: []string{}, ExpectedCommand: []string{},
			CertificateConstraints: []in_toto.CertificateConstraint{{CommonName: "*", DNSNames: []string{"*"}, Emails: []string{"*"},
				Organizations: []string{"*"}, URIs: []string{prefix + name}, Roots: []string{"*"}}},
			SupplyChainItem: in_toto.SupplyChainItem{Name: name, ExpectedMaterials: mats, ExpectedProducts: [][]string{{"CREATE", "*"}}}})
	}
	return l, nil
}

// maxLayoutSize bounds a layout file read for signing.
const maxLayoutSize = 16 << 20

func runLayoutSign(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "layout sign", layoutUsage)
	var keys listFlag
	fs.Var(&keys, "signing-key", "a release manager's private key `PEM` (repeat)")
	alias(fs, "key", "signing-key")
	appendSigs := fs.Bool("append", false, "keep the layout's existing signatures")
	out := fs.String("out", "", "write to this `file` (default: in place)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usagef("layout sign takes one LAYOUT file")
	}
	if len(keys) == 0 {
		return usagef("--signing-key is required: a release manager's private key (PEM)")
	}
	path := fs.Arg(0)
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if len(b) > maxLayoutSize {
		return fmt.Errorf("%s: over %d bytes", path, maxLayoutSize)
	}
	var ks []in_toto.Key
	for _, k := range keys {
		key, err := loadLayoutSigningKey(k)
		if err != nil {
			return err
		}
		ks = append(ks, key)
	}
	signed, err := signLayout(b, ks, *appendSigs)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if *out == "" {
		*out = path
	}
	if err := os.WriteFile(*out, signed, 0o644); err != nil {
		return err
	}
	for _, k := range ks {
		fmt.Fprintf(e.stdout, "signed %s with key %s (%s)\n", *out, k.KeyID, k.Scheme)
	}
	return nil
}

// ErrNotLayout reports a file that is not an in-toto layout Metablock.
var ErrNotLayout = errors.New("not an in-toto layout")

// signLayout signs the Metablock b with keys over the canonical JSON of its
// "signed" object as b holds it, keeping every field; it returns the
// Metablock with the signatures, the existing ones first when appendSigs.
func signLayout(b []byte, keys []in_toto.Key, appendSigs bool) ([]byte, error) {
	var mb struct {
		Signed     json.RawMessage     `json:"signed"`
		Signatures []in_toto.Signature `json:"signatures"`
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&mb); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotLayout, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: data after the layout", ErrNotLayout)
	}
	// P1: signed as cjson reads it, verified as Go decodes it; with a
	// duplicate key the two would not mean the same layout.
	if err := noDuplicateKeys(mb.Signed); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotLayout, err)
	}
	var head struct {
		Type    string `json:"_type"`
		Expires string `json:"expires"`
	}
	if err := json.Unmarshal(mb.Signed, &head); err != nil || head.Type != "layout" {
		return nil, fmt.Errorf("%w: its \"signed\" is not an object with _type \"layout\" (a link? sign links with evident run)", ErrNotLayout)
	}
	if exp, err := time.Parse(time.RFC3339, head.Expires); err != nil {
		return nil, fmt.Errorf("%w: expires %q is not an RFC 3339 time", ErrNotLayout, head.Expires)
	} else if !exp.After(time.Now()) {
		return nil, fmt.Errorf("the layout expired at %s: set a later \"expires\" before signing", head.Expires)
	}
	sigs := []in_toto.Signature{}
	if appendSigs {
		sigs = append(sigs, mb.Signatures...)
	}
	for _, k := range keys {
		tmp := in_toto.Metablock{Signed: mb.Signed}
		if err := tmp.Sign(k); err != nil {
			return nil, fmt.Errorf("couldn't sign with key %s: %w", k.KeyID, err)
		}
		kept := sigs[:0]
		for _, s := range sigs {
			if s.KeyID != k.KeyID {
				kept = append(kept, s)
			}
		}
		sigs = append(kept, tmp.Signatures...)
	}
	var indented bytes.Buffer
	if err := json.Indent(&indented, mb.Signed, "  ", "  "); err != nil {
		return nil, err
	}
	sb, err := json.MarshalIndent(sigs, "  ", "  ")
	if err != nil {
		return nil, err
	}
	return fmt.Appendf(nil, "{\n  \"signatures\": %s,\n  \"signed\": %s\n}\n", sb, indented.Bytes()), nil
}

// loadLayoutSigningKey loads a private key (PEM: PKCS #8, PKCS #1 or SEC 1;
// RSA, ECDSA or Ed25519) as in-toto-golang does, which computes its key id.
func loadLayoutSigningKey(path string) (in_toto.Key, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return in_toto.Key{}, err
	}
	var k in_toto.Key
	if err := k.LoadKeyReaderDefaults(bytes.NewReader(b)); err != nil {
		return in_toto.Key{}, fmt.Errorf("%s: not a PEM private key (RSA, ECDSA or Ed25519): %w", path, err)
	}
	if k.KeyVal.Private == "" {
		return in_toto.Key{}, fmt.Errorf("%s holds a public key or certificate: --signing-key needs the private key", path)
	}
	return k, nil
}

// shellQuote quotes s for a POSIX shell when it needs quoting.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./:=+,@%") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// noDuplicateKeys refuses JSON in which an object names a key twice.
func noDuplicateKeys(b []byte) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	var walk func(depth int) error
	walk = func(depth int) error {
		if depth > 64 {
			return errors.New("JSON nested over 64 levels")
		}
		t, err := dec.Token()
		if err != nil {
			return err
		}
		switch t {
		case json.Delim('{'):
			seen := map[string]bool{}
			for dec.More() {
				k, err := dec.Token()
				if err != nil {
					return err
				}
				if seen[k.(string)] {
					return fmt.Errorf("key %q appears twice in one object", k)
				}
				seen[k.(string)] = true
				if err := walk(depth + 1); err != nil {
					return err
				}
			}
			_, err = dec.Token()
		case json.Delim('['):
			for dec.More() {
				if err := walk(depth + 1); err != nil {
					return err
				}
			}
			_, err = dec.Token()
		}
		return err
	}
	return walk(0)
}
