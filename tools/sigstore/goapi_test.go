package sigstore

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/evident-dev/evident/internal/pemfile"
	"github.com/evident-dev/evident/link"
	"github.com/evident-dev/evident/log/logclient"
	"github.com/evident-dev/evident/tsa"
	"github.com/in-toto/in-toto-golang/in_toto"
	"golang.org/x/mod/sumdb/note"
)

// runViaGoAPI does, through evident's Go API, what
//
//	evident run --step build --key KEY --cert CHAIN -m src.txt -p app.txt -- cp src.txt app.txt
//
// does in work: record, sign, timestamp, append (verifying the inclusion
// proof), and store the link beside the log. The test takes this path only
// when the command refuses the key and chain (see the caller).
func runViaGoAPI(t *testing.T, work, url, logKey, tsaChain, keyFile, chainFile string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	kb, err := os.ReadFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	key, err := pemfile.ParsePrivateKey(kb)
	if err != nil {
		t.Fatal(err)
	}
	chain, err := pemfile.LoadCertificates(chainFile)
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile(filepath.Join(work, "src.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(work, "app.txt"), src, 0o644); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(src)
	digest := map[string]string{"sha256": hex.EncodeToString(sum[:])}
	l := link.NewLink("build", []string{"cp", "src.txt", "app.txt"},
		map[string]in_toto.HashObj{"src.txt": digest}, map[string]in_toto.HashObj{"app.txt": digest}, &link.Result{})
	mb, name, err := link.Sign(l, link.Signer{Key: key, Chain: chain})
	if err != nil {
		t.Fatal(err)
	}
	lb, err := link.MarshalMetablock(mb)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(work, name), lb, 0o644); err != nil {
		t.Fatal(err)
	}
	tsaCerts, err := pemfile.LoadCertificates(tsaChain)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(tsaCerts[len(tsaCerts)-1])
	entry, err := link.Entry(ctx, &tsa.Client{URL: url + "/tsa", Roots: roots}, mb, chain, nil)
	if err != nil {
		t.Fatal(err)
	}
	canonical, err := entry.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	v, err := note.NewVerifier(logKey)
	if err != nil {
		t.Fatal(err)
	}
	res, err := (&logclient.Client{URL: url, Origin: v.Name(), Verifier: v}).Add(ctx, canonical)
	if err != nil {
		t.Fatalf("appending the entry: %v", err)
	}
	body, err := json.Marshal(map[string]any{"index": res.Index, "link": json.RawMessage(lb)})
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url+"/links/v1", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("storing the link: %s", resp.Status)
	}
}
