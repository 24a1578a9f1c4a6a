package evident

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/evident-dev/evident/internal/strictjson"
)

// BundleMediaType names the Bundle format and its version. Version 2 adds
// the optional Witnessed proof; a bundle without it is written as version 1,
// byte for byte what earlier versions wrote, and both are read. Version 3
// carries a DSSE envelope (DSSEEnvelope) instead of a Metablock link, with
// or without a Witnessed proof; versions 1 and 2 carry a link.
const (
	BundleMediaType   = "application/vnd.evident.bundle+json;version=1"
	BundleMediaTypeV2 = "application/vnd.evident.bundle+json;version=2"
	BundleMediaTypeV3 = "application/vnd.evident.bundle+json;version=3"
)

// Bundle is everything a verifier needs, offline, for one signed link: the
// link itself, the log entry for its signature, and the proof that the log
// holds that entry under a signed checkpoint.
type Bundle struct {
	MediaType string `json:"media_type"`
	// Link is the in-toto Metablock as signed (its "signed" field's
	// canonical JSON is the payload whose SHA-256 the entry records).
	Link json.RawMessage `json:"link,omitempty"`
	// DSSEEnvelope, in a version 3 bundle instead of Link, is the DSSE
	// envelope of an attestation (an in-toto Statement, signed over
	// PAE(payloadType, payload)); the entry records the SHA-256 of its
	// payload and one of its signatures. The verifier parses it strictly
	// (package dsse).
	DSSEEnvelope json.RawMessage `json:"dsse_envelope,omitempty"`
	// Entry is the log entry; its canonical encoding is the Merkle leaf.
	Entry *Entry `json:"entry"`
	// LogIndex, InclusionProof and Checkpoint prove the entry is in the log.
	LogIndex       uint64   `json:"log_index"`
	InclusionProof [][]byte `json:"inclusion_proof"`
	Checkpoint     string   `json:"checkpoint"`
	// Witnessed, when set, proves the entry in the first checkpoint that
	// witnesses cosigned after it was logged: their cosignature times bound
	// when it was logged, however much later the bundle was fetched (whose
	// Checkpoint is then a fresh one).
	Witnessed *WitnessedProof `json:"witnessed,omitempty"`
}

// WitnessedProof is an inclusion proof against a cosigned checkpoint.
type WitnessedProof struct {
	// Checkpoint is the signed note: the log's signature and the
	// witnesses' cosignatures (C2SP tlog-cosignature).
	Checkpoint     string   `json:"checkpoint"`
	InclusionProof [][]byte `json:"inclusion_proof"`
}

// MaxBundleSize bounds a bundle: a link of up to 32 MiB, its entry and proof.
const MaxBundleSize = 40 << 20

// ParseBundle decodes a bundle strictly (no duplicate or unknown fields at
// any depth, no trailing data), its entry as [ParseEntry] does; the link is
// the verifier's to parse.
func ParseBundle(b []byte) (*Bundle, error) {
	var raw struct {
		MediaType      string          `json:"media_type"`
		Link           json.RawMessage `json:"link"`
		DSSEEnvelope   json.RawMessage `json:"dsse_envelope"`
		Entry          json.RawMessage `json:"entry"`
		LogIndex       uint64          `json:"log_index"`
		InclusionProof [][]byte        `json:"inclusion_proof"`
		Checkpoint     string          `json:"checkpoint"`
		Witnessed      *WitnessedProof `json:"witnessed,omitempty"`
	}
	doc, err := strictjson.Unmarshal(b, &raw, strictjson.Limits{MaxSize: MaxBundleSize, MaxDepth: 40})
	if err == nil {
		err = strictjson.Faithful(doc, raw, "$", true)
	}
	if err != nil {
		return nil, fmt.Errorf("bundle: %w", err)
	}
	switch {
	case raw.MediaType == BundleMediaType && raw.Witnessed != nil:
		return nil, fmt.Errorf("bundle: a version 1 bundle has no witnessed proof")
	case raw.MediaType != BundleMediaType && raw.MediaType != BundleMediaTypeV2 && raw.MediaType != BundleMediaTypeV3:
		return nil, fmt.Errorf("bundle: media type %q, want %q, %q or %q", raw.MediaType, BundleMediaType, BundleMediaTypeV2, BundleMediaTypeV3)
	case raw.MediaType == BundleMediaTypeV3 && (present(raw.Link) || !present(raw.DSSEEnvelope)):
		return nil, fmt.Errorf("bundle: a version 3 bundle carries a dsse_envelope and no link")
	case raw.MediaType != BundleMediaTypeV3 && present(raw.DSSEEnvelope):
		return nil, fmt.Errorf("bundle: a dsse_envelope needs media type %q", BundleMediaTypeV3)
	}
	if len(raw.Entry) == 0 || string(raw.Entry) == "null" {
		return nil, fmt.Errorf("bundle: no entry")
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, raw.Entry); err != nil {
		return nil, fmt.Errorf("bundle: %w", err)
	}
	e, _, err := ParseEntry(compact.Bytes())
	if err != nil {
		return nil, fmt.Errorf("bundle: %w", err)
	}
	if (e.PayloadType == PayloadTypeDSSE) != (raw.MediaType == BundleMediaTypeV3) {
		return nil, fmt.Errorf("bundle: an entry of payload type %q in a bundle of media type %q", e.PayloadType, raw.MediaType)
	}
	return &Bundle{MediaType: raw.MediaType, Link: raw.Link, DSSEEnvelope: raw.DSSEEnvelope, Entry: e, LogIndex: raw.LogIndex,
		InclusionProof: raw.InclusionProof, Checkpoint: raw.Checkpoint, Witnessed: raw.Witnessed}, nil
}

// Marshal encodes the bundle, indented for review.
func (b *Bundle) Marshal() ([]byte, error) {
	b.MediaType = BundleMediaType
	switch {
	case len(b.DSSEEnvelope) > 0:
		b.MediaType = BundleMediaTypeV3
	case b.Witnessed != nil:
		b.MediaType = BundleMediaTypeV2
	}
	out, err := json.MarshalIndent(b, "", "  ")
	return append(out, '\n'), err
}

// present reports whether a raw member was given a value other than null.
func present(m json.RawMessage) bool { return len(m) > 0 && string(m) != "null" }
