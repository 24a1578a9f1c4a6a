package evident

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/evident-dev/evident/internal/strictjson"
)

// lastWins decodes data as a canonical-JSON implementation does: a
// duplicated key keeps its last value. It is the other reading a
// differential needs.
func lastWins(t *testing.T, data []byte) any {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("accepted %q, which encoding/json does not decode: %v", data, err)
	}
	return v
}

// TestEntryRefusesAmbiguity covers P1 and the entry's own rules: duplicate
// keys, present-but-empty signer fields and unknown payload types are
// refused with a reason.
func TestEntryRefusesAmbiguity(t *testing.T) {
	valid := string(mustMarshal(t, validEntry()))
	for _, c := range []struct{ name, in, want string }{
		{"duplicate key", strings.Replace(valid, `{`, `{"key_id":"x",`, 1), `duplicate key "key_id" at $`},
		{"empty public_key beside a chain", strings.Replace(valid, `,"timestamp"`, `,"public_key":"","timestamp"`, 1), "public_key is present but empty"},
		{"null public_key", strings.Replace(valid, `,"timestamp"`, `,"public_key":null,"timestamp"`, 1), "public_key is present but empty"},
		{"empty cert_chain beside a key", `{"payload_type":"` + PayloadTypeLink + `","payload_sha256":"` + strings.Repeat("ab", 32) + `","signature":"c2ln","key_id":"k","cert_chain":[],"public_key":"UEtJWA==","timestamp":"dG9r"}`, "cert_chain is present but empty"},
		{"unknown payload type", strings.Replace(valid, PayloadTypeLink, "application/vnd.in-toto+json", 1), `payload_type "application/vnd.in-toto+json" needs "version":2`},
		{"key in two cases", strings.Replace(valid, `{`, `{"KEY_ID":"x",`, 1), `members "KEY_ID" and "key_id" both name key_id`},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := ParseEntry([]byte(c.in))
			if !errors.Is(err, ErrInvalidEntry) || !strings.Contains(err.Error(), c.want) {
				t.Errorf("ParseEntry = %v, want ErrInvalidEntry containing %q", err, c.want)
			}
		})
	}
}

// TestBundleStrict covers P1 for bundles: duplicate keys at any depth, a
// key in another case, and an entry refused by ParseEntry are refused.
func TestBundleStrict(t *testing.T) {
	b := &Bundle{Link: json.RawMessage(`{"signed":{},"signatures":[]}`), Entry: validEntry(), LogIndex: 3,
		InclusionProof: [][]byte{[]byte("h")}, Checkpoint: "cp\n"}
	good, err := b.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	back, err := ParseBundle(good)
	if err == nil {
		var link bytes.Buffer
		json.Compact(&link, back.Link)
		back.Link = link.Bytes()
	}
	if err != nil || !reflect.DeepEqual(back, b) {
		t.Fatalf("round trip = %+v, %v", back, err)
	}
	s := string(good)
	for _, c := range []struct{ name, in, want string }{
		{"duplicate link", strings.Replace(s, `"link":`, `"link":{},"link":`, 1), `duplicate key "link" at $`},
		{"duplicate inside the link", strings.Replace(s, `"signed": {}`, `"signed": {},"signed":{}`, 1), `duplicate key "signed" at $.link`},
		{"case variant", strings.Replace(s, `"log_index": 3`, `"log_index": 3,"LOG_INDEX":4`, 1), `$.LOG_INDEX is not carried`},
		{"empty public_key in the entry", strings.Replace(s, `"timestamp":`, `"public_key":"","timestamp":`, 1), "public_key is present but empty"},
		{"trailing data", s + "{}", "trailing data"},
	} {
		if _, err := ParseBundle([]byte(c.in)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: ParseBundle = %v, want %q", c.name, err, c.want)
		}
	}
}

