package linkstore_test

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/evident-dev/evident"
	"github.com/evident-dev/evident/dsse"
	"github.com/evident-dev/evident/linkstore"
)

func statement(t *testing.T, subject string, predicate string) []byte {
	t.Helper()
	st := dsse.Statement{Type: dsse.StatementType, PredicateType: "https://slsa.dev/provenance/v1",
		Subject:   []dsse.ResourceDescriptor{{Name: "app.tar", Digest: map[string]string{"sha256": fmt.Sprintf("%x", artifact(subject))}}},
		Predicate: json.RawMessage(predicate)}
	b, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func dsseEntry(stmt []byte) linkstore.LoggedEntry {
	return linkstore.LoggedEntry{PayloadSHA256: sha256.Sum256(stmt), PayloadType: evident.PayloadTypeDSSE}
}

// P2: a DSSE entry's Statement is stored as the very bytes signed (their
// SHA-256 is the entry's), parsed strictly, and indexed by its subjects'
// digests; a Statement that is not the entry's, or holds a key twice, or a
// link sent for a DSSE entry, is refused.
func TestUploadStatement(t *testing.T) {
	good := statement(t, "tarball", `{"builder":{"id":"ci"}}`)
	dup := []byte(strings.Replace(string(statement(t, "tarball", `{"builder":{"id":"ci"}}`)), `"id":"ci"`, `"id":"ci","id":"evil"`, 1))
	store := linkstore.NewMemory()
	srv := server(t, store, dsseEntry(good), dsseEntry(dup), dsseEntry(good))
	c := &linkstore.Client{URL: srv.URL}
	ctx := context.Background()
	if err := c.UploadStatement(ctx, 0, good); err != nil {
		t.Fatal(err)
	}
	if err := c.UploadStatement(ctx, 2, good); err != nil {
		t.Fatalf("the same statement for a second entry: %v", err)
	}
	got, err := c.Link(ctx, sha256.Sum256(good))
	if err != nil || string(got) != string(good) {
		t.Fatalf("Link = %q, %v; want the signed bytes %q", got, err, good)
	}
	ix, err := c.ArtifactIndices(ctx, artifact("tarball"))
	if err != nil || fmt.Sprint(ix) != "[0 2]" {
		t.Errorf("ArtifactIndices(subject) = %v, %v; want [0 2]", ix, err)
	}
	if err := c.UploadStatement(ctx, 1, dup); err == nil || !strings.Contains(err.Error(), "duplicate key") {
		t.Errorf("statement with a key twice = %v, want it refused", err)
	}
	other := statement(t, "other", `{}`)
	if err := c.UploadStatement(ctx, 0, other); err == nil || !strings.Contains(err.Error(), "not the entry's") {
		t.Errorf("another statement = %v, want it refused", err)
	}
	if code, msg := post(t, srv.URL, upload(t, 0, []byte(`{"signatures":[],"signed":{}}`))); code != http.StatusBadRequest || !strings.Contains(msg, "upload its statement") {
		t.Errorf("a link for a DSSE entry = %d %s, want 400", code, msg)
	}
	if _, err := store.Get(ctx, sha256.Sum256(dup)); !errors.Is(err, linkstore.ErrNotFound) {
		t.Errorf("refused statement stored: %v", err)
	}
}
