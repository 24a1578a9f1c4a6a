package dsse_test

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/evident-dev/evident/dsse"
	"github.com/in-toto/in-toto-golang/in_toto"
	ssldsse "github.com/secure-systems-lab/go-securesystemslib/dsse"
	"github.com/secure-systems-lab/go-securesystemslib/signerverifier"
)

type cryptoSigner = crypto.Signer

// verifierFor is the DSSE verifier in-toto-golang makes for a key.
func verifierFor(k in_toto.Key) (ssldsse.Verifier, error) {
	sk := signerverifier.SSLibKey{KeyType: k.KeyType, KeyIDHashAlgorithms: k.KeyIDHashAlgorithms, KeyID: k.KeyID,
		Scheme: k.Scheme, KeyVal: signerverifier.KeyVal{Public: k.KeyVal.Public}}
	switch k.KeyType {
	case signerverifier.RSAKeyType:
		return signerverifier.NewRSAPSSSignerVerifierFromSSLibKey(&sk)
	case signerverifier.ED25519KeyType:
		return signerverifier.NewED25519SignerVerifierFromSSLibKey(&sk)
	default:
		return signerverifier.NewECDSASignerVerifierFromSSLibKey(&sk)
	}
}

func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

const typ = "application/vnd.in-toto+json"

func testLink() in_toto.Link {
	return in_toto.Link{Type: "link", Name: "build",
		Materials:  map[string]in_toto.HashObj{"src/main.c": {"sha256": strings.Repeat("ab", 32)}},
		Products:   map[string]in_toto.HashObj{"app": {"sha256": strings.Repeat("cd", 32)}, "app.sig": {"sha256": strings.Repeat("ef", 32)}},
		ByProducts: map[string]any{"return-value": json.Number("0")}, Command: []string{"cc", "-o", "app", "src/main.c"},
		Environment: map[string]any{}}
}

