package main

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/digitorus/timestamp"
	"github.com/evident-dev/evident"
	"github.com/evident-dev/evident/dsse"
	"github.com/evident-dev/evident/internal/pemfile"
	"github.com/evident-dev/evident/link"
	"github.com/evident-dev/evident/rfc3161"
	"github.com/evident-dev/evident/serve"
	"github.com/evident-dev/evident/tsa"
)

// benchTSA requests timestamps over HTTP at each concurrency.
func benchTSA(s *serve.Server, concs string, d time.Duration, cpuprofile string) error {
	roots := x509.NewCertPool()
	chain := s.TSA.Chain()
	roots.AddCert(chain[len(chain)-1])
	var last string
	for i, cs := range strings.Split(concs, ",") {
		c, err := strconv.Atoi(strings.TrimSpace(cs))
		if err != nil || c < 1 {
			return fmt.Errorf("-tsa-c: bad concurrency %q", cs)
		}
		client := &http.Client{Transport: &http.Transport{MaxIdleConns: 2 * c, MaxIdleConnsPerHost: 2 * c}}
		if cpuprofile != "" && i == len(strings.Split(concs, ","))-1 {
			f, err := os.Create(cpuprofile)
			if err != nil {
				return err
			}
			pprof.StartCPUProfile(f)
		}
		var (
			mu       sync.Mutex
			lat      []time.Duration
			failures atomic.Int64
			seq      atomic.Uint64
		)
		ctx, cancel := context.WithTimeout(context.Background(), d)
		start := time.Now()
		var wg sync.WaitGroup
		for w := 0; w < c; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var local []time.Duration
				for ctx.Err() == nil {
					n := seq.Add(1)
					var digest [32]byte
					binary.BigEndian.PutUint64(digest[:], n)
					rand.Read(digest[8:16])
					nonce := new(big.Int).SetUint64(n)
					req, _ := (&timestamp.Request{HashAlgorithm: crypto.SHA256, HashedMessage: digest[:], Certificates: true, Nonce: nonce}).Marshal()
					t0 := time.Now()
					resp, err := client.Post(s.URL()+"/tsa", tsa.QueryType, bytes.NewReader(req))
					if err != nil {
						if ctx.Err() == nil {
							failures.Add(1)
						}
						continue
					}
					body, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 200 {
						failures.Add(1)
						continue
					}
					local = append(local, time.Since(t0))
					if n%100 == 0 { // verify a sample fully
						token, err := tsa.ParseResponse(body)
						if err == nil {
							_, err = rfc3161.Verify(token, rfc3161.Options{Roots: roots, Hash: crypto.SHA256, Digest: digest[:], Nonce: nonce})
						}
						if err != nil {
							failures.Add(1)
							fmt.Fprintf(os.Stderr, "verify: %v\n", err)
						}
					}
				}
				mu.Lock()
				lat = append(lat, local...)
				mu.Unlock()
			}()
		}
		wg.Wait()
		cancel()
		elapsed := time.Since(start)
		pprof.StopCPUProfile()
		if failures.Load() > 0 {
			return fmt.Errorf("%d timestamp requests failed", failures.Load())
		}
		slices.Sort(lat)
		last = fmt.Sprintf("tsa: %.0f tokens/s p50=%v p99=%v", float64(len(lat))/elapsed.Seconds(), pct(lat, 50), pct(lat, 99))
		fmt.Printf("concurrency %d: %s\n", c, last)
	}
	fmt.Println(last)
	return nil
}

