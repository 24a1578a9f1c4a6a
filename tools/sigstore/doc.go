// Package sigstore is evident's interoperability test with sigstore-go, a
// Sigstore verifier no one here wrote: evidence made by the evident command
// with an OpenSSL-made code-signing PKI — a Metablock link (a message
// signature), and DSSE attestations from "evident attest" and
// "evident run --format dsse" timestamped by two TSAs — exported with
// "evident bundle export --format sigstore" and
// "evident tuf get --format sigstore-trusted-root", must verify with
// sigstore-go's verifier, counting one timestamp per TSA, and fail once any
// byte of it changes.
//
// It is a module of its own so that the main module does not depend on
// sigstore-go; it builds the evident command from the repository root
// (../..) and imports nothing of it. CI runs it from .ci/run:
//
//	cd tools/sigstore && go vet ./... && go test ./...
package sigstore
