package linkstore_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/evident-dev/evident/link"
	"github.com/evident-dev/evident/linkstore"
	"github.com/evident-dev/evident/verify"
	"github.com/in-toto/in-toto-golang/in_toto"
)

// signedLink is a link signed by a key with a certificate (so that its
// signature carries a PEM, newlines and all), as `evident run` writes it,
// and the log entry it was logged as.
type signedLink struct {
	raw   []byte // MarshalIndent, as on disk
	entry linkstore.LoggedEntry
}

func newSignedLink(t testing.TB, step string, products map[string]string) signedLink {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ci"}, NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	prods := map[string]in_toto.HashObj{}
	for p, content := range products {
		d := sha256.Sum256([]byte(content))
		prods[p] = in_toto.HashObj{"sha256": hex.EncodeToString(d[:])}
	}
	mb, _, err := link.Sign(link.NewLink(step, []string{"make", "<&>"}, nil, prods, &link.Result{}), link.Signer{Key: key, Chain: []*x509.Certificate{cert}})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := link.MarshalMetablock(mb)
	if err != nil {
		t.Fatal(err)
	}
	_, payload, err := verify.ParseLink(raw)
	if err != nil {
		t.Fatal(err)
	}
	return signedLink{raw: raw, entry: linkstore.LoggedEntry{PayloadSHA256: sha256.Sum256(payload)}}
}

func artifact(content string) [32]byte { return sha256.Sum256([]byte(content)) }

// server serves store with the given logged entries.
func server(t *testing.T, store linkstore.Store, entries ...linkstore.LoggedEntry) *httptest.Server {
	t.Helper()
	h := linkstore.Handler(linkstore.Config{Store: store, Logger: slog.New(slog.DiscardHandler),
		Entry: func(_ context.Context, i uint64) (linkstore.LoggedEntry, error) {
			if i >= uint64(len(entries)) {
				return linkstore.LoggedEntry{}, fmt.Errorf("%w: %d", linkstore.ErrNoEntry, i)
			}
			return entries[i], nil
		}})
	ts := httptest.NewServer(h)
	t.Cleanup(ts.Close)
	return ts
}

