package main

import (
	"path/filepath"
	"strings"
	"testing"
)

// F1: whatever a link's signed name and an entry's key id hold, the bundle
// file name is one plain, visible file name, distinct per log index.
func TestBundleFileName(t *testing.T) {
	seen := map[string]bool{}
	for i, tc := range []struct{ step, keyID string }{
		{"build", "0123456789abcdef"},
		{"../../escape", "0123456789abcdef"},
		{"..", ".."},
		{"", ""},
		{"/etc/passwd", "../../../x"},
		{`a\b`, "a/b"},
		{"nul\x00byte", "é"},
		{".hidden", ".k"},
		{strings.Repeat("x", 300), strings.Repeat("y", 300)},
	} {
		name := bundleFileName(tc.step, tc.keyID, uint64(i))
		if !filepath.IsLocal(name) || filepath.Base(name) != name || strings.HasPrefix(name, ".") || !strings.HasSuffix(name, ".bundle.json") || len(name) > 128 {
			t.Errorf("bundleFileName(%q, %q) = %q", tc.step, tc.keyID, name)
		}
		if seen[name] {
			t.Errorf("bundleFileName(%q, %q) = %q, a name given before", tc.step, tc.keyID, name)
		}
		seen[name] = true
	}
	if a, b := bundleFileName("build", "k", 1), bundleFileName("build", "k", 2); a == b {
		t.Errorf("two entries of one step and key share the name %q", a)
	}
}
