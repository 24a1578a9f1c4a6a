// Package sigstore is evident's interoperability test with sigstore-go, a
// Sigstore verifier no one here wrote: evidence made by the evident command
// with an OpenSSL-made code-signing PKI, exported with
// "evident bundle export --format sigstore" and
// "evident tuf get --format sigstore-trusted-root", must verify with
// sigstore-go's verifier, and fail once any byte of it changes.
//
// It is a module of its own so that the main module does not depend on
// sigstore-go. CI runs it from .ci/run:
//
//	cd tools/sigstore && go test ./...
package sigstore