func statementBytes(t testing.TB) []byte {
	st, err := dsse.NewLinkStatement(testLink())
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func signedEnvelope(t testing.TB) []byte {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	env, err := dsse.NewEnvelope(key, "k1", typ, statementBytes(t))
	if err != nil {
		t.Fatal(err)
	}
	b, err := env.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestSignVerifyEveryKeyType(t *testing.T) {
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	rk, _ := rsa.GenerateKey(rand.Reader, 2048)
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	payload := statementBytes(t)
	for name, signer := range map[string]cryptoSigner{"ecdsa": ec, "rsa": rk, "ed25519": ed} {
		sig, err := dsse.Sign(signer, typ, payload)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if err := dsse.Verify(signer.Public(), typ, payload, sig); err != nil {
			t.Errorf("%s: Verify = %v, want nil", name, err)
		}
		if err := dsse.Verify(signer.Public(), "application/other", payload, sig); !errors.Is(err, dsse.ErrSignature) {
			t.Errorf("%s: Verify with another payload type = %v, want ErrSignature", name, err)
		}
		if err := dsse.Verify(signer.Public(), typ, append(payload, ' '), sig); !errors.Is(err, dsse.ErrSignature) {
			t.Errorf("%s: Verify of another payload = %v, want ErrSignature", name, err)
		}
	}
}

func TestEnvelopeRoundTrip(t *testing.T) {
	b := signedEnvelope(t)
	env, err := dsse.ParseEnvelope(b)
	if err != nil {
		t.Fatal(err)
	}
	again, err := env.Marshal()
	if err != nil || !bytes.Equal(again, b) {
		t.Fatalf("Marshal(ParseEnvelope(b)) = %s, %v; want %s", again, err, b)
	}
	st, err := dsse.ParseStatement(env.Payload)
	if err != nil {
		t.Fatal(err)
	}
	l, err := st.Link()
	if err != nil {
		t.Fatal(err)
	}
	if want := testLink(); !reflect.DeepEqual(l, want) {
		t.Errorf("Link() = %+v, want %+v", l, want)
	}
}

// P1: an envelope that decoders could read two ways, or that has two
// spellings, is refused.
func TestParseEnvelopeRefuses(t *testing.T) {
	good := signedEnvelope(t)
	var m map[string]any
	json.Unmarshal(good, &m)
	payload := m["payload"].(string)
	sig := m["signatures"].([]any)[0].(map[string]any)["sig"].(string)
	env := func(p, s string, extra string) []byte {
		return []byte(`{"payloadType":"` + typ + `","payload":"` + p + `","signatures":[{"keyid":"k1","sig":"` + s + `"` + extra + `}]}`)
	}
	for name, b := range map[string][]byte{
		"duplicate payload":     bytes.Replace(good, []byte(`"payload":`), []byte(`"payload":"e30=","payload":`), 1),
		"duplicate payloadType": bytes.Replace(good, []byte(`"payloadType":`), []byte(`"payloadType":"x","payloadType":`), 1),
		"duplicate sig":         env(payload, sig, `,"sig":"`+sig+`"`),
		"unknown member":        env(payload, sig, `,"cert":"x"`),
		"case-variant key":      bytes.Replace(good, []byte(`"payloadType"`), []byte(`"PayloadType"`), 1),
		"url-safe base64":       env(strings.NewReplacer("+", "-", "/", "_").Replace(payload)+"-_", sig, ""),
		"unpadded base64":       env(strings.TrimRight(payload, "=")+"e30", sig, ""),
		"line break in base64":  env(payload[:4]+`\n`+payload[4:], sig, ""),
		"no signature":          []byte(`{"payloadType":"` + typ + `","payload":"e30=","signatures":[]}`),
		"no payloadType":        []byte(`{"payload":"e30=","signatures":[{"keyid":"","sig":"` + sig + `"}]}`),
		"no payload":            []byte(`{"payloadType":"x","signatures":[{"keyid":"","sig":"` + sig + `"}]}`),
		"empty sig":             env(payload, "", ""),
		"trailing data":         append(bytes.Clone(good), []byte(` {}`)...),
		"too many signatures":   []byte(`{"payloadType":"x","payload":"e30=","signatures":[` + strings.Repeat(`{"keyid":"","sig":"AA=="},`, dsse.MaxSignatures) + `{"keyid":"","sig":"AA=="}]}`),
	} {
		if _, err := dsse.ParseEnvelope(b); !errors.Is(err, dsse.ErrInvalidEnvelope) {
			t.Errorf("%s: ParseEnvelope = %v, want ErrInvalidEnvelope", name, err)
		}
	}
}

// P1: a Statement is parsed from the signed bytes, strictly: a key twice
// (which Go merges one way and other decoders another), an unknown member,
// a malformed subject or predicate is refused.
func TestParseStatementRefuses(t *testing.T) {
	good := statementBytes(t)
	if _, err := dsse.ParseStatement(good); err != nil {
		t.Fatal(err)
	}
	d := strings.Repeat("ab", 32)
	stmt := func(subject, rest string) []byte {
		return []byte(`{"_type":"https://in-toto.io/Statement/v1","subject":[` + subject + `],"predicateType":"https://slsa.dev/provenance/v1"` + rest + `}`)
	}
	for name, b := range map[string][]byte{
		"duplicate _type":              bytes.Replace(good, []byte(`"_type":`), []byte(`"_type":"x","_type":`), 1),
		"duplicate subject":            bytes.Replace(good, []byte(`"subject":`), []byte(`"subject":[],"subject":`), 1),
		"duplicate predicateType":      stmt(`{"name":"a","digest":{"sha256":"`+d+`"}}`, `,"predicateType":"https://example.com/other"`),
		"duplicate key in predicate":   stmt(`{"name":"a","digest":{"sha256":"`+d+`"}}`, `,"predicate":{"builder":{"id":"a","id":"b"}}`),
		"duplicate digest algorithm":   stmt(`{"name":"a","digest":{"sha256":"`+d+`","sha256":"`+strings.Repeat("cd", 32)+`"}}`, ``),
		"unknown member":               stmt(`{"name":"a","digest":{"sha256":"`+d+`"}}`, `,"extra":1`),
		"case-variant key":             bytes.Replace(good, []byte(`"predicateType"`), []byte(`"PredicateType"`), 1),
		"Statement v0.1":               bytes.Replace(good, []byte(`Statement/v1`), []byte(`Statement/v0.1`), 1),
		"no subject":                   stmt(``, ``),
		"subject without digest":       stmt(`{"name":"a"}`, ``),
		"algorithm in another case":    stmt(`{"name":"a","digest":{"SHA256":"`+d+`"}}`, ``),
		"two cases of one algorithm":   stmt(`{"name":"a","digest":{"sha256":"`+d+`","Sha256":"`+strings.Repeat("cd", 32)+`"}}`, ``),
		"two cases of another":         stmt(`{"name":"a","digest":{"gitCommit":"`+d[:40]+`","gitcommit":"`+d[:40]+`"}}`, ``),
		"uppercase hex":                stmt(`{"name":"a","digest":{"sha256":"`+strings.ToUpper(d)+`"}}`, ``),
		"short sha256":                 stmt(`{"name":"a","digest":{"sha256":"abcd"}}`, ``),
		"one name, two digests":        stmt(`{"name":"a","digest":{"sha256":"`+d+`"}},{"name":"a","digest":{"sha256":"`+strings.Repeat("cd", 32)+`"}}`, ``),
		"predicate not an object":      stmt(`{"name":"a","digest":{"sha256":"`+d+`"}}`, `,"predicate":[1]`),
		"relative predicateType":       bytes.Replace(stmt(`{"name":"a","digest":{"sha256":"`+d+`"}}`, ``), []byte(`https://slsa.dev/provenance/v1`), []byte(`provenance`), 1),
		"non-canonical base64 content": stmt(`{"name":"a","digest":{"sha256":"`+d+`"},"content":"e30"}`, ``),
		"trailing data":                append(bytes.Clone(good), '1'),
		"subject name not UTF-8":       stmt(`{"name":"a`+"\xff"+`","digest":{"sha256":"`+d+`"}}`, ``),
		"lone surrogate in predicate":  stmt(`{"name":"a","digest":{"sha256":"`+d+`"}}`, `,"predicate":{"a":"\udc00"}`),
		"escaped case-variant key":     stmt(`{"name":"a","digest":{"sha256":"`+d+`"}}`, `,"pred\u0049cate":{}`),
	} {
		if _, err := dsse.ParseStatement(b); !errors.Is(err, dsse.ErrInvalidStatement) {
			t.Errorf("%s: ParseStatement = %v, want ErrInvalidStatement", name, err)
		}
	}
}

func TestLinkPredicateRefuses(t *testing.T) {
	d := strings.Repeat("ab", 32)
	for name, pred := range map[string]string{
		"no name":                 `{"command":["x"]}`,
		"material without name":   `{"name":"build","materials":[{"digest":{"sha256":"` + d + `"}}]}`,
		"material without digest": `{"name":"build","materials":[{"name":"a"}]}`,
		"material twice":          `{"name":"build","materials":[{"name":"a","digest":{"sha256":"` + d + `"}},{"name":"a","digest":{"sha256":"` + d + `"}}]}`,
		"unknown member":          `{"name":"build","products":{}}`,
		"duplicate name":          `{"name":"build","name":"test"}`,
	} {
		b := []byte(`{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"app","digest":{"sha256":"` + d + `"}}],"predicateType":"` + dsse.PredicateTypeLink + `","predicate":` + pred + `}`)
		st, err := dsse.ParseStatement(b)
		if err == nil {
			_, err = st.Link()
		}
		if !errors.Is(err, dsse.ErrInvalidStatement) {
			t.Errorf("%s: ParseStatement, Link = %v, want ErrInvalidStatement", name, err)
		}
	}
}

// in-toto-golang verifies evident's envelopes (with the DSSE verifier of
// go-securesystemslib it uses, and through its own Envelope for a link
// payload), and evident verifies in-toto-golang's.
func TestInTotoGolangInterop(t *testing.T) {
	for _, kt := range []string{"ecdsa", "rsa", "ed25519"} {
		t.Run(kt, func(t *testing.T) {
			signer, k := inTotoKey(t, kt)
			// evident signs a classic link payload; in-toto-golang loads and verifies it.
			lb, err := json.Marshal(testLink())
			if err != nil {
				t.Fatal(err)
			}
			env, err := dsse.NewEnvelope(signer, k.KeyID, in_toto.PayloadType, lb)
			if err != nil {
				t.Fatal(err)
			}
			eb, _ := env.Marshal()
			path := filepath.Join(t.TempDir(), "build.link")
			writeFile(t, path, eb)
			md, err := in_toto.LoadMetadata(path)
			if err != nil {
				t.Fatalf("in-toto-golang LoadMetadata: %v", err)
			}
			if err := md.(*in_toto.Envelope).VerifySignature(k); err != nil {
				t.Errorf("in-toto-golang VerifySignature of evident's envelope = %v", err)
			}
			// A Statement envelope, checked by go-securesystemslib's verifier.
			env, _ = dsse.NewEnvelope(signer, k.KeyID, typ, statementBytes(t))
			if err := sslVerify(t, k, env); err != nil {
				t.Errorf("go-securesystemslib verifying evident's Statement envelope = %v", err)
			}
			env.Payload = append(env.Payload, ' ')
			if err := sslVerify(t, k, env); err == nil {
				t.Error("go-securesystemslib accepted a changed payload")
			}
			// in-toto-golang signs; evident parses and verifies.
			var ie in_toto.Envelope
			if err := ie.SetPayload(testLink()); err != nil {
				t.Fatal(err)
			}
			if err := ie.Sign(k); err != nil {
				t.Fatal(err)
			}
			writeFile(t, path, nil)
			if err := ie.Dump(path); err != nil {
				t.Fatal(err)
			}
			ours, err := dsse.ParseEnvelope(readFile(t, path))
			if err != nil {
				t.Fatalf("ParseEnvelope of in-toto-golang's envelope: %v", err)
			}
			if err := dsse.Verify(signer.Public(), ours.PayloadType, ours.Payload, ours.Signatures[0].Sig); err != nil {
				t.Errorf("Verify of in-toto-golang's envelope = %v", err)
			}
			if ours.Signatures[0].KeyID != k.KeyID {
				t.Errorf("keyid = %q, want %q", ours.Signatures[0].KeyID, k.KeyID)
			}
		})
	}
}

func sslVerify(t *testing.T, k in_toto.Key, env *dsse.Envelope) error {
	b, _ := env.Marshal()
	var se ssldsse.Envelope
	if err := json.Unmarshal(b, &se); err != nil {
		t.Fatal(err)
	}
	pub := k
	pub.KeyVal.Private = ""
	v, err := verifierFor(pub)
	if err != nil {
		t.Fatal(err)
	}
	ev, err := ssldsse.NewEnvelopeVerifier(v)
	if err != nil {
		t.Fatal(err)
	}
	_, err = ev.Verify(t.Context(), &se)
	return err
}

func inTotoKey(t *testing.T, kt string) (cryptoSigner, in_toto.Key) {
	var signer cryptoSigner
	switch kt {
	case "ecdsa":
		signer, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "rsa":
		signer, _ = rsa.GenerateKey(rand.Reader, 2048)
	default:
		_, signer, _ = ed25519.GenerateKey(rand.Reader)
	}
	der, err := x509.MarshalPKCS8PrivateKey(signer)
	if err != nil {
		t.Fatal(err)
	}
	var k in_toto.Key
	if err := k.LoadKeyReaderDefaults(bytes.NewReader(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))); err != nil {
		t.Fatal(err)
	}
	return signer, k
}
