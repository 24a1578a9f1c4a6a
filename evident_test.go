package evident

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
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

// validEntryV2 is a version 2 entry of payload type pt with n tokens.
func validEntryV2(pt string, n int) *Entry {
	e := validEntry()
	e.Version, e.PayloadType, e.Timestamp = Version2, pt, nil
	for i := 0; i < n; i++ {
		e.Timestamps = append(e.Timestamps, []byte(fmt.Sprintf("token %d DER", i)))
	}
	return e
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
	v2 := string(mustMarshal(t, validEntryV2(PayloadTypeLink, 1)))
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
		// THREATS L7: a chain of 10,000 certificates.
		{"long chain", mod(func(e *Entry) { e.CertChain = make([][]byte, 10000) }), "over the limit"},
		{"empty cert", mod(func(e *Entry) { e.CertChain = [][]byte{{}} }), "cert_chain[0] must be"},
		{"no timestamp", mod(func(e *Entry) { e.Timestamp = nil }), "timestamp is missing"},
		{"bad base64", []byte(strings.Replace(valid, `"timestamp":"`, `"timestamp":"!`, 1)), "illegal base64"},
		{"version 2 with timestamp", mod(func(e *Entry) { e.Version, e.Timestamps = Version2, [][]byte{[]byte("t")} }), "has timestamps, not timestamp"},
		{"version 2 with empty timestamp", []byte(strings.Replace(v2, `"timestamps"`, `"timestamp":"","timestamps"`, 1)), "has timestamps, not timestamp"},
		{"version 2 with null timestamp", []byte(strings.Replace(v2, `"timestamps"`, `"timestamp":null,"timestamps"`, 1)), "timestamp is present but empty"},
		{"version 1 with timestamps", mod(func(e *Entry) { e.Timestamps = [][]byte{[]byte("t")} }), `timestamps needs "version":2`},
		{"version 1 with empty timestamps", []byte(strings.Replace(valid, `"timestamp"`, `"timestamps":[],"timestamp"`, 1)), `timestamps needs "version":2`},
		{"version 1 with null timestamps", []byte(strings.Replace(valid, `"timestamp"`, `"timestamps":null,"timestamp"`, 1)), "timestamps is present but empty"},
		{"version 1 spelled out", []byte(strings.Replace(valid, `{`, `{"version":1,`, 1)), "version 1 is unknown"},
		{"version 0 spelled out", []byte(strings.Replace(valid, `{`, `{"version":0,`, 1)), "version is present but empty"},
		{"version 3", mod(func(e *Entry) { e.Version = 3 }), "version 3 is unknown"},
		{"negative version", mod(func(e *Entry) { e.Version = -2 }), "version -2 is unknown"},
		{"version as a string", []byte(strings.Replace(v2, `"version":2`, `"version":"2"`, 1)), "cannot unmarshal string"},
		{"version as a fraction", []byte(strings.Replace(v2, `"version":2`, `"version":2.0`, 1)), "cannot unmarshal number 2.0"},
		{"version 2 with no tokens", mod(func(e *Entry) { e.Version, e.Timestamp = Version2, nil }), "timestamps is missing"},
		{"version 2 with an empty token list", []byte(strings.Replace(v2, `"timestamps":["dG9rZW4gMCBERVI="]`, `"timestamps":[]`, 1)), "timestamps is missing"},
		{"version 2 with 9 tokens", mustMarshal(t, validEntryV2(PayloadTypeLink, MaxTimestamps+1)), "timestamps has 9 tokens, over the limit of 8"},
		{"version 2 with an empty token", mod(func(e *Entry) { e.Version, e.Timestamp, e.Timestamps = Version2, nil, [][]byte{[]byte("t"), {}} }), "timestamps[1] must be"},
		{"DSSE in version 1", mod(func(e *Entry) { e.PayloadType = PayloadTypeDSSE }), `payload_type "application/vnd.in-toto+json" needs "version":2`},
		{"unknown payload type", mod(func(e *Entry) { e.PayloadType = "application/json" }), `payload_type "application/json" is unknown`},
		{"duplicate version", []byte(strings.Replace(v2, `{`, `{"version":2,`, 1)), `duplicate key "version"`},
		{"duplicate timestamps", []byte(strings.Replace(v2, `"timestamps"`, `"timestamps":["dA=="],"timestamps"`, 1)), `duplicate key "timestamps"`},
		{"duplicate timestamps in another case", []byte(strings.Replace(v2, `"timestamps"`, `"TIMESTAMPS":["dA=="],"timestamps"`, 1)), `both name timestamps`},
		{"key in two cases, Kelvin sign", []byte(strings.Replace(valid, `{`, `{"\u212aey_id":"x",`, 1)), `both name key_id`},
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
	for _, e := range []*Entry{validEntryV2(PayloadTypeLink, 1), validEntryV2(PayloadTypeDSSE, 3), validEntryV2(PayloadTypeDSSE, MaxTimestamps)} {
		f.Add(mustMarshal(f, e))
	}
	v2 := string(mustMarshal(f, validEntryV2(PayloadTypeLink, 2)))
	f.Add([]byte(strings.Replace(v2, `"timestamps"`, `"timestamp":"dA==","timestamps"`, 1)))
	f.Add([]byte(strings.Replace(v2, `"version":2`, `"version":3`, 1)))
	f.Add([]byte(strings.Replace(v2, `{`, `{"version":2,`, 1)))
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

func TestParseEntryVersion2(t *testing.T) {
	for _, e := range []*Entry{validEntryV2(PayloadTypeLink, 1), validEntryV2(PayloadTypeDSSE, 2), validEntryV2(PayloadTypeDSSE, MaxTimestamps)} {
		want := mustMarshal(t, e)
		if !bytes.HasPrefix(want, []byte(`{"version":2,"payload_type":`)) || bytes.Contains(want, []byte(`"timestamp"`)) {
			t.Errorf("canonical version 2 entry = %s, want version first and no timestamp member", want)
		}
		got, canonical, err := ParseEntry(want)
		if err != nil || !bytes.Equal(canonical, want) || !reflect.DeepEqual(got, e) {
			t.Errorf("ParseEntry(%s) = %+v, %s, %v; want the entry back", want, got, canonical, err)
		}
		// The general path (keys in another order) gives the same bytes.
		var m map[string]any
		json.Unmarshal(want, &m)
		pretty, _ := json.MarshalIndent(m, "", " ")
		if _, canonical, err := ParseEntry(pretty); err != nil || !bytes.Equal(canonical, want) {
			t.Errorf("ParseEntry(%s) = %s, %v; want %s", pretty, canonical, err, want)
		}
		if got := e.Tokens(); !reflect.DeepEqual(got, e.Timestamps) {
			t.Errorf("Tokens() = %q, want %q", got, e.Timestamps)
		}
	}
}

// TestEntryVersion1BytesUnchanged proves that an entry logged before
// versions existed keeps its canonical bytes, and so its leaf hash.
func TestEntryVersion1BytesUnchanged(t *testing.T) {
	const want = `{"payload_type":"application/vnd.in-toto.link+json","payload_sha256":"` +
		`abababababababababababababababababababababababababababababababab","signature":"c2lnbmF0dXJlIGJ5dGVz",` +
		`"key_id":"776a00e29f3559e0141b3b096f696abc6cfb0c657ab40f441132b345b08453f5",` +
		`"cert_chain":["bGVhZiBERVI=","aW50ZXJtZWRpYXRlIERFUg=="],"timestamp":"dG9rZW4gREVS"}`
	if got := mustMarshal(t, validEntry()); string(got) != want {
		t.Errorf("Marshal(version 1 entry) = %s, want %s", got, want)
	}
	e, canonical, err := ParseEntry([]byte(want))
	if err != nil || string(canonical) != want || e.Version != Version1 {
		t.Fatalf("ParseEntry(version 1) = %+v, %s, %v", e, canonical, err)
	}
	if got := e.Tokens(); len(got) != 1 || string(got[0]) != "token DER" {
		t.Errorf("Tokens() = %q, want the one timestamp", got)
	}
}

func TestPAE(t *testing.T) {
	// The example of the DSSE v1 protocol.
	got := PAE("http://example.com/HelloWorld", []byte("hello world"))
	if want := "DSSEv1 29 http://example.com/HelloWorld 11 hello world"; string(got) != want {
		t.Errorf("PAE = %q, want %q", got, want)
	}
	if got, want := PAE("", nil), "DSSEv1 0  0 "; string(got) != want {
		t.Errorf("PAE(empty) = %q, want %q", got, want)
	}
}

func TestSignedMessage(t *testing.T) {
	payload := []byte(`{"_type":"https://in-toto.io/Statement/v1"}`)
	d := sha256.Sum256(payload)
	link := validEntryV2(PayloadTypeLink, 1)
	dsse := validEntryV2(PayloadTypeDSSE, 1)
	v1 := validEntry()
	for _, e := range []*Entry{link, dsse, v1} {
		e.PayloadSHA256 = hex.EncodeToString(d[:])
	}
	for _, c := range []struct {
		e    *Entry
		want []byte
	}{{link, payload}, {v1, payload}, {dsse, PAE(PayloadTypeDSSE, payload)}} {
		if got, err := c.e.SignedMessage(payload); err != nil || !bytes.Equal(got, c.want) {
			t.Errorf("SignedMessage(%s) = %q, %v; want %q", c.e.PayloadType, got, err, c.want)
		}
	}
	// A payload other than the one the entry records is refused, whatever
	// the signature would say about it.
	if _, err := dsse.SignedMessage(append(payload, ' ')); !errors.Is(err, ErrPayloadMismatch) {
		t.Errorf("SignedMessage(other payload) = %v, want ErrPayloadMismatch", err)
	}
}
