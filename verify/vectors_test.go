package verify_test

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/in-toto/in-toto-golang/in_toto"
)

// inTotoTestData locates in-toto-golang's test/data in the module cache.
func inTotoTestData(t *testing.T) string {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/in-toto/in-toto-golang").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	return filepath.Join(strings.TrimSpace(string(out)), "test", "data")
}

// TestInTotoGolangDemo runs in-toto-golang's own demo supply chain (layout
// signed by alice, links by bob and carol) through the pieces evident's
// verifier uses: layout and link signatures, ReduceStepsMetadata and the
// artifact rule engine; and a product tampered with fails the MATCH rule.
func TestInTotoGolangDemo(t *testing.T) {
	dir := inTotoTestData(t)
	var alice in_toto.Key
	if err := alice.LoadKey(filepath.Join(dir, "alice.pub"), "rsassa-pss-sha256", []string{"sha256", "sha512"}); err != nil {
		t.Fatal(err)
	}
	lm, err := in_toto.LoadMetadata(filepath.Join(dir, "demo.layout"))
	if err != nil {
		t.Fatal(err)
	}
	if err := lm.VerifySignature(alice); err != nil {
		t.Fatalf("demo layout signature: %v", err)
	}
	layout := lm.GetPayload().(in_toto.Layout)
	links := map[string]map[string]in_toto.Metadata{}
	for _, s := range layout.Steps {
		keyID := s.PubKeys[0]
		m, err := in_toto.LoadMetadata(filepath.Join(dir, s.Name+"."+keyID[:8]+".link"))
		if err != nil {
			t.Fatal(err)
		}
		if err := m.VerifySignature(layout.Keys[keyID]); err != nil {
			t.Fatalf("%s link signature: %v", s.Name, err)
		}
		if got := m.GetPayload().(in_toto.Link).Name; got != s.Name {
			t.Fatalf("link for %s is signed as %s", s.Name, got)
		}
		links[s.Name] = map[string]in_toto.Metadata{keyID: m}
	}
	items := make([]interface{}, len(layout.Steps))
	for i, s := range layout.Steps {
		items[i] = s
	}
	reduced, err := in_toto.ReduceStepsMetadata(layout, links)
	if err != nil {
		t.Fatal(err)
	}
	if err := in_toto.VerifyArtifacts(items, reduced); err != nil {
		t.Fatalf("demo artifact rules: %v", err)
	}
	// Tamper with the packaged foo.py: the package step's MATCH fails.
	pkg := reduced["package"].(*in_toto.Metablock)
	l := pkg.Signed.(in_toto.Link)
	l.Materials = map[string]in_toto.HashObj{"foo.py": {"sha256": strings.Repeat("0", 64)}}
	reduced["package"] = &in_toto.Metablock{Signed: l, Signatures: pkg.Signatures}
	if err := in_toto.VerifyArtifacts(items, reduced); err == nil || !strings.Contains(err.Error(), "disallowed by rule") {
		t.Errorf("tampered material = %v, want the package step's rules to fail", err)
	}
}
