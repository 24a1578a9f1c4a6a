package dsse_test

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/evident-dev/evident/dsse"
)

func linkStatement(t *testing.T, pred string) *dsse.Statement {
	t.Helper()
	d := strings.Repeat("ab", 32)
	b := []byte(`{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"app","digest":{"sha256":"` + d +
		`"}}],"predicateType":"` + dsse.PredicateTypeLink + `","predicate":` + pred + `}`)
	st, err := dsse.ParseStatement(b)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// P1: a key spelled with escapes is the key it decodes to, for the
// decoding members are read from and for the scan that keeps the
// predicate's bytes alike: the one member written "pred\u0069cate" is the
// predicate, its very bytes kept; "pred\u0049cate" is an unknown member.
func TestParseStatementEscapedKeyIsOneMember(t *testing.T) {
	d := strings.Repeat("ab", 32)
	head := `{"_typ\u0065":"https://in-toto.io/Statement/v1","subject":[{"name":"app","digest":{"sha256":"` + d +
		`"}}],"predicateType":"` + dsse.PredicateTypeLink + `",`
	pred := `{ "name" : "b\u0075ild", "command":["make"] }`
	st, err := dsse.ParseStatement([]byte(head + `"pred\u0069cate":` + pred + `}`))
	if err != nil {
		t.Fatal(err)
	}
	if string(st.Predicate) != pred {
		t.Errorf("Predicate = %s, want the member's very bytes %s", st.Predicate, pred)
	}
	if l, err := st.Link(); err != nil || l.Name != "build" {
		t.Errorf("Link() = %+v, %v; want the step build", l, err)
	}
	if _, err := dsse.ParseStatement([]byte(head + `"pred\u0049cate":` + pred + `}`)); !errors.Is(err, dsse.ErrInvalidStatement) {
		t.Errorf("ParseStatement with \"pred\\u0049cate\" = %v, want ErrInvalidStatement", err)
	}
}

// P1: Link reads what Predicate holds now. A caller who rewrites the
// predicate's bytes in place (same slice, same length) gets the link those
// bytes say, not the one ParseStatement decoded before.
func TestLinkReadsPredicateRewrittenInPlace(t *testing.T) {
	st := linkStatement(t, `{"name":"build","command":["make"]}`)
	i := bytes.Index(st.Predicate, []byte("build"))
	copy(st.Predicate[i:], "bogus")
	l, err := st.Link()
	if err != nil {
		t.Fatal(err)
	}
	if l.Name != "bogus" {
		t.Errorf("Link().Name = %q after Predicate was rewritten to %s", l.Name, st.Predicate)
	}
}

// P1: a link Link returned is the caller's own: changing its byproducts or
// environment (at any depth) or its products' digests does not change what
// the next Link reads from the same Statement.
func TestLinkResultIsNotShared(t *testing.T) {
	st := linkStatement(t, `{"name":"build","byproducts":{"return-value":0,"x":{"y":["z"]}},"environment":{"e":{"f":1}}}`)
	first, err := st.Link()
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprint(first)
	first.ByProducts["return-value"] = 1
	first.ByProducts["x"].(map[string]any)["y"].([]any)[0] = "changed"
	first.Environment["e"].(map[string]any)["added"] = true
	first.Products["app"]["sha256"] = strings.Repeat("cd", 32)
	second, err := st.Link()
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(second); got != want {
		t.Errorf("second Link() = %s, want %s", got, want)
	}
}

// Limits: a link predicate has at most MaxMaterials materials, as a
// Statement has at most MaxSubjects subjects.
func TestLinkRefusesTooManyMaterials(t *testing.T) {
	var b strings.Builder
	b.WriteString(`{"name":"build","materials":[`)
	for i := 0; i <= dsse.MaxMaterials; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"name":"m%d","digest":{"x":"00"}}`, i)
	}
	b.WriteString(`]}`)
	st := linkStatement(t, b.String())
	if _, err := st.Link(); !errors.Is(err, dsse.ErrInvalidStatement) || !strings.Contains(err.Error(), "limit") {
		t.Errorf("Link with %d materials = %v, want the limit named", dsse.MaxMaterials+1, err)
	}
}
