// Package linkstore keeps the signed payloads (in-toto links, and the
// in-toto Statements of DSSE attestations) beside
// the log, content-addressed by payload digest (the entry's payload_sha256),
// written once, with an index from every material and product digest to the
// log indices of the entries whose payloads name it.
//
// A [Store] is the storage; [Handler] and [Client] are its HTTP API
// (POST /links/v1, GET /links/v1/{sha256}, GET /links/v1/artifacts/{sha256}).
//
// # Upload separate from the entry
//
// A link is uploaded after its entry is logged, naming the entry's log index,
// rather than travelling inside the POST that appends the entry. The log
// stays a log of small, fixed-shape entries (at most 64 KiB, group-committed
// in one bbolt transaction per batch), while a link may be megabytes; and a
// log that cannot take a link store's failure down with it keeps appending
// when links.db is full or broken. The two cannot disagree in what matters:
// the store accepts a link only when the SHA-256 of its canonical payload is
// the payload_sha256 of the logged entry at the index it names, so the worst
// a lost upload does is leave an entry without its link (its bundle was
// written by the client anyway), never a link that is not the entry's.
//
// # Signatures live in the log
//
// The store keeps a link's payload — the Metablock with no signature — and
// not its signatures: each entry logs its signer's signature, key id and
// certificate chain, and one payload may be logged by several signers (a
// step run again on the same inputs signs the same payload with another
// SVID). Write-once per payload digest and one document per digest hold
// only so; a bundle carries the stored document with its entry's signature
// ([Bundled]), the very bytes evident run writes into its own bundle.
//
// # The order of the upload's checks
//
// Cheapest first, so that a hostile upload costs as little as possible:
//
//  1. a free upload slot (at most Config.MaxConcurrent at once), else 503
//     with Retry-After;
//  2. the declared size (Content-Length over MaxUploadSize: 413 before
//     reading), then the body read through a limit that stops at
//     MaxUploadSize;
//  3. the envelope {"index", "link"}: the log entry at index exists (else
//     404), which gives the payload digest D;
//  4. write-once: when a link is stored under D, the uploaded bytes must be
//     exactly the stored ones (else 409), compared before any parse; the
//     same bytes add the index's rows (204);
//  5. otherwise the link's "signed" object in canonical JSON (the bytes its
//     signatures are over; a duplicated key anywhere is refused): its
//     SHA-256 must be D (else 400), before the link is decoded as an
//     in-toto link at all;
//  6. the stored form is built from that decoding — the Metablock without
//     signatures, keys sorted, compact (see [Canonical]) — and decoded once,
//     as a link (verify.ParseLink): what is stored, served and indexed is
//     these bytes, never the uploader's, and the artifact index is derived
//     from them alone; Put stores it (a concurrent upload of other bytes
//     that won the race gets 409).
//
// Clients send the stored form ([Client.Upload] does), so that an upload
// repeated, or made by another signer of the same payload, is the same
// bytes.
package linkstore

import (
	"context"
	"errors"
	"io"
)

var (
	// ErrNotFound: no link is stored under that digest.
	ErrNotFound = errors.New("link not found")
	// ErrConflict: a different document is already stored under that
	// digest (write-once).
	ErrConflict = errors.New("a different link is already stored under that digest")
)

// Store keeps documents by payload digest and an artifact index.
//
// Put is write-once per digest: storing the identical bytes again succeeds
// and records the extra (index, artifacts) rows; other bytes under a stored
// digest return ErrConflict and change nothing. When Put returns nil, the
// document and all its index rows are durable and visible to readers, all
// at once; on error nothing was written. The store does not parse or verify
// documents: the caller passes only canonical bytes it has checked, and the
// artifact digests derived from them. Safe for concurrent use.
type Store interface {
	Put(ctx context.Context, digest [32]byte, index uint64, doc []byte, artifacts [][32]byte) error
	// Get returns the document stored under digest, or ErrNotFound.
	Get(ctx context.Context, digest [32]byte) ([]byte, error)
	// ArtifactIndices returns at most limit log indices, ascending,
	// deduplicated.
	ArtifactIndices(ctx context.Context, artifact [32]byte, limit int) ([]uint64, error)
	Close() error
}

// Backuper is a Store that streams a consistent copy of itself while in use
// (Bolt: the database file).
type Backuper interface {
	Backup(w io.Writer) (int64, error)
}
