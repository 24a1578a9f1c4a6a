package tsa_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/digitorus/timestamp"
	"github.com/evident-dev/evident/internal/pemfile"
	"github.com/evident-dev/evident/internal/pkitest"
	"github.com/evident-dev/evident/rfc3161"
	"github.com/evident-dev/evident/tsa"
)

var now = time.Now()

func devServer(t testing.TB) (*tsa.Server, *x509.CertPool) {
	key, chain, err := tsa.NewDevChain("test", now)
	if err != nil {
		t.Fatal(err)
	}
	s, err := tsa.NewServer(tsa.Config{Signer: key, Chain: chain,
		Policies: []asn1.ObjectIdentifier{tsa.DefaultPolicy(), {1, 2, 3, 4, 2}}})
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(chain[len(chain)-1])
	return s, roots
}

func request(t testing.TB, r *timestamp.Request) []byte {
	b, err := r.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func sha256Of(s string) []byte { d := sha256.Sum256([]byte(s)); return d[:] }

func TestRoundTrip(t *testing.T) {
	s, roots := devServer(t)
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	c := &tsa.Client{URL: srv.URL + "/tsa", Roots: roots}
	for _, h := range []crypto.Hash{crypto.SHA256, crypto.SHA384, crypto.SHA512} {
		d := h.New()
		d.Write([]byte("payload"))
		tok, der, err := c.Timestamp(context.Background(), h, d.Sum(nil))
		if err != nil {
			t.Fatalf("%v: %v", h, err)
		}
		if tok.Accuracy != time.Second || !tok.Policy.Equal(tsa.DefaultPolicy()) || tok.GenTime.Sub(time.Now()).Abs() > 5*time.Second || len(der) == 0 {
			t.Errorf("%v token = %+v", h, tok)
		}
	}
	resp, err := http.Get(srv.URL + "/tsa/certchain")
	if err != nil {
		t.Fatal(err)
	}
	pemChain, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if chain, err := pemfile.ParseCertificates(pemChain); err != nil || len(chain) != 2 {
		t.Errorf("certchain = %d certificates, %v", len(chain), err)
	}
}

// TestRejections covers threat model T2 (and T1 inside the request): each bad
// request gets PKIStatus rejection with its own PKIFailureInfo.
func TestRejections(t *testing.T) {
	s, _ := devServer(t)
	d := sha256Of("x")
	hugeNonce := new(big.Int).Lsh(big.NewInt(1), 2000)
	longOID := make(asn1.ObjectIdentifier, 200)
	for i := range longOID {
		longOID[i] = 1 + i%40
	}
	for _, c := range []struct {
		name string
		req  []byte
		want timestamp.FailureInfo
	}{
		{"SHA-1", request(t, &timestamp.Request{HashAlgorithm: crypto.SHA1, HashedMessage: make([]byte, sha1.Size)}), timestamp.BadAlgorithm},
		{"MD5-sized unknown", mustDER(t, rawReq{1, imprint{pkix.AlgorithmIdentifier{Algorithm: asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 5}}, make([]byte, 16)}}), timestamp.BadAlgorithm},
		{"short digest", request(t, &timestamp.Request{HashAlgorithm: crypto.SHA256, HashedMessage: d[:20]}), timestamp.BadDataFormat},
		{"SHA-512 length under SHA-256", request(t, &timestamp.Request{HashAlgorithm: crypto.SHA256, HashedMessage: make([]byte, sha512.Size)}), timestamp.BadDataFormat},
		{"garbage", []byte("not DER at all"), timestamp.BadDataFormat},
		{"trailing data", append(request(t, &timestamp.Request{HashAlgorithm: crypto.SHA256, HashedMessage: d}), 0), timestamp.BadDataFormat},
		{"version 2", mustDER(t, rawReq{2, imprint{pkix.AlgorithmIdentifier{Algorithm: asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 1}}, d}}), timestamp.BadDataFormat},
		{"oversized nonce", request(t, &timestamp.Request{HashAlgorithm: crypto.SHA256, HashedMessage: d, Nonce: hugeNonce}), timestamp.BadDataFormat},
		{"negative nonce", request(t, &timestamp.Request{HashAlgorithm: crypto.SHA256, HashedMessage: d, Nonce: big.NewInt(-5)}), timestamp.BadDataFormat},
		{"unknown policy", request(t, &timestamp.Request{HashAlgorithm: crypto.SHA256, HashedMessage: d, TSAPolicyOID: asn1.ObjectIdentifier{1, 2, 3, 9}}), timestamp.UnacceptedPolicy},
		{"huge policy OID", request(t, &timestamp.Request{HashAlgorithm: crypto.SHA256, HashedMessage: d, TSAPolicyOID: longOID}), timestamp.UnacceptedPolicy},
		{"non-critical extension", request(t, &timestamp.Request{HashAlgorithm: crypto.SHA256, HashedMessage: d,
			ExtraExtensions: []pkix.Extension{{Id: asn1.ObjectIdentifier{1, 2, 3}, Value: []byte{5, 0}}}}), timestamp.UnacceptedExtension},
		{"critical extension", request(t, &timestamp.Request{HashAlgorithm: crypto.SHA256, HashedMessage: d,
			ExtraExtensions: []pkix.Extension{{Id: asn1.ObjectIdentifier{1, 2, 3}, Critical: true, Value: []byte{5, 0}}}}), timestamp.UnacceptedExtension},
	} {
		t.Run(c.name, func(t *testing.T) {
			resp, err := s.Respond(c.req)
			var rej *tsa.RejectedError
			if !errors.As(err, &rej) || rej.FailureInfo != c.want {
				t.Fatalf("Respond = %v, want a rejection with %v", err, c.want)
			}
			_, perr := tsa.ParseResponse(resp)
			var se *tsa.StatusError
			if !errors.As(perr, &se) || se.Status != int(timestamp.Rejection) || len(se.Failures) != 1 || se.Failures[0] != c.want {
				t.Errorf("the response says %v, want rejection with %v", perr, c.want)
			}
		})
	}
	// An accepted non-default policy is used.
	resp, err := s.Respond(request(t, &timestamp.Request{HashAlgorithm: crypto.SHA256, HashedMessage: d, TSAPolicyOID: asn1.ObjectIdentifier{1, 2, 3, 4, 2}}))
	if err != nil {
		t.Fatal(err)
	}
	ts, err := timestamp.ParseResponse(resp)
	if err != nil || !ts.Policy.Equal(asn1.ObjectIdentifier{1, 2, 3, 4, 2}) {
		t.Errorf("token policy = %v, %v", ts.Policy, err)
	}
}

