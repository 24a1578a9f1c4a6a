package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/evident-dev/evident/artifact"
	"github.com/evident-dev/evident/dsse"
	"github.com/evident-dev/evident/link"
)

const attestUsage = `
Usage: evident attest --predicate-type URI --predicate FILE --subject PATH… [--name NAME] [identity] [--server URL]

Signs an attestation — an in-toto Statement v1 whose subjects are the
SHA-256 digests of the --subject files (directories are walked) and whose
predicate is FILE, one JSON object (SLSA provenance, an SPDX or CycloneDX
SBOM, test results…), decoded strictly: no key twice at any depth — in a
DSSE envelope, written as NAME.<keyid prefix>.dsse.json. The signature is
timestamped and the entry logged as for evident run, and the bundle
written as NAME.<keyid prefix>.bundle.json. The server keeps the
Statement, so "evident bundle fetch --artifact" finds it by any subject's
digest, and "evident verify --require-predicate URI" can demand it.

Identity, first that applies (as for evident run):
  --signing-key KEY.pem [--cert CHAIN.pem]
  --spiffe-socket PATH               (default $SPIFFE_ENDPOINT_SOCKET)
  otherwise                          a development SVID (--spiffe-id, default spiffe://evident.dev/ci/NAME)

Examples:
  evident attest --predicate-type https://slsa.dev/provenance/v1 --predicate provenance.json --subject app.tar
  evident attest --name sbom --predicate-type https://spdx.dev/Document --predicate app.spdx.json --subject app.tar
`

// maxSubjects bounds the files one attestation names.
const maxSubjects = 10000

func runAttest(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "attest", attestUsage)
	predType := fs.String("predicate-type", "", "the predicate's type `URI`")
	predFile := fs.String("predicate", "", "the predicate `file`: one JSON object")
	name := fs.String("name", "attestation", "`name` of the output files (and of the development SVID)")
	var subjects, exclude listFlag
	fs.Var(&subjects, "subject", "subject `path` (repeat; directories are walked)")
	fs.Var(&exclude, "exclude", "`glob` of paths to leave out (repeat)")
	idf := addIdentityFlags(fs)
	lf := addLogFlags(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	switch {
	case *predType == "" || *predFile == "" || len(subjects) == 0:
		return usagef("attest needs --predicate-type, --predicate and at least one --subject")
	case fs.NArg() > 0:
		return usagef("attest takes no arguments (did you mean --subject %s?)", fs.Arg(0))
	}
	if err := checkName("name", *name); err != nil {
		return err
	}
	st, err := newStatement(ctx, *predType, *predFile, subjects, exclude)
	if err != nil {
		return err
	}
	loaded, err := idf.load()
	if err != nil {
		return err
	}
	a, err := newAppender(ctx, e, lf)
	if err != nil {
		return err
	}
	signer, err := idf.signer(ctx, e, a, loaded, *name)
	if err != nil {
		return err
	}
	keyID, err := signer.KeyID()
	if err != nil {
		return err
	}
	env, err := link.SignStatement(st, signer)
	if err != nil {
		return err
	}
	base := fmt.Sprintf("%s.%.8s", *name, keyID)
	file, bundle, idx, err := logEnvelope(ctx, a, env, signer, base+".dsse.json", base)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stderr, "evident: %s: %d subjects, predicate %s; logged at index %d; wrote %s and %s\n",
		*name, len(st.Subject), *predType, idx, file, filepath.Base(bundle))
	return nil
}

// newStatement reads and checks the predicate and hashes the subjects.
func newStatement(ctx context.Context, predType, predFile string, subjects, exclude []string) (*dsse.Statement, error) {
	pred, err := os.ReadFile(predFile)
	if err != nil {
		return nil, err
	}
	if err := dsse.CheckPredicateObject(pred); err != nil {
		return nil, fmt.Errorf("%s: %w", predFile, err)
	}
	arts, err := artifact.Record(ctx, subjects, artifact.Options{Exclude: exclude})
	if err != nil {
		return nil, fmt.Errorf("subjects: %w", err)
	}
	if len(arts) == 0 || len(arts) > maxSubjects {
		return nil, usagef("the subjects hold %d files; an attestation names 1 to %d", len(arts), maxSubjects)
	}
	st := &dsse.Statement{Type: dsse.StatementType, Subject: dsse.Descriptors(arts), PredicateType: predType, Predicate: json.RawMessage(pred)}
	// The Statement is checked as every verifier will read it.
	b, err := json.Marshal(st)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", predFile, err)
	}
	if _, err := dsse.ParseStatement(b); err != nil {
		return nil, err
	}
	return st, nil
}
