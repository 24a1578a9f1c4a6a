package dsse_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/evident-dev/evident/dsse"
	"github.com/evident-dev/evident/internal/strictjson"
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
		ref, refErr := referenceEnvelope(b)
		if err == nil && (refErr != nil || !reflect.DeepEqual(env, ref)) {
			t.Fatalf("ParseEnvelope = %+v, %v; encoding/json held by strictjson.Faithful reads %+v, %v", env, err, ref, refErr)
		}
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
	d := strings.Repeat("ab", 32)
	f.Add([]byte(`{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"a","digest":{"sha256":"` + d + `"},"annotations":{},"content":"e30="}],"predicateType":"` +
		dsse.PredicateTypeLink + `","pred\u0069cate":{"name":"b","command":["cc",null],"materials":[{"name":"m","digest":{"sha256":"` + d + `"}}],"byproducts":{"x":1.0}}}`))
	f.Add([]byte(`{"_type":"https://in-toto.io/Statement/v1","subject":[{"Name":"a","digest":{"sha256":"` + d + `"}}],"predicateType":"` +
		dsse.PredicateTypeLink + `","predicate":{"name":"b","Command":[],"environment":null}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		st, err := dsse.ParseStatement(b)
		ref, refErr := referenceStatement(b)
		if err == nil && (refErr != nil || !sameStatement(st, ref)) {
			t.Fatalf("ParseStatement = %+v, %v; encoding/json held by strictjson.Faithful reads %+v, %v", st, err, ref, refErr)
		}
		if err != nil {
			if !errors.Is(err, dsse.ErrInvalidStatement) {
				t.Fatalf("error %v does not wrap ErrInvalidStatement", err)
			}
			return
		}
		checkLinkReadings(t, st)
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

// The parsers read members from one strictjson decoding. These references
// read the same documents the way every other signed object of evident is
// read — encoding/json into a struct, held to the document by
// strictjson.Faithful — and the fuzz targets hold the parsers to them:
// what a parser accepts, the reference accepts and reads the same. The
// parsers are stricter in two ways the reference allows: an empty member
// under another case of a known name ("AnnotAtions": {}), and null in a
// list of strings.

func referenceEnvelope(b []byte) (*dsse.Envelope, error) {
	var raw struct {
		PayloadType *string `json:"payloadType"`
		Payload     *string `json:"payload"`
		Signatures  []struct {
			KeyID string  `json:"keyid"`
			Sig   *string `json:"sig"`
		} `json:"signatures"`
	}
	doc, err := strictjson.Unmarshal(b, &raw, strictjson.Limits{MaxSize: dsse.MaxEnvelopeSize, MaxDepth: 3})
	if err == nil {
		err = strictjson.Faithful(doc, raw, "$", true)
	}
	if err != nil {
		return nil, err
	}
	if raw.PayloadType == nil || *raw.PayloadType == "" || raw.Payload == nil || len(raw.Signatures) == 0 || len(raw.Signatures) > dsse.MaxSignatures {
		return nil, errors.New("payloadType, payload or signatures")
	}
	e := &dsse.Envelope{PayloadType: *raw.PayloadType}
	if e.Payload, err = canonicalBase64(*raw.Payload); err != nil || len(e.Payload) > dsse.MaxPayloadSize {
		return nil, errors.New("payload")
	}
	for _, s := range raw.Signatures {
		if s.Sig == nil {
			return nil, errors.New("sig missing")
		}
		sig, err := canonicalBase64(*s.Sig)
		if err != nil || len(sig) == 0 || len(sig) > dsse.MaxSignatureSize || len(s.KeyID) > dsse.MaxKeyIDSize {
			return nil, errors.New("signature")
		}
		e.Signatures = append(e.Signatures, dsse.Signature{KeyID: s.KeyID, Sig: sig})
	}
	return e, nil
}

func canonicalBase64(s string) ([]byte, error) {
	b, err := base64.StdEncoding.Strict().DecodeString(s)
	if err != nil || base64.StdEncoding.EncodeToString(b) != s {
		return nil, errors.New("not canonical base64")
	}
	return b, nil
}

func referenceStatement(b []byte) (*dsse.Statement, error) {
	var st dsse.Statement
	doc, err := strictjson.Unmarshal(b, &st, strictjson.Limits{MaxSize: dsse.MaxPayloadSize, MaxDepth: 64})
	if err == nil {
		err = strictjson.Faithful(doc, st, "$", true)
	}
	if err != nil {
		return nil, err
	}
	pred, hasPred := doc.(map[string]any)["predicate"]
	if _, ok := pred.(map[string]any); hasPred && !ok && pred != nil {
		return nil, errors.New("predicate is not an object")
	}
	if st.Type != dsse.StatementType || len(st.Subject) == 0 || len(st.Subject) > dsse.MaxSubjects {
		return nil, errors.New("_type or subject")
	}
	// The checks of URIs and digests are ParseStatement's own: run them on
	// what the reference read, re-encoded.
	again, err := json.Marshal(st)
	if err != nil {
		return nil, err
	}
	if _, err := dsse.ParseStatement(again); err != nil {
		return nil, err
	}
	return &st, nil
}

// sameStatement compares two readings, an empty member being an absent one.
func sameStatement(a, b *dsse.Statement) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return bytes.Equal(ja, jb) && bytes.Equal(a.Predicate, b.Predicate)
}

// checkLinkReadings: Link reads the predicate ParseStatement decoded as
// it reads a fresh copy of the bytes, and as encoding/json held by
// strictjson.Faithful reads them (which may accept what Link refuses: null
// in a list of strings).
func checkLinkReadings(t *testing.T, st *dsse.Statement) {
	l, err := st.Link()
	fresh := *st
	fresh.Predicate = bytes.Clone(st.Predicate)
	l2, err2 := fresh.Link()
	if (err == nil) != (err2 == nil) || err == nil && !reflect.DeepEqual(l, l2) {
		t.Fatalf("Link of the parsed predicate = %+v, %v; of a copy %+v, %v", l, err, l2, err2)
	}
	if err != nil {
		return
	}
	var p dsse.LinkPredicate
	if err := dsse.ParsePredicate(st.Predicate, &p); err != nil {
		t.Fatalf("Link accepts a predicate ParsePredicate refuses: %v", err)
	}
	if p.Name != l.Name || len(p.Materials) != len(l.Materials) || strings.Join(p.Command, "\x00") != strings.Join(l.Command, "\x00") ||
		len(p.Byproducts) != len(l.ByProducts) || len(p.Environment) != len(l.Environment) {
		t.Fatalf("Link reads %+v, ParsePredicate %+v", l, p)
	}
	for _, m := range p.Materials {
		if !reflect.DeepEqual(map[string]string(l.Materials[m.Name]), m.Digest) {
			t.Fatalf("material %q reads %v and %v", m.Name, l.Materials[m.Name], m.Digest)
		}
	}
}