// TestTrustRootStrict covers P1 and I1 for the trust root: duplicate keys
// and keys in another case are refused; trust domains are for functionary
// CAs only, well formed, and survive a round trip.
func TestTrustRootStrict(t *testing.T) {
	var r TrustRoot
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	r.Add(KindFunctionaryCA, "spire", "PEM", t0)
	r.Add(KindTSA, "tsa", "PEM", t0)
	if err := r.SetTrustDomains("spire", []string{"example.org", "ci.example.org"}); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []error{r.SetTrustDomains("spire", []string{"Example.org"}), r.SetTrustDomains("tsa", []string{"example.org"}), r.SetTrustDomains("spire", []string{""})} {
		if !errors.Is(bad, ErrTrustRoot) {
			t.Errorf("SetTrustDomains = %v, want ErrTrustRoot", bad)
		}
	}
	b, _ := r.Marshal()
	back, err := ParseTrustRoot(b)
	if err != nil || !reflect.DeepEqual(back.FunctionaryCAs[0].TrustDomains, []string{"example.org", "ci.example.org"}) {
		t.Fatalf("round trip = %+v, %v", back, err)
	}
	s := string(b)
	for _, c := range []struct{ name, in, want string }{
		{"duplicate list", strings.Replace(s, `"layout_keys"`, `"layout_keys": [], "layout_keys"`, 1), `duplicate key "layout_keys" at $`},
		{"duplicate value", strings.Replace(s, `"value": "PEM"`, `"value": "PEM", "value": "PEM"`, 1), `duplicate key "value" at $.functionary_cas[0]`},
		{"case variant", strings.Replace(s, `"tsas"`, `"TSAs": [], "tsas"`, 1), `$.TSAs is not carried`},
		{"domains on a TSA", strings.Replace(s, `"name": "tsa",`, `"name": "tsa", "trust_domains": ["example.org"],`, 1), "only a functionary CA may"},
		{"domain twice", strings.Replace(s, `"ci.example.org"`, `"example.org"`, 1), `lists trust domain "example.org" twice`},
		{"bad domain", strings.Replace(s, `"ci.example.org"`, `"CI.example.org"`, 1), `trust domain "CI.example.org"`},
	} {
		if _, err := ParseTrustRoot([]byte(c.in)); !errors.Is(err, ErrTrustRoot) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: ParseTrustRoot = %v, want %q", c.name, err, c.want)
		}
	}
}

// FuzzParseBundle checks the bundle differential (P1): what ParseBundle
// accepts, encoding/json reads the same (no merge, no last-wins key to
// disagree about), and it re-encodes to a bundle that parses to itself.
func FuzzParseBundle(f *testing.F) {
	b := &Bundle{Link: json.RawMessage(`{"signed":{"_type":"link"},"signatures":[]}`), Entry: validEntry(), LogIndex: 3,
		InclusionProof: [][]byte{[]byte("h")}, Checkpoint: "cp\n"}
	good, _ := b.Marshal()
	f.Add(good)
	b.Witnessed = &WitnessedProof{Checkpoint: "wcp", InclusionProof: [][]byte{{1}}}
	v2, _ := b.Marshal()
	f.Add(v2)
	f.Add([]byte(strings.Replace(string(good), `"link":`, `"link":{},"link":`, 1)))
	f.Add([]byte(`{"media_type":"` + BundleMediaType + `","entry":null}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		bu, err := ParseBundle(data)
		if err != nil {
			return
		}
		if bu.MediaType == BundleMediaType && bu.Witnessed != nil {
			t.Errorf("a version 1 bundle with a witnessed proof parsed")
		}
		var lenient Bundle
		if err := json.Unmarshal(data, &lenient); err != nil {
			t.Fatalf("accepted %q, encoding/json: %v", data, err)
		}
		if !reflect.DeepEqual(lenient.Entry, bu.Entry) || lenient.LogIndex != bu.LogIndex || lenient.Checkpoint != bu.Checkpoint ||
			!reflect.DeepEqual(lenient.InclusionProof, bu.InclusionProof) || !reflect.DeepEqual(lenient.Witnessed, bu.Witnessed) {
			t.Fatalf("ParseBundle(%q) = %+v, encoding/json reads %+v", data, bu, lenient)
		}
		if err := strictjson.Faithful(lastWins(t, data).(map[string]any)["link"], bu.Link, "$.link", false); err != nil {
			t.Fatalf("link differs from the last-wins reading: %v", err)
		}
		again, err := bu.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		back, err := ParseBundle(again)
		if err != nil || !reflect.DeepEqual(back.Entry, bu.Entry) {
			t.Fatalf("re-encoded bundle %s = %+v, %v", again, back, err)
		}
	})
}
