package evident

import (
	"encoding/json"
	"fmt"
)

// BundleMediaType names the Bundle format and its version.
const BundleMediaType = "application/vnd.evident.bundle+json;version=1"

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
}

// ParseBundle decodes a bundle strictly and checks its entry's shape.
func ParseBundle(b []byte) (*Bundle, error) {
	var bu Bundle
	if err := strictJSON(b, &bu); err != nil {
		return nil, fmt.Errorf("bundle: %w", err)
	}
	if bu.MediaType != BundleMediaType {
		return nil, fmt.Errorf("bundle: media type %q, want %q", bu.MediaType, BundleMediaType)
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
	out, err := json.MarshalIndent(b, "", "  ")
	return append(out, '\n'), err
}
