package serve

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"fmt"
	"net/url"
	"testing"
	"time"

	"github.com/evident-dev/evident"
	"github.com/evident-dev/evident/dsse"
	"github.com/evident-dev/evident/link"
	"github.com/evident-dev/evident/tsa"
)

// BenchmarkIngestValidator measures the ingest check of one real entry
// (an SVID's ECDSA signature, one token), as the log's validator runs it,
// apart from HTTP and the store: go test -run '^$' -bench IngestValidator
// ./serve. bare is a link's entry posted alone; metablock and dsse post
// the entry with its payload (a link, an in-toto Statement signed over
// its DSSE PAE), as evident run does.
func BenchmarkIngestValidator(b *testing.B) {
	s := startTest(b)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	svid, err := s.DevCA.IssueSVID(&url.URL{Scheme: "spiffe", Host: DevTrustDomain, Path: "/ci/bench"}, key.Public(), time.Now(), time.Hour)
	if err != nil {
		b.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(s.TSA.Chain()[len(s.TSA.Chain())-1])
	ts := &tsa.Client{URL: s.URL() + "/tsa", Roots: roots}
	const n = 256
	mint := func(format string, i int) []byte {
		p := []byte(fmt.Sprintf(`{"_type":"link","name":"load","n":%d}`, i))
		var e *evident.Entry
		var err error
		if format == "dsse" {
			d := sha256.Sum256(p)
			p = fmt.Appendf(nil, `{"_type":"%s","subject":[{"name":"load","digest":{"sha256":"%x"}}],"predicateType":"%s","predicate":{"name":"load"}}`,
				dsse.StatementType, d, dsse.PredicateTypeLink)
			var sig []byte
			if sig, err = dsse.Sign(key, evident.PayloadTypeDSSE, p); err == nil {
				e, err = link.CountersignSignature(context.Background(), link.One(ts), evident.PayloadTypeDSSE, p, sig, "k", []*x509.Certificate{svid}, nil)
			}
		} else {
			e, err = link.Countersign(context.Background(), link.One(ts), evident.PayloadTypeLink, p, "k", key, []*x509.Certificate{svid})
		}
		if err != nil {
			b.Fatal(err)
		}
		if format == "bare" {
			body, _ := e.Marshal()
			return body
		}
		sub, err := evident.NewSubmission(e, p)
		if err != nil {
			b.Fatal(err)
		}
		body, _ := sub.Marshal()
		return body
	}
	for _, format := range []string{"bare", "metablock", "dsse"} {
		bodies := make([][]byte, n)
		for i := range bodies {
			bodies[i] = mint(format, i)
		}
		b.Run(format, func(b *testing.B) {
			validate := validator(s.Entries)
			for i := 0; i < b.N; i++ {
				if _, err := validate(bodies[i%n]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
