package dsse_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"reflect"
	"testing"

	"github.com/evident-dev/evident/dsse"
	ssldsse "github.com/secure-systems-lab/go-securesystemslib/dsse"
)

// P1: what ParseEnvelope accepts has one meaning: re-encoded, it parses to
// the same envelope, and go-securesystemslib (in-toto-golang's DSSE
// decoder) reads the same payload type, payload and signatures from it.
func FuzzParseEnvelope(f *testing.F) {
	good := signedEnvelope(f)
	f.Add(good)
	f.Add(bytes.Replace(good, []byte(`"payload":`), []byte(`"payload":"e30=","payload":`), 1))
	f.Add([]byte(`{"payloadType":"x","payload":"e30=","signatures":[{"keyid":"","sig":"AA=="}]}`))
	f.Add([]byte(`{"payloadType":"x","payload":"e30","signatures":[{"keyid":"","sig":"AA-_"}]}`))
	f.Add([]byte(`{"payloadType":"x","payload":"e3\n0=","signatures":[{"KeyID":"a","sig":"AA=="}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		env, err := dsse.ParseEnvelope(b)
		if err != nil {
			if !errors.Is(err, dsse.ErrInvalidEnvelope) {
				t.Fatalf("error %v does not wrap ErrInvalidEnvelope", err)
			}
			return
		}
		again, err := env.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		env2, err := dsse.ParseEnvelope(again)
		if err != nil || !reflect.DeepEqual(env, env2) {
			t.Fatalf("re-encoded %q parses to %+v, %v; want %+v", again, env2, err, env)
		}
		var se ssldsse.Envelope
		if err := json.Unmarshal(b, &se); err != nil {
			t.Fatalf("go-securesystemslib cannot decode what evident accepts: %v", err)
		}
		p, err := se.DecodeB64Payload()
		if err != nil || se.PayloadType != env.PayloadType || !bytes.Equal(p, env.Payload) || len(se.Signatures) != len(env.Signatures) {
			t.Fatalf("go-securesystemslib reads another envelope: %+v", se)
		}
		for i, s := range se.Signatures {
			sig, err := base64.StdEncoding.DecodeString(s.Sig)
			if err != nil || s.KeyID != env.Signatures[i].KeyID || !bytes.Equal(sig, env.Signatures[i].Sig) {
				t.Fatalf("signature %d reads differently: %+v", i, s)
			}
		}
	})
}

// P1: what ParseStatement accepts re-encodes to a Statement that parses
// the same, and a generic decoder reads the same subjects from the bytes.
func FuzzParseStatement(f *testing.F) {
	good := statementBytes(f)
	f.Add(good)
	f.Add(bytes.Replace(good, []byte(`"_type":`), []byte(`"_type":"x","_type":`), 1))
	f.Add([]byte(`{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"a","digest":{"sha256":"` +
		"abababababababababababababababababababababababababababababababab" + `"}}],"predicateType":"https://slsa.dev/provenance/v1","predicate":{"a":[1e3,"\u003c"]}}`))
	f.Add([]byte(`{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"a","digest":{"sha1":"00"}}],"predicateType":"x:y","predicate":null}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		st, err := dsse.ParseStatement(b)
		if err != nil {
			if !errors.Is(err, dsse.ErrInvalidStatement) {
				t.Fatalf("error %v does not wrap ErrInvalidStatement", err)
			}
			return
		}
		again, err := json.Marshal(st)
		if err != nil {
			t.Fatal(err)
		}
		st2, err := dsse.ParseStatement(again)
		if err != nil {
			t.Fatalf("re-encoded %q: %v", again, err)
		}
		if !reflect.DeepEqual(st.Subject, st2.Subject) || st.PredicateType != st2.PredicateType {
			t.Fatalf("re-encoded statement means another thing: %+v vs %+v", st, st2)
		}
		var generic struct {
			Subject []struct {
				Name   string
				Digest map[string]string
			}
		}
		if err := json.Unmarshal(b, &generic); err != nil {
			t.Fatal(err)
		}
		for i, s := range generic.Subject {
			if s.Name != st.Subject[i].Name || !reflect.DeepEqual(s.Digest, st.Subject[i].Digest) && len(s.Digest)+len(st.Subject[i].Digest) > 0 {
				t.Fatalf("subject %d reads differently: %+v vs %+v", i, s, st.Subject[i])
			}
		}
		if l, err := st.Link(); err == nil && len(l.Products) != len(st.Subject) {
			t.Fatalf("link has %d products for %d subjects", len(l.Products), len(st.Subject))
		}
	})
}