// mintEntries makes n distinct real entries for s: one SVID from the
// development CA (as one CI job signing many links), each signature
// countersigned by the in-process TSA and the extra ones (all must answer).
// With payload, it also returns for each entry the submission that posts it
// with its payload.
//
// With format "dsse" the entries sign an in-toto Statement (link predicate)
// over DSSE's PAE, and are always posted with their payload: ingest cannot
// check such a signature from the entry alone.
func mintEntries(s *serve.Server, extra []*tsa.Server, n int, payload bool, format string) (entries, bodies [][]byte, err error) {
	payload = payload || format == "dsse"
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	svid, err := s.DevCA.IssueSVID(&url.URL{Scheme: "spiffe", Host: "evident.dev", Path: "/ci/load"}, key.Public(), time.Now(), time.Hour)
	if err != nil {
		return nil, nil, err
	}
	var ts link.Stamper = link.One(inProcessTSA{s.TSA})
	if len(extra) > 0 {
		all := &link.TSAs{TSAs: []link.TSA{{Name: "serve", Client: inProcessTSA{s.TSA}}}, Threshold: len(extra) + 1}
		for i, x := range extra {
			all.TSAs = append(all.TSAs, link.TSA{Name: fmt.Sprintf("extra-%d", i), Client: inProcessTSA{x}})
		}
		ts = all
	}
	entries = make([][]byte, n)
	if payload {
		bodies = make([][]byte, n)
	}
	err = parallel(n, 4, func(i int) error {
		var e *evident.Entry
		var p []byte
		if format == "dsse" {
			e, p, err = dsseEntry(ts, i, key, svid)
		} else {
			p = metablockPayload(i)
			e, err = link.Countersign(context.Background(), ts, evident.PayloadTypeLink, p, "load", key, []*x509.Certificate{svid})
		}
		if err == nil {
			entries[i], err = e.Marshal()
		}
		if err == nil && payload {
			var sub *evident.Submission
			if sub, err = evident.NewSubmission(e, p); err == nil {
				bodies[i], err = sub.Marshal()
			}
		}
		return err
	})
	return entries, bodies, err
}

// metablockPayload is the signed part of the i-th load link, in canonical
// JSON, as in-toto signs it: the same step and product as dsseEntry's
// Statement, so that the two formats are compared on the same evidence.
func metablockPayload(i int) []byte {
	d := sha256.Sum256([]byte(strconv.Itoa(i)))
	return fmt.Appendf(nil, `{"_type":"link","byproducts":{},"command":[],"environment":{},"materials":{},"name":"load","products":{"load":{"sha256":"%x"}}}`, d)
}

// dsseEntry is the i-th load entry of an in-toto Statement signed over
// PAE, of about the size of a load link, and its payload.
func dsseEntry(ts link.Stamper, i int, key crypto.Signer, svid *x509.Certificate) (*evident.Entry, []byte, error) {
	d := sha256.Sum256([]byte(strconv.Itoa(i)))
	p := fmt.Appendf(nil, `{"_type":"%s","subject":[{"name":"load","digest":{"sha256":"%x"}}],"predicateType":"%s","predicate":{"name":"load"}}`,
		dsse.StatementType, d, dsse.PredicateTypeLink)
	sig, err := dsse.Sign(key, evident.PayloadTypeDSSE, p)
	if err != nil {
		return nil, nil, err
	}
	e, err := link.CountersignSignature(context.Background(), ts, evident.PayloadTypeDSSE, p, sig, "load", []*x509.Certificate{svid}, nil)
	return e, p, err
}

// extraTSAs makes n development TSAs beside the server's in dir and, for
// n > 0, a file of every root (the server's first) for serve's TSA roots.
func extraTSAs(dir string, n int) ([]*tsa.Server, string, error) {
	if n <= 0 {
		return nil, "", nil
	}
	var roots []*x509.Certificate
	var out []*tsa.Server
	for i := 0; i <= n; i++ {
		d := dir // the server's own TSA, which serve.Open will load
		if i > 0 {
			d = filepath.Join(dir, fmt.Sprintf("tsa-%d", i))
			if err := os.MkdirAll(d, 0o700); err != nil {
				return nil, "", err
			}
		}
		key, chain, err := serve.DataDir(d).LoadTSA("", "", time.Now())
		if err != nil {
			return nil, "", err
		}
		roots = append(roots, chain[len(chain)-1])
		if i > 0 {
			s, err := tsa.NewServer(tsa.Config{Signer: key, Chain: chain})
			if err != nil {
				return nil, "", err
			}
			out = append(out, s)
		}
	}
	f := filepath.Join(dir, "tsa-roots.pem")
	return out, f, os.WriteFile(f, pemfile.EncodeCertificates(roots), 0o644)
}

// inProcessTSA timestamps through the server's TSA without HTTP.
type inProcessTSA struct{ s *tsa.Server }

func (t inProcessTSA) Timestamp(_ context.Context, h crypto.Hash, digest []byte) (*rfc3161.Token, []byte, error) {
	req, err := (&timestamp.Request{HashAlgorithm: h, HashedMessage: digest, Certificates: true}).Marshal()
	if err != nil {
		return nil, nil, err
	}
	resp, err := t.s.Respond(req)
	if err != nil {
		return nil, nil, err
	}
	token, err := tsa.ParseResponse(resp)
	return nil, token, err
}
