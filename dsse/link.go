package dsse

import (
	"encoding/json"
	"fmt"
	"sort"

	"github.com/evident-dev/evident/internal/strictjson"
	"github.com/in-toto/in-toto-golang/in_toto"
)

// PredicateTypeLink is the in-toto link predicate v0.3: a CI step, whose
// products are the Statement's subjects.
const PredicateTypeLink = "https://in-toto.io/attestation/link/v0.3"

// LinkPredicate is the in-toto link predicate v0.3: the step's name, its
// command, its materials (resource descriptors named by path), byproducts
// (return-value, stdout, stderr) and environment.
type LinkPredicate struct {
	Name        string               `json:"name"`
	Command     []string             `json:"command,omitempty"`
	Materials   []ResourceDescriptor `json:"materials,omitempty"`
	Byproducts  map[string]any       `json:"byproducts,omitempty"`
	Environment map[string]any       `json:"environment,omitempty"`
}

// NewLinkStatement returns the Statement of a step recorded as an in-toto
// link: its products as subjects (named by path, sorted), its materials
// in the predicate.
func NewLinkStatement(l in_toto.Link) (*Statement, error) {
	p := LinkPredicate{Name: l.Name, Command: l.Command, Materials: Descriptors(l.Materials),
		Byproducts: l.ByProducts, Environment: l.Environment}
	pb, err := json.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("couldn't encode the link predicate: %w", err)
	}
	return &Statement{Type: StatementType, Subject: Descriptors(l.Products), PredicateType: PredicateTypeLink, Predicate: pb}, nil
}

// Descriptors returns artifacts recorded by path as resource descriptors,
// named by path and sorted: a Statement's subjects, a link's materials.
func Descriptors(set map[string]in_toto.HashObj) []ResourceDescriptor {
	names := make([]string, 0, len(set))
	for n := range set {
		names = append(names, n)
	}
	sort.Strings(names)
	out := make([]ResourceDescriptor, 0, len(names))
	for _, n := range names {
		d := map[string]string{}
		for alg, v := range set[n] {
			d[alg] = v
		}
		out = append(out, ResourceDescriptor{Name: n, Digest: d})
	}
	return out
}

// Link reads a Statement of [PredicateTypeLink] as the in-toto link it
// records — the predicate's name, command, materials, byproducts and
// environment, and the subjects as products — so the layout's artifact
// rules apply to it as to a Metablock link. The predicate is read strictly,
// from ParseStatement's decoding of it while Predicate holds the bytes
// decoded; every material and subject must have a name (its path) and a
// digest, no name twice.
func (st *Statement) Link() (in_toto.Link, error) {
	if st.PredicateType != PredicateTypeLink {
		return in_toto.Link{}, fmt.Errorf("%w: predicateType %q is not the link predicate %q", ErrInvalidStatement, st.PredicateType, PredicateTypeLink)
	}
	p, err := st.linkPredicate()
	if err != nil {
		return in_toto.Link{}, err
	}
	if p.Name == "" {
		return in_toto.Link{}, fmt.Errorf("%w: the link predicate has no name", ErrInvalidStatement)
	}
	if err = checkDescriptors("materials", p.Materials, true); err != nil {
		return in_toto.Link{}, fmt.Errorf("%w: %v", ErrInvalidStatement, err)
	}
	mats, err := hashObjs("materials", p.Materials)
	if err != nil {
		return in_toto.Link{}, err
	}
	prods, err := hashObjs("subject", st.Subject)
	if err != nil {
		return in_toto.Link{}, err
	}
	cmd := p.Command
	if cmd == nil {
		cmd = []string{}
	}
	by, env := p.Byproducts, p.Environment
	if by == nil {
		by = map[string]any{}
	}
	if env == nil {
		env = map[string]any{}
	}
	return in_toto.Link{Type: "link", Name: p.Name, Command: cmd, Materials: mats, Products: prods,
		ByProducts: by, Environment: env}, nil
}

func hashObjs(what string, rds []ResourceDescriptor) (map[string]in_toto.HashObj, error) {
	out := make(map[string]in_toto.HashObj, len(rds))
	for i, rd := range rds {
		if rd.Name == "" {
			return nil, fmt.Errorf("%w: %s[%d] has no name (a link names artifacts by path)", ErrInvalidStatement, what, i)
		}
		out[rd.Name] = in_toto.HashObj(rd.Digest)
	}
	return out, nil
}

// linkPredicate reads the predicate as a [LinkPredicate], strictly (as
// [ParsePredicate] would): from ParseStatement's decoding of it, or, for a
// Statement made otherwise, from a strict decoding of its bytes.
func (st *Statement) linkPredicate() (LinkPredicate, error) {
	doc, ok := st.decoded.of(st.Predicate)
	if !ok {
		var err error
		if doc, err = strictjson.Decode(st.Predicate, strictjson.Limits{MaxSize: MaxPayloadSize, MaxDepth: maxStatementDepth}); err != nil {
			return LinkPredicate{}, fmt.Errorf("%w: predicate: %v", ErrInvalidStatement, err)
		}
	}
	r := readObject(doc, "$.predicate")
	var p LinkPredicate
	p.Name, _ = r.str("name")
	p.Command = r.strings("command")
	mats := r.list("materials")
	p.Byproducts = r.object("byproducts")
	p.Environment = r.object("environment")
	err := r.done()
	if err == nil {
		p.Materials, err = readDescriptors(mats, "$.predicate.materials")
	}
	if err != nil {
		return LinkPredicate{}, fmt.Errorf("%w: %v", ErrInvalidStatement, err)
	}
	return p, nil
}
