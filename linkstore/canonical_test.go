package linkstore_test

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"testing"

	"github.com/evident-dev/evident"
	"github.com/evident-dev/evident/linkstore"
	"github.com/evident-dev/evident/verify"
	"github.com/in-toto/in-toto-golang/in_toto"
)

// P2: whatever Canonical accepts has one form: canonicalising it again
// changes nothing, and its payload is the same.
func FuzzCanonical(f *testing.F) {
	sl := newSignedLink(f, "build", map[string]string{"bin/app": "app"})
	f.Add(sl.raw)
	f.Add(bytes.Replace(sl.raw, []byte(`"products": {`), []byte(`"products": {}, "products": {`), 1))
	f.Add([]byte(`{"signatures":[],"signed":{"a":1e3,"b":"\u003c\n"}}`))
	f.Add([]byte(`{"signatures":[],"signed":[[[[[[]]]]]]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		doc, payload, err := linkstore.Canonical(b)
		if err != nil {
			if !errors.Is(err, linkstore.ErrNotCanonicalizable) {
				t.Fatalf("error %v does not wrap ErrNotCanonicalizable", err)
			}
			return
		}
		doc2, payload2, err := linkstore.Canonical(doc)
		if err != nil || !bytes.Equal(doc, doc2) || !bytes.Equal(payload, payload2) {
			t.Fatalf("not a fixed point: %q → %q, %v", doc, doc2, err)
		}
	})
}

// The link a bundle carries is the stored document with the entry's
// signature, whatever signatures the document held.
func TestBundled(t *testing.T) {
	sl := newSignedLink(t, "build", map[string]string{"bin/app": "app"})
	_, _, err := verify.ParseLink(sl.raw)
	if err != nil {
		t.Fatal(err)
	}
	var orig in_toto.Metablock
	json.Unmarshal(sl.raw, &orig)
	sig, _ := hex.DecodeString(orig.Signatures[0].Sig)
	cert, _ := pem.Decode([]byte(orig.Signatures[0].Certificate))
	e := &evident.Entry{KeyID: orig.Signatures[0].KeyID, Signature: sig, CertChain: [][]byte{cert.Bytes}}
	doc, payload, _ := linkstore.Canonical(sl.raw)
	for _, from := range [][]byte{doc, sl.raw} {
		b, err := linkstore.Bundled(from, e)
		if err != nil {
			t.Fatal(err)
		}
		mb, p, err := verify.ParseLink(b)
		if err != nil || !bytes.Equal(p, payload) || len(mb.Signatures) != 1 || mb.Signatures[0] != orig.Signatures[0] {
			t.Errorf("Bundled = %s, %v; want the original signature", b, err)
		}
		if again, _ := linkstore.Bundled(b, e); !bytes.Equal(again, b) {
			t.Errorf("Bundled is not a fixed point")
		}
	}
}

func TestCanonicalRefuses(t *testing.T) {
	for _, in := range []string{
		`{"signatures":[],"signed":{"a":1,"a":2}}`,
		`{"signatures":[],"signatures":[],"signed":{}}`,
		`{"signatures":[],"signed":{}} {}`,
		`{"signatures":[],"signed":{},"x":1}`,
		`{"signed":{}}`,
		`[]`,
		`{"signatures":[],"signed":` + string(bytes.Repeat([]byte("["), 100)) + string(bytes.Repeat([]byte("]"), 100)) + `}`,
	} {
		if _, _, err := linkstore.Canonical([]byte(in)); !errors.Is(err, linkstore.ErrNotCanonicalizable) {
			t.Errorf("Canonical(%s) error = %v, want ErrNotCanonicalizable", in, err)
		}
	}
}

// BenchmarkCanonical measures the upload's work on a link of 1,000
// products: canonicalising it and decoding the canonical form once.
//
//	go test -run '^$' -bench Canonical ./linkstore
func BenchmarkCanonical(b *testing.B) {
	prods := map[string]string{}
	for i := range 1000 {
		prods[fmt.Sprintf("dist/file-%04d.bin", i)] = fmt.Sprint(i)
	}
	sl := newSignedLink(b, "build", prods)
	b.SetBytes(int64(len(sl.raw)))
	for b.Loop() {
		doc, _, err := linkstore.Canonical(sl.raw)
		if err != nil {
			b.Fatal(err)
		}
		if _, _, err := verify.ParseLink(doc); err != nil {
			b.Fatal(err)
		}
	}
}
