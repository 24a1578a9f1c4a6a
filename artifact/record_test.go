package artifact_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/evident-dev/evident/artifact"
)

func write(t *testing.T, p, s string) {
	t.Helper()
	os.MkdirAll(filepath.Dir(p), 0o755)
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

func sum(s string) string { d := sha256.Sum256([]byte(s)); return hex.EncodeToString(d[:]) }

// TestRecord covers threat model I4's recording side: relative forward-slash
// paths, directories walked, excludes, symlinks inside the root followed,
// symlinks leaving it refused.
func TestRecord(t *testing.T) {
	root := t.TempDir()
	write(t, filepath.Join(root, "src/a.go"), "a")
	write(t, filepath.Join(root, "src/sub/b.go"), "b")
	write(t, filepath.Join(root, "src/skip.tmp"), "x")
	write(t, filepath.Join(root, "README"), "r")
	os.Symlink("../README", filepath.Join(root, "src/readme-link"))
	got, err := artifact.Record(context.Background(), []string{"src", "./README", "src/../README"}, artifact.Options{Root: root, Exclude: []string{"*.tmp"}, Workers: 3})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"src/a.go": sum("a"), "src/sub/b.go": sum("b"), "README": sum("r"), "src/readme-link": sum("r")}
	if len(got) != len(want) {
		t.Fatalf("Record = %v, want %v", got, want)
	}
	for p, h := range want {
		if got[p]["sha256"] != h {
			t.Errorf("Record[%s] = %v, want sha256 %s", p, got[p], h)
		}
	}
	outside := t.TempDir()
	write(t, filepath.Join(outside, "secret"), "s")
	os.Symlink(filepath.Join(outside, "secret"), filepath.Join(root, "src/escape"))
	if _, err := artifact.Record(context.Background(), []string{"src"}, artifact.Options{Root: root}); !errors.Is(err, artifact.ErrEscapes) {
		t.Errorf("Record with an escaping symlink = %v, want ErrEscapes", err)
	}
	if _, err := artifact.Record(context.Background(), []string{"../" + filepath.Base(outside)}, artifact.Options{Root: root}); !errors.Is(err, artifact.ErrEscapes) {
		t.Errorf("Record of a path outside the root = %v, want ErrEscapes", err)
	}
}
