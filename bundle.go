package evident

import (
	"encoding/json"
	"fmt"
)

// BundleMediaType names the Bundle format and its version. Version 2 adds
// the optional Witnessed proof; a bundle without it is written as version 1,
// byte for byte what earlier versions wrote, and both are read.
const (
	BundleMediaType   = "application/vnd.evident.bundle+json;version=1"
	BundleMediaTypeV2 = "application/vnd.evident.bundle+json;version=2"
)

// Bundle is everything a verifier needs, offline, for one signed link: the
// link itself, the log entry for its signature, and the proof that the log
// holds that entry under a signed checkpoint.
type Bundle struct {
	MediaType string `json:"media_type"`
	// Link is the in-toto Metablock as signed (its "signed" field's
	// canonical JSON is the payload whose SHA-256 the entry records).
	Link json.RawMessage `json:"link"`
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

// ParseBundle decodes a bundle strictly and checks its entry's shape.
func ParseBundle(b []byte) (*Bundle, error) {
	var bu Bundle
	if err := strictJSON(b, &bu); err != nil {
		return nil, fmt.Errorf("bundle: %w", err)
	}
	switch {
	case bu.MediaType == BundleMediaType && bu.Witnessed != nil:
		return nil, fmt.Errorf("bundle: a version 1 bundle has no witnessed proof")
	case bu.MediaType != BundleMediaType && bu.MediaType != BundleMediaTypeV2:
		return nil, fmt.Errorf("bundle: media type %q, want %q or %q", bu.MediaType, BundleMediaType, BundleMediaTypeV2)
	}
	if bu.Entry == nil {
		return nil, fmt.Errorf("bundle: no entry")
	}
	if err := bu.Entry.Check(); err != nil {
		return nil, fmt.Errorf("bundle: %w", err)
	}
	return &bu, nil
}

// Marshal encodes the bundle, indented for review.
func (b *Bundle) Marshal() ([]byte, error) {
	b.MediaType = BundleMediaType
	if b.Witnessed != nil {
		b.MediaType = BundleMediaTypeV2
	}
	out, err := json.MarshalIndent(b, "", "  ")
	return append(out, '\n'), err
}