// post uploads body as is and returns the status and error message.
func post(t *testing.T, url string, body []byte) (int, string) {
	t.Helper()
	resp, err := http.Post(url+linkstore.PathLinks, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func upload(t *testing.T, index uint64, lb []byte) []byte {
	t.Helper()
	b, err := json.Marshal(linkstore.UploadRequest{Index: index, Link: lb})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// duplicateProducts returns lb with a "products" key carrying an extra
// artifact inserted before the real one: the signers' canonical encoder
// keeps the last, a struct decoder merges both.
func duplicateProducts(t *testing.T, lb []byte, evil string) []byte {
	t.Helper()
	d := artifact(evil)
	out := bytes.Replace(lb, []byte(`"products": {`), fmt.Appendf(nil, `"products": {"src/evil": {"sha256": "%x"}}, "products": {`, d), 1)
	if bytes.Equal(out, lb) {
		t.Fatal("the link has no products to duplicate")
	}
	return out
}

// P2: what is stored and served is the canonical form that was checked,
// never the uploader's bytes; the index comes from the stored form.
func TestUploadStoresCanonical(t *testing.T) {
	sl := newSignedLink(t, "build", map[string]string{"bin/app": "app"})
	store := linkstore.NewMemory()
	ts := server(t, store, sl.entry)
	c := &linkstore.Client{URL: ts.URL}
	ctx := context.Background()
	if code, msg := post(t, ts.URL, upload(t, 0, sl.raw)); code != http.StatusNoContent {
		t.Fatalf("upload of an indented link = %d %s", code, msg)
	}
	got, err := c.Link(ctx, sl.entry.PayloadSHA256)
	if err != nil {
		t.Fatal(err)
	}
	want, _, _ := linkstore.Canonical(sl.raw)
	if !bytes.Equal(got, want) || bytes.Equal(got, sl.raw) || !bytes.HasPrefix(got, []byte(`{"signatures":[],"signed":{"_type":"link",`)) {
		t.Errorf("served link is not the stored form:\n%s", got)
	}
	if _, payload, err := verify.ParseLink(got); err != nil || sha256.Sum256(payload) != sl.entry.PayloadSHA256 {
		t.Errorf("the served link does not verify as the entry's payload: %v", err)
	}
	if ix, err := c.ArtifactIndices(ctx, artifact("app")); err != nil || !slices.Equal(ix, []uint64{0}) {
		t.Errorf("ArtifactIndices = %v, %v, want [0]", ix, err)
	}
	// The client sends the canonical form, so uploading again is a no-op.
	if err := c.Upload(ctx, 0, sl.raw); err != nil {
		t.Errorf("a second upload of the same link: %v", err)
	}
}

// P2: a tampered link — a duplicated "products" key before the real one,
// which keeps the payload digest — never reaches the store, whether it
// comes first or after the original; nor does another signature, or a link
// of another entry.
func TestUploadRefusesTampered(t *testing.T) {
	sl := newSignedLink(t, "build", map[string]string{"bin/app": "app"})
	other := newSignedLink(t, "test", nil)
	tampered := duplicateProducts(t, sl.raw, "evil")
	for _, tc := range []struct {
		name  string
		first []byte // stored before, if any
		body  []byte
		code  int
		want  string
	}{
		{"duplicate key first", nil, upload(t, 0, tampered), http.StatusBadRequest, `duplicate key \"products\" at $.link.signed`},
		{"duplicate key after the original", sl.raw, upload(t, 0, tampered), http.StatusBadRequest, `duplicate key \"products\"`},
		{"other bytes after the original", sl.raw, upload(t, 0, bytes.Replace(sl.raw, []byte(`"make"`), []byte(`"nake"`), 1)), http.StatusConflict, "already stored"},
		{"another entry's link", nil, upload(t, 0, other.raw), http.StatusBadRequest, "payload_sha256"},
		{"no such entry", nil, upload(t, 7, sl.raw), http.StatusNotFound, "no logged entry"},
		{"not JSON", nil, []byte("{"), http.StatusBadRequest, "bad request"},
		{"no link", nil, []byte(`{"index":0}`), http.StatusBadRequest, "bad request"},
		{"two links in the envelope", nil, []byte(`{"index":0,"link":` + string(other.raw) + `,"link":` + string(sl.raw) + `}`), http.StatusBadRequest, `duplicate key \"link\"`},
		{"two indices in the envelope", nil, []byte(`{"index":7,"index":0,"link":` + string(sl.raw) + `}`), http.StatusBadRequest, `duplicate key \"index\"`},
		{"unknown envelope field", nil, []byte(`{"index":0,"link":` + string(sl.raw) + `,"Link":{}}`), http.StatusBadRequest, "bad request"},
		{"extra key", nil, upload(t, 0, bytes.Replace(sl.raw, []byte("{"), []byte(`{"x":1,`), 1)), http.StatusBadRequest, `exactly the keys`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			store := linkstore.NewMemory()
			ts := server(t, store, sl.entry)
			if tc.first != nil {
				if err := (&linkstore.Client{URL: ts.URL}).Upload(context.Background(), 0, tc.first); err != nil {
					t.Fatal(err)
				}
			}
			code, msg := post(t, ts.URL, tc.body)
			if code != tc.code || !strings.Contains(msg, tc.want) {
				t.Errorf("upload = %d %s, want %d with %q", code, msg, tc.code, tc.want)
			}
			got, err := store.Get(context.Background(), sl.entry.PayloadSHA256)
			if tc.first == nil && !errors.Is(err, linkstore.ErrNotFound) {
				t.Errorf("a refused upload stored %q, %v", got, err)
			}
			if want, _, _ := linkstore.Canonical(sl.raw); tc.first != nil && !bytes.Equal(got, want) {
				t.Errorf("the stored link changed:\n%s", got)
			}
			if ix, _ := store.ArtifactIndices(context.Background(), artifact("evil"), 10); len(ix) != 0 {
				t.Errorf("a refused upload indexed the tampered artifact: %v", ix)
			}
		})
	}
}

// L7: the body is bounded before and while it is read; compression is
// refused.
func TestUploadLimits(t *testing.T) {
	ts := server(t, linkstore.NewMemory())
	big := append(append([]byte(`{"index":0,"link":"`), bytes.Repeat([]byte("a"), linkstore.MaxUploadSize)...), `"}`...)
	if code, _ := post(t, ts.URL, big); code != http.StatusRequestEntityTooLarge {
		t.Errorf("an upload over the limit = %d, want 413", code)
	}
	// Without a Content-Length: stopped while reading.
	req, _ := http.NewRequest(http.MethodPost, ts.URL+linkstore.PathLinks, io.MultiReader(bytes.NewReader(big)))
	req.ContentLength = -1
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("a chunked upload over the limit = %d, want 413", resp.StatusCode)
	}
	req, _ = http.NewRequest(http.MethodPost, ts.URL+linkstore.PathLinks, strings.NewReader("x"))
	req.Header.Set("Content-Encoding", "gzip")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnsupportedMediaType {
		t.Errorf("a gzip upload = %d, want 415", resp.StatusCode)
	}
	for _, p := range []string{linkstore.PathLinks + "/zz", linkstore.PathArtifacts + "00"} {
		resp, err := http.Get(ts.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("GET %s = %d, want 400", p, resp.StatusCode)
		}
	}
}

// blockingStore holds every Get until released, to fill the upload slots.
type blockingStore struct {
	linkstore.Store
	entered chan struct{}
	release chan struct{}
}

func (s *blockingStore) Get(ctx context.Context, d [32]byte) ([]byte, error) {
	s.entered <- struct{}{}
	<-s.release
	return s.Store.Get(ctx, d)
}

// L7: concurrent uploads are bounded; the one over the bound is told to
// come back (503, Retry-After) without being read.
func TestUploadConcurrency(t *testing.T) {
	sl := newSignedLink(t, "build", nil)
	bs := &blockingStore{Store: linkstore.NewMemory(), entered: make(chan struct{}), release: make(chan struct{})}
	h := linkstore.Handler(linkstore.Config{Store: bs, MaxConcurrent: 1, Logger: slog.New(slog.DiscardHandler),
		Entry: func(context.Context, uint64) (linkstore.LoggedEntry, error) { return sl.entry, nil }})
	ts := httptest.NewServer(h)
	defer ts.Close()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if code, msg := post(t, ts.URL, upload(t, 0, sl.raw)); code != http.StatusNoContent {
			t.Errorf("the first upload = %d %s", code, msg)
		}
	}()
	<-bs.entered // the first upload holds the only slot
	resp, err := http.Post(ts.URL+linkstore.PathLinks, "application/json", bytes.NewReader(upload(t, 0, sl.raw)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Errorf("an upload over the bound = %d (Retry-After %q), want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	close(bs.release)
	wg.Wait()
}