type imprint struct {
	Alg    pkix.AlgorithmIdentifier
	Digest []byte
}

type rawReq struct {
	Version int
	Imprint imprint
}

func mustDER(t testing.TB, v any) []byte {
	b, err := asn1.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestHTTPLimits covers threat model T1 at the transport: repeated or wrong
// Content-Type, oversized body, compressed body.
func TestHTTPLimits(t *testing.T) {
	s, _ := devServer(t)
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	good := request(t, &timestamp.Request{HashAlgorithm: crypto.SHA256, HashedMessage: sha256Of("x")})
	post := func(body []byte, hdr http.Header) int {
		req, _ := http.NewRequest("POST", srv.URL+"/tsa", bytes.NewReader(body))
		req.Header = hdr
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, c := range []struct {
		name string
		body []byte
		hdr  http.Header
		want int
	}{
		{"ok", good, http.Header{"Content-Type": {tsa.QueryType}}, 200},
		{"no Content-Type", good, http.Header{}, 415},
		{"wrong Content-Type", good, http.Header{"Content-Type": {"application/json"}}, 415},
		{"repeated Content-Type", good, http.Header{"Content-Type": {tsa.QueryType, tsa.QueryType}}, 415},
		{"gzip", good, http.Header{"Content-Type": {tsa.QueryType}, "Content-Encoding": {"gzip"}}, 415},
		{"oversized body", bytes.Repeat([]byte{0x30}, 1<<20), http.Header{"Content-Type": {tsa.QueryType}}, 413},
		{"rejected request", []byte("junk"), http.Header{"Content-Type": {tsa.QueryType}}, 400},
	} {
		if got := post(c.body, c.hdr); got != c.want {
			t.Errorf("%s: status %d, want %d", c.name, got, c.want)
		}
	}
}

// TestSerialsUniqueAcrossRestarts covers threat model T3: two server instances
// over the same key (a restart, or a crash and restart) never repeat a
// serial number: serials are 160 random bits, with no state to lose.
func TestSerialsUniqueAcrossRestarts(t *testing.T) {
	dir := t.TempDir()
	seen := map[string]bool{}
	for restart := 0; restart < 3; restart++ {
		key, chain, err := tsa.LoadOrCreateDev(filepath.Join(dir, "tsa.key"), filepath.Join(dir, "tsa-chain.pem"), now)
		if err != nil {
			t.Fatal(err)
		}
		s, err := tsa.NewServer(tsa.Config{Signer: key, Chain: chain})
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 300; i++ {
			resp, err := s.Respond(request(t, &timestamp.Request{HashAlgorithm: crypto.SHA256, HashedMessage: sha256Of("same")}))
			if err != nil {
				t.Fatal(err)
			}
			ts, err := timestamp.ParseResponse(resp)
			if err != nil {
				t.Fatal(err)
			}
			if seen[ts.SerialNumber.String()] {
				t.Fatalf("serial %v issued twice", ts.SerialNumber)
			}
			if ts.SerialNumber.BitLen() > 160 {
				t.Fatalf("serial %v is over 160 bits", ts.SerialNumber)
			}
			seen[ts.SerialNumber.String()] = true
		}
	}
}

// TestMisconfiguredChain covers threat model T4: the server refuses to start and
// says why.
func TestMisconfiguredChain(t *testing.T) {
	ca := pkitest.NewCA(t, "root", now.Add(-time.Hour), now.Add(time.Hour*24))
	valid := func(o pkitest.TSAOptions) (crypto.Signer, []*x509.Certificate) {
		c, k := ca.TSA(t, now.Add(-time.Hour), now.Add(time.Hour), o)
		return k, []*x509.Certificate{c, ca.Cert}
	}
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	otherCA := pkitest.NewCA(t, "other", now.Add(-time.Hour), now.Add(time.Hour))
	expired, expiredKey := ca.TSA(t, now.Add(-2*time.Hour), now.Add(-time.Hour), pkitest.TSAOptions{})
	for _, c := range []struct {
		name  string
		key   crypto.Signer
		chain []*x509.Certificate
		want  string
	}{
		{"EKU not critical", nil, nil, "not critical"},
		{"extra EKU", nil, nil, "timeStamping only"},
		{"CA-flagged leaf", nil, nil, "CA certificate"},
		{"no EKU", nil, nil, "no extended key usage"},
		{"key does not match", other, nil, "does not belong"},
		{"no root", nil, []*x509.Certificate{}, "no certificates"},
		{"leaf only", nil, nil, "self-signed root"},
		{"wrong root", nil, nil, "self-signed root"},
		{"untrusted root", nil, nil, "certificate signed by unknown authority"},
		{"expired", expiredKey, []*x509.Certificate{expired, ca.Cert}, "expired"},
	} {
		t.Run(c.name, func(t *testing.T) {
			key, chain := c.key, c.chain
			switch c.name {
			case "EKU not critical":
				key, chain = valid(pkitest.TSAOptions{NonCriticalEKU: true})
			case "extra EKU":
				key, chain = valid(pkitest.TSAOptions{ExtraEKU: true})
			case "CA-flagged leaf":
				key, chain = valid(pkitest.TSAOptions{IsCA: true})
			case "no EKU":
				key, chain = valid(pkitest.TSAOptions{NoEKU: true})
			case "key does not match":
				_, chain = valid(pkitest.TSAOptions{})
			case "no root":
				key, _ = valid(pkitest.TSAOptions{})
			case "leaf only":
				key, chain = valid(pkitest.TSAOptions{})
				chain = chain[:1]
			case "wrong root":
				key, chain = valid(pkitest.TSAOptions{})
				chain = []*x509.Certificate{chain[0], chain[0]}
			case "untrusted root":
				key, chain = valid(pkitest.TSAOptions{})
				chain = []*x509.Certificate{chain[0], otherCA.Cert}
			}
			_, err := tsa.NewServer(tsa.Config{Signer: key, Chain: chain})
			if !errors.Is(err, tsa.ErrBadChain) || !strings.Contains(err.Error(), c.want) {
				t.Errorf("NewServer = %v, want ErrBadChain saying %q", err, c.want)
			}
		})
	}
}

// FuzzRespond covers threat model T1: any request bytes give a response or a
// rejection, never a panic.
func FuzzRespond(f *testing.F) {
	s, _ := devServer(f)
	f.Add(request(f, &timestamp.Request{HashAlgorithm: crypto.SHA256, HashedMessage: sha256Of("x"), Nonce: big.NewInt(7), Certificates: true}))
	f.Add(request(f, &timestamp.Request{HashAlgorithm: crypto.SHA1, HashedMessage: make([]byte, 20)}))
	f.Fuzz(func(t *testing.T, b []byte) {
		resp, err := s.Respond(b)
		var rej *tsa.RejectedError
		if err != nil && !errors.As(err, &rej) {
			t.Fatalf("Respond = %v, want a token or a rejection", err)
		}
		if len(resp) == 0 {
			t.Fatal("no response")
		}
	})
}

// TestOpenSSLInterop has OpenSSL's ts tool (a standard RFC 3161 client)
// make the query and verify the token, and evident verify a token that
// OpenSSL's own TSA issued.
func TestOpenSSLInterop(t *testing.T) {
	openssl, err := exec.LookPath("openssl")
	if err != nil {
		if os.Getenv("EVIDENT_REQUIRE_OPENSSL") != "" {
			t.Fatal("openssl is required but not installed")
		}
		t.Skip("openssl is not installed")
	}
	dir := t.TempDir()
	run := func(args ...string) []byte {
		t.Helper()
		cmd := exec.Command(openssl, args...)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("openssl %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}
	write := func(name string, b []byte) {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	s, roots := devServer(t)
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	write("data", []byte("evidence\n"))
	write("root.pem", pemfile.EncodeCertificates(s.Chain()[1:]))
	write("tsa.pem", pemfile.EncodeCertificates(s.Chain()[:1]))
	run("ts", "-query", "-data", "data", "-sha256", "-cert", "-out", "req.tsq")
	q, _ := os.ReadFile(filepath.Join(dir, "req.tsq"))
	resp, err := http.Post(srv.URL+"/tsa", tsa.QueryType, bytes.NewReader(q))
	if err != nil {
		t.Fatal(err)
	}
	tsr, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	write("resp.tsr", tsr)
	if out := run("ts", "-verify", "-data", "data", "-in", "resp.tsr", "-CAfile", "root.pem"); !strings.Contains(string(out), "OK") {
		t.Errorf("openssl ts -verify: %s", out)
	}

	// The other way round: OpenSSL's TSA issues, evident verifies.
	ca := pkitest.NewCA(t, "openssl-tsa-root", now.Add(-time.Hour), now.Add(time.Hour))
	cert, key := ca.TSA(t, now.Add(-time.Hour), now.Add(time.Hour), pkitest.TSAOptions{})
	der, _ := x509.MarshalPKCS8PrivateKey(key)
	write("osslroot.pem", pemfile.EncodeCertificates([]*x509.Certificate{ca.Cert}))
	write("ossltsa.pem", pemfile.EncodeCertificates([]*x509.Certificate{cert}))
	write("ossltsa.key", pemBlock("PRIVATE KEY", der))
	write("serial", []byte("01\n"))
	write("tsa.cnf", []byte(`[ tsa ]
default_tsa = tsa_config
[ tsa_config ]
serial = ./serial
signer_cert = ./ossltsa.pem
signer_key = ./ossltsa.key
signer_digest = sha256
default_policy = 1.2.3.4.1
digests = sha256
accuracy = secs:1
ess_cert_id_alg = sha256
ess_cert_id_chain = no
`))
	run("ts", "-reply", "-config", "tsa.cnf", "-queryfile", "req.tsq", "-out", "ossl.tsr")
	ossl, _ := os.ReadFile(filepath.Join(dir, "ossl.tsr"))
	token, err := tsa.ParseResponse(ossl)
	if err != nil {
		t.Fatal(err)
	}
	d := sha256Of("evidence\n")
	tok, err := rfc3161.Verify(token, rfc3161.Options{Roots: ca.Pool(), Hash: crypto.SHA256, Digest: d})
	if err != nil {
		t.Fatalf("rfc3161.Verify(OpenSSL's token) = %v", err)
	}
	if !tok.Chain[0].Equal(cert) {
		t.Error("the verified chain does not start at OpenSSL's TSA certificate")
	}
	// And OpenSSL's token does not verify against evident's dev root.
	if _, err := rfc3161.Verify(token, rfc3161.Options{Roots: roots, Hash: crypto.SHA256, Digest: d}); !errors.Is(err, rfc3161.ErrTokenUntrusted) {
		t.Errorf("OpenSSL's token under another root = %v, want ErrTokenUntrusted", err)
	}
}

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}
