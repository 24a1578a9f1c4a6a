package serve

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/evident-dev/evident"
	"github.com/evident-dev/evident/link"
	"github.com/evident-dev/evident/log"
	"github.com/evident-dev/evident/log/logclient"
	"github.com/evident-dev/evident/tsa"
)

// signed is a key-only entry over payload, and its submission.
type signed struct {
	entry *evident.Entry
	body  []byte // the submission: entry and payload
	bare  []byte // the canonical entry alone
}

// ingestFixture signs payloads for a test server, timestamped by its TSA.
type ingestFixture struct {
	t  *testing.T
	s  *Server
	ts *tsa.Client
}

func newIngestFixture(t *testing.T, s *Server) ingestFixture {
	roots := x509.NewCertPool()
	roots.AddCert(s.TSA.Chain()[len(s.TSA.Chain())-1])
	return ingestFixture{t, s, &tsa.Client{URL: s.URL() + "/tsa", Roots: roots}}
}

// sign signs the message payloadType makes of msgPayload with key (PSS
// when pss), and submits payload beside it (another payload to lie).
func (f ingestFixture) sign(key crypto.Signer, pss bool, payloadType string, payload, msgPayload []byte) signed {
	f.t.Helper()
	e := &evident.Entry{PayloadType: payloadType}
	msg := msgPayload
	if payloadType == evident.PayloadTypeDSSE {
		msg = evident.PAE(payloadType, msgPayload)
	}
	var sig []byte
	var err error
	switch {
	case e.PayloadType == "" || key == nil:
		f.t.Fatal("no key")
	case isEd25519(key):
		sig, err = key.Sign(rand.Reader, msg, crypto.Hash(0))
	case pss:
		d := sha256.Sum256(msg)
		sig, err = key.Sign(rand.Reader, d[:], &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: crypto.SHA256})
	default:
		d := sha256.Sum256(msg)
		sig, err = key.Sign(rand.Reader, d[:], crypto.SHA256)
	}
	if err != nil {
		f.t.Fatal(err)
	}
	if e, err = link.CountersignSignature(context.Background(), f.ts, payloadType, payload, sig, "k", nil, key.Public()); err != nil {
		f.t.Fatal(err)
	}
	sub, err := evident.NewSubmission(e, payload)
	if err != nil {
		f.t.Fatal(err)
	}
	body, _ := sub.Marshal()
	bare, _ := e.Marshal()
	return signed{e, body, bare}
}

func isEd25519(k crypto.Signer) bool { _, ok := k.Public().(ed25519.PublicKey); return ok }

// post posts body to the log and returns the status and answer.
func post(t *testing.T, s *Server, body []byte) (int, string) {
	t.Helper()
	resp, err := http.Post(s.URL()+log.PathEntries, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestIngestChecksEverySignature: with the payload posted beside the
// entry, ingest verifies Ed25519, ECDSA, RSA PKCS #1 v1.5 and RSA-PSS
// signatures over the signed message (a link's payload, or a DSSE PAE)
// before the entry is sequenced; a wrong signature is refused 400 naming
// the signature check, and old clients' bare ECDSA entries still log.
func TestIngestChecksEverySignature(t *testing.T) {
	s := startTest(t)
	f := newIngestFixture(t, s)
	lc := &logclient.Client{URL: s.URL(), Origin: s.Origin(), Verifier: s.Verifier}
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	rk, _ := rsa.GenerateKey(rand.Reader, 2048)
	payload := []byte(`{"_type":"link","name":"build"}`)
	for _, c := range []struct {
		name string
		key  crypto.Signer
		pss  bool
		pt   string
	}{
		{"Ed25519", ed, false, evident.PayloadTypeLink},
		{"ECDSA", ec, false, evident.PayloadTypeLink},
		{"RSA PKCS #1 v1.5", rk, false, evident.PayloadTypeLink},
		{"RSA-PSS", rk, true, evident.PayloadTypeLink},
		{"Ed25519 DSSE", ed, false, evident.PayloadTypeDSSE},
		{"ECDSA DSSE", ec, false, evident.PayloadTypeDSSE},
	} {
		t.Run(c.name, func(t *testing.T) {
			sg := f.sign(c.key, c.pss, c.pt, payload, payload)
			if _, err := lc.Submit(context.Background(), sg.body, sg.bare); err != nil {
				t.Errorf("Submit = %v", err)
			}
		})
	}
	for _, c := range []struct {
		name string
		body []byte
		want string
	}{
		{"Ed25519 over another payload", f.sign(ed, false, evident.PayloadTypeLink, payload, []byte("other")).body, "signature does not verify over the payload: Ed25519"},
		{"RSA-PSS over another payload", f.sign(rk, true, evident.PayloadTypeLink, payload, []byte("other")).body, "signature does not verify over the payload"},
		{"ECDSA DSSE signed over the payload, not its PAE", func() []byte {
			sg := f.sign(ec, false, evident.PayloadTypeLink, payload, payload)
			sg.entry.PayloadType, sg.entry.Version, sg.entry.Timestamps, sg.entry.Timestamp = evident.PayloadTypeDSSE, evident.Version2, [][]byte{sg.entry.Timestamp}, nil
			sub, _ := evident.NewSubmission(sg.entry, payload)
			b, _ := sub.Marshal()
			return b
		}(), "signature does not verify over the payload"},
		{"bare Ed25519 entry", f.sign(ed, false, evident.PayloadTypeLink, []byte("bare"), []byte("bare")).bare, "Ed25519 signs the payload itself"},
		{"bare DSSE entry", f.sign(ec, false, evident.PayloadTypeDSSE, []byte("bare"), []byte("bare")).bare, "covers the DSSE PAE"},
		{"payload not the entry's", bytes.Replace(f.sign(ed, false, evident.PayloadTypeLink, []byte("mine"), []byte("mine")).body,
			[]byte(`"payload":"bWluZQ=="`), []byte(`"payload":"eW91cnM="`), 1), "payload is not the entry's"},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, answer := post(t, s, c.body)
			if code != http.StatusBadRequest || !strings.Contains(answer, c.want) {
				t.Errorf("POST = %d %s, want 400 containing %q", code, answer, c.want)
			}
		})
	}
	// An old client: a bare ECDSA link entry is checked over its digest.
	sg := f.sign(ec, false, evident.PayloadTypeLink, []byte("old client"), []byte("old client"))
	if _, err := lc.Add(context.Background(), sg.bare); err != nil {
		t.Errorf("bare ECDSA entry = %v", err)
	}
	// A payload of more than 64 KiB travels with its entry.
	big := bytes.Repeat([]byte("x"), 200<<10)
	sg = f.sign(ed, false, evident.PayloadTypeLink, big, big)
	if _, err := lc.Submit(context.Background(), sg.body, sg.bare); err != nil {
		t.Errorf("Submit(200 KiB payload) = %v", err)
	}
}
