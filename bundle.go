package evident

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/evident-dev/evident/internal/strictjson"
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

// MaxBundleSize bounds a bundle: a link of up to 32 MiB, its entry and proof.
const MaxBundleSize = 40 << 20

// ParseBundle decodes a bundle strictly (no duplicate or unknown fields at
// any depth, no trailing data), its entry as [ParseEntry] does; the link is
// the verifier's to parse.
func ParseBundle(b []byte) (*Bundle, error) {
	var raw struct {
		MediaType      string          `json:"media_type"`
		Link           json.RawMessage `json:"link"`
		Entry          json.RawMessage `json:"entry"`
		LogIndex       uint64          `json:"log_index"`
		InclusionProof [][]byte        `json:"inclusion_proof"`
		Checkpoint     string          `json:"checkpoint"`
	}
	doc, err := strictjson.Unmarshal(b, &raw, strictjson.Limits{MaxSize: MaxBundleSize, MaxDepth: 40})
	if err == nil {
		err = strictjson.Faithful(doc, raw, "$", true)
	}
	if err != nil {
		return nil, fmt.Errorf("bundle: %w", err)
	}
	if raw.MediaType != BundleMediaType {
		return nil, fmt.Errorf("bundle: media type %q, want %q", raw.MediaType, BundleMediaType)
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
	return &Bundle{MediaType: raw.MediaType, Link: raw.Link, Entry: e, LogIndex: raw.LogIndex,
		InclusionProof: raw.InclusionProof, Checkpoint: raw.Checkpoint}, nil
}

// Marshal encodes the bundle, indented for review.
func (b *Bundle) Marshal() ([]byte, error) {
	b.MediaType = BundleMediaType
	out, err := json.MarshalIndent(b, "", "  ")
	return append(out, '\n'), err
}
