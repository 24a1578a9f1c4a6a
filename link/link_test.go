package link_test

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/evident-dev/evident/internal/pkitest"
	"github.com/evident-dev/evident/internal/spiffetest"
	"github.com/evident-dev/evident/link"
)

func write(t *testing.T, p, s string) {
	t.Helper()
	os.MkdirAll(filepath.Dir(p), 0o755)
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

func sum(s string) string { d := sha256.Sum256([]byte(s)); return hex.EncodeToString(d[:]) }

// TestRecord covers THREATS I4's recording side: relative forward-slash
// paths, directories walked, excludes, symlinks inside the root followed,
// symlinks leaving it refused.
func TestRecord(t *testing.T) {
	root := t.TempDir()
	write(t, filepath.Join(root, "src/a.go"), "a")
	write(t, filepath.Join(root, "src/sub/b.go"), "b")
	write(t, filepath.Join(root, "src/skip.tmp"), "x")
	write(t, filepath.Join(root, "README"), "r")
	os.Symlink("../README", filepath.Join(root, "src/readme-link"))
	got, err := link.Record(context.Background(), []string{"src", "./README", "src/../README"}, link.RecordOptions{Root: root, Exclude: []string{"*.tmp"}, Workers: 3})
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
	if _, err := link.Record(context.Background(), []string{"src"}, link.RecordOptions{Root: root}); !errors.Is(err, link.ErrEscapes) {
		t.Errorf("Record with an escaping symlink = %v, want ErrEscapes", err)
	}
	if _, err := link.Record(context.Background(), []string{"../" + filepath.Base(outside)}, link.RecordOptions{Root: root}); !errors.Is(err, link.ErrEscapes) {
		t.Errorf("Record of a path outside the root = %v, want ErrEscapes", err)
	}
}

// TestWorkloadAPIRotation: the identity is fetched at signing time, so a
// rotation in the middle of a run is picked up, leaf and chain.
func TestWorkloadAPIRotation(t *testing.T) {
	api := spiffetest.Start(t)
	ca := pkitest.NewCA(t, "upstream", time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	inter := ca.Intermediate(t, "spire intermediate", time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	const id = "spiffe://example.org/ci/build"
	c1, k1 := inter.SVID(t, id, time.Now().Add(-time.Minute), time.Now().Add(time.Minute))
	api.Set(id, []*x509.Certificate{c1, inter.Cert}, k1, []*x509.Certificate{ca.Cert})
	s1, gotID, err := link.FromWorkloadAPI(context.Background(), api.Socket)
	if err != nil {
		t.Fatal(err)
	}
	if gotID != id || !s1.Chain[0].Equal(c1) || len(s1.Chain) != 2 {
		t.Fatalf("first SVID = %s %v", gotID, s1.Chain)
	}
	inter2 := ca.Intermediate(t, "rotated intermediate", time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	c2, k2 := inter2.SVID(t, id, time.Now().Add(-time.Minute), time.Now().Add(time.Minute))
	api.Set(id, []*x509.Certificate{c2, inter2.Cert}, k2, []*x509.Certificate{ca.Cert})
	s2, _, err := link.FromWorkloadAPI(context.Background(), "unix://"+api.Socket)
	if err != nil {
		t.Fatal(err)
	}
	if !s2.Chain[0].Equal(c2) || !s2.Chain[1].Equal(inter2.Cert) {
		t.Error("the rotated SVID and intermediate were not picked up")
	}
	mb, name, err := link.Sign(link.NewLink("build", nil, nil, nil, &link.Result{}), s2)
	if err != nil {
		t.Fatal(err)
	}
	if mb.Signatures[0].Certificate == "" || filepath.Ext(name) != ".link" {
		t.Errorf("signed link %s carries no certificate", name)
	}
}
