package linkstore_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/evident-dev/evident/linkstore"
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
