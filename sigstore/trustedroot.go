package sigstore

import (
	"bytes"
	"crypto/x509"
	"fmt"
	"net/url"
	"slices"
	"time"

	"github.com/evident-dev/evident"
	"github.com/evident-dev/evident/internal/pemfile"
	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	prototrustroot "github.com/sigstore/protobuf-specs/gen/pb-go/trustroot/v1"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// TrustedRootMediaType is the Sigstore TrustedRoot version
// [ExportTrustedRoot] writes, the one sigstore-go reads.
const TrustedRootMediaType = "application/vnd.dev.sigstore.trustedroot+json;version=0.1"

// ExportTrustedRoot converts evident's trust root into a Sigstore
// TrustedRoot, JSON encoded:
//
//   - each certificate of each functionary CA becomes a certificate
//     authority whose chain is that certificate alone, the trust anchor,
//     valid for the item's window — exactly what evident verify trusts;
//   - each TSA certificate becomes a timestamp authority, likewise; it must
//     be a CA (a Sigstore verifier takes a lone non-CA certificate for the
//     TSA's own certificate and finds no root). Its URI is [TSAURI] of the
//     item's name: sigstore-go counts a threshold of timestamps once per
//     URI, so tokens count once per TSA of the trust root, as in evident
//     verify (two certificates of one item share its URI);
//   - the log keys and layout keys have no Sigstore counterpart and are
//     left out: a Sigstore verifier checks neither evident's log nor layouts
//     (nor trusts the root CAs a layout names, which evident verify adds).
//
// Intermediates: evident's trust root lists trust anchors, and each entry
// carries its signer's intermediates, which a v0.3 Sigstore bundle cannot
// (it carries the leaf alone). So the intermediates of the given entries'
// chains are added as certificate authorities of their own, chain
// [intermediates…, anchor], in the window of each item holding the anchor
// (a root kept across a rotation is in two) — provided each links
// to the next, and the last to an anchor, by signature; an entry whose
// intermediates reach no anchor is an error. Such a chain trusts nothing the
// anchor does not: crypto/x509 would accept the same path given the
// intermediates, and still checks their validity and constraints.
//
// Sigstore windows include their end and evident's exclude it, so an end is
// written one nanosecond early.
func ExportTrustedRoot(tr *evident.TrustRoot, intermediatesOf []*evident.Entry) ([]byte, error) {
	out := &prototrustroot.TrustedRoot{MediaType: TrustedRootMediaType}
	type anchor struct {
		cert *x509.Certificate
		item evident.Trusted
	}
	var anchors []anchor
	for _, it := range tr.FunctionaryCAs {
		certs, err := itemCertificates(evident.KindFunctionaryCA, it)
		if err != nil {
			return nil, err
		}
		for _, c := range certs {
			anchors = append(anchors, anchor{c, it})
			out.CertificateAuthorities = append(out.CertificateAuthorities, authority([]*x509.Certificate{c}, it.ValidFor))
		}
	}
	seen := map[string]bool{}
	for _, e := range intermediatesOf {
		if len(e.CertChain) < 2 {
			continue // no intermediates
		}
		chain := make([]*x509.Certificate, len(e.CertChain)-1)
		for i, der := range e.CertChain[1:] {
			c, err := x509.ParseCertificate(der)
			if err != nil {
				return nil, fmt.Errorf("%w: the chain of signer %s: cert_chain[%d]: %v", ErrInconsistent, e.KeyID, i+1, err)
			}
			chain[i] = c
		}
		found := false
		for _, a := range anchors {
			path, ok := pathTo(chain, a.cert)
			if !ok {
				continue
			}
			found = true
			if len(path) == 0 {
				continue // the leaf's issuer is the anchor itself
			}
			ca := slices.Concat(path, []*x509.Certificate{a.cert})
			key := bytes.NewBufferString(a.item.Name)
			for _, c := range ca {
				key.Write(c.Raw)
			}
			if !seen[key.String()] {
				seen[key.String()] = true
				out.CertificateAuthorities = append(out.CertificateAuthorities, authority(ca, a.item.ValidFor))
			}
		}
		if !found {
			return nil, fmt.Errorf("%w: the intermediates of signer %s (the last issued by %q) chain to no functionary CA of the trust root",
				ErrNotExportable, e.KeyID, chain[len(chain)-1].Issuer)
		}
	}
	for _, it := range tr.TSAs {
		certs, err := itemCertificates(evident.KindTSA, it)
		if err != nil {
			return nil, err
		}
		for _, c := range certs {
			if !c.IsCA {
				return nil, fmt.Errorf("%w: tsa %q: certificate %q is not a CA; a Sigstore TrustedRoot needs the TSA's root",
					ErrNotExportable, it.Name, c.Subject)
			}
			ta := authority([]*x509.Certificate{c}, it.ValidFor)
			ta.Uri = TSAURI(it.Name)
			out.TimestampAuthorities = append(out.TimestampAuthorities, ta)
		}
	}
	return marshal(out)
}

// TSAURI is the URI of the timestamp authorities exported for the trust
// root's TSA item name: "evident-trust-root:tsa/" and the name, path-escaped
// (distinct names, distinct URIs). It names the item, not a place to fetch.
func TSAURI(name string) string {
	return "evident-trust-root:tsa/" + url.PathEscape(name)
}

// pathTo returns the prefix of the intermediates chain (the issuer of the
// leaf first) that leads to anchor: each certificate a CA signed by the
// next, the last signed by anchor, or followed by the anchor itself.
func pathTo(chain []*x509.Certificate, anchor *x509.Certificate) ([]*x509.Certificate, bool) {
	for k, c := range chain {
		if c.Equal(anchor) {
			return chain[:k], true
		}
		if !c.IsCA {
			return nil, false
		}
		if c.CheckSignatureFrom(anchor) == nil {
			return chain[:k+1], true
		}
		if k+1 < len(chain) && c.CheckSignatureFrom(chain[k+1]) != nil {
			return nil, false
		}
	}
	return nil, false
}

func itemCertificates(kind string, it evident.Trusted) ([]*x509.Certificate, error) {
	certs, err := pemfile.ParseCertificates([]byte(it.Value))
	if err != nil {
		return nil, fmt.Errorf("%w: %s %q: %v", ErrInconsistent, kind, it.Name, err)
	}
	return certs, nil
}

// authority is a Sigstore certificate authority: chain ends with the anchor.
func authority(chain []*x509.Certificate, v evident.ValidFor) *prototrustroot.CertificateAuthority {
	anchor := chain[len(chain)-1]
	ca := &prototrustroot.CertificateAuthority{
		Subject:   &protocommon.DistinguishedName{CommonName: anchor.Subject.CommonName},
		CertChain: &protocommon.X509CertificateChain{},
		ValidFor:  &protocommon.TimeRange{Start: timestamppb.New(v.Start)},
	}
	if len(anchor.Subject.Organization) > 0 {
		ca.Subject.Organization = anchor.Subject.Organization[0]
	}
	for _, c := range chain {
		ca.CertChain.Certificates = append(ca.CertChain.Certificates, &protocommon.X509Certificate{RawBytes: bytes.Clone(c.Raw)})
	}
	if v.End != nil {
		ca.ValidFor.End = timestamppb.New(v.End.Add(-time.Nanosecond))
	}
	return ca
}
