package evident

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func validEntry() *Entry {
	return &Entry{
		PayloadType:   PayloadTypeLink,
		PayloadSHA256: strings.Repeat("ab", 32),
		Signature:     []byte("signature bytes"),
		KeyID:         "776a00e29f3559e0141b3b096f696abc6cfb0c657ab40f441132b345b08453f5",
		CertChain:     [][]byte{[]byte("leaf DER"), []byte("intermediate DER")},
		Timestamp:     []byte("token DER"),
	}
}

func mustMarshal(t testing.TB, e *Entry) []byte {
	b, err := e.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseEntryCanonical(t *testing.T) {
	want := mustMarshal(t, validEntry())
	// The same entry, not in canonical form: whitespace, other key order,
	// other key case, escaped characters.
	var m map[string]any
	json.Unmarshal(want, &m)
	pretty, _ := json.MarshalIndent(m, "", "  ")
	for _, in := range [][]byte{want, pretty, bytes.Replace(want, []byte(`"key_id"`), []byte(`"KEY_ID"`), 1),
		bytes.Replace(want, []byte(`application/`), []byte(`application\u002f`), 1)} {
		_, got, err := ParseEntry(in)
		if err != nil {
			t.Fatalf("ParseEntry(%s) = %v", in, err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("ParseEntry(%s) canonical = %s, want %s", in, got, want)
		}
	}
	pk := validEntry()
	pk.CertChain, pk.PublicKey = nil, []byte("PKIX")
	if _, got, err := ParseEntry(mustMarshal(t, pk)); err != nil || !bytes.Equal(got, mustMarshal(t, pk)) {
		t.Errorf("ParseEntry(public key entry) = %s, %v", got, err)
	}
}

func TestParseEntryRejects(t *testing.T) {
	mod := func(f func(*Entry)) []byte {
		e := validEntry()
		f(e)
		b, _ := json.Marshal(e)
		return b
	}
	valid := string(mustMarshal(t, validEntry()))
	for _, c := range []struct {
		name string
		in   []byte
		want string
	}{
		{"empty", nil, "EOF"},
		{"not an object", []byte(`[1]`), "cannot unmarshal array"},
		{"unknown field", []byte(strings.Replace(valid, `{`, `{"extra":1,`, 1)), `unknown field "extra"`},
		{"trailing data", []byte(valid + `{}`), "trailing data"},
		{"null fields", []byte(`{"payload_type":null}`), "payload_type is missing"},
		{"missing payload_type", mod(func(e *Entry) { e.PayloadType = "" }), "payload_type is missing"},
		{"control char in payload_type", mod(func(e *Entry) { e.PayloadType = "a\nb" }), "payload_type must be"},
		{"short digest", mod(func(e *Entry) { e.PayloadSHA256 = "abcd" }), "payload_sha256 must be"},
		{"uppercase digest", mod(func(e *Entry) { e.PayloadSHA256 = strings.Repeat("AB", 32) }), "payload_sha256 must be"},
		{"no signature", mod(func(e *Entry) { e.Signature = nil }), "signature is missing"},
		{"huge signature", mod(func(e *Entry) { e.Signature = make([]byte, MaxSignatureSize+1) }), "signature is 1025 bytes"},
		{"no signer", mod(func(e *Entry) { e.CertChain = nil }), "one of cert_chain and public_key"},
		{"both signers", mod(func(e *Entry) { e.PublicKey = []byte("k") }), "mutually exclusive"},
		// threat model L7: a chain of 10,000 certificates.
		{"long chain", mod(func(e *Entry) { e.CertChain = make([][]byte, 10000) }), "over the limit"},
		{"empty cert", mod(func(e *Entry) { e.CertChain = [][]byte{{}} }), "cert_chain[0] must be"},
		{"no timestamp", mod(func(e *Entry) { e.Timestamp = nil }), "timestamp is missing"},
		{"bad base64", []byte(strings.Replace(valid, `"timestamp":"`, `"timestamp":"!`, 1)), "illegal base64"},
		{"deeply nested", []byte(strings.Repeat(`{"payload_type":`, 4000)), "unexpected EOF"},
		{"oversized", []byte(`{"payload_type":"` + strings.Repeat("a", MaxEntrySize) + `"}`), "over the limit of 65535"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := ParseEntry(c.in)
			if !errors.Is(err, ErrInvalidEntry) || !strings.Contains(err.Error(), c.want) {
				t.Errorf("ParseEntry = %v, want ErrInvalidEntry containing %q", err, c.want)
			}
		})
	}
}

// FuzzParseEntry checks that ParseEntry never panics, that what it accepts
// re-parses to the same canonical bytes, and that the canonical fast path
// accepts only what the general decoder accepts with the same result.
func FuzzParseEntry(f *testing.F) {
	f.Add(mustMarshal(f, validEntry()))
	pk := validEntry()
	pk.CertChain, pk.PublicKey = nil, []byte("PKIX")
	f.Add(mustMarshal(f, pk))
	f.Add([]byte(`{"payload_type":"x"}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(strings.Replace(string(mustMarshal(f, validEntry())), `{`, `{"key_id":"x",`, 1)))
	f.Fuzz(func(t *testing.T, data []byte) {
		e, canonical, err := ParseEntry(data)
		if err != nil {
			if !errors.Is(err, ErrInvalidEntry) {
				t.Fatalf("ParseEntry error %v does not wrap ErrInvalidEntry", err)
			}
		} else {
			again, canonical2, err := ParseEntry(canonical)
			if err != nil || !bytes.Equal(canonical, canonical2) {
				t.Fatalf("canonical form %s does not re-parse to itself: %v", canonical, err)
			}
			if b, _ := again.Marshal(); !bytes.Equal(b, canonical) {
				t.Fatalf("re-parsed entry marshals to %s, want %s", b, canonical)
			}
			// P1: encoding/json, which merges nothing only when no key
			// repeats, reads the same entry.
			var lenient Entry
			if err := json.Unmarshal(data, &lenient); err != nil || !reflect.DeepEqual(&lenient, e) {
				t.Fatalf("ParseEntry(%q) = %+v, encoding/json reads %+v (%v)", data, e, lenient, err)
			}
		}
		if fast, ok := parseCanonical(data); ok {
			if fast.Check() != nil {
				return // ParseEntry rejected it for its shape, as it must
			}
			if err != nil {
				t.Fatalf("fast path accepted %q, general path: %v", data, err)
			}
			if !bytes.Equal(canonical, data) {
				t.Fatalf("fast path accepted non-canonical %q (canonical %q)", data, canonical)
			}
		}
	})
}
