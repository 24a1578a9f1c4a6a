package serve

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"fmt"
	"net/url"
	"testing"
	"time"

	"github.com/evident-dev/evident"
	"github.com/evident-dev/evident/link"
	"github.com/evident-dev/evident/tsa"
)

// BenchmarkIngestValidator measures the ingest check of one real entry
// (an SVID's ECDSA signature over a link, one token), as the log's
// validator runs it, apart from HTTP and the store: go test -run '^$'
// -bench IngestValidator ./serve.
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
	entries := make([][]byte, n)
	for i := range entries {
		e, err := link.Countersign(context.Background(), ts, evident.PayloadTypeLink, []byte(fmt.Sprintf(`{"n":%d}`, i)), "k", key, []*x509.Certificate{svid})
		if err != nil {
			b.Fatal(err)
		}
		entries[i], _ = e.Marshal()
	}
	validate := validator(s.Entries)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := validate(entries[i%n]); err != nil {
			b.Fatal(err)
		}
	}
}
