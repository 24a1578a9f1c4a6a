package sigstore_test

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/evident-dev/evident"
	"github.com/evident-dev/evident/dsse"
	"github.com/evident-dev/evident/link"
	"github.com/evident-dev/evident/sigstore"
	"github.com/in-toto/in-toto-golang/in_toto"
)

// A DSSE entry's envelope goes into the Sigstore bundle as dsseEnvelope:
// the payload and payload type as signed, the entry's signature over PAE;
// an envelope that is not the entry's is refused.
func TestExportDSSE(t *testing.T) {
	f := newFixture(t)
	leaf, key := f.leaf(t, nil, x509.ExtKeyUsageCodeSigning)
	l := link.NewLink("build", []string{"make"}, map[string]in_toto.HashObj{},
		map[string]in_toto.HashObj{"app": {"sha256": strings.Repeat("ab", 32)}}, &link.Result{})
	env, _, err := link.SignLinkDSSE(l, link.Signer{Key: key, Chain: []*x509.Certificate{leaf, f.inter.Cert}})
	if err != nil {
		t.Fatal(err)
	}
	digest := sha256.Sum256(env.Payload)
	sig := env.Signatures[0].Sig
	sigDigest := sha256.Sum256(sig)
	e := &evident.Entry{Version: evident.Version2, PayloadType: evident.PayloadTypeDSSE, PayloadSHA256: hex.EncodeToString(digest[:]),
		Signature: sig, KeyID: env.Signatures[0].KeyID, Timestamps: [][]byte{f.token(t, sigDigest[:])},
		CertChain: [][]byte{leaf.Raw, f.inter.Cert.Raw}}
	eb, _ := env.Marshal()
	b := &evident.Bundle{DSSEEnvelope: eb, Entry: e}
	out, err := sigstore.ExportBundle(b)
	if err != nil {
		t.Fatal(err)
	}
	pb := parseExport(t, out)
	de := pb.GetDsseEnvelope()
	if de == nil || !bytes.Equal(de.Payload, env.Payload) || de.PayloadType != evident.PayloadTypeDSSE ||
		len(de.Signatures) != 1 || !bytes.Equal(de.Signatures[0].Sig, sig) {
		t.Fatalf("dsseEnvelope = %v, want the envelope with the entry's signature", de)
	}
	if len(pb.VerificationMaterial.GetTimestampVerificationData().GetRfc3161Timestamps()) != 1 {
		t.Error("the entry's token is missing")
	}
	other := *env
	other.Payload = append(bytes.Clone(env.Payload), ' ')
	ob, _ := other.Marshal()
	if _, err := sigstore.ExportBundle(&evident.Bundle{DSSEEnvelope: ob, Entry: e}); !errors.Is(err, sigstore.ErrInconsistent) {
		t.Errorf("export of another payload = %v, want ErrInconsistent", err)
	}
	wrong, _ := dsse.NewEnvelope(key, e.KeyID, "application/other", env.Payload)
	wrong.PayloadType = evident.PayloadTypeDSSE
	e2 := *e
	e2.Signature = wrong.Signatures[0].Sig
	wb, _ := wrong.Marshal()
	if _, err := sigstore.ExportBundle(&evident.Bundle{DSSEEnvelope: wb, Entry: &e2}); !errors.Is(err, sigstore.ErrInconsistent) {
		t.Errorf("export of a signature over another PAE = %v, want ErrInconsistent", err)
	}
}
