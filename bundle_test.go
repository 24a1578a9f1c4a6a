package evident

import (
	"bytes"
	"strings"
	"testing"
)

// TestBundleVersions: a bundle without a witnessed proof is written as
// version 1, as before, and one with it as version 2; both parse, and a
// version 1 bundle cannot smuggle the version 2 field.
func TestBundleVersions(t *testing.T) {
	b := &Bundle{Link: []byte(`{}`), Entry: validEntry(), Checkpoint: "cp"}
	v1, err := b.Marshal()
	if err != nil || !bytes.Contains(v1, []byte(BundleMediaType)) || bytes.Contains(v1, []byte("witnessed")) {
		t.Fatalf("version 1 = %s, %v", v1, err)
	}
	if _, err := ParseBundle(v1); err != nil {
		t.Fatalf("ParseBundle(v1) = %v", err)
	}
	b.Witnessed = &WitnessedProof{Checkpoint: "wcp", InclusionProof: [][]byte{{1}}}
	v2, err := b.Marshal()
	if err != nil || !bytes.Contains(v2, []byte(BundleMediaTypeV2)) {
		t.Fatalf("version 2 = %s, %v", v2, err)
	}
	back, err := ParseBundle(v2)
	if err != nil || back.Witnessed == nil || back.Witnessed.Checkpoint != "wcp" {
		t.Fatalf("ParseBundle(v2) = %+v, %v", back, err)
	}
	smuggled := bytes.Replace(v2, []byte(BundleMediaTypeV2), []byte(BundleMediaType), 1)
	if _, err := ParseBundle(smuggled); err == nil || !strings.Contains(err.Error(), "version 1 bundle has no witnessed proof") {
		t.Errorf("ParseBundle(v1 with witnessed) = %v", err)
	}
}
