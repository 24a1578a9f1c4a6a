package identity_test

import (
	"context"
	"crypto/x509"
	"path/filepath"
	"testing"
	"time"

	"github.com/evident-dev/evident/identity"
	"github.com/evident-dev/evident/internal/pkitest"
	"github.com/evident-dev/evident/internal/spiffetest"
	"github.com/evident-dev/evident/link"
)

// TestWorkloadAPIRotation: the identity is fetched at signing time, so a
// rotation in the middle of a run is picked up, leaf and chain.
func TestWorkloadAPIRotation(t *testing.T) {
	api := spiffetest.Start(t)
	ca := pkitest.NewCA(t, "upstream", time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	inter := ca.Intermediate(t, "spire intermediate", time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	const id = "spiffe://example.org/ci/build"
	c1, k1 := inter.SVID(t, id, time.Now().Add(-time.Minute), time.Now().Add(time.Minute))
	api.Set(id, []*x509.Certificate{c1, inter.Cert}, k1, []*x509.Certificate{ca.Cert})
	s1, gotID, err := identity.FromWorkloadAPI(context.Background(), api.Socket)
	if err != nil {
		t.Fatal(err)
	}
	if gotID != id || !s1.Chain[0].Equal(c1) || len(s1.Chain) != 2 {
		t.Fatalf("first SVID = %s %v", gotID, s1.Chain)
	}
	inter2 := ca.Intermediate(t, "rotated intermediate", time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	c2, k2 := inter2.SVID(t, id, time.Now().Add(-time.Minute), time.Now().Add(time.Minute))
	api.Set(id, []*x509.Certificate{c2, inter2.Cert}, k2, []*x509.Certificate{ca.Cert})
	s2, _, err := identity.FromWorkloadAPI(context.Background(), "unix://"+api.Socket)
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
