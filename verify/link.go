package verify

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/in-toto/in-toto-golang/in_toto"
	"github.com/secure-systems-lab/go-securesystemslib/cjson"
)

// MaxLinkSize bounds a link accepted from the network.
const MaxLinkSize = 32 << 20

// ParseLink decodes an in-toto Metablock holding a link, from bytes (what
// in-toto-golang only does from a file), and returns it with its payload:
// the canonical JSON of "signed" as received, the bytes its signatures are
// over. Unknown fields are refused, so the decoded link is all that was
// signed.
func ParseLink(b []byte) (*in_toto.Metablock, []byte, error) {
	if len(b) > MaxLinkSize {
		return nil, nil, fmt.Errorf("link is %d bytes, over the limit of %d", len(b), MaxLinkSize)
	}
	var raw struct {
		Signed     json.RawMessage     `json:"signed"`
		Signatures []in_toto.Signature `json:"signatures"`
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&raw); err != nil {
		return nil, nil, fmt.Errorf("not an in-toto Metablock: %w", err)
	}
	var l in_toto.Link
	dec = json.NewDecoder(bytes.NewReader(raw.Signed))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&l); err != nil {
		return nil, nil, fmt.Errorf("not an in-toto link: %w", err)
	}
	if l.Type != "link" {
		return nil, nil, errors.New(`"signed" is not a link`)
	}
	// The payload is the canonical form of "signed" as received, not of
	// its Go decoding, which may lack fields another in-toto tool wrote.
	payload, err := cjson.EncodeCanonical(raw.Signed)
	if err != nil {
		return nil, nil, err
	}
	return &in_toto.Metablock{Signed: l, Signatures: raw.Signatures}, payload, nil
}
