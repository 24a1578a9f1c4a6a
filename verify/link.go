package verify

import (
	"errors"
	"fmt"

	"github.com/evident-dev/evident/internal/strictjson"
	"github.com/in-toto/in-toto-golang/in_toto"
)

// MaxLinkSize bounds a link accepted from the network.
const MaxLinkSize = 32 << 20

// MaxLayoutSize bounds a layout.
const MaxLayoutSize = 8 << 20

// maxMetablockDepth bounds the nesting of a link or layout: in-toto's own
// objects nest at most six deep; byproducts and environment are free-form.
const maxMetablockDepth = 32

// ErrNotFaithful is wrapped when a link or layout, decoded, would not say
// what its signed bytes say (a duplicate key, a key matched in another
// case, a member dropped): it is refused, never acted on.
var ErrNotFaithful = errors.New("decoding is not faithful to the signed bytes")

// ParseLink decodes an in-toto Metablock holding a link, from bytes (what
// in-toto-golang only does from a file), and returns it with its payload:
// the canonical JSON of "signed" as received, the bytes its signatures are
// over. The decoding is faithful: a duplicate object key anywhere, an
// unknown field, a key in another case or trailing data is refused, and
// the decoded link re-encodes to the payload (empty and absent members
// aside, which mean the same to Go), so the link acted on is all that was
// signed and nothing else.
func ParseLink(b []byte) (*in_toto.Metablock, []byte, error) {
	var l in_toto.Link
	sigs, payload, _, err := parseMetablock(b, MaxLinkSize, &l)
	if err != nil {
		return nil, nil, fmt.Errorf("not an in-toto link: %w", err)
	}
	if l.Type != "link" {
		return nil, nil, errors.New(`"signed" is not a link`)
	}
	return &in_toto.Metablock{Signed: l, Signatures: sigs}, payload, nil
}

// ParseLayout decodes a signed in-toto layout as [ParseLink] does a link,
// and returns it with its signatures and payload (the canonical JSON of
// "signed", which the signatures are over).
func ParseLayout(b []byte) (in_toto.Layout, []in_toto.Signature, []byte, error) {
	l, sigs, payload, _, err := parseLayout(b)
	return l, sigs, payload, err
}

// parseLayout is ParseLayout, also returning "signed" as decoded
// generically.
func parseLayout(b []byte) (in_toto.Layout, []in_toto.Signature, []byte, any, error) {
	var l in_toto.Layout
	sigs, payload, signed, err := parseMetablock(b, MaxLayoutSize, &l)
	if err != nil {
		return in_toto.Layout{}, nil, nil, nil, fmt.Errorf("not an in-toto layout: %w", err)
	}
	return l, sigs, payload, signed, nil
}

// parseMetablock decodes b, a Metablock whose "signed" decodes into
// signed, strictly and faithfully (see ParseLink). It returns the
// signatures, the payload and "signed" as decoded generically (for
// signature checks over its canonical form).
func parseMetablock(b []byte, max int, signed any) ([]in_toto.Signature, []byte, any, error) {
	mb := struct {
		Signed     any                 `json:"signed"`
		Signatures []in_toto.Signature `json:"signatures"`
	}{Signed: signed} // encoding/json decodes into the pointer signed holds
	doc, err := strictjson.Unmarshal(b, &mb, strictjson.Limits{MaxSize: max, MaxDepth: maxMetablockDepth})
	if err != nil {
		if errors.Is(err, strictjson.ErrDuplicateKey) {
			err = fmt.Errorf("%w: %w", ErrNotFaithful, err)
		}
		return nil, nil, nil, err
	}
	top, _ := doc.(map[string]any)
	if _, ok := top["signed"].(map[string]any); !ok {
		return nil, nil, nil, errors.New(`no "signed" object`)
	}
	if err := strictjson.Faithful(doc, mb, "$", true); err != nil {
		return nil, nil, nil, fmt.Errorf("%w: %w", ErrNotFaithful, err)
	}
	// The payload is the canonical form of "signed" as received, which the
	// check above showed the decoding says.
	payload, err := strictjson.Canonical(top["signed"])
	if err != nil {
		return nil, nil, nil, err
	}
	return mb.Signatures, payload, top["signed"], nil
}
